"""Ed25519 signatures on off-chain objects: one function to sign, one to verify.

Signed bytes are :func:`settlement.protocol.encoding.domain_bytes` of the object. Keys are
raw 32-byte values; they travel as lowercase hex (public keys) and never leave the node in
the clear (private keys, see ``settlement.keystore``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NewType

import nacl.exceptions
import nacl.signing

from settlement.protocol.encoding import domain_bytes

PublicKey = NewType("PublicKey", bytes)
"""A raw 32-byte Ed25519 verify key."""

Signature = NewType("Signature", bytes)
"""A raw 64-byte Ed25519 signature."""


class BadSignature(ValueError):  # noqa: N818 - the name is the interface
    """A signature that does not verify, or a key or signature of the wrong shape."""


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key held in memory; build it from a 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")

    def __repr__(self) -> str:  # never print key material, even by accident in a log
        return f"SigningKey(public={self.public_key.hex()})"

    # Built once per key object and kept with it: building PyNaCl's key derives the public key
    # (a scalar multiplication, costlier than a signature), and a bank signs and names its key
    # for every payment.
    @cached_property
    def _signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @cached_property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self._signer.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))


def sign(key: SigningKey, kind: str, value: Any) -> Signature:
    """Sign ``value`` as an object of ``kind``."""
    signed = key._signer.sign(domain_bytes(kind, value))
    return Signature(signed.signature)


def verify(public_key: bytes, kind: str, value: Any, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``public_key``'s on ``value``."""
    if len(public_key) != 32:
        raise BadSignature("an Ed25519 public key is 32 bytes")
    if len(signature) != 64:
        raise BadSignature("an Ed25519 signature is 64 bytes")
    try:
        nacl.signing.VerifyKey(public_key).verify(domain_bytes(kind, value), signature)
    except nacl.exceptions.BadSignatureError as error:
        raise BadSignature(f"signature does not verify for this {kind}") from error


def is_valid(public_key: bytes, kind: str, value: Any, signature: bytes) -> bool:
    try:
        verify(public_key, kind, value, signature)
    except BadSignature:
        return False
    return True
