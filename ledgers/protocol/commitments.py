"""What consensus agrees on for a ledger entry: its head commitment (ARCHITECTURE.md §6).

Every appended entry is voted as one observation of kind ``ledger-entry`` whose payload is the
canonical JSON ``{"hash": <entry hash hex>, "height": h, "ledger": <UBI>}``. Once agreed, no
bank can show two histories of one ledger (two hashes at one height are both in the record),
and a receipt can prove the entry: the verifier recomputes this payload from the entry itself
and checks its Merkle path into the block.
"""

from __future__ import annotations

import re

from ledgers.protocol.entries import LedgerHeight
from ledgers.protocol.identifiers import LedgerId
from settlement.protocol.encoding import MAX_SAFE_INTEGER, Digest, canonical

ENTRY_OBSERVATION_KIND = "ledger-entry"


# A valid UBI is ASCII letters, digits and ".:_-": nothing JSON escapes. For such an id (and a
# height within JSON's safe integers) the canonical bytes are written out directly, keys in
# their sorted order; tests compare both paths on arbitrary input.
_PLAIN_LEDGER = re.compile(r"[a-z0-9.:_-]+")


def entry_commitment(ledger: LedgerId, height: LedgerHeight | int, entry_hash: Digest | bytes) -> bytes:
    """The observation payload for the entry at ``height`` of ``ledger`` whose hash is given."""
    hex_hash = bytes(entry_hash).hex()
    if (
        type(ledger) is str
        and type(height) is int
        and 0 <= height <= MAX_SAFE_INTEGER
        and _PLAIN_LEDGER.fullmatch(ledger)
    ):
        return f'{{"hash":"{hex_hash}","height":{height},"ledger":"{ledger}"}}'.encode("ascii")
    return canonical({"ledger": ledger, "height": int(height), "hash": hex_hash})
