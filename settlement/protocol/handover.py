"""Key hand-overs: a node's earlier Ed25519 key names a later key of the same node (docs/receipt.md,
"Key rotation").

When a node rotates its signing key, the key being retired signs, while it is still the current
key, ``domain_bytes("node-key-handover", {"key": <retired, hex>, "successor": <new, hex>})``; and
every key retired before it signs the same statement naming the new key (a **direct hand-over**),
so that a signature by any earlier key reaches the current key in one hand-over, whatever the
number of rotations since.

The statement is what lets a signature made by an earlier key be attributed to the node later:
whoever trusts the successor (or the earlier key itself) can check, offline, that the earlier
key handed over to it. Signed by the earlier key, so a node cannot claim another node's key as
one of its own: only that key's holder can name its successor. "Successor" means a later key of
the same node, the next one or any after it; a verifier checks each link the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from settlement.protocol.signing import Signature, SigningKey, is_valid, sign

KEY_HANDOVER_KIND = "node-key-handover"

__all__ = [
    "KEY_HANDOVER_KIND",
    "KeyHandover",
    "key_handover",
    "key_handover_holds",
    "key_handover_path",
    "key_handover_sign",
]


def key_handover(retired: bytes, successor: bytes) -> dict[str, str]:
    """The object an earlier key signs: its own public key and its successor's (hex)."""
    return {"key": retired.hex(), "successor": successor.hex()}


def key_handover_sign(retired: SigningKey, successor: bytes) -> Signature:
    return sign(retired, KEY_HANDOVER_KIND, key_handover(retired.public_key, successor))


def key_handover_holds(retired: bytes, successor: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``retired``'s hand-over to ``successor``."""
    return is_valid(retired, KEY_HANDOVER_KIND, key_handover(retired, successor), signature)


@dataclass(frozen=True)
class KeyHandover:
    """An earlier signing key and its signature handing over to ``successor``."""

    key: bytes
    signature: bytes
    successor: bytes


def key_handover_path(
    handovers: Iterable[KeyHandover], start: bytes, end: bytes
) -> tuple[KeyHandover, ...] | None:
    """The fewest hand-overs leading from ``start`` to ``end`` (each one's successor the next
    one's key, the last one's ``end``); ``()`` when ``start`` is ``end``; ``None`` when none
    leads there. Breadth-first over the hand-overs in the order given, so ties go to the first
    given: the same hand-overs always give the same path. No key is visited twice, so the path
    names no key twice (what the verifier requires)."""
    if start == end:
        return ()
    leaving: dict[bytes, list[KeyHandover]] = {}
    for handover in handovers:
        leaving.setdefault(handover.key, []).append(handover)
    reached_by: dict[bytes, KeyHandover | None] = {start: None}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        for handover in leaving.get(key, ()):
            if handover.successor in reached_by:
                continue
            reached_by[handover.successor] = handover
            if handover.successor == end:
                path = [handover]
                while (previous := reached_by[path[-1].key]) is not None:
                    path.append(previous)
                return tuple(reversed(path))
            queue.append(handover.successor)
    return None
