"""The catalogue of entry kinds (seed 000: "a catalogue of transactions ... simple to add").

The chain code (:mod:`ledgers.protocol.chain`) knows nothing about issue, payment or offer: it
asks the catalogue for the kind's rule, which validates the body and says what the entry does to
balances, holds and supply. Adding a kind is ``catalogue.with_kind(EntryKind(...))``; the chain
code does not change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ledgers.protocol.amounts import MinorUnits, amount_from_wire
from ledgers.protocol.errors import BadAssetId, BadBody, BadLedgerId, UnknownAsset, UnknownKind
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId, parse_asset_id, parse_ledger_id


@dataclass(frozen=True)
class BalanceChange:
    """``delta`` minor units of ``asset`` on the ledger the entry is appended to."""

    asset: AssetId
    delta: int


@dataclass(frozen=True)
class Hold:
    """Funds set aside on a ledger until ``key`` is released (a pending payment, an open offer)."""

    key: str
    asset: AssetId
    amount: MinorUnits


@dataclass(frozen=True)
class SupplyChange:
    """Issued or redeemed units of an asset: what the per-asset invariant counts."""

    asset: AssetId
    issued: int = 0
    redeemed: int = 0


@dataclass(frozen=True)
class Effects:
    changes: tuple[BalanceChange, ...] = ()
    places_holds: tuple[Hold, ...] = ()
    # Releasing a key that is not open is a no-op: a payment's debit releases the hold its bank
    # may have placed, and replaying a chain elsewhere has no holds at all.
    releases_holds: tuple[str, ...] = ()
    supply: tuple[SupplyChange, ...] = ()
    # Whether the ledger's party must sign this entry. Credits and entries authorised by an
    # object the party already signed (a payment instruction, an offer) need only the bank.
    party_must_sign: bool = True


@dataclass(frozen=True)
class KindContext:
    ledger: LedgerId
    assets: Mapping[AssetId, Asset]


@dataclass(frozen=True)
class EntryKind:
    """One kind of entry: ``validate`` raises a :class:`LedgerError` on a bad body; ``effects``
    (called only on a valid body) says what the entry does."""

    name: str
    validate: Callable[[Mapping[str, Any], KindContext], None]
    effects: Callable[[Mapping[str, Any], KindContext], Effects]


@dataclass(frozen=True)
class Catalogue:
    kinds: Mapping[str, EntryKind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", MappingProxyType(dict(self.kinds)))

    def with_kind(self, kind: EntryKind) -> Catalogue:
        """A new catalogue with ``kind`` added (or replacing one of the same name)."""
        return Catalogue(kinds={**self.kinds, kind.name: kind})

    def get(self, name: str) -> EntryKind:
        try:
            return self.kinds[name]
        except KeyError:
            raise UnknownKind(f"{name!r} is not a kind of entry this node knows") from None


# Helpers for kind rules: each raises the typed error a client should see.


def require_keys(body: Mapping[str, Any], *, required: set[str], kind: str) -> None:
    if set(body) != required:
        raise BadBody(f"a {kind} body has exactly the fields {', '.join(sorted(required))}")


def body_str(body: Mapping[str, Any], name: str, *, max_length: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BadBody(f"{name} must be a non-empty string of at most {max_length} characters")
    return value


def body_asset(body: Mapping[str, Any], name: str, context: KindContext) -> Asset:
    try:
        asset_id = parse_asset_id(body.get(name))
    except BadAssetId as error:
        raise BadBody(str(error)) from error
    asset = context.assets.get(asset_id)
    if asset is None:
        raise UnknownAsset(f"{asset_id} is not an asset this node knows")
    return asset


def body_amount(body: Mapping[str, Any], name: str) -> MinorUnits:
    return amount_from_wire(body.get(name))


def body_ledger(body: Mapping[str, Any], name: str) -> LedgerId:
    try:
        return parse_ledger_id(body.get(name))
    except BadLedgerId as error:
        raise BadBody(f"{name}: {error}") from error


def body_choice(body: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in choices:
        raise BadBody(f"{name} must be one of {', '.join(choices)}")
    assert isinstance(value, str)
    return value


_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def body_hex_digest(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _HEX_DIGEST.fullmatch(value):
        raise BadBody(f"{name} must be 64 lowercase hex digits (a SHA-256 digest)")
    return value
