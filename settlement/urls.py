from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from settlement import views
from settlement.api.peers import PeerCreditLimitApi, PeerDetailApi, PeerListApi
from settlement.api.views import NodeStatusApi
from settlement.second_factor import second_factor, second_factor_not_required

handler403 = "settlement.errors.permission_denied"
handler404 = "settlement.errors.page_not_found"
handler500 = "settlement.errors.server_error"

api_urlpatterns = [
    path("node/", NodeStatusApi.as_view(), name="api-node"),
    path("peers/", PeerListApi.as_view(), name="api-peers"),
    path("peers/<int:peer_id>/", PeerDetailApi.as_view(), name="api-peer"),
    path("peers/<int:peer_id>/credit-limits/", PeerCreditLimitApi.as_view(), name="api-peer-credit-limits"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# Node-to-node endpoints (/node-api/) are not here: settlement.asgi sends them to a handler of
# their own, with its own middleware and URLconf (settlement.node_api_urls).
urlpatterns = [
    path("", views.overview, name="overview"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", second_factor_not_required(auth_views.LogoutView.as_view()), name="logout"),
    path("accounts/second-factor/", second_factor, name="second-factor"),
    path("node/", views.node_identity, name="node-identity"),
    path("peers/", views.peers, name="peers"),
    path(".well-known/parsec.json", views.well_known, name="well-known-parsec"),
    path("api/", include(api_urlpatterns)),
    path("api/", include("settlement.counterparties.api_urls")),
    path("api/", include("ledgers.api_urls")),
    path("api/", include("channels_app.api_urls")),
    path("", include("settlement.counterparties.urls")),
    path("", include("ledgers.urls")),
    path("", include("channels_app.urls")),
    path("", include("consensus.urls")),
    path("api/", include("consensus.api_urls")),
    path("api/", include("messaging.api_urls")),
    path("", include("messaging.urls")),
    path("admin/", admin.site.urls),
]
