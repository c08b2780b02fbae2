"""Dashboard pages of ledgers."""

from django.urls import path

from ledgers import views

urlpatterns = [
    path("ledgers/", views.ledger_list_page, name="ledgers"),
    path("ledgers/pay/", views.payment_page, name="ledger-pay"),
    path("ledgers/<int:ledger_id>/", views.ledger_chain_page, name="ledger-chain"),
]
