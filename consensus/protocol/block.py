"""Blocks: the observations agreed in one decided round, and the validators' signatures on them.

How signatures are collected: when a peer's graph orders a round into a block, the peer signs
the block *header* (height, previous hash, epoch, round, RFC 9162 Merkle root, count) and puts
that signature into the next event it creates. Events reach every peer by gossip anyway, so the
signatures travel with no extra message type, and they are checked on receipt against the block
the receiver computed itself; they need not be ordered by consensus, because agreement already
fixes the block each height must be. ``Parsec.poll`` hands out a block once it carries valid
signatures of more than 2/3 of the epoch's validators, which is what a light client or an
anchor on Ethereum needs to trust it without running the protocol.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from consensus.protocol.types import BlockHeight, Epoch, Observation, Round, ValidatorId, observation_bytes
from settlement.protocol.encoding import object_hash
from settlement.protocol.signing import SigningKey, is_valid, sign

BLOCK_KIND = "block"
GENESIS_PREVIOUS = bytes(32)


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash with SHA-256 (0x00 leaf prefix, 0x01 node prefix).

    Iterative over levels, pairing from the left and carrying an odd last node up unchanged,
    which yields the same tree as the RFC's recursive split at the largest power of two.
    """
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(frozen=True)
class ValidatorSignature:
    validator: ValidatorId
    signature: bytes


@dataclass(frozen=True)
class Block:
    height: BlockHeight
    previous_hash: bytes
    epoch: Epoch
    round: Round
    observations: tuple[Observation, ...]
    merkle_root: bytes
    signatures: tuple[ValidatorSignature, ...] = ()
    """Excluded from the header and hash: signatures are *on* the header."""

    def header(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "previous": self.previous_hash.hex(),
            "epoch": self.epoch,
            "round": self.round,
            "root": self.merkle_root.hex(),
            "count": len(self.observations),
        }

    @property
    def hash(self) -> bytes:
        return object_hash(BLOCK_KIND, self.header())


def build_block(
    *,
    height: BlockHeight,
    previous_hash: bytes,
    epoch: Epoch,
    round_number: Round,
    observations: tuple[Observation, ...],
) -> Block:
    return Block(
        height=height,
        previous_hash=previous_hash,
        epoch=epoch,
        round=round_number,
        observations=observations,
        merkle_root=merkle_root([observation_bytes(item) for item in observations]),
    )


def sign_block(key: SigningKey, block: Block) -> bytes:
    return sign(key, BLOCK_KIND, block.header())


def block_signature_is_valid(block: Block, signature: ValidatorSignature) -> bool:
    return is_valid(signature.validator, BLOCK_KIND, block.header(), signature.signature)


def is_certified(block: Block, validators: tuple[ValidatorId, ...]) -> bool:
    """More than 2/3 of ``validators`` signed this header, each signature checked."""
    members = set(validators)
    signers = {item.validator for item in block.signatures if item.validator in members}
    valid = {
        item.validator
        for item in block.signatures
        if item.validator in signers and block_signature_is_valid(block, item)
    }
    return 3 * len(valid) > 2 * len(members)
