"""Federation, signed: Stellar SEP-0002 answers, signed with the node's Ed25519 key.

SEP-0002 trusts TLS and DNS for the answer. We add what it lacks: the node signs the answer
(``parsec/v1/federation-answer``) so anyone holding the node's published key
(``/.well-known/parsec.json``, served by ``settlement.identity``) can check it later, and every distinct key set served is
recorded so a counterparty's key history can be shown.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from settlement import keystore
from settlement.counterparties import selectors, services
from settlement.counterparties.errors import CounterpartyInvalid, CounterpartyNotFound
from settlement.counterparties.models import Counterparty
from settlement.protocol import keys as key_rules
from settlement.protocol.identifiers import InvalidFederationAddress, parse_federation_address
from settlement.protocol.signing import sign

FEDERATION_ANSWER_KIND = "federation-answer"
QUERY_TYPES = ("name", "id")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_base_url() -> str:
    return f"{str(settings.NODE_BASE_URL).rstrip('/')}/api/"


def federation_lookup(*, q: str, query_type: str) -> Counterparty:
    """Resolve a query to an ACCEPTED counterparty of this node, or raise a typed error."""
    if query_type not in QUERY_TYPES:
        raise CounterpartyInvalid(
            "type must be name or id.", fields={"type": ["one of name, id (forward and reverse look-ups)"]}
        )
    if query_type == "name":
        try:
            address = parse_federation_address(q)
        except InvalidFederationAddress as error:
            raise CounterpartyInvalid("q is not a federation address.", fields={"q": [str(error)]}) from error
        if address.domain != str(settings.NODE_DOMAIN).lower():
            raise CounterpartyNotFound(f"{address} is not served by this node ({settings.NODE_DOMAIN}).")
        return selectors.counterparty_find_accepted(federation_name=address.name)
    try:
        key = key_rules.parse_ed25519_public_key(q.strip().lower())
    except key_rules.MalformedKey as error:
        raise CounterpartyInvalid("q is not an Ed25519 public key.", fields={"q": [str(error)]}) from error
    return selectors.counterparty_find_accepted(ed25519_public_key=key.hex())


@transaction.atomic
def federation_answer(*, q: str, query_type: str) -> dict[str, Any]:
    """The signed SEP-0002 answer for ``q``; records the key set it serves."""
    counterparty = federation_lookup(q=q, query_type=query_type)
    keys = counterparty.public_keys
    services.federation_key_set_record(counterparty=counterparty, keys=keys)
    answer: dict[str, Any] = {
        "stellar_address": counterparty.federation_address,
        "account_id": keys["ed25519"],
        "parsec": {
            "legal_name": counterparty.legal_name,
            "kind": counterparty.kind,
            "keys": keys,
            "routing": {"node": settings.NODE_NAME, "api": api_base_url()},
            "issued_at": _iso(timezone.now()),
        },
    }
    signer = keystore.node_signer()
    signature = sign(signer.key, FEDERATION_ANSWER_KIND, answer)
    answer["signature"] = {
        "key_id": signer.key_id,
        "public_key": signer.public_key.hex(),
        "algorithm": "ed25519",
        "value": base64.b64encode(signature).decode("ascii"),
    }
    return answer
