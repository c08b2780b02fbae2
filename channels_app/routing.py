"""Websocket routes of channels."""

websocket_urlpatterns: list[object] = []
