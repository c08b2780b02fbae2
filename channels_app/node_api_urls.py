"""Node-to-node endpoints of channels, mounted under /node-api/; each view is wrapped by
settlement.transport.node_to_node."""

from django.urls import path

from channels_app import node_api, node_api_batch

urlpatterns = [
    path("channels/open", node_api.channel_open, name="node-api-channel-open"),
    # Before channels/<id>/…: "proposals" is not a channel id.
    path(
        "channels/proposals/batch",
        node_api_batch.channel_proposals_batch,
        name="node-api-channel-proposals-batch",
    ),
    path("channels/<str:channel_id>/proposals", node_api.channel_proposal, name="node-api-channel-proposal"),
]
