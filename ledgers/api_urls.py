"""REST API of ledgers, mounted under /api/. A ledger is named by its id or its UBI."""

from django.urls import path

from ledgers import api

urlpatterns = [
    path("assets/", api.AssetListCreateApi.as_view(), name="api-assets"),
    path("ledgers/", api.LedgerListCreateApi.as_view(), name="api-ledgers"),
    path("ledgers/<str:ledger>/", api.LedgerDetailApi.as_view(), name="api-ledger"),
    path("ledgers/<str:ledger>/entries", api.LedgerEntriesApi.as_view(), name="api-ledger-entries"),
    path("ledgers/<str:ledger>/entries/", api.LedgerEntriesApi.as_view()),
    path(
        "ledgers/<str:ledger>/entries/<int:height>/receipt",
        api.LedgerEntryReceiptApi.as_view(),
        name="api-ledger-entry-receipt",
    ),
    path("ledgers/<str:ledger>/entries/<int:height>/receipt/", api.LedgerEntryReceiptApi.as_view()),
    path("ledgers/<str:ledger>/verify/", api.LedgerVerifyApi.as_view(), name="api-ledger-verify"),
    path("ledgers/<str:ledger>/issue/", api.LedgerIssueApi.as_view(), name="api-ledger-issue"),
    path("ledgers/<str:ledger>/redeem/", api.LedgerRedeemApi.as_view(), name="api-ledger-redeem"),
    path("payments/", api.PaymentCreateApi.as_view(), name="api-payments"),
    path("payments/batch/", api.PaymentBatchApi.as_view(), name="api-payments-batch"),
    path("payments/interbank/", api.InterbankPaymentApi.as_view(), name="api-payments-interbank"),
    path(
        "payments/interbank/batch/",
        api.InterbankPaymentBatchApi.as_view(),
        name="api-payments-interbank-batch",
    ),
    path("offers/", api.OfferListCreateApi.as_view(), name="api-offers"),
    path("offers/<str:offer_id>/take/", api.OfferTakeApi.as_view(), name="api-offer-take"),
    path("offers/<str:offer_id>/cancel/", api.OfferCancelApi.as_view(), name="api-offer-cancel"),
    path("fraud-proofs/", api.FraudProofListCreateApi.as_view(), name="api-fraud-proofs"),
    path("fraud-proofs/verify/", api.FraudProofVerifyApi.as_view(), name="api-fraud-proofs-verify"),
]
