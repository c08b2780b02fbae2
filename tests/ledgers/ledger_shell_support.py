"""Helpers for the ledgers shell tests (fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def post_json(client: Any, url: str, data: Any) -> Any:
    return client.post(url, data=data, content_type="application/json")
