"""Appending to a ledger chain, and verifying and comparing exported chains.

The shell's append is: lock the ledger row, load its head, balances, open holds and credit lines,
call :func:`check_append`, sign with :func:`cosign` (the bank signs only after every check has
passed), save entry + head + balances + holds in one transaction. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgers.protocol.amounts import MAX_AMOUNT, check_balance
from ledgers.protocol.catalogue import Catalogue, Hold, KindContext, SupplyChange
from ledgers.protocol.entries import (
    GENESIS_PREV,
    EncodedEntry,
    Entry,
    LedgerHeight,
    Millis,
    SignedEntry,
    encode_entry,
    sign_encoded,
    verify_encoded,
)
from ledgers.protocol.errors import (
    AmountOverflow,
    BadBody,
    BadEntrySignature,
    BadTime,
    CreditLimitExceeded,
    InsufficientFunds,
    LedgerError,
    MissingSignature,
    NotAccepted,
    WrongHeight,
    WrongLedger,
    WrongPrev,
)
from ledgers.protocol.identifiers import Asset, AssetId, LedgerId
from ledgers.protocol.kinds import DEFAULT_CATALOGUE
from settlement.protocol.encoding import Digest
from settlement.protocol.signing import PublicKey, Signature, SigningKey

# A client's clock may run a little ahead of the bank's; more than this is a wrong clock.
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class ChainHead:
    """What the shell keeps on the ledger row: the next height and the hash it must link to."""

    ledger: LedgerId
    next_height: LedgerHeight
    last_hash: Digest
    last_time: Millis

    @classmethod
    def genesis(cls, ledger: LedgerId) -> ChainHead:
        return cls(ledger=ledger, next_height=LedgerHeight(0), last_hash=GENESIS_PREV, last_time=Millis(0))


@dataclass(frozen=True)
class Appended:
    """A checked entry and everything the shell saves with it."""

    encoded: EncodedEntry
    head: ChainHead
    deltas: Mapping[AssetId, int]
    balances: Mapping[AssetId, int]  # the new balance of every asset the entry touched
    holds_placed: tuple[Hold, ...]
    holds_released: tuple[str, ...]  # only keys that were open; delete these rows
    supply: tuple[SupplyChange, ...]
    party_signature: Signature | None
    validator_signature: Signature | None = None

    @property
    def entry(self) -> Entry:
        return self.encoded.entry

    @property
    def hash(self) -> Digest:
        return self.encoded.hash

    def signed(self) -> SignedEntry:
        return SignedEntry(
            entry=self.encoded.entry,
            party_signature=self.party_signature,
            validator_signature=self.validator_signature,
        )


@dataclass(frozen=True)
class LedgerView:
    """One locked ledger as the shell loaded it: all the checks need besides the entry."""

    head: ChainHead
    party_key: PublicKey
    balances: Mapping[AssetId, int]
    holds: Mapping[str, Hold]
    credit_lines: Mapping[AssetId, int]
    party_accepted: bool


def check_append(
    *,
    head: ChainHead,
    entry: Entry,
    party_key: PublicKey,
    party_signature: Signature | None,
    balances: Mapping[AssetId, int],
    assets: Mapping[AssetId, Asset],
    holds: Mapping[str, Hold] | None = None,
    credit_lines: Mapping[AssetId, int] | None = None,
    outstanding: Mapping[AssetId, int] | None = None,
    party_accepted: bool = True,
    validator_key: PublicKey | None = None,
    validator_signature: Signature | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    check_funds: bool = True,
    now: Millis | None = None,
    encoded: EncodedEntry | None = None,
    party_signer: SigningKey | None = None,
) -> Appended:
    """Check that ``entry`` may be appended after ``head``; raise a :class:`LedgerError` if not.

    ``balances``, ``holds`` (open holds by key) and ``credit_lines`` (how far below zero each
    asset may go) are this ledger's; ``outstanding`` (issued minus redeemed per asset), when
    given, guards the supply against overflow. ``validator_signature`` is checked when present,
    for entries that arrive already co-signed (a replayed copy, the other bank's side).

    ``party_signer``: the owner's key when the bank keeps it (custody), instead of
    ``party_signature``. The key must be the ledger's party key (``bad_signature`` otherwise, at
    the place a bad signature is refused); the entry is signed with it only after every check
    passed, so the node never signs for an owner an entry the rules refuse. That signature is not
    verified again: made with the party key's own seed over these bytes, it verifies by
    construction (the tests prove it), and its verification was a third of an intra-bank
    payment's Ed25519 time.
    """
    checked = check_entry(
        head=head,
        entry=entry,
        party_key=party_key,
        party_signature=party_signature,
        balances=balances,
        assets=assets,
        holds=holds,
        credit_lines=credit_lines,
        outstanding=outstanding,
        party_accepted=party_accepted,
        validator_key=validator_key,
        validator_signature=validator_signature,
        catalogue=catalogue,
        check_funds=check_funds,
        now=now,
        encoded=encoded,
        party_signer=party_signer,
    )
    return finish_append(checked, party_signature=party_signature, party_signer=party_signer)


# What check_entry found, for finish_append: (encoded, head, deltas, new balances, holds placed, holds
# released, supply, validator signature). A plain tuple: the result is built once, signatures
# included, by finish_append (a frozen Appended built and then rebuilt to add the bank's signature
# cost about as much as the rules of a transfer entry).
CheckedEntry = tuple[
    EncodedEntry,
    ChainHead,
    dict[AssetId, int],
    dict[AssetId, int],
    tuple[Hold, ...],
    tuple[str, ...],
    tuple[SupplyChange, ...],
    Signature | None,
]


def check_entry(
    *,
    head: ChainHead,
    entry: Entry,
    party_key: PublicKey,
    party_signature: Signature | None,
    balances: Mapping[AssetId, int],
    assets: Mapping[AssetId, Asset],
    holds: Mapping[str, Hold] | None,
    credit_lines: Mapping[AssetId, int] | None,
    outstanding: Mapping[AssetId, int] | None,
    party_accepted: bool,
    validator_key: PublicKey | None,
    validator_signature: Signature | None,
    catalogue: Catalogue,
    check_funds: bool,
    now: Millis | None,
    encoded: EncodedEntry | None,
    party_signer: SigningKey | None,
) -> CheckedEntry:
    """Every rule of :func:`check_append`, signing nothing."""
    # Cheap structural checks first; signatures next, so that someone without the key learns
    # nothing about balances; funds last.
    if entry.ledger != head.ledger:
        raise WrongLedger(f"entry is for {entry.ledger}, not {head.ledger}")
    if entry.height != head.next_height:
        raise WrongHeight(
            f"the next entry of {head.ledger} has height {head.next_height}, not {entry.height}"
        )
    if entry.prev != head.last_hash:
        raise WrongPrev(f"prev does not match the hash of entry {head.next_height - 1} of {head.ledger}")
    if entry.time < head.last_time:
        raise BadTime("entry time is earlier than the previous entry's")
    if now is not None and entry.time > now + MAX_CLOCK_SKEW_MS:
        raise BadTime("entry time is in the future")
    if not party_accepted:
        raise NotAccepted(f"the owner of {entry.ledger} has not been accepted (KYC); nothing can be appended")

    rule = catalogue.get(entry.kind)
    context = KindContext(ledger=entry.ledger, assets=assets)
    rule.validate(entry.body, context)
    effects = rule.effects(entry.body, context)

    if encoded is None or encoded.entry is not entry:
        encoded = encode_entry(entry)
    if party_signer is not None:
        if party_signature is not None:
            raise TypeError("give the party's signature or the party's key, not both")
        if party_signer.public_key != party_key:
            raise BadEntrySignature(
                f"the key held for the owner of {entry.ledger} is not the ledger's party key"
            )
    elif party_signature is not None:
        verify_encoded(party_key, encoded, party_signature, role="party")
    elif effects.party_must_sign:
        raise MissingSignature(f"a {entry.kind} entry must be signed by the owner of {entry.ledger}")
    if validator_signature is not None:
        if validator_key is None:
            raise MissingSignature("a validator signature was given without the validator's key")
        verify_encoded(validator_key, encoded, validator_signature, role="validator")

    open_holds = holds or {}
    # Most entries place and release nothing, and most ledgers hold nothing: the generators
    # below are made only when there is something to go through (thousands of entries a batch).
    released = (
        tuple(key for key in effects.releases_holds if key in open_holds) if effects.releases_holds else ()
    )
    for hold in effects.places_holds:
        if hold.key in open_holds:
            raise BadBody(f"{hold.key} is already open on {entry.ledger}")

    deltas: dict[AssetId, int] = {}
    for change in effects.changes:
        deltas[change.asset] = deltas.get(change.asset, 0) + change.delta
    placed: dict[AssetId, int] = {}
    for hold in effects.places_holds:
        placed[hold.asset] = placed.get(hold.asset, 0) + hold.amount

    new_balances: dict[AssetId, int] = {}
    for asset in deltas.keys() | placed.keys():
        delta = deltas.get(asset, 0)
        new_balance = check_balance(balances.get(asset, 0) + delta)
        new_balances[asset] = new_balance
        if check_funds and (delta < 0 or asset in placed):
            check_available(
                ledger=entry.ledger,
                asset=asset,
                new_balance=new_balance,
                held=placed.get(asset, 0)
                + (
                    sum(h.amount for k, h in open_holds.items() if h.asset == asset and k not in released)
                    if open_holds
                    else 0
                ),
                credit_line=(credit_lines or {}).get(asset, 0),
            )
    for supply_change in effects.supply:
        if outstanding is not None and (
            outstanding.get(supply_change.asset, 0) + supply_change.issued > MAX_AMOUNT
        ):
            raise AmountOverflow(
                f"issuing this would take {supply_change.asset} beyond {MAX_AMOUNT} minor units"
            )
    return (
        encoded,
        ChainHead(
            ledger=head.ledger,
            next_height=LedgerHeight(head.next_height + 1),
            last_hash=encoded.hash,
            last_time=entry.time,
        ),
        {asset: delta for asset, delta in deltas.items() if delta},
        new_balances,
        effects.places_holds,
        released,
        effects.supply,
        validator_signature,
    )


def finish_append(
    checked: CheckedEntry,
    *,
    party_signature: Signature | None,
    party_signer: SigningKey | None,
    validator_signer: SigningKey | None = None,
) -> Appended:
    """The result of checks that passed, with the owner's signature made by ``party_signer``
    (custody) and the bank's by ``validator_signer``, when given."""
    encoded, head, deltas, balances, placed, released, supply, validator_signature = checked
    if party_signer is not None:
        party_signature = sign_encoded(party_signer, encoded)
    if validator_signer is not None:
        validator_signature = sign_encoded(validator_signer, encoded)
    return Appended(
        encoded=encoded,
        head=head,
        deltas=deltas,
        balances=balances,
        holds_placed=placed,
        holds_released=released,
        supply=supply,
        party_signature=party_signature,
        validator_signature=validator_signature,
    )


def check_available(
    *, ledger: LedgerId, asset: AssetId, new_balance: int, held: int, credit_line: int
) -> None:
    """Raise unless ``new_balance`` minus what is ``held`` stays at or above ``-credit_line``."""
    # Spendable = balance - held + credit line; no balance below zero unless a credit line allows.
    if new_balance - held >= -credit_line:
        return
    if credit_line > 0:
        raise CreditLimitExceeded(f"{ledger} would go beyond its credit line of {credit_line} in {asset}")
    raise InsufficientFunds(f"{ledger} does not have enough {asset} available for this entry")


def check_hold(*, view: LedgerView, hold: Hold) -> None:
    """Raise unless ``view``'s ledger can set ``hold`` aside (balance - holds + credit line)."""
    held = sum(h.amount for h in view.holds.values() if h.asset == hold.asset) + hold.amount
    if hold.key in view.holds:
        raise BadBody(f"{hold.key} is already held on {view.head.ledger}")
    check_available(
        ledger=view.head.ledger,
        asset=hold.asset,
        new_balance=view.balances.get(hold.asset, 0),
        held=held,
        credit_line=view.credit_lines.get(hold.asset, 0),
    )


def cosign(appended: Appended, *, validator_key: SigningKey) -> Appended:
    """The validator's signature, given only on a checked entry; signs the bytes already encoded."""
    # Built field by field: dataclasses.replace inspects the fields on every call, and a batch
    # co-signs thousands of entries.
    return Appended(
        encoded=appended.encoded,
        head=appended.head,
        deltas=appended.deltas,
        balances=appended.balances,
        holds_placed=appended.holds_placed,
        holds_released=appended.holds_released,
        supply=appended.supply,
        party_signature=appended.party_signature,
        validator_signature=sign_encoded(validator_key, appended.encoded),
    )


def sign_entry(entry: Entry, *, key: SigningKey) -> Signature:
    """A party signs an entry (the client side, or the node for a custodial counterparty)."""
    return sign_encoded(key, encode_entry(entry))


def next_entry(*, head: ChainHead, kind: str, body: Mapping[str, Any], time: Millis) -> Entry:
    """The entry that would follow ``head``; the time never goes backwards."""
    return Entry(
        ledger=head.ledger,
        height=head.next_height,
        prev=head.last_hash,
        kind=kind,
        body=body,
        time=Millis(max(time, head.last_time)),
    )


# --- Verifying an exported chain -------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    height: int
    code: str
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: how far the chain verifies and the state it leads to."""

    head: ChainHead
    balances: Mapping[AssetId, int]
    verified: int
    hashes: tuple[Digest, ...] = field(repr=False)
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(
    entries: Sequence[SignedEntry],
    *,
    ledger: LedgerId,
    party_key: PublicKey,
    validator_key: PublicKey,
    assets: Mapping[AssetId, Asset],
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    start: ChainHead | None = None,
    start_balances: Mapping[AssetId, int] | None = None,
) -> ChainReport:
    """Replay an exported chain: contiguous heights, each prev the hash of the one before, the
    validator's signature on every entry and the party's wherever present or required.

    Funds are not re-checked: credit lines and holds at the time are the bank's records, not part
    of the chain; balances are recomputed. Stops at the first problem and reports it.
    """
    head = start or ChainHead.genesis(ledger)
    balances: dict[AssetId, int] = dict(start_balances or {})
    hashes: list[Digest] = []
    for signed in entries:
        try:
            if signed.validator_signature is None:
                raise MissingSignature(f"entry {signed.entry.height} has no validator signature")
            appended = check_append(
                head=head,
                entry=signed.entry,
                party_key=party_key,
                party_signature=signed.party_signature,
                balances=balances,
                assets=assets,
                validator_key=validator_key,
                validator_signature=signed.validator_signature,
                catalogue=catalogue,
                check_funds=False,
            )
        except LedgerError as error:
            return ChainReport(
                head=head,
                balances=balances,
                verified=len(hashes),
                hashes=tuple(hashes),
                problem=ChainProblem(height=signed.entry.height, code=error.code, message=str(error)),
            )
        balances.update(appended.balances)
        head = appended.head
        hashes.append(appended.hash)
    return ChainReport(head=head, balances=balances, verified=len(hashes), hashes=tuple(hashes))


@dataclass(frozen=True)
class Divergence:
    """The first height at which two copies of one ledger disagree, and how."""

    height: int
    reason: str  # "different_entry", "different_signatures", "missing_in_first", "missing_in_second"


def compare_chains(first: Sequence[SignedEntry], second: Sequence[SignedEntry]) -> Divergence | None:
    """Compare a party's copy with the bank's, entry by entry; ``None`` when they agree.

    Both copies are given from the same starting height. A copy that is a strict prefix of the
    other is reported as missing entries, not as a conflict: one side may simply be behind.
    """
    for index in range(max(len(first), len(second))):
        if index >= len(first):
            return Divergence(height=second[index].entry.height, reason="missing_in_first")
        if index >= len(second):
            return Divergence(height=first[index].entry.height, reason="missing_in_second")
        ours, theirs = first[index], second[index]
        if ours.entry != theirs.entry and encode_entry(ours.entry).hash != encode_entry(theirs.entry).hash:
            return Divergence(height=ours.entry.height, reason="different_entry")
        if (ours.party_signature, ours.validator_signature) != (
            theirs.party_signature,
            theirs.validator_signature,
        ):
            return Divergence(height=ours.entry.height, reason="different_signatures")
    return None
