"""REST API of consensus, mounted under /api/."""

from django.urls import path

from consensus import api

urlpatterns = [
    path("blocks/", api.BlockListApi.as_view(), name="api-blocks"),
    path("blocks/consistency", api.BlockConsistencyApi.as_view(), name="api-blocks-consistency"),
    path("blocks/consistency/", api.BlockConsistencyApi.as_view()),
    path("blocks/<int:height>/", api.BlockDetailApi.as_view(), name="api-block"),
    path("blocks/<int:height>/proof/<int:index>/", api.BlockProofApi.as_view(), name="api-block-proof"),
    path("consensus/status", api.ConsensusStatusApi.as_view(), name="api-consensus-status"),
    path("consensus/status/", api.ConsensusStatusApi.as_view()),
    path("consensus/observations/", api.ObservationSubmitApi.as_view(), name="api-consensus-observations"),
    path("anchors/", api.AnchorListApi.as_view(), name="api-anchors"),
    path("firehose", api.FirehoseApi.as_view(), name="api-firehose"),
    path("firehose/", api.FirehoseApi.as_view()),
]
