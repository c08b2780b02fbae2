"""A peer node whose Ed25519 transport key and Ethereum key the test holds, and signed requests
from it: what the node-to-node channel tests post as that peer."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from channels_app.protocol import eip712
from settlement.keystore import node_identity_ensure
from settlement.models import Peer, PeerKey
from settlement.protocol import http_signature
from settlement.protocol.signing import SigningKey


def make_signed_peer(name: str) -> tuple[SigningKey, bytes]:
    """Create peer ``name`` (domain ``<name>.test``); return its transport and Ethereum keys."""
    node_identity_ensure()
    transport_key = SigningKey.generate()
    ethereum_key = secrets.token_bytes(32)
    peer = Peer.objects.create(
        name=name,
        domain=f"{name}.test",
        base_url="http://127.0.0.1:9",
        ethereum_address=eip712.address_of_key(ethereum_key),
    )
    PeerKey.objects.create(
        peer=peer,
        key_id=f"{name}.test#ed25519-1",
        public=transport_key.public_key.hex(),
        valid_from=timezone.now(),
    )
    return transport_key, ethereum_key


def post_as_peer(
    client: Any,
    name: str,
    transport_key: SigningKey,
    path: str,
    body: dict | bytes,
    *,
    signed: bool = True,
    content_type: str = "application/json",
) -> Any:
    """``body`` as JSON, or bytes as given with their ``content_type``; signed as the peer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {}
    if signed:
        headers = http_signature.sign_request(
            transport_key,
            key_id=f"{name}.test#ed25519-1",
            method="POST",
            path=path,
            body=data,
            created=int(time.time()),
            nonce=http_signature.new_nonce(),
            audience=settings.NODE_DOMAIN,
        )
    return client.generic("POST", path, data=data, content_type=content_type, headers=headers)
