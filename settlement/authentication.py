"""API token authentication: `Authorization: Bearer psk_<lookup>_<secret>` (or `Token ...`), for
the REST API (DRF) and for websockets that integrations open (``ApiTokenWebsocketMiddleware``)."""

from __future__ import annotations

import hmac
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from settlement.models import TOKEN_PREFIX, ApiToken, Role, hash_token_secret
from settlement.roles import user_roles

KEYWORDS = ("bearer", "token")


class InvalidApiToken(Exception):  # noqa: N818 - the name says what was presented
    """An Authorization header that names a token, but not a valid one."""


def api_token_from_header(value: str) -> ApiToken | None:
    """The active token an ``Authorization`` header value carries; None when it carries no token
    at all (another scheme, or empty), ``InvalidApiToken`` when it carries a bad one."""
    words = value.split()
    if not words or words[0].lower() not in KEYWORDS:
        return None
    if len(words) != 2:
        raise InvalidApiToken("The Authorization header must be: Bearer <token>.")
    prefix, _, rest = words[1].partition("_")
    lookup, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not lookup or not secret:
        raise InvalidApiToken("This is not a Parsec API token.")
    token = ApiToken.objects.active().select_related("user").filter(lookup=lookup).first()
    # Compare in constant time so the response time says nothing about the secret.
    if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(secret)):
        raise InvalidApiToken("The API token is unknown or revoked.")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def token_roles(token: ApiToken) -> frozenset[Role]:
    """A token acts with its own role only, and only while its user still holds that role."""
    return user_roles(token.user) & {Role(token.role)}


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = KEYWORDS

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        try:
            token = api_token_from_header(header)
        except InvalidApiToken as error:
            raise exceptions.AuthenticationFailed(str(error)) from error
        return None if token is None else (token.user, token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="parsec"'


class ApiTokenWebsocketMiddleware(BaseMiddleware):
    """Reads an API token from a websocket handshake's ``Authorization`` header.

    It sets ``scope["api_token"]`` (or ``scope["api_token_error"]`` with the reason) and leaves
    ``scope["user"]`` to the session: only consumers meant for integrations (the firehose) look
    at the token, so a token never opens a dashboard page's live partials.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") == "websocket":
            header = dict(scope.get("headers") or []).get(b"authorization")
            if header is not None:
                scope = dict(scope)
                try:
                    token = await database_sync_to_async(api_token_from_header)(header.decode("latin-1"))
                except InvalidApiToken as error:
                    scope["api_token_error"] = str(error)
                else:
                    if token is not None:
                        scope["api_token"] = token
        return await super().__call__(scope, receive, send)
