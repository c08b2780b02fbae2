"""ASGI entry point: HTTP through Django, websockets through Channels with session auth (and API
tokens, which only the consumers meant for integrations accept)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
# Django must be set up before the consumers (and the models they import) are loaded.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from settlement.authentication import ApiTokenWebsocketMiddleware  # noqa: E402
from settlement.keystore import keystore_check  # noqa: E402
from settlement.routing import websocket_urlpatterns  # noqa: E402

# A wrong key passphrase stops the web process here, with a sentence, before it serves anyone.
keystore_check()

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(ApiTokenWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
