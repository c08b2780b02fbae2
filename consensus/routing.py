"""Websocket routes of consensus."""

from django.urls import path

from consensus.consumers import BlocksConsumer, ConsensusConsumer, FirehoseConsumer

websocket_urlpatterns = [
    path("ws/consensus/", ConsensusConsumer.as_asgi()),
    path("ws/blocks/", BlocksConsumer.as_asgi()),
    path("ws/firehose/", FirehoseConsumer.as_asgi()),
]
