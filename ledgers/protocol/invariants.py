"""Invariants the shell (and the tests) can check over its projections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ledgers.protocol.catalogue import SupplyChange
from ledgers.protocol.identifiers import AssetId


@dataclass(frozen=True)
class SupplyMismatch:
    asset: AssetId
    balances: int
    outstanding: int


def supply_mismatches(
    *, balances: Iterable[Mapping[AssetId, int]], supply: Iterable[SupplyChange]
) -> tuple[SupplyMismatch, ...]:
    """Per asset, the sum of all ledgers' balances must equal issued minus redeemed (issue 4).
    Returns every asset where it does not; empty means the books balance."""
    totals: dict[AssetId, int] = {}
    for ledger_balances in balances:
        for asset, amount in ledger_balances.items():
            totals[asset] = totals.get(asset, 0) + amount
    outstanding: dict[AssetId, int] = {}
    for change in supply:
        outstanding[change.asset] = outstanding.get(change.asset, 0) + change.issued - change.redeemed
    return tuple(
        SupplyMismatch(asset=asset, balances=totals.get(asset, 0), outstanding=outstanding.get(asset, 0))
        for asset in sorted(totals.keys() | outstanding.keys())
        if totals.get(asset, 0) != outstanding.get(asset, 0)
    )
