"""ASGI entry point: HTTP through Django, websockets through Channels with session auth (and API
tokens, which only the consumers meant for integrations accept).

HTTP takes one of two Django handlers by path: node-to-node requests (/node-api/, signed by the
calling node) the lean one of settlement.node_api_handler, with NODE_API_MIDDLEWARE and the
node-api URLconf; everything else (pages, REST API, admin, static files) the dashboard's, with
MIDDLEWARE and ROOT_URLCONF. Neither URLconf holds the other's routes."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
# The web process pools its database connections (settlement/settings.py says why); an operator
# may size the pool, or set 0 to open a connection per request as before.
os.environ.setdefault("DATABASE_POOL_MAX", "20")
# Django must be set up before the consumers (and the models they import) are loaded.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from settlement.authentication import ApiTokenWebsocketMiddleware  # noqa: E402
from settlement.keystore import keystore_check  # noqa: E402
from settlement.node_api_handler import NodeApiASGIHandler, is_node_api_path  # noqa: E402
from settlement.routing import websocket_urlpatterns  # noqa: E402

# A wrong key passphrase stops the web process here, with a sentence, before it serves anyone.
keystore_check()

node_api_application = NodeApiASGIHandler()


async def http_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # The path as Django will see it: without the prefix the node is mounted at, if any.
    path = scope["path"].removeprefix(scope.get("root_path", "") or "")
    handler = node_api_application if is_node_api_path(path) else django_application
    await handler(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(ApiTokenWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
