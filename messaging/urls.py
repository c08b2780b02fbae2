"""Dashboard pages of messaging."""

from django.urls import path

from messaging import views

urlpatterns = [
    path("messages/", views.messages_page, name="messages"),
    path("messages/compose/", views.compose_page, name="message-compose"),
]
