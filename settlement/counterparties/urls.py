"""Dashboard pages and public endpoints of counterparties, KYC and federation."""

from django.urls import path

from settlement import views

urlpatterns = [
    path(
        "counterparties/",
        views.section,
        {"name": "counterparties", "title": "Counterparties"},
        name="counterparties",
    ),
]
