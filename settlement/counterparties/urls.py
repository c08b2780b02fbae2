"""Dashboard pages and public endpoints of counterparties, KYC and federation."""

from django.urls import path

from settlement.counterparties import api, views

urlpatterns = [
    path("counterparties/", views.counterparty_list_page, name="counterparties"),
    path("counterparties/new/", views.counterparty_create_page, name="counterparty-create"),
    path("counterparties/<int:counterparty_id>/", views.counterparty_detail_page, name="counterparty-detail"),
    path(
        "counterparties/<int:counterparty_id>/kyc/decision/",
        views.kyc_decision_page,
        name="counterparty-kyc-decision",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/submit/",
        views.kyc_submit_page,
        name="counterparty-kyc-submit",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/documents/",
        views.kyc_document_upload_page,
        name="counterparty-kyc-document-upload",
    ),
    path(
        "counterparties/<int:counterparty_id>/kyc/documents/<int:document_id>/",
        views.kyc_document_download,
        name="counterparty-kyc-document",
    ),
    # Public by nature: anyone may look a counterparty up and check the node's signature
    # with the key /.well-known/parsec.json publishes (settlement.identity serves that).
    path("federation", api.FederationApi.as_view(), name="federation"),
]
