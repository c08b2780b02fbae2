"""Dashboard pages of ledgers."""

from django.urls import path

from settlement import views

urlpatterns = [
    path("ledgers/", views.section, {"name": "ledgers", "title": "Ledgers"}, name="ledgers"),
]
