"""API token authentication: `Authorization: Bearer psk_<lookup>_<secret>` (or `Token ...`)."""

from __future__ import annotations

import hmac
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from settlement.models import TOKEN_PREFIX, ApiToken, hash_token_secret


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be: Bearer <token>.")
        prefix, _, rest = header[1].partition("_")
        lookup, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not lookup or not secret:
            raise exceptions.AuthenticationFailed("This is not a Parsec API token.")
        token = ApiToken.objects.active().select_related("user").filter(lookup=lookup).first()
        # Compare in constant time so the response time says nothing about the secret.
        if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(secret)):
            raise exceptions.AuthenticationFailed("The API token is unknown or revoked.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="parsec"'
