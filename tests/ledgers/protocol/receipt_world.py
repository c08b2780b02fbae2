"""A deterministic world for receipt tests, vectors and the size benchmark: a signed ledger entry,
its commitment among other observations in a block signed by the validators, a block log of
many blocks, and an anchor of the log at a later height. Everything is built for real (trees,
hashes, Ed25519), only the Ethereum facts of the anchor are made up (the shell test uses anvil)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from consensus.protocol.block import BLOCK_KIND
from consensus.protocol.receipt import AnchorSection, BlockSection, LogSection, b64
from consensus.protocol.types import Payload, observation_bytes
from ledgers.protocol.entries import Entry, LedgerHeight, Millis, encode_entry, sign_encoded
from ledgers.protocol.identifiers import LedgerId
from ledgers.protocol.receipt import EntrySection, commitment_leaf, receipt_build
from settlement.protocol.encoding import Digest, object_hash
from settlement.protocol.merkle import MerkleLog, MerkleTree, leaf_hash
from settlement.protocol.signing import SigningKey, sign


def key_for(name: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"receipt-world/{name}".encode()).digest())


BANK = key_for("bank-a")
PARTY = key_for("alice")
VALIDATORS = tuple(key_for(f"validator-{number}") for number in range(4))


def validator_keys(count: int) -> tuple[SigningKey, ...]:
    return VALIDATORS if count == 4 else tuple(key_for(f"validator-{number}") for number in range(count))


@dataclass(frozen=True)
class World:
    document: dict[str, Any]
    validators: frozenset[bytes]
    issuer: bytes


def _entry(*, party_signs: bool) -> tuple[EntrySection, bytes]:
    entry = Entry(
        ledger=LedgerId("ubi:bank-a.test:alice"),
        height=LedgerHeight(41),
        prev=Digest(hashlib.sha256(b"entry 40").digest()),
        kind="transfer",
        body={
            "transfer": "invoice-2026-11-0042",
            "side": "debit",
            "asset": "bank-a.test/EUR",
            "amount": "125050",
            "counterparty": "ubi:bank-a.test:bob",
        },
        time=Millis(1_795_000_000_000),
    )
    encoded = encode_entry(entry)
    section = EntrySection(
        entry=entry,
        party_key=PARTY.public_key if party_signs else None,
        party_signature=sign_encoded(PARTY, encoded) if party_signs else None,
        bank_signature=sign_encoded(BANK, encoded),
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
) -> World:
    """A receipt for the entry at ``leaf_index`` of block ``block_height``; every block holds
    ``leaves_per_block`` observations; the log of ``blocks`` blocks is anchored at ``anchor_height``."""
    entry_section, leaf = _entry(party_signs=party_signs)
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
            block_hash="0x" + hashlib.sha256(b"eth block").hexdigest(),
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
