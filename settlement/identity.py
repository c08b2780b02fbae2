"""The node's public identity, and the peers it knows: services and selectors.

A node publishes /.well-known/parsec.json (its keys with their validity, its Ethereum address,
its API). Adding a peer reads that document once, on the operator's word (trust on first use,
like an SSH host key); from then on every request between the two is signed and checked.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from settlement import health
from settlement.audit import audit_record
from settlement.models import KeyPurpose, NodeKey, NodeKeyHandover, Peer, PeerKey, PeerStatus
from settlement.protocol import keys as key_rules
from settlement.transport import PeerUnreachable, peer_request

logger = logging.getLogger("parsec.identity")

PEERS_GROUP = "peers"
IDENTITY_DOCUMENT_VERSION = 1


class PeerDocumentError(ValueError):
    """A peer's identity document is missing, malformed, or not what it claims."""

    code = "bad_peer_identity"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def node_identity_document() -> dict[str, Any]:
    """What /.well-known/parsec.json publishes: public parts only, never a private key."""
    keys: dict[str, list[dict[str, Any]]] = {purpose: [] for purpose in KeyPurpose.values}
    direct: dict[int, list[dict[str, str]]] = {}
    for key_id, successor, signature in NodeKeyHandover.objects.order_by(
        "successor__valid_from", "key__valid_from"
    ).values_list("key_id", "successor__public", "signature"):
        direct.setdefault(key_id, []).append({"successor": successor, "signature": signature})
    for key in NodeKey.objects.order_by("purpose", "valid_from"):
        published: dict[str, Any] = {
            "key_id": key.key_id,
            "public": key.public,
            "valid_from": _iso(key.valid_from),
            "valid_until": _iso(key.valid_until),
        }
        if key.purpose == KeyPurpose.SIGNING:
            # A retired signing key's hand-over to the key after it (docs/receipt.md, "Key
            # rotation"): what lets anyone check that the node's keys form one line.
            published["handover"] = key.handover_signature or None
            # Its hand-overs straight to later keys, made at their rotations ("Direct
            # hand-overs"): every hand-over a key of this node ever signed is listed here, so one
            # that is not (a thief's, made with a stolen retired key) stands out.
            published["direct_handovers"] = direct.get(key.pk, [])
        keys[key.purpose].append(published)
    current_eth = next(
        (key["public"] for key in keys[KeyPurpose.ETHEREUM] if key["valid_until"] is None), None
    )
    base = settings.NODE_BASE_URL.rstrip("/")
    return {
        "parsec": IDENTITY_DOCUMENT_VERSION,
        "name": settings.NODE_NAME,
        "domain": settings.NODE_DOMAIN,
        "base_url": base,
        "api": f"{base}/api/",
        "node_api": f"{base}/node-api/",
        "federation": f"{base}/federation",
        "ethereum_address": current_eth,
        "keys": keys,
    }


def _parse_document(document: Any, base_url: str) -> dict[str, Any]:
    try:
        name, domain = str(document["name"]), str(document["domain"])
        signing = [
            {
                "key_id": str(key["key_id"]),
                "public": key_rules.parse_ed25519_public_key(key["public"]).hex(),
                "valid_from": parse_datetime(key["valid_from"]),
                "valid_until": parse_datetime(key["valid_until"]) if key["valid_until"] else None,
            }
            for key in document["keys"][KeyPurpose.SIGNING]
        ]
        encryption = [key for key in document["keys"][KeyPurpose.ENCRYPTION] if key["valid_until"] is None]
        x25519 = key_rules.parse_x25519_public_key(encryption[0]["public"]).hex() if encryption else ""
        ethereum = (
            key_rules.parse_eth_address(document["ethereum_address"]) if document["ethereum_address"] else ""
        )
    except (KeyError, TypeError, IndexError, key_rules.KeyMaterialError) as error:
        raise PeerDocumentError(f"the identity document at {base_url} is malformed: {error}") from error
    if not signing or not any(key["valid_until"] is None for key in signing):
        raise PeerDocumentError(f"{name} publishes no current signing key")
    if not all(str(key["key_id"]).startswith(f"{domain}#") for key in signing):
        raise PeerDocumentError(f"{name}'s key ids must belong to its domain {domain}")
    return {"name": name, "domain": domain, "signing": signing, "x25519": x25519, "ethereum": str(ethereum)}


def fetch_identity_document(base_url: str, timeout: float = 5.0) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/.well-known/parsec.json"
    try:
        answer = requests.get(url, timeout=timeout)
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
    except (requests.RequestException, ValueError) as error:
        raise PeerDocumentError(f"cannot read {url}: {error}") from error
    return document


@transaction.atomic
def peer_add(*, base_url: str, document: dict[str, Any], actor: Any) -> Peer:
    """Add a peer from its identity document, or refresh the keys of one we know."""
    parsed = _parse_document(document, base_url)
    if parsed["domain"] == settings.NODE_DOMAIN:
        raise PeerDocumentError("a node cannot be its own peer")
    peer, created = Peer.objects.select_for_update().get_or_create(
        domain=parsed["domain"], defaults={"name": parsed["name"], "base_url": base_url.rstrip("/")}
    )
    before = (
        None
        if created
        else {"base_url": peer.base_url, "keys": list(peer.keys.values_list("key_id", flat=True))}
    )
    peer.name, peer.base_url = parsed["name"], base_url.rstrip("/")
    peer.x25519_public, peer.ethereum_address = parsed["x25519"], parsed["ethereum"]
    peer.save()
    for key in parsed["signing"]:
        PeerKey.objects.update_or_create(
            key_id=key["key_id"],
            defaults={
                "peer": peer,
                "public": key["public"],
                "valid_from": key["valid_from"],
                "valid_until": key["valid_until"],
            },
        )
    audit_record(
        actor=actor,
        action="peer.add" if created else "peer.refresh",
        target=peer,
        before=before,
        after={"base_url": peer.base_url, "keys": [key["key_id"] for key in parsed["signing"]]},
    )
    return peer


def peer_ping(*, peer: Peer) -> Peer:
    """Ask one peer for a signed pong and record whether, and how fast, it answered."""
    now = timezone.now()
    try:
        response = peer_request(peer, "POST", "/node-api/ping", json_body={"from": settings.NODE_NAME})
        up = response.ok and response.json().get("node") == peer.name
        error = "" if up else f"answered {response.status}: {response.body[:200].decode(errors='replace')}"
        round_trip_ms: float | None = round(response.round_trip_ms, 2)
    except PeerUnreachable as unreachable:
        up, error, round_trip_ms = False, str(unreachable), None
    Peer.objects.filter(pk=peer.pk).update(
        status=PeerStatus.UP if up else PeerStatus.DOWN,
        last_attempt_at=now,
        round_trip_ms=round_trip_ms if up else peer.round_trip_ms,
        last_error=error[:300],
        **({"last_seen_at": now} if up else {}),
    )
    peer.refresh_from_db()
    return peer


def peers_ping_all() -> list[Peer]:
    peers = [peer_ping(peer=peer) for peer in Peer.objects.all()]
    health.broadcast(PEERS_GROUP, "peers.changed")
    return peers
