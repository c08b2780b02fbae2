"""Node-to-node endpoints of ledgers, mounted under /node-api/; each view is wrapped by
settlement.transport.node_to_node."""

from django.urls import path

from ledgers import node_api

urlpatterns = [
    path("ledgers/payments/cosign", node_api.payment_cosign, name="node-api-ledger-payment-cosign"),
    path("ledgers/payments/final", node_api.payment_final, name="node-api-ledger-payment-final"),
    path("ledgers/payments/void", node_api.payment_void, name="node-api-ledger-payment-void"),
    path(
        "ledgers/payments/cosign-batch",
        node_api.payment_cosign_batch,
        name="node-api-ledger-payment-cosign-batch",
    ),
    path(
        "ledgers/payments/final-batch",
        node_api.payment_final_batch,
        name="node-api-ledger-payment-final-batch",
    ),
    path("ledgers/payments/status", node_api.payment_status, name="node-api-ledger-payment-status"),
    path("ledgers/payments/relay", node_api.payment_relay, name="node-api-ledger-payment-relay"),
    path("ledgers/payments/route", node_api.payment_route, name="node-api-ledger-payment-route"),
    path("ledgers/offers", node_api.offer_receive, name="node-api-ledger-offers"),
    path("ledgers/offers/take", node_api.offer_take, name="node-api-ledger-offer-take"),
]
