"""Websocket routes of messaging."""

from django.urls import path

from messaging.consumers import MailboxConsumer

websocket_urlpatterns = [
    path("ws/messages/<int:counterparty_id>/", MailboxConsumer.as_asgi()),
]
