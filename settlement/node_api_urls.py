"""The URLconf of the node-api handler (settlement.node_api_handler): node-to-node routes only.

Each app keeps its routes in <app>/node_api_urls.py; they are mounted here and nowhere else, so
no dashboard or REST view is reachable through the lean path, and no node-api view through the
dashboard's. Errors are answered in JSON, as node clients read them.
"""

from django.urls import include, path

from settlement import node_api

handler400 = "settlement.node_api_handler.bad_request"
handler403 = "settlement.node_api_handler.permission_denied"
handler404 = "settlement.node_api_handler.not_found"
handler500 = "settlement.node_api_handler.server_error"

urlpatterns = [
    path("node-api/ping", node_api.ping, name="node-api-ping"),
    path("node-api/", include("ledgers.node_api_urls")),
    path("node-api/", include("channels_app.node_api_urls")),
    path("node-api/", include("consensus.node_api_urls")),
    path("node-api/", include("messaging.node_api_urls")),
]
