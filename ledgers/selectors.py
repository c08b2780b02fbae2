"""Reads of the ledgers app: lists, balances, chain exports and their verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from ledgers.models import Asset, Balance, Ledger, LedgerEntry, LedgerOwner, Offer, Transfer
from ledgers.protocol import chain as chain_rules
from ledgers.protocol import identifiers
from ledgers.protocol.entries import EncodedEntry, SignedEntry, encode_entry, verify_encoded
from ledgers.protocol.errors import LedgerError, UnknownLedger
from ledgers.protocol.identifiers import AssetId
from ledgers.protocol.receipt import commitment_leaf
from settlement.keystore import node_signer
from settlement.protocol.encoding import sha256
from settlement.protocol.signing import PublicKey


def asset_list() -> QuerySet[Asset]:
    return Asset.objects.all()


def ledger_list() -> QuerySet[Ledger]:
    return Ledger.objects.select_related("counterparty", "peer").prefetch_related(
        Prefetch("balances", queryset=Balance.objects.select_related("asset").order_by("asset__uai"))
    )


def ledger_get(*, ledger: int | str) -> Ledger:
    """A ledger by id or UBI; :class:`UnknownLedger` otherwise."""
    queryset = ledger_list()
    try:
        if isinstance(ledger, int) or str(ledger).isdigit():
            return queryset.get(pk=int(ledger))
        return queryset.get(ubi=str(ledger))
    except Ledger.DoesNotExist as error:
        raise UnknownLedger(f"{ledger} is not a ledger kept by this bank") from error


def asset_get(*, uai: str) -> Asset:
    try:
        return Asset.objects.get(uai=uai)
    except Asset.DoesNotExist as error:
        from ledgers.protocol.errors import UnknownAsset

        raise UnknownAsset(f"{uai} is not an asset this node knows") from error


def entries_from(*, ledger: Ledger, from_height: int = 0, limit: int | None = None) -> QuerySet[LedgerEntry]:
    entries = LedgerEntry.objects.filter(ledger=ledger, height__gte=from_height).order_by("height")
    return entries[:limit] if limit is not None else entries


def signed_entries(*, ledger: Ledger, from_height: int = 0, limit: int | None = None) -> list[SignedEntry]:
    from ledgers.services import signed_entry_of

    return [
        signed_entry_of(row, ledger.ubi)
        for row in entries_from(ledger=ledger, from_height=from_height, limit=limit)
    ]


def protocol_assets() -> dict[AssetId, identifiers.Asset]:
    return {
        AssetId(asset.uai): identifiers.Asset(id=AssetId(asset.uai), decimals=asset.decimals)
        for asset in Asset.objects.all()
    }


def validator_key() -> PublicKey:
    return node_signer().key.public_key


def ledger_verify(*, ledger: Ledger) -> chain_rules.ChainReport:
    """Replay the bank's copy of a chain from genesis with the rules (`verify_ledger`)."""
    from ledgers.services import party_public_key

    return chain_rules.verify_chain(
        signed_entries(ledger=ledger),
        ledger=identifiers.LedgerId(ledger.ubi),
        party_key=party_public_key(ledger),
        validator_key=validator_key(),
        assets=protocol_assets(),
    )


@dataclass(frozen=True)
class ChainLink:
    """One entry as the chain view shows it: does its hash, its link and each signature verify."""

    row: LedgerEntry
    hash_ok: bool
    link_ok: bool
    party_ok: bool | None  # None: no party signature (the kind does not need one)
    validator_ok: bool
    in_block: bool = False
    """Its head commitment is in an agreed block: the entry is finished and has a receipt."""

    @property
    def ok(self) -> bool:
        return self.hash_ok and self.link_ok and self.validator_ok and self.party_ok is not False


def _agreed_commitments(entries: list[EncodedEntry]) -> set[bytes]:
    """The digests of these entries' commitment leaves that are in agreed blocks (one query)."""
    from consensus.models import BlockObservation

    digests = [sha256(commitment_leaf(encoded)) for encoded in entries]
    found = BlockObservation.objects.filter(digest__in=digests).values_list("digest", flat=True)
    return {bytes(item) for item in found}


def chain_links(*, ledger: Ledger, from_height: int = 0, limit: int = 100) -> list[ChainLink]:
    from ledgers.services import party_public_key, signed_entry_of

    party_key, bank = party_public_key(ledger), validator_key()
    rows = list(entries_from(ledger=ledger, from_height=from_height, limit=limit))
    previous_hash = None
    if rows and rows[0].height > 0:
        previous_hash = (
            LedgerEntry.objects.filter(ledger=ledger, height=rows[0].height - 1)
            .values_list("hash", flat=True)
            .first()
        )
    links = []
    encoded_rows = [(row, signed_entry_of(row, ledger.ubi)) for row in rows]
    encoded_entries = [encode_entry(signed.entry) for _, signed in encoded_rows]
    agreed = _agreed_commitments(encoded_entries)
    for (row, signed), encoded in zip(encoded_rows, encoded_entries, strict=True):
        expected_prev = "0" * 64 if row.height == 0 else previous_hash
        links.append(
            ChainLink(
                row=row,
                hash_ok=encoded.hash.hex() == row.hash,
                link_ok=row.prev == expected_prev,
                party_ok=None
                if signed.party_signature is None
                else _verifies(party_key, encoded, signed.party_signature),
                validator_ok=signed.validator_signature is not None
                and _verifies(bank, encoded, signed.validator_signature),
                in_block=sha256(commitment_leaf(encoded)) in agreed,
            )
        )
        previous_hash = encoded.hash.hex()
    return links


def _verifies(key: bytes, encoded: Any, signature: bytes) -> bool:
    try:
        verify_encoded(key, encoded, signature, role="check")
    except LedgerError:
        return False
    return True


def transfer_list(*, limit: int = 50) -> QuerySet[Transfer]:
    return Transfer.objects.select_related("asset", "debit__ledger", "credit__ledger")[:limit]


def offer_board() -> QuerySet[Offer]:
    return Offer.objects.filter(phase="open").order_by("expires_at")


def bank_ledgers() -> QuerySet[Ledger]:
    return Ledger.objects.filter(owner=LedgerOwner.BANK)
