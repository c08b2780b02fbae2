"""Dashboard pages of consensus: the validator and the blocks explorer."""

from django.urls import path

from consensus import views

urlpatterns = [
    path("consensus/", views.consensus_page, name="consensus"),
    path("blocks/", views.block_list_page, name="blocks"),
    path("blocks/<int:height>/", views.block_page, name="block"),
    path("firehose/", views.firehose_page, name="firehose"),
]
