"""Pure rules of the ledgers app (issue 4): no Django, no I/O. See docs/ledgers.md.

The shell imports from the submodules; the names most services need are re-exported here.
"""

from ledgers.protocol.amounts import MAX_AMOUNT, MinorUnits, format_amount, parse_amount
from ledgers.protocol.catalogue import Catalogue, Effects, EntryKind, Hold
from ledgers.protocol.chain import Appended, ChainHead, check_append, compare_chains, cosign, verify_chain
from ledgers.protocol.entries import GENESIS_PREV, Entry, LedgerHeight, Millis, SignedEntry
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId, parse_asset_id, parse_ledger_id
from ledgers.protocol.kinds import DEFAULT_CATALOGUE

__all__ = [
    "DEFAULT_CATALOGUE",
    "GENESIS_PREV",
    "MAX_AMOUNT",
    "Appended",
    "Asset",
    "AssetId",
    "Catalogue",
    "ChainHead",
    "Effects",
    "Entry",
    "EntryKind",
    "Hold",
    "LedgerError",
    "LedgerHeight",
    "LedgerId",
    "Millis",
    "MinorUnits",
    "SignedEntry",
    "check_append",
    "compare_chains",
    "cosign",
    "format_amount",
    "parse_amount",
    "parse_asset_id",
    "parse_ledger_id",
    "verify_chain",
]
