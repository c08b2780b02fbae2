"""Key hand-overs: a node's retiring Ed25519 key names the key that succeeds it (docs/receipt.md,
"Receipt version 3").

When a node rotates its signing key, the key being retired signs, while it is still the current
key, ``domain_bytes("node-key-handover", {"key": <retired, hex>, "successor": <new, hex>})``.
The statement is what lets a signature made by the retired key be attributed to the node later:
whoever trusts the successor (or the retired key itself) can check, offline, that the retired
key handed over to it. Signed by the retired key, so a node cannot claim another node's key as
one of its own: only that key's holder can name its successor.
"""

from __future__ import annotations

from settlement.protocol.signing import Signature, SigningKey, is_valid, sign

KEY_HANDOVER_KIND = "node-key-handover"

__all__ = ["KEY_HANDOVER_KIND", "key_handover", "key_handover_holds", "key_handover_sign"]


def key_handover(retired: bytes, successor: bytes) -> dict[str, str]:
    """The object a retiring key signs: its own public key and its successor's (hex)."""
    return {"key": retired.hex(), "successor": successor.hex()}


def key_handover_sign(retired: SigningKey, successor: bytes) -> Signature:
    return sign(retired, KEY_HANDOVER_KIND, key_handover(retired.public_key, successor))


def key_handover_holds(retired: bytes, successor: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``retired``'s hand-over to ``successor``."""
    return is_valid(retired, KEY_HANDOVER_KIND, key_handover(retired, successor), signature)
