"""Websocket routes of ledgers."""

from django.urls import path

from ledgers.consumers import LedgersConsumer

websocket_urlpatterns = [
    path("ws/ledgers/", LedgersConsumer.as_asgi()),
]
