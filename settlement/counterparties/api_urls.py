"""REST API of counterparties and KYC, mounted under /api/."""

from django.urls import path

from settlement.counterparties import api

urlpatterns = [
    path("counterparties/", api.CounterpartyListCreateApi.as_view(), name="api-counterparties"),
    path(
        "counterparties/<int:counterparty_id>/", api.CounterpartyDetailApi.as_view(), name="api-counterparty"
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/documents/",
        api.KycDocumentsApi.as_view(),
        name="api-counterparty-kyc-documents",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/documents/<int:document_id>/content/",
        api.KycDocumentContentApi.as_view(),
        name="api-counterparty-kyc-document-content",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/submit/",
        api.KycSubmitApi.as_view(),
        name="api-counterparty-kyc-submit",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/decision/",
        api.KycDecisionApi.as_view(),
        name="api-counterparty-kyc-decision",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/history/",
        api.KycHistoryApi.as_view(),
        name="api-counterparty-kyc-history",
    ),
    path(
        "counterparties/<int:counterparty_id>/federation/key-sets/",
        api.FederationKeySetsApi.as_view(),
        name="api-counterparty-federation-key-sets",
    ),
    path("node/keys/", api.NodeKeysApi.as_view(), name="api-node-keys"),
]
