"""Fixtures for the ledgers shell: the node's keys, an asset, parties (custodial and self
custody) with ledgers, made through the services against the real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from ledgers import services
from ledgers.models import Asset
from settlement import keystore
from settlement.counterparties.models import Counterparty
from tests.ledgers.ledger_shell_support import Party, make_counterparty

_names = itertools.count()


@pytest.fixture
def node(db: None) -> None:
    keystore.node_identity_ensure()


@pytest.fixture
def eur(node: None) -> Asset:
    return services.asset_create(code="EUR", decimals=2, actor="test")


@pytest.fixture
def make_party(node: None) -> Callable[..., Party]:
    def make(name: str | None = None, *, custody: str = "custodial", status: str = "ACCEPTED") -> Party:
        name = name or f"party{next(_names)}"
        counterparty, key = make_counterparty(name, custody=custody)
        ledger = services.ledger_open(name=name, counterparty=counterparty, actor="test")
        if status != "ACCEPTED":
            Counterparty.objects.filter(pk=counterparty.pk).update(kyc_status=status)
        return Party(ledger=ledger, key=key, counterparty=counterparty)

    return make


@pytest.fixture
def funded(make_party: Callable[..., Party], eur: Asset) -> Callable[..., Party]:
    """A party whose ledger holds ``amount`` EUR issued against a deposit."""

    def make(amount: str = "100.00", **options: Any) -> Party:
        party = make_party(**options)
        services.asset_issue(ledger=party.ledger, asset=eur, amount=amount, reference="deposit", actor="test")
        party.ledger.refresh_from_db()
        return party

    return make


@pytest.fixture
def operator_client(client: Any, make_user: Callable[..., Any]) -> Any:
    client.force_login(make_user("olga-operator", "operator"))
    return client
