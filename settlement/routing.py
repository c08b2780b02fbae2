from django.urls import path

from settlement.consumers import OverviewConsumer, PeersConsumer

websocket_urlpatterns = [
    path("ws/overview/", OverviewConsumer.as_asgi()),
    path("ws/peers/", PeersConsumer.as_asgi()),
]
