"""Helpers for the ledgers shell tests (fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.models import PendingObservation
from consensus.protocol.types import observation_bytes
from consensus.services import observation_for
from ledgers.models import Asset, Balance, Hold, Ledger, LedgerEntry, Transfer
from ledgers.protocol.chain import sign_entry
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
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
        "votes": PendingObservation.objects.count(),
    }


def expected_entry_votes(entries: Any) -> list[bytes]:
    """The observation bytes consensus must hold for ``(ubi, height, hash hex)`` triples."""
    return sorted(
        observation_bytes(
            observation_for(
                kind=ENTRY_OBSERVATION_KIND,
                payload=entry_commitment(ubi, height, bytes.fromhex(entry_hash)),
            )
        )
        for ubi, height, entry_hash in entries
    )


def assert_every_entry_voted() -> int:
    """Exactly one ``ledger-entry`` observation per stored entry, naming its ledger, height and
    the stored hash (ARCHITECTURE.md §6); returns how many entries there are."""
    stored = list(LedgerEntry.objects.values_list("ledger__ubi", "height", "hash"))
    votes = PendingObservation.objects.filter(kind=ENTRY_OBSERVATION_KIND).values_list("data", flat=True)
    assert sorted(bytes(data) for data in votes) == expected_entry_votes(stored)
    return len(stored)


def balance_of(ledger: Ledger, asset: Asset) -> int:
    return Balance.objects.filter(ledger=ledger, asset=asset).values_list("amount", flat=True).first() or 0


def post_json(client: Any, url: str, data: Any) -> Any:
    return client.post(url, data=data, content_type="application/json")
