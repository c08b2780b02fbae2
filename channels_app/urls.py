"""Dashboard pages of channels."""

from django.urls import path

from settlement import views

urlpatterns = [
    path("channels/", views.section, {"name": "channels", "title": "Channels"}, name="channels"),
]
