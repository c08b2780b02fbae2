"""Receipts of ledger entries (docs/receipt.md): the entry, its signatures, and the consensus
proof of its head commitment, signed by this node.

The entry's commitment leaf is recomputed from the stored entry (never looked up by id), so a
receipt can only be issued for the entry consensus actually agreed; the document is checked by
the same pure verifier a relying party runs before it is handed out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from consensus.receipts import ReceiptNotReady, observation_receipt
from ledgers.models import Ledger, LedgerEntry
from ledgers.protocol.entries import encode_entry
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.receipt import EntrySection, ReceiptSection, commitment_leaf, receipt_build
from ledgers.services import signed_entry_of
from settlement.keystore import node_signer

__all__ = ["ReceiptNotReady", "UnknownEntry", "entry_receipt"]


class UnknownEntry(LedgerError):  # noqa: N818 - the names are the API, as in ledgers.protocol.errors
    code = "unknown_entry"


def entry_receipt(
    *, ledger: Ledger, height: int, optional: Sequence[tuple[ReceiptSection, Any]] = ()
) -> dict[str, Any]:
    """The signed receipt of entry ``height`` of ``ledger``, with the ``optional`` sections given
    (a message's receipt adds its ``message`` section: messaging.receipts).

    Raises :class:`UnknownEntry` (no such entry) or :class:`ReceiptNotReady` (not in a block yet).
    """
    row = LedgerEntry.objects.filter(ledger=ledger, height=height).first()
    if row is None:
        raise UnknownEntry(f"{ledger.ubi} has no entry at height {height}")
    signed = signed_entry_of(row, ledger.ubi)
    if signed.validator_signature is None:  # every stored entry is co-signed; a receipt needs it
        raise UnknownEntry(f"entry {height} of {ledger.ubi} is not co-signed by the bank")
    encoded = encode_entry(signed.entry)
    consensus = observation_receipt(leaf=commitment_leaf(encoded))
    has_party_signature = signed.party_signature is not None
    entry = EntrySection(
        entry=signed.entry,
        party_key=bytes.fromhex(ledger.party_key) if has_party_signature else None,
        party_signature=signed.party_signature,
        bank_signature=signed.validator_signature,
    )
    return receipt_build(
        entry=entry,
        block=consensus.block,
        log=consensus.log,
        anchor=consensus.anchor,
        node=settings.NODE_NAME,
        issuer_key=node_signer().key,
        issued_at=int(time.time() * 1000),
        optional=optional,
    )
