"""Node-to-node endpoints of channels, mounted under /node-api/; each view is wrapped by
settlement.transport.node_to_node."""

urlpatterns: list[object] = []
