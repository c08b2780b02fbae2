"""Node-to-node endpoints of channels, mounted under /node-api/; each view is wrapped by
settlement.transport.node_to_node."""

from django.urls import path

from channels_app import node_api

urlpatterns = [
    path("channels/open", node_api.channel_open, name="node-api-channel-open"),
    path("channels/<str:channel_id>/proposals", node_api.channel_proposal, name="node-api-channel-proposal"),
]
