"""Fixtures for the messaging shell: the node's keys, counterparties with real key pairs
(custodial ones made by the counterparty service, sealed), an operator client."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from messaging import services
from settlement import keystore
from settlement.counterparties import services as counterparty_services
from settlement.counterparties.models import Counterparty
from settlement.protocol.keys import X25519KeyPair
from settlement.protocol.signing import SigningKey
from tests.messaging.messaging_support import Party
from tests.support import VerifiedClient

_names = itertools.count()


@pytest.fixture
def node(db: None) -> None:
    keystore.node_identity_ensure()
    services.forget_opened_keys()


@pytest.fixture
def make_party(node: None) -> Callable[..., Party]:
    def make(name: str | None = None, *, custody: str = "custodial", status: str = "ACCEPTED") -> Party:
        name = name or f"party{next(_names)}"
        if custody == "custodial":
            counterparty = counterparty_services.counterparty_create(
                actor="test",
                kind="person",
                legal_name=f"{name.capitalize()} Example",
                country="DE",
                federation_name=name,
                custody="custodial",
                contact_email=f"{name}@example.test",
            )
            key = services.custodial_signing_key(counterparty)
            box = services.custodial_box_key(counterparty)
        else:
            key, box = SigningKey.generate(), X25519KeyPair.generate()
            counterparty = Counterparty.objects.create(
                kind="person",
                legal_name=f"{name.capitalize()} Example",
                country="DE",
                federation_name=name,
                ed25519_public_key=key.public_key.hex(),
                x25519_public_key=box.public_key.hex(),
                ethereum_address="0x" + "00" * 20,
                custody="self",
            )
        Counterparty.objects.filter(pk=counterparty.pk).update(kyc_status=status)
        counterparty.refresh_from_db()
        return Party(counterparty=counterparty, key=key, box=box)

    return make


@pytest.fixture
def operator(make_user: Callable[..., Any]) -> VerifiedClient:
    client = VerifiedClient()
    client.force_login(make_user("operator", "operator"))
    return client


@pytest.fixture
def auditor(make_user: Callable[..., Any]) -> VerifiedClient:
    client = VerifiedClient()
    client.force_login(make_user("auditor", "auditor"))
    return client
