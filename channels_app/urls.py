"""Dashboard pages of channels."""

from django.urls import path

from channels_app import views

urlpatterns = [
    path("channels/", views.channel_list, name="channels"),
    path("channels/open/", views.channel_open, name="channel-open"),
    path("channels/virtual/open/", views.virtual_channel_open, name="virtual-channel-open"),
    path("channels/<str:channel_id>/", views.channel_detail, name="channel-detail"),
    path("channels/<str:channel_id>/dispute/", views.channel_dispute, name="channel-dispute"),
    path("channels/<str:channel_id>/actions/<str:action>/", views.channel_action, name="channel-action"),
]
