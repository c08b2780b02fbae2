"""Unified Asset Identifiers (UAI) and Unified Blockchain Identifiers (UBI), seed 003 §3.2.

* UAI ``<issuer namespace>/<CODE>``, e.g. ``bank-a.test/EUR``. The namespace is the issuing
  bank's domain name, so anyone can find the issuer (federation look-up) from the id alone.
* UBI ``ubi:<validator namespace>:<name>``, e.g. ``ubi:bank-a.test:alice-eur`` or
  ``ubi:bank-a.test:3f0c…``. The namespace is the bank that validates (co-signs) the ledger,
  so a verifier knows whose key must sign every entry without asking anyone.

Both are plain ASCII with a single spelling (namespaces lower case, codes upper case): ids are
compared as strings in signed bytes, so two spellings of one id would be two ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NewType

from ledgers.protocol.errors import BadAssetId, BadLedgerId

AssetId = NewType("AssetId", str)
LedgerId = NewType("LedgerId", str)
Namespace = NewType("Namespace", str)

# A DNS name of lower-case labels: what the federation look-up resolves.
_NAMESPACE = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
_CODE = r"[A-Z0-9][A-Z0-9_-]{0,31}"
_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"
_ASSET_RE = re.compile(rf"(?P<namespace>{_NAMESPACE})/(?P<code>{_CODE})")
_LEDGER_RE = re.compile(rf"ubi:(?P<namespace>{_NAMESPACE}):(?P<name>{_NAME})")
_NAMESPACE_RE = re.compile(_NAMESPACE)

# Enough for every currency and most tokens (ETH has 18); more would make 2**63-1 minor units
# too small a maximum to be useful.
MAX_DECIMALS = 18


def parse_namespace(text: object) -> Namespace:
    if not isinstance(text, str) or len(text) > 253 or not _NAMESPACE_RE.fullmatch(text):
        raise BadAssetId(f"{text!r} is not a bank namespace (a lower-case domain name such as bank-a.test)")
    return Namespace(text)


# Ids already found valid, so the few ids a bank's payments name over and over are matched
# against the patterns once, not on every entry (every body names an asset and a ledger).
# Bounded: cleared when full. Only exact str objects go in (a subclass could compare equal
# to a valid id yet encode differently).
_VALID_IDS_MAX = 100_000
_valid_asset_ids: set[str] = set()
_valid_ledger_ids: set[str] = set()


def _remember(valid: set[str], text: str) -> None:
    if len(valid) >= _VALID_IDS_MAX:
        valid.clear()
    valid.add(text)


def parse_asset_id(text: object) -> AssetId:
    """Return ``text`` as an :data:`AssetId` or raise :class:`BadAssetId`."""
    if type(text) is str and text in _valid_asset_ids:
        return AssetId(text)
    if not isinstance(text, str) or len(text) > 290 or not _ASSET_RE.fullmatch(text):
        raise BadAssetId(f"{text!r} is not an asset id; expected issuer/CODE such as bank-a.test/EUR")
    if type(text) is str:
        _remember(_valid_asset_ids, text)
    return AssetId(text)


def parse_ledger_id(text: object) -> LedgerId:
    """Return ``text`` as a :data:`LedgerId` or raise :class:`BadLedgerId`."""
    if type(text) is str and text in _valid_ledger_ids:
        return LedgerId(text)
    if not isinstance(text, str) or len(text) > 330 or not _LEDGER_RE.fullmatch(text):
        raise BadLedgerId(
            f"{text!r} is not a ledger id; expected ubi:<bank namespace>:<name> such as ubi:bank-a.test:alice"
        )
    if type(text) is str:
        _remember(_valid_ledger_ids, text)
    return LedgerId(text)


def make_ledger_id(*, namespace: str, name: str) -> LedgerId:
    return parse_ledger_id(f"ubi:{namespace}:{name}")


def make_asset_id(*, issuer: str, code: str) -> AssetId:
    return parse_asset_id(f"{issuer}/{code}")


def asset_issuer(asset: AssetId) -> Namespace:
    return Namespace(asset.split("/", 1)[0])


def asset_code(asset: AssetId) -> str:
    return asset.split("/", 1)[1]


def ledger_namespace(ledger: LedgerId) -> Namespace:
    """The namespace of the bank that validates ``ledger``."""
    return Namespace(ledger.split(":", 2)[1])


def correspondent_ledger_id(*, kept_by: str, for_bank: str) -> LedgerId:
    """The ledger that bank ``kept_by`` keeps for its peer ``for_bank`` (its account there).

    One fixed name per pair, so a payment route can be checked without a directory: the leg at
    bank X credits ``correspondent_ledger_id(kept_by=X, for_bank=next)`` (seed 003 Pic. 5/6).
    """
    return make_ledger_id(namespace=kept_by, name=f"bank.{for_bank}")


@dataclass(frozen=True)
class Asset:
    """An asset: its UAI and how many decimals its minor unit has (EUR: 2, so 1 EUR = 100)."""

    id: AssetId
    decimals: int

    def __post_init__(self) -> None:
        parse_asset_id(self.id)
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int):
            raise BadAssetId("decimals must be an integer")
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise BadAssetId(f"decimals must be between 0 and {MAX_DECIMALS}")

    @property
    def issuer(self) -> Namespace:
        return asset_issuer(self.id)

    @property
    def code(self) -> str:
        return asset_code(self.id)
