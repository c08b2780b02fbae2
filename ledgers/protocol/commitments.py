"""What consensus agrees on for a ledger entry: its head commitment (ARCHITECTURE.md §6).

Every appended entry is voted as one observation of kind ``ledger-entry`` whose payload is the
canonical JSON ``{"hash": <entry hash hex>, "height": h, "ledger": <UBI>}``. Once agreed, no
bank can show two histories of one ledger (two hashes at one height are both in the record),
and a receipt can prove the entry: the verifier recomputes this payload from the entry itself
and checks its Merkle path into the block.
"""

from __future__ import annotations

from ledgers.protocol.entries import LedgerHeight
from ledgers.protocol.identifiers import LedgerId
from settlement.protocol.encoding import Digest, canonical

ENTRY_OBSERVATION_KIND = "ledger-entry"


def entry_commitment(ledger: LedgerId, height: LedgerHeight | int, entry_hash: Digest | bytes) -> bytes:
    """The observation payload for the entry at ``height`` of ``ledger`` whose hash is given."""
    return canonical({"ledger": ledger, "height": int(height), "hash": bytes(entry_hash).hex()})
