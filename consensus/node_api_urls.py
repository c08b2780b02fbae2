"""Node-to-node endpoints of consensus, mounted under /node-api/."""

from django.urls import path

from consensus import node_api

urlpatterns = [
    path("consensus/gossip", node_api.gossip, name="node-api-consensus-gossip"),
]
