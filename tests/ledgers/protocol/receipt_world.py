"""A deterministic world for receipt tests, vectors and the size benchmark: a signed ledger entry,
its commitment among other observations in a block signed by the validators, a block log of
many blocks, and an anchor of the log at a later height. Everything is built for real (trees,
hashes, Ed25519), only the Ethereum facts of the anchor are made up (the shell test uses anvil)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.public

from consensus.protocol.block import BLOCK_KIND
from consensus.protocol.receipt import AnchorSection, BlockSection, LogSection, b64
from consensus.protocol.types import Payload, observation_bytes
from ledgers.protocol.entries import Entry, LedgerHeight, Millis, encode_entry, sign_encoded
from ledgers.protocol.identifiers import LedgerId
from ledgers.protocol.receipt import BankKey, EntrySection, ReceiptSection, commitment_leaf, receipt_build
from messaging.protocol.envelope import SignedMessage, encode_message, make_envelope, sign_batch, sign_message
from messaging.protocol.receipt import MESSAGE_SECTION, message_section_json
from messaging.protocol.record import (
    MESSAGE_BATCH_ENTRY_KIND,
    MESSAGE_ENTRY_KIND,
    message_batch_entry_body,
    message_entry_body,
)
from settlement.protocol.encoding import Digest, object_hash
from settlement.protocol.handover import key_handover_sign
from settlement.protocol.merkle import MerkleLog, MerkleTree, leaf_hash
from settlement.protocol.signing import SigningKey, sign


def key_for(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"receipt-world/{name}".encode()).digest())


BANK = key_for("bank-a")
PARTY = key_for("alice")


def retired_bank_keys(rotations: int) -> tuple[SigningKey, ...]:
    """bank-a's earlier keys, oldest first: the last of them handed over to ``BANK``."""
    return tuple(key_for(f"bank-a/retired-{number}") for number in range(rotations))


def bank_key_chain(rotations: int, *, direct: bool = False) -> tuple[BankKey, ...]:
    """The hand-overs from bank-a's oldest of ``rotations`` earlier keys to ``BANK``: one per
    rotation, or with ``direct`` the oldest key's hand-over straight to ``BANK`` (signed at the
    latest rotation)."""
    retired = retired_bank_keys(rotations)
    if not retired:
        return ()
    if direct:
        return (BankKey(key=retired[0].public_key, handover=key_handover_sign(retired[0], BANK.public_key)),)
    successors = [*(key.public_key for key in retired[1:]), BANK.public_key]
    return tuple(
        BankKey(key=key.public_key, handover=key_handover_sign(key, successor))
        for key, successor in zip(retired, successors, strict=True)
    )


VALIDATORS = tuple(key_for(f"validator-{number}") for number in range(4))


def validator_keys(count: int) -> tuple[SigningKey, ...]:
    return VALIDATORS if count == 4 else tuple(key_for(f"validator-{number}") for number in range(count))


SECTIONS: tuple[ReceiptSection, ...] = (MESSAGE_SECTION,)
"""The optional sections the tests verify with (settlement.verify.RECEIPT_SECTIONS)."""


@dataclass(frozen=True)
class World:
    document: dict[str, Any]
    validators: frozenset[bytes]
    issuer: bytes


def _box_seed(name: str) -> bytes:
    return hashlib.sha256(f"receipt-world/box/{name}".encode()).digest()


def world_message(*, batch_size: int = 0, batch_index: int = 0) -> SignedMessage:
    """Alice's note to carol, boxed to carol's X25519 key: the receipt carries the box, never
    the text. The nonce is fixed (derived from the id) so that the vectors are deterministic.

    With ``batch_size``, alice signs it once with ``batch_size - 1`` other notes of hers, as
    message ``batch_index`` of that batch."""
    message_id = hashlib.sha256(b"receipt-world/message").hexdigest()[:32]
    sender_box = nacl.public.PrivateKey(_box_seed("alice"))
    carol_box = nacl.public.PrivateKey(_box_seed("carol"))
    nonce = hashlib.sha256(message_id.encode()).digest()[:24]
    box = nacl.public.Box(sender_box, carol_box.public_key).encrypt(
        b"Signed contract attached; pay by Friday.", nonce
    )
    envelope = make_envelope(
        message_id=message_id,
        kind="note",
        sender="alice*bank-a.test",
        sender_key=PARTY.public_key,
        recipients=["carol*bank-c.test"],
        time=1_794_999_999_000,
        body={
            "encoding": "box",
            "sender_box_key": bytes(sender_box.public_key).hex(),
            "boxes": {"carol*bank-c.test": base64.b64encode(bytes(box)).decode("ascii")},
        },
    )
    if not batch_size:
        return sign_message(encode_message(envelope), key=PARTY)
    others = [
        encode_message(
            make_envelope(
                message_id=hashlib.sha256(f"receipt-world/batch/{index}".encode()).hexdigest()[:32],
                kind="settlement-instruction",
                sender="alice*bank-a.test",
                sender_key=PARTY.public_key,
                recipients=["bob*bank-b.test"],
                time=1_794_999_999_000 + index,
                body={"encoding": "plain", "text": f"instruction {index}"},
            )
        )
        for index in range(batch_size - 1)
    ]
    batch = [*others[:batch_index], encode_message(envelope), *others[batch_index:]]
    return sign_batch(batch, key=PARTY)[batch_index]


def _entry(
    *, party_signs: bool, message: SignedMessage | None = None, rotations: int = 0, direct: bool = False
) -> tuple[EntrySection, bytes]:
    entry = Entry(
        ledger=LedgerId("ubi:bank-a.test:alice"),
        height=LedgerHeight(41),
        prev=Digest(hashlib.sha256(b"entry 40").digest()),
        kind=(
            "transfer"
            if message is None
            else (MESSAGE_ENTRY_KIND if message.batch is None else MESSAGE_BATCH_ENTRY_KIND)
        ),
        body=(
            {
                "transfer": "invoice-2026-11-0042",
                "side": "debit",
                "asset": "bank-a.test/EUR",
                "amount": "125050",
                "counterparty": "ubi:bank-a.test:bob",
            }
            if message is None
            else (
                message_entry_body(message.encoded)
                if message.batch is None
                else message_batch_entry_body(message)
            )
        ),
        time=Millis(1_795_000_000_000),
    )
    encoded = encode_entry(entry)
    section = EntrySection(
        entry=entry,
        party_key=PARTY.public_key if party_signs else None,
        party_signature=sign_encoded(PARTY, encoded) if party_signs else None,
        # Co-signed with the key bank-a had then: after ``rotations`` rotations, its oldest.
        bank_signature=sign_encoded(retired_bank_keys(rotations)[0] if rotations else BANK, encoded),
        bank_keys=bank_key_chain(rotations, direct=direct),
    )
    return section, commitment_leaf(encoded)


def _filler(block: int, index: int) -> bytes:
    digest = hashlib.sha256(f"{block}/{index}".encode()).hexdigest()
    payload = f'{{"hash":"{digest}","height":{index},"ledger":"ubi:bank-b.test:c{block}"}}'.encode()
    return observation_bytes(Payload(b"ledger-entry\n" + payload))


def build_world(
    *,
    blocks: int = 11,
    leaves_per_block: int = 13,
    block_height: int = 5,
    leaf_index: int = 7,
    anchor_height: int | None = 9,
    signers: int = 3,
    validators: int = 4,
    party_signs: bool = True,
    message: bool = False,
    batch_size: int = 0,
    batch_index: int = 0,
    rotations: int = 0,
    direct_handover: bool = False,
) -> World:
    """A receipt for the entry at ``leaf_index`` of block ``block_height``; every block holds
    ``leaves_per_block`` observations; the log of ``blocks`` blocks is anchored at ``anchor_height``.
    With ``message``, the entry is alice's record of :func:`world_message` and the receipt carries
    its message section; with ``batch_size`` too, the message is one of a batch alice signed once
    and the entry is the batch's ``message-batch`` record (a bank's signature alone makes it).
    With ``rotations``, bank-a co-signed the entry with a key it has since rotated that many times
    (the receipt carries the hand-overs to the issuer's key, ``BANK``); with ``direct_handover``,
    the one hand-over the co-signing key made straight to ``BANK`` at the latest rotation."""
    signed_message = world_message(batch_size=batch_size, batch_index=batch_index) if message else None
    entry_section, leaf = _entry(
        party_signs=party_signs, message=signed_message, rotations=rotations, direct=direct_handover
    )
    keys = validator_keys(validators)
    log = MerkleLog()
    previous = bytes(32)
    target: tuple[BlockSection, MerkleTree] | None = None
    for height in range(blocks):
        leaves = [_filler(height, index) for index in range(leaves_per_block)]
        if height == block_height:
            leaves[leaf_index] = leaf
        tree = MerkleTree.from_entries(leaves)
        header = {
            "height": height,
            "previous": previous.hex(),
            "epoch": 0,
            "round": 3 * height + 2,
            "root": tree.root.hex(),
            "count": len(leaves),
        }
        block_hash = object_hash(BLOCK_KIND, header)
        if height == block_height:
            signatures = tuple(
                sign(key, BLOCK_KIND, header) if number < signers else None for number, key in enumerate(keys)
            )
            target = (
                BlockSection(
                    height=height,
                    previous=previous,
                    epoch=0,
                    round=3 * height + 2,
                    count=len(leaves),
                    leaf_index=leaf_index,
                    inclusion_path=tree.inclusion_proof(leaf_index).audit_path,
                    validators=tuple(key.public_key for key in keys),
                    signatures=signatures,
                ),
                tree,
            )
        log.append(leaf_hash(block_hash))
        previous = block_hash
    assert target is not None
    block_section = target[0]
    if anchor_height is None:
        log_section, anchor = None, None
    else:
        log_section = LogSection(
            inclusion_path=log.inclusion_proof(block_height, block_height + 1).audit_path,
            consistency_path=log.consistency_proof(block_height + 1, anchor_height + 1).path,
        )
        anchor = AnchorSection(
            chain_id=31337,
            contract="0x5fbdb2315678afecb367f032d93f642f64180aa3",
            account="0x" + hashlib.sha256(b"account").hexdigest()[:40],
            height=anchor_height,
            tx="0x" + hashlib.sha256(b"tx").hexdigest(),
            block_number=1234,
            log_index=0,
            confirmations=12,
            root="0x" + log.root_at(anchor_height + 1).hex(),
        )
    document = receipt_build(
        entry=entry_section,
        block=block_section,
        log=log_section,
        anchor=anchor,
        node="bank-a",
        issuer_key=BANK,
        issued_at=1_795_000_123_456,
        optional=[] if signed_message is None else [(MESSAGE_SECTION, message_section_json(signed_message))],
    )
    return World(document, frozenset(key.public_key for key in keys), BANK.public_key)


def resign(document: dict[str, Any]) -> dict[str, Any]:
    """The document re-signed by the issuer's own key: what a malicious issuer can do."""
    from ledgers.protocol.receipt import RECEIPT_KIND, _unsigned

    if not isinstance(document, dict) or not isinstance(document.get("issuer"), dict):
        return document
    issuer = document["issuer"]
    try:
        unsigned = _unsigned(document)
        signature = sign(BANK, RECEIPT_KIND, unsigned)
    except Exception:  # a tampered document may not even be signable; it must fail anyway
        return document
    return {**document, "issuer": {**issuer, "signature": b64(signature)}}


def as_version_2_paths(document: dict[str, Any]) -> dict[str, Any]:
    """The document with ``"version": 2`` and its paths as version 2 wrote them (lists of base64
    hashes), not re-signed: the rest is left as it is."""

    def listed(packed: str) -> list[str]:
        raw = base64.b64decode(packed)
        return [b64(raw[at : at + 32]) for at in range(0, len(raw), 32)]

    changed = {**document, "version": 2}
    changed["block"] = {**document["block"], "inclusion_path": listed(document["block"]["inclusion_path"])}
    if document["log"] is not None:
        changed["log"] = {key: listed(value) for key, value in document["log"].items()}
    return changed
