"""A tiny in-memory shell for the ledger protocol tests: what the Django services will do with
rows and locks, done with dicts, so the rules can be exercised end to end without a database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ledgers.protocol.catalogue import Hold, SupplyChange
from ledgers.protocol.chain import Appended, ChainHead, check_append, cosign, next_entry, sign_entry
from ledgers.protocol.entries import Entry, Millis, SignedEntry
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId, correspondent_ledger_id, make_ledger_id
from ledgers.protocol.intrabank import LedgerView
from settlement.protocol.signing import SigningKey

BANKS = ("bank-a.test", "bank-b.test", "bank-c.test")


def key_for(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(name.encode()).digest())


def eur(bank: str) -> AssetId:
    return AssetId(f"{bank}/EUR")


ASSETS: dict[AssetId, Asset] = {
    **{eur(bank): Asset(id=eur(bank), decimals=2) for bank in BANKS},
    AssetId("bank-b.test/USD"): Asset(id=AssetId("bank-b.test/USD"), decimals=2),
}


@dataclass
class LedgerRow:
    head: ChainHead
    owner: SigningKey
    validator: SigningKey
    balances: dict[AssetId, int] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    credit_lines: dict[AssetId, int] = field(default_factory=dict)
    accepted: bool = True
    entries: list[SignedEntry] = field(default_factory=list)

    def view(self) -> LedgerView:
        return LedgerView(
            head=self.head,
            party_key=self.owner.public_key,
            balances=dict(self.balances),
            holds=dict(self.holds),
            credit_lines=dict(self.credit_lines),
            party_accepted=self.accepted,
        )


@dataclass
class World:
    ledgers: dict[LedgerId, LedgerRow] = field(default_factory=dict)
    supply: list[SupplyChange] = field(default_factory=list)
    clock: int = 1_700_000_000_000

    def now(self) -> Millis:
        self.clock += 1
        return Millis(self.clock)

    def open_ledger(self, bank: str, name: str, *, owner: SigningKey | None = None) -> LedgerId:
        ledger = make_ledger_id(namespace=bank, name=name)
        self.ledgers[ledger] = LedgerRow(
            head=ChainHead.genesis(ledger), owner=owner or key_for(ledger), validator=key_for(bank)
        )
        return ledger

    def open_correspondents(self, *, credit_line: int) -> None:
        for bank in BANKS:
            for peer in BANKS:
                if peer != bank:
                    ledger = correspondent_ledger_id(kept_by=bank, for_bank=peer)
                    self.ledgers[ledger] = LedgerRow(
                        head=ChainHead.genesis(ledger),
                        owner=key_for(peer),
                        validator=key_for(bank),
                        credit_lines={eur(bank): credit_line},
                    )

    def entry(self, ledger: LedgerId, kind: str, body: dict[str, Any]) -> Entry:
        return next_entry(head=self.ledgers[ledger].head, kind=kind, body=body, time=self.now())

    def check(self, entry: Entry, *, party_signs: bool = True) -> Appended:
        row = self.ledgers[entry.ledger]
        appended = check_append(
            head=row.head,
            entry=entry,
            party_key=row.owner.public_key,
            party_signature=sign_entry(entry, key=row.owner) if party_signs else None,
            balances=row.balances,
            holds=row.holds,
            credit_lines=row.credit_lines,
            party_accepted=row.accepted,
            assets=ASSETS,
        )
        return cosign(appended, validator_key=row.validator)

    def save(self, appended: Appended) -> None:
        """What the shell does in the append's transaction: head, balances, holds, entry, supply."""
        row = self.ledgers[appended.entry.ledger]
        row.head = appended.head
        row.balances.update(appended.balances)
        for key in appended.holds_released:
            del row.holds[key]
        for hold in appended.holds_placed:
            row.holds[hold.key] = hold
        row.entries.append(appended.signed())
        self.supply.extend(appended.supply)

    def append(
        self, ledger: LedgerId, kind: str, body: dict[str, Any], *, party_signs: bool = True
    ) -> Appended:
        appended = self.check(self.entry(ledger, kind, body), party_signs=party_signs)
        self.save(appended)
        return appended

    def issue(self, ledger: LedgerId, asset: AssetId, amount: int) -> Appended:
        return self.append(ledger, "issue", {"asset": asset, "amount": str(amount), "reference": "deposit"})
