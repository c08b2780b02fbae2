"""Node-to-node endpoints of messaging, mounted under /node-api/."""

from django.urls import path

from messaging import node_api

urlpatterns = [
    path("messaging/recipients", node_api.recipients, name="node-api-messaging-recipients"),
    path("messaging/deliver", node_api.deliver, name="node-api-messaging-deliver"),
    path("messaging/rejections", node_api.rejections, name="node-api-messaging-rejections"),
]
