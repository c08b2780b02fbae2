"""Websocket routes of channels."""

from django.urls import path

from channels_app.consumers import ChannelConsumer, ChannelsConsumer

websocket_urlpatterns = [
    path("ws/channels/", ChannelsConsumer.as_asgi()),
    path("ws/channels/<str:channel_id>/", ChannelConsumer.as_asgi()),
]
