"""Receipts of ledger entries (docs/receipt.md): the entry, its signatures, and the consensus
proof of its head commitment, signed by this node.

The entry's commitment leaf is recomputed from the stored entry (never looked up by id), so a
receipt can only be issued for the entry consensus actually agreed; the document is checked by
the same pure verifier a relying party runs before it is handed out.

One query reads the entry and which node key is current (a rotation is followed at once; the
opened key itself is kept per process by ``settlement.keystore``); ``consensus.receipts`` adds
the rest (docs/receipt.md, "Where the time goes").

An entry co-signed before the node rotated its signing key gets a receipt too (format version 3):
it names the retired key that co-signed and carries that key's hand-overs to the current one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection

from consensus.protocol.receipt import ReceiptCheckFailed
from consensus.receipts import ReceiptNotReady, observation_receipt
from ledgers.models import Ledger
from ledgers.protocol.entries import encode_entry
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.receipt import (
    BankKey,
    EntrySection,
    ReceiptSection,
    commitment_leaf,
    receipt_build,
)
from ledgers.services import signed_entry_of
from settlement.keystore import CURRENT_PUBLIC_KEY_SQL, node_signer_for, signing_key_handovers
from settlement.models import KeyPurpose
from settlement.protocol.handover import key_handover_path
from settlement.protocol.signing import is_valid_bytes

__all__ = ["ReceiptNotReady", "UnknownEntry", "entry_receipt"]


class UnknownEntry(LedgerError):  # noqa: N818 - the names are the API, as in ledgers.protocol.errors
    code = "unknown_entry"


class _EntryRow(NamedTuple):
    """The columns ``signed_entry_of`` reads, and the node's current signing key (hex)."""

    height: int
    prev: str
    kind: str
    body: Any
    time: int
    party_signature: str
    validator_signature: str
    node_key: str | None


# Plain SQL on the receipt's hot path: compiling the same ORM query cost more CPU than running it.
_ENTRY_SQL = f"""
    SELECT height, prev, kind, body, time, party_signature, validator_signature,
           ({CURRENT_PUBLIC_KEY_SQL}) AS node_key
    FROM ledgers_ledgerentry
    WHERE ledger_id = %s AND height = %s
"""  # noqa: S608 - a constant of this module and keystore's, values are placeholders


def _entry_row(ledger: Ledger, height: int) -> _EntryRow | None:
    with connection.cursor() as cursor:
        cursor.execute(_ENTRY_SQL, [KeyPurpose.SIGNING.value, ledger.pk, height])
        found = cursor.fetchone()
    if found is None:
        return None
    height_, prev, kind, body, time_, party_signature, validator_signature, node_key = found
    # A raw cursor gives JSON as text (JSONField decodes it the same way, with json.loads).
    return _EntryRow(
        height_, prev, kind, json.loads(body), time_, party_signature, validator_signature, node_key
    )


def entry_receipt(
    *, ledger: Ledger, height: int, optional: Sequence[tuple[ReceiptSection, Any]] = ()
) -> dict[str, Any]:
    """The signed receipt of entry ``height`` of ``ledger``, with the ``optional`` sections given
    (a message's receipt adds its ``message`` section: messaging.receipts).

    Raises :class:`UnknownEntry` (no such entry) or :class:`ReceiptNotReady` (not in a block yet).
    """
    row = _entry_row(ledger, height)
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
    issuer_key = node_signer_for(row.node_key).key

    def build(entry: EntrySection) -> dict[str, Any]:
        return receipt_build(
            entry=entry,
            block=consensus.block,
            log=consensus.log,
            anchor=consensus.anchor,
            node=settings.NODE_NAME,
            issuer_key=issuer_key,
            issued_at=int(time.time() * 1000),
            optional=optional,
        )

    # Nearly every entry was co-signed with the current key: build as if it was, and let the
    # self-check (which verifies the bank's signature anyway) say when it was not. Only then are
    # the retired keys read, so the common receipt pays for rotations nothing at all.
    try:
        return build(entry)
    except ReceiptCheckFailed as error:
        if error.check != "entry-bank-signature":
            raise
        bank_keys = _bank_keys_to(issuer_key.public_key, encoded.message, signed.validator_signature)
        if bank_keys is None:
            raise
    return build(dataclasses.replace(entry, bank_keys=bank_keys))


def _bank_keys_to(issuer: bytes, message: bytes, bank_signature: bytes) -> tuple[BankKey, ...] | None:
    """The fewest hand-overs from the retired key of this node that made ``bank_signature`` on
    the entry's signed bytes ``message`` to ``issuer`` (one, a direct hand-over, once the node has
    rotated since direct hand-overs exist); ``None`` if no retired key of ours did."""
    handovers = signing_key_handovers(issuer)
    for key in dict.fromkeys(handover.key for handover in handovers):
        if not is_valid_bytes(key, message, bank_signature):
            continue
        path = key_handover_path(handovers, key, issuer)
        if path is None:
            return None  # rotated again since the issuer's key was read: the next receipt will do
        return tuple(BankKey(key=link.key, handover=link.signature) for link in path)
    return None
