"""Websocket routes of ledgers."""

websocket_urlpatterns: list[object] = []
