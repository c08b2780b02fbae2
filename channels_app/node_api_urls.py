"""Node-to-node endpoints of channels, mounted under /node-api/; each view is wrapped by
settlement.transport.node_to_node."""

from django.urls import path

from channels_app import node_api, node_api_batch, virtual_node_api

urlpatterns = [
    path("channels/open", node_api.channel_open, name="node-api-channel-open"),
    # Before channels/<id>/…: "proposals" is not a channel id.
    path(
        "channels/proposals/batch",
        node_api_batch.channel_proposals_batch,
        name="node-api-channel-proposals-batch",
    ),
    path("channels/<str:channel_id>/proposals", node_api.channel_proposal, name="node-api-channel-proposal"),
    path(
        "channels/<str:channel_id>/virtual-proposals",
        virtual_node_api.channel_virtual_proposal,
        name="node-api-channel-virtual-proposal",
    ),
    path(
        "channels/<str:channel_id>/countersignature",
        virtual_node_api.channel_countersignature,
        name="node-api-channel-countersignature",
    ),
    path("channels/<str:channel_id>/status", virtual_node_api.channel_status, name="node-api-channel-status"),
    path("virtual-channels/open", virtual_node_api.virtual_channel_open, name="node-api-virtual-open"),
    path(
        "virtual-channels/<str:channel_id>/lock",
        virtual_node_api.virtual_channel_lock,
        name="node-api-virtual-lock",
    ),
    path(
        "virtual-channels/<str:channel_id>/release",
        virtual_node_api.virtual_channel_release,
        name="node-api-virtual-release",
    ),
]
