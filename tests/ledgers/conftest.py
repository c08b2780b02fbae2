"""Fixtures for the ledgers shell: the node's keys, an asset, parties (custodial and self
custody) with ledgers, made through the services against the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ledgers import services
from ledgers.models import Asset, Balance, Hold, Ledger, LedgerEntry, Transfer
from ledgers.protocol.chain import sign_entry
from ledgers.protocol.entries import SignedEntry
from settlement import keystore
from settlement.counterparties.models import Counterparty, CustodialKeySet
from settlement.protocol.signing import SigningKey


@dataclass
class Party:
    ledger: Ledger
    key: SigningKey  # the owner's key (for custodial ones the tests know it too)
    counterparty: Counterparty

    @property
    def ubi(self) -> str:
        return self.ledger.ubi

    def sign(self, entry: Any) -> SignedEntry:
        return SignedEntry(
            entry=entry, party_signature=sign_entry(entry, key=self.key), validator_signature=None
        )


@pytest.fixture
def node(db: None) -> None:
    keystore.node_identity_ensure()


@pytest.fixture
def eur(node: None) -> Asset:
    return services.asset_create(code="EUR", decimals=2, actor="test")


_counter = iter(range(10**9))


def make_counterparty(
    name: str, *, custody: str = "custodial", status: str = "ACCEPTED"
) -> tuple[Counterparty, SigningKey]:
    key = SigningKey.generate()
    counterparty = Counterparty.objects.create(
        kind="person",
        legal_name=f"{name.capitalize()} Example",
        country="DE",
        federation_name=name,
        ed25519_public_key=key.public_key.hex(),
        x25519_public_key="00" * 32,
        ethereum_address="0x" + "00" * 20,
        custody=custody,
        kyc_status=status,
    )
    if custody == "custodial":
        sealed = keystore.seal_for_custody(key.seed)
        CustodialKeySet.objects.create(
            counterparty=counterparty, sealed_ed25519=sealed, sealed_x25519=sealed, sealed_ethereum=sealed
        )
    return counterparty, key


@pytest.fixture
def make_party(node: None) -> Callable[..., Party]:
    def make(name: str | None = None, *, custody: str = "custodial", status: str = "ACCEPTED") -> Party:
        name = name or f"party{next(_counter)}"
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


def row_counts() -> dict[str, int]:
    """What a refused request must leave unchanged."""
    return {
        "entries": LedgerEntry.objects.count(),
        "transfers": Transfer.objects.count(),
        "holds": Hold.objects.count(),
        "balances": sum(Balance.objects.values_list("amount", flat=True)),
        "heights": sum(Ledger.objects.values_list("next_height", flat=True)),
    }


def balance_of(ledger: Ledger, asset: Asset) -> int:
    return Balance.objects.filter(ledger=ledger, asset=asset).values_list("amount", flat=True).first() or 0
