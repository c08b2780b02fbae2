"""Every websocket route of the node; each app keeps its own in <app>/routing.py."""

from django.urls import path

from channels_app.routing import websocket_urlpatterns as channel_routes
from consensus.routing import websocket_urlpatterns as consensus_routes
from ledgers.routing import websocket_urlpatterns as ledger_routes
from messaging.routing import websocket_urlpatterns as messaging_routes
from settlement.consumers import OverviewConsumer, PeersConsumer

websocket_urlpatterns = [
    path("ws/overview/", OverviewConsumer.as_asgi()),
    path("ws/peers/", PeersConsumer.as_asgi()),
    *ledger_routes,
    *channel_routes,
    *consensus_routes,
    *messaging_routes,
]
