"""Writes of the ledgers app: lock, convert rows to protocol values, call the rules, save, and
carry out effects after commit (STYLE.md §2).

Lock order: ledger rows first, always in :func:`ledgers.protocol.intrabank.lock_order` order
(sorted UBIs, one ``SELECT ... ORDER BY ubi FOR UPDATE``), then asset rows when supply changes.
Every service that locks ledgers goes through :func:`_lock_ledgers`, so two payments in opposite
directions wait for each other instead of deadlocking.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from _json import encode_basestring_ascii, make_encoder  # CPython's C JSON encoder, as json uses it
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from consensus.services import consensus_vote_in_transaction
from ledgers.errors import CustodyMismatch, IdempotencyKeyReused
from ledgers.models import Asset, FraudProof, Hold, Ledger, LedgerEntry, LedgerOwner, Transfer
from ledgers.protocol import amounts, fraud, identifiers, intrabank
from ledgers.protocol import chain as chain_rules
from ledgers.protocol.catalogue import Hold as ProtocolHold
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.entries import (
    Entry,
    LedgerHeight,
    Millis,
    SignedEntry,
    encode_entry,
    encoded_body_json,
    sign_encoded,
)
from ledgers.protocol.errors import (
    BadBody,
    BadEntry,
    BadFraudProof,
    LedgerError,
    UnknownAsset,
    UnknownLedger,
    WrongHeight,
    WrongPrev,
)
from ledgers.protocol.identifiers import AssetId, LedgerId
from settlement import bulk, health, keystore
from settlement.audit import audit_record
from settlement.collector import cyclic_gc_paused
from settlement.counterparties.models import Counterparty, Custody, KycStatus
from settlement.counterparties.selectors import counterparty_require_accepted
from settlement.models import Peer
from settlement.protocol.encoding import Digest
from settlement.protocol.signing import PublicKey, Signature, SigningKey

LEDGERS_GROUP = "ledgers"
BANK_LEDGER_NAME = "bank"


def now_millis() -> Millis:
    return Millis(int(time.time() * 1000))


def bank_namespace() -> str:
    return str(settings.NODE_DOMAIN)


def bank_key() -> SigningKey:
    return keystore.node_signer().key


_broadcaster = health.ThrottledBroadcast(LEDGERS_GROUP, "ledgers.changed")


def _broadcast_after_commit() -> None:
    transaction.on_commit(_broadcaster.request)


# --- conversions --------------------------------------------------------------------------------


def protocol_asset(asset: Asset) -> identifiers.Asset:
    return identifiers.Asset(id=AssetId(asset.uai), decimals=asset.decimals)


def head_of(ledger: Ledger) -> chain_rules.ChainHead:
    return chain_rules.ChainHead(
        ledger=LedgerId(ledger.ubi),
        next_height=LedgerHeight(ledger.next_height),
        last_hash=Digest(bytes.fromhex(ledger.last_hash)),
        last_time=Millis(ledger.last_time),
    )


class StoredEntry(Protocol):
    """The stored columns an entry is rebuilt from: a ``LedgerEntry``, or a named
    ``values_list`` row of them (a receipt reads no model instance)."""

    @property
    def height(self) -> int: ...
    @property
    def prev(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def body(self) -> Any: ...
    @property
    def time(self) -> int: ...
    @property
    def party_signature(self) -> str: ...
    @property
    def validator_signature(self) -> str: ...


def signed_entry_of(row: StoredEntry, ubi: str) -> SignedEntry:
    return SignedEntry(
        entry=Entry(
            ledger=LedgerId(ubi),
            height=LedgerHeight(row.height),
            prev=Digest(bytes.fromhex(row.prev)),
            kind=row.kind,
            body=row.body,
            time=Millis(row.time),
        ),
        party_signature=Signature(bytes.fromhex(row.party_signature)) if row.party_signature else None,
        validator_signature=Signature(bytes.fromhex(row.validator_signature)),
    )


def _party_accepted(ledger: Ledger) -> bool:
    if ledger.owner != LedgerOwner.COUNTERPARTY:
        return True
    assert ledger.counterparty is not None
    return bool(ledger.counterparty.kyc_status == KycStatus.ACCEPTED)


def party_public_key(ledger: Ledger) -> PublicKey:
    return PublicKey(bytes.fromhex(ledger.party_key))


_custodial_keys: dict[tuple[int, str], SigningKey] = {}
_custodial_lock = threading.Lock()


def party_signer(ledger: Ledger) -> SigningKey | None:
    """The key the node signs with for this ledger's owner: its own for its books, the sealed key
    of a custodial counterparty; ``None`` when the owner holds its key (self custody)."""
    if ledger.owner == LedgerOwner.BANK:
        return bank_key()
    if ledger.owner != LedgerOwner.COUNTERPARTY:
        return None
    counterparty = ledger.counterparty
    assert counterparty is not None
    if counterparty.custody != Custody.CUSTODIAL:
        return None
    # Opened keys stay in this process's memory like the node's own (settlement.keystore); keyed
    # by the public key too, so a re-used id never maps to another counterparty's key.
    cache_key = (counterparty.pk, counterparty.ed25519_public_key)
    with _custodial_lock:
        key = _custodial_keys.get(cache_key)
        if key is None:
            seed = keystore.open_custodial(counterparty.custodial_keys.sealed_ed25519)
            key = SigningKey(seed)
            _custodial_keys[cache_key] = key
    return key


# --- assets and ledgers -------------------------------------------------------------------------


@transaction.atomic
def asset_create(*, code: str, decimals: int, actor: Any, issuer: str | None = None) -> Asset:
    """Register an asset: this bank's own IOU (``issuer`` omitted) or a peer's, for payments and
    offers that name it."""
    uai = identifiers.make_asset_id(issuer=issuer or bank_namespace(), code=code)
    checked = identifiers.Asset(id=uai, decimals=decimals)
    asset, created = Asset.objects.get_or_create(
        uai=uai, defaults={"issuer": checked.issuer, "code": checked.code, "decimals": decimals}
    )
    if not created and asset.decimals != decimals:
        raise BadBody(f"{uai} is already registered with {asset.decimals} decimals")
    if created:
        audit_record(
            actor=actor, action="asset.create", target=asset, after={"uai": uai, "decimals": decimals}
        )
    return asset


@transaction.atomic
def ledger_open(
    *,
    name: str,
    actor: Any,
    counterparty: Counterparty | None = None,
    peer: Peer | None = None,
) -> Ledger:
    """Open a ledger kept by this bank: a counterparty's (ACCEPTED only), a peer bank's account
    here (``ubi:<us>:bank.<peer>``), or the bank's own books (neither given)."""
    if counterparty is not None and peer is not None:
        raise BadBody("a ledger belongs to a counterparty, a peer bank, or this bank")
    if counterparty is not None:
        counterparty = Counterparty.objects.select_for_update().get(pk=counterparty.pk)
        counterparty_require_accepted(counterparty)
        owner, party_key = LedgerOwner.COUNTERPARTY, counterparty.ed25519_public_key
        ubi = identifiers.make_ledger_id(namespace=bank_namespace(), name=name)
    elif peer is not None:
        owner = LedgerOwner.PEER
        key = peer.keys.filter(valid_until__isnull=True).first()
        party_key = key.public if key is not None else bank_key().public_key.hex()
        ubi = identifiers.correspondent_ledger_id(kept_by=bank_namespace(), for_bank=peer.domain)
    else:
        owner, party_key = LedgerOwner.BANK, bank_key().public_key.hex()
        ubi = identifiers.make_ledger_id(namespace=bank_namespace(), name=name)
    if Ledger.objects.filter(ubi=ubi).exists():
        raise BadBody(f"{ubi} already exists")
    ledger = Ledger.objects.create(
        ubi=ubi, owner=owner, counterparty=counterparty, peer=peer, party_key=party_key
    )
    audit_record(actor=actor, action="ledger.open", target=ledger, after={"ubi": ubi, "owner": owner})
    _broadcast_after_commit()
    return ledger


@transaction.atomic
def ledger_credit_line_set(*, ledger: Ledger, asset: Asset, credit_line: int, actor: Any) -> None:
    """How far below zero ``ledger`` may go in ``asset`` (a peer's account: its credit limit)."""
    if isinstance(credit_line, bool) or not isinstance(credit_line, int) or credit_line < 0:
        raise BadBody("a credit line is a non-negative integer of minor units")
    amounts.check_balance(credit_line, what="credit line")
    locked = _lock_ledgers([ledger.pk])[ledger.pk]
    balance = _balance_rows([locked.pk]).get((locked.pk, asset.pk))
    current = balance[0] if balance else 0
    held = sum(hold.amount for hold in Hold.objects.filter(ledger=locked, asset=asset))
    if current - held < -credit_line:
        raise BadBody("the balance is already below that credit line; lower it after repayment")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledgers_balance (ledger_id, asset_id, amount, credit_line) VALUES (%s, %s, 0, %s) "
            "ON CONFLICT (ledger_id, asset_id) DO UPDATE SET credit_line = EXCLUDED.credit_line",
            [locked.pk, asset.pk, credit_line],
        )
    audit_record(
        actor=actor,
        action="ledger.credit_line",
        target=locked,
        after={"asset": asset.uai, "credit_line": str(credit_line)},
    )


# --- locking, loading and saving ----------------------------------------------------------------


@functools.cache
def _lock_ledgers_statement() -> tuple[str, list[str], list[str]]:
    """The SQL of :func:`_lock_ledgers` and the attribute names of its two halves, made once.

    Written out rather than compiled by the ORM on every call: every payment path locks its
    ledgers, and compiling the select_related query cost more than running it."""
    halves: list[list[Any]] = []
    for model in (Ledger, Counterparty):
        fields: list[Any] = list(model._meta.concrete_fields)
        if any(field.get_db_converters(connection) for field in fields):
            raise TypeError(f"{model.__name__} has a field that needs converting: load it through the ORM")
        halves.append(fields)
    ledger_fields, counterparty_fields = halves
    columns = [f'l."{field.column}"' for field in ledger_fields] + [
        f'c."{field.column}"' for field in counterparty_fields
    ]
    tables = (
        f"{Ledger._meta.db_table} l LEFT JOIN {Counterparty._meta.db_table} c ON c.id = l.counterparty_id"
    )
    # NO KEY UPDATE: we change the head, never the key, so inserting rows that refer to a locked
    # ledger (entries, holds, payments take KEY SHARE for their foreign key) never waits on it,
    # and never deadlocks with a transaction locking the same ledgers in lock order.
    lock = "WHERE l.id = ANY(%s) ORDER BY l.ubi FOR NO KEY UPDATE OF l"
    sql = f"SELECT {', '.join(columns)} FROM {tables} {lock}"  # noqa: S608 - names from the models
    return sql, [field.attname for field in ledger_fields], [field.attname for field in counterparty_fields]


def _lock_ledgers(ids: Iterable[int]) -> dict[int, Ledger]:
    """Lock the ledger rows in lock order (sorted UBIs) in one statement; each comes with its
    counterparty (as ``select_related`` would load it)."""
    sql, ledger_names, counterparty_names = _lock_ledgers_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(set(ids))])
        rows = cursor.fetchall()
    split = len(ledger_names)
    cached = Ledger._meta.get_field("counterparty")
    alias = connection.alias
    locked: dict[int, Ledger] = {}
    for row in rows:
        # bulk.loaded, not from_db: Model.__init__'s per-field work for two models per ledger
        # cost more than the locking statement (the statement has no field needing conversion).
        ledger = bulk.loaded(Ledger, ledger_names, row[:split], alias=alias)
        counterparty = (
            bulk.loaded(Counterparty, counterparty_names, row[split:], alias=alias)
            if ledger.counterparty_id is not None
            else None
        )
        cached.set_cached_value(ledger, counterparty)
        locked[ledger.pk] = ledger
    return locked


def _balance_rows(ledger_ids: Sequence[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """(ledger id, asset id) -> (amount, credit line)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ledger_id, asset_id, amount, credit_line FROM ledgers_balance WHERE ledger_id = ANY(%s)",
            [list(ledger_ids)],
        )
        return {(row[0], row[1]): (row[2], row[3]) for row in cursor.fetchall()}


@dataclass
class _State:
    """The locked ledgers as the rules see them, kept up to date in memory while a batch runs."""

    ledgers: dict[int, Ledger]
    assets_by_id: dict[int, Asset]
    heads: dict[int, chain_rules.ChainHead] = field(default_factory=dict)
    balances: dict[int, dict[AssetId, int]] = field(default_factory=dict)
    credit_lines: dict[int, dict[AssetId, int]] = field(default_factory=dict)
    holds: dict[int, dict[str, ProtocolHold]] = field(default_factory=dict)
    changed_balances: set[tuple[int, AssetId]] = field(default_factory=set)
    # What does not change while the rows are locked, worked out once per ledger, not per entry.
    owners: dict[int, tuple[PublicKey, bool]] = field(default_factory=dict)
    signers: dict[int, SigningKey | None] = field(default_factory=dict)

    def signer(self, ledger_id: int) -> SigningKey | None:
        """:func:`party_signer` of a locked ledger, looked up once per batch."""
        if ledger_id not in self.signers:
            self.signers[ledger_id] = party_signer(self.ledgers[ledger_id])
        return self.signers[ledger_id]

    def view(self, ledger_id: int) -> chain_rules.LedgerView:
        owner = self.owners.get(ledger_id)
        if owner is None:
            ledger = self.ledgers[ledger_id]
            owner = self.owners[ledger_id] = (party_public_key(ledger), _party_accepted(ledger))
        return chain_rules.LedgerView(
            head=self.heads[ledger_id],
            party_key=owner[0],
            balances=self.balances[ledger_id],
            holds=self.holds[ledger_id],
            credit_lines=self.credit_lines[ledger_id],
            party_accepted=owner[1],
        )


def _load_state(ledgers: dict[int, Ledger], assets_by_id: dict[int, Asset]) -> _State:
    state = _State(ledgers=ledgers, assets_by_id=assets_by_id)
    for ledger_id, ledger in ledgers.items():
        state.heads[ledger_id] = head_of(ledger)
        state.balances[ledger_id] = {}
        state.credit_lines[ledger_id] = {}
        state.holds[ledger_id] = {}
    for (ledger_id, asset_id), (amount, credit_line) in _balance_rows(list(ledgers)).items():
        uai = AssetId(assets_by_id[asset_id].uai)
        state.balances[ledger_id][uai] = amount
        if credit_line:
            state.credit_lines[ledger_id][uai] = credit_line
    # Plain rows, not Hold objects: a peer bank's account carries a hold per payment in flight,
    # and building model objects for them (timestamps parsed) cost more than the query.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ledger_id, key, asset_id, amount FROM ledgers_hold WHERE ledger_id = ANY(%s)",
            [list(ledgers)],
        )
        for ledger_id, key, asset_id, amount in cursor.fetchall():
            state.holds[ledger_id][key] = ProtocolHold(
                key=key, asset=AssetId(assets_by_id[asset_id].uai), amount=amounts.MinorUnits(amount)
            )
    return state


def _apply(state: _State, ledger_id: int, appended: chain_rules.Appended) -> None:
    state.heads[ledger_id] = appended.head
    state.balances[ledger_id] = {**state.balances[ledger_id], **appended.balances}
    for asset in appended.balances:
        state.changed_balances.add((ledger_id, asset))
    if not appended.holds_released and not appended.holds_placed:
        return  # most entries; copying the ledger's holds would cost more than the rest here
    holds = dict(state.holds[ledger_id])
    for key in appended.holds_released:
        holds.pop(key, None)
    for hold in appended.holds_placed:
        holds[hold.key] = hold
    state.holds[ledger_id] = holds


_ENTRY_COLUMNS = ("id", *bulk.model_columns(LedgerEntry))
_ENTRY_BODY = _ENTRY_COLUMNS.index("body") - 1  # its place in a row of values (after id)


def _entry_values(ledger_id: int, appended: chain_rules.Appended, recorded_at: Any) -> tuple[Any, ...]:
    """A ``LedgerEntry`` row in the model's column order (after ``id``), as COPY writes it: the
    body is its canonical JSON, cut from the signed bytes rather than encoded a second time."""
    entry = appended.entry
    assert appended.validator_signature is not None
    return (
        ledger_id,
        entry.height,
        entry.prev.hex(),
        appended.hash.hex(),
        entry.kind,
        bulk.JsonText(encoded_body_json(appended.encoded)),
        entry.time,
        appended.party_signature.hex() if appended.party_signature else "",
        appended.validator_signature.hex(),
        recorded_at,
    )


def _write_entries(
    appended: Sequence[tuple[int, chain_rules.Appended]], recorded_at: Any
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """COPY the entries; their ids and rows (after ``id``), in order."""
    values = [_entry_values(ledger_id, item, recorded_at) for ledger_id, item in appended]
    return bulk.copy_rows(LedgerEntry, values, binary=True), values


def _entry_object(pk: int, row: tuple[Any, ...], item: chain_rules.Appended, alias: str) -> LedgerEntry:
    """The ``LedgerEntry`` of a row just written, its body a dict as a query loads it."""
    fields = [pk, *row]
    fields[_ENTRY_BODY + 1] = dict(item.entry.body)
    return bulk.loaded(LedgerEntry, _ENTRY_COLUMNS, fields, alias=alias)


def _save(state: _State, appended: Sequence[tuple[int, chain_rules.Appended]]) -> list[LedgerEntry]:
    """:func:`_write`, returning the entries written as model objects."""
    ids, values = _write(state, appended)
    alias = connection.alias
    return [
        _entry_object(pk, row, item, alias) for pk, row, (_, item) in zip(ids, values, appended, strict=True)
    ]


def _write(
    state: _State, appended: Sequence[tuple[int, chain_rules.Appended]]
) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Write entries, balances, heads, holds and supply in bulk: a handful of statements for any
    number of entries. The caller holds the ledger locks and is inside the transaction. Returns
    the entries' ids and rows (after ``id``), in order: a batch builds no object per entry."""
    # One timestamp for the whole write: a model default would call timezone.now() per row,
    # which costs more than the row's COPY.
    stamp = timezone.now()
    ids, values = _write_entries(appended, stamp)
    # Every entry's head commitment goes to consensus (ARCHITECTURE.md §6) in this same
    # transaction: an entry is never stored without its vote, nor voted without being stored.
    consensus_vote_in_transaction(
        payloads=[entry_commitment(item.entry.ledger, item.entry.height, item.hash) for _, item in appended],
        kind=ENTRY_OBSERVATION_KIND,
    )
    uai_to_id = {asset.uai: asset_id for asset_id, asset in state.assets_by_id.items()}
    balance_values = [
        (
            ledger_id,
            uai_to_id[asset],
            state.balances[ledger_id][asset],
            state.credit_lines[ledger_id].get(asset, 0),
        )
        for ledger_id, asset in sorted(state.changed_balances)
    ]
    touched = sorted({ledger_id for ledger_id, _ in appended})
    head_values = [
        (
            ledger_id,
            state.heads[ledger_id].next_height,
            state.heads[ledger_id].last_hash.hex(),
            state.heads[ledger_id].last_time,
        )
        for ledger_id in touched
    ]
    with connection.cursor() as cursor:
        if balance_values:
            # The balance projection moves in the same transaction as the entries. The CHECK
            # balance_within_credit_line backs the rules up: a bug cannot overdraw quietly.
            # PostgreSQL checks the proposed row before ON CONFLICT, so it carries the credit line.
            cursor.execute(
                "INSERT INTO ledgers_balance (ledger_id, asset_id, amount, credit_line) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
                "ON CONFLICT (ledger_id, asset_id) DO UPDATE SET amount = EXCLUDED.amount",
                [[v[column] for v in balance_values] for column in range(4)],
            )
        if head_values:
            cursor.execute(
                "UPDATE ledgers_ledger AS l SET next_height = v.next_height, last_hash = v.last_hash, "
                "last_time = v.last_time FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], "
                "%s::bigint[]) AS v(id, next_height, last_hash, last_time) WHERE l.id = v.id",
                [
                    [v[0] for v in head_values],
                    [v[1] for v in head_values],
                    [v[2] for v in head_values],
                    [v[3] for v in head_values],
                ],
            )
    released = [(ledger_id, key) for ledger_id, item in appended for key in item.holds_released]
    if released:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM ledgers_hold h USING unnest(%s::bigint[], %s::varchar[]) AS r(ledger_id, key) "
                "WHERE h.ledger_id = r.ledger_id AND h.key = r.key",
                [[ledger_id for ledger_id, _ in released], [key for _, key in released]],
            )
    placed = [
        Hold(ledger_id=ledger_id, key=hold.key, asset_id=uai_to_id[hold.asset], amount=hold.amount)
        for ledger_id, item in appended
        for hold in item.holds_placed
    ]
    if placed:
        Hold.objects.bulk_create(placed)
    for _, item in appended:
        for change in item.supply:
            Asset.objects.filter(uai=change.asset).update(
                issued=F("issued") + change.issued, redeemed=F("redeemed") + change.redeemed
            )
    for ledger_id in touched:
        ledger = state.ledgers[ledger_id]
        head = state.heads[ledger_id]
        ledger.next_height, ledger.last_hash, ledger.last_time = (
            head.next_height,
            head.last_hash.hex(),
            head.last_time,
        )
    _broadcast_after_commit()
    return ids, values


def _assets() -> tuple[dict[int, Asset], dict[AssetId, identifiers.Asset]]:
    # Asset.objects.raw: the same objects without compiling a query on every payment call.
    rows = list(Asset.objects.raw("SELECT * FROM ledgers_asset ORDER BY uai"))
    return {asset.pk: asset for asset in rows}, {AssetId(asset.uai): protocol_asset(asset) for asset in rows}


def minor_units(amount: object, *, decimals: int) -> amounts.MinorUnits:
    """A decimal string (``"10.50"``, from people and the API) or an int of minor units (code)."""
    if isinstance(amount, int) and not isinstance(amount, bool):
        return amounts.check_amount(amount)
    return amounts.parse_amount(amount, decimals=decimals)


def _ledger_ids(ubis: Iterable[str]) -> dict[str, int]:
    wanted = set(ubis)
    # One array parameter (= ANY): the ORM's IN prepares each value in Python, which for a batch
    # of a thousand payments costs more than the query.
    with connection.cursor() as cursor:
        cursor.execute("SELECT ubi, id FROM ledgers_ledger WHERE ubi = ANY(%s)", [list(wanted)])
        found: dict[str, int] = dict(cursor.fetchall())
    for ubi in sorted(wanted - set(found)):
        raise UnknownLedger(f"{ubi} is not a ledger kept by this bank")
    return found


# --- issue and redeem (deposits) ----------------------------------------------------------------


def _supply_entry(
    *,
    kind: str,
    ledger: Ledger,
    asset: Asset,
    amount: object,
    reference: str,
    actor: Any,
    party_signature: Signature | None,
    entry_time: Millis | None,
) -> LedgerEntry:
    ledger_id = _ledger_ids([ledger.ubi])[ledger.ubi]
    locked = _lock_ledgers([ledger_id])
    assets_by_id, assets = _assets()
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    minor = minor_units(amount, decimals=asset.decimals)
    state = _load_state(locked, assets_by_id)
    row = locked[ledger_id]
    now = now_millis()
    entry = chain_rules.next_entry(
        head=state.heads[ledger_id],
        kind=kind,
        body={"asset": asset.uai, "amount": amounts.amount_to_wire(minor), "reference": reference},
        time=entry_time if entry_time is not None else now,
    )
    signer = party_signer(row)
    if kind == "redeem" and party_signature is None and signer is not None:
        party_signature = sign_encoded(signer, encode_entry(entry))
    view = state.view(ledger_id)
    appended = chain_rules.check_append(
        head=view.head,
        entry=entry,
        party_key=view.party_key,
        party_signature=party_signature,
        balances=view.balances,
        holds=view.holds,
        credit_lines=view.credit_lines,
        outstanding={AssetId(asset.uai): int(asset.issued - asset.redeemed)},
        party_accepted=view.party_accepted,
        assets=assets,
        now=now,
    )
    appended = chain_rules.cosign(appended, validator_key=bank_key())
    _apply(state, ledger_id, appended)
    (saved,) = _save(state, [(ledger_id, appended)])
    audit_record(
        actor=actor,
        action=f"asset.{kind}",
        target=row,
        after={"asset": asset.uai, "amount": str(minor), "reference": reference, "height": saved.height},
    )
    return saved


@transaction.atomic
def asset_issue(*, ledger: Ledger, asset: Asset, amount: object, reference: str, actor: Any) -> LedgerEntry:
    """Credit ``ledger`` with a deposit turned into this bank's IOU (an ``issue`` entry)."""
    return _supply_entry(
        kind="issue",
        ledger=ledger,
        asset=asset,
        amount=amount,
        reference=reference,
        actor=actor,
        party_signature=None,
        entry_time=None,
    )


@transaction.atomic
def asset_redeem(
    *,
    ledger: Ledger,
    asset: Asset,
    amount: object,
    reference: str,
    actor: Any,
    party_signature: Signature | None = None,
    entry_time: Millis | None = None,
) -> LedgerEntry:
    """Pay a deposit out: a ``redeem`` entry, signed by the owner (or for it, if custodial)."""
    return _supply_entry(
        kind="redeem",
        ledger=ledger,
        asset=asset,
        amount=amount,
        reference=reference,
        actor=actor,
        party_signature=party_signature,
        entry_time=entry_time,
    )


# --- payments within this bank ------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRequest:
    """One payment as asked: ``amount`` is a decimal string (``"10.50"``) or, from code, an int of
    minor units. ``signed_debit`` is the sender's own signed debit entry (self custody)."""

    idempotency_key: str
    sender: str
    recipient: str
    asset: str
    amount: object
    signed_debit: SignedEntry | None = None


class PaymentResult:
    """One payment's outcome: its :class:`Transfer` (the debit and credit entries cached on it, so
    reading them costs no query) and whether the key was seen before.

    A payment settled in this call builds its objects when ``transfer`` is first read: callers of
    a batch mostly read none (the API loads the rows it answers with, their ledgers included, in
    one query by ``transfer_id``), and three model objects a payment cost more than the
    transfer's own COPY."""

    __slots__ = ("_position", "_settled", "_transfer", "replayed")

    def __init__(
        self,
        *,
        replayed: bool,
        transfer: Transfer | None = None,
        settled: _Settled | None = None,
        position: int = 0,
    ) -> None:
        if (transfer is None) == (settled is None):
            raise TypeError("give the transfer or the batch it was settled in, not both")
        self.replayed = replayed
        self._transfer = transfer
        self._settled = settled
        self._position = position

    @property
    def transfer(self) -> Transfer:
        if self._transfer is None:
            assert self._settled is not None
            self._transfer = self._settled.transfer(self._position)
        return self._transfer

    @property
    def transfer_id(self) -> int:
        if self._transfer is None:
            assert self._settled is not None
            return self._settled.transfer_ids[self._position]
        return int(self._transfer.pk)

    def __repr__(self) -> str:
        return f"PaymentResult(transfer_id={self.transfer_id}, replayed={self.replayed})"


_TRANSFER_COLUMNS = ("id", *bulk.model_columns(Transfer))
_DEBIT_FIELD, _CREDIT_FIELD = Transfer._meta.get_field("debit"), Transfer._meta.get_field("credit")


@dataclass
class _Settled:
    """The rows one batch wrote (transfers and their entries, in payment order), from which a
    result's objects are built on demand: each once, so replays of a key share its object."""

    transfer_ids: list[int]
    transfer_rows: list[tuple[Any, ...]]
    entry_ids: list[int]
    entry_rows: list[tuple[Any, ...]]
    appended: list[tuple[int, chain_rules.Appended]]
    alias: str
    built: dict[int, Transfer] = field(default_factory=dict)

    def transfer(self, position: int) -> Transfer:
        transfer = self.built.get(position)
        if transfer is None:
            transfer = bulk.loaded(
                Transfer,
                _TRANSFER_COLUMNS,
                (self.transfer_ids[position], *self.transfer_rows[position]),
                alias=self.alias,
            )
            # The entries are at hand: reading transfer.debit/credit costs no query.
            debit, credit = (
                _entry_object(
                    self.entry_ids[index], self.entry_rows[index], self.appended[index][1], self.alias
                )
                for index in (2 * position, 2 * position + 1)
            )
            _DEBIT_FIELD.set_cached_value(transfer, debit)
            _CREDIT_FIELD.set_cached_value(transfer, credit)
            self.built[position] = transfer
        return transfer


# The C encoder json.JSONEncoder(separators=(",", ":")).encode makes, made once: the encoder
# object makes a new one on every call, which cost more than the hash. Same arguments (ASCII
# escapes, no sorting, NaN allowed, its default for other types), so the text, and the stored
# fingerprints, are the same (a test compares them); no circular check, which only a value
# holding itself would need (a list of four request fields cannot).
_FINGERPRINT_JSON = make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ":", ",", False, False, True
)


def _fingerprint(request: PaymentRequest, minor: int) -> str:
    text = "".join(_FINGERPRINT_JSON([request.sender, request.recipient, request.asset, str(minor)], 0))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 200:
        raise BadBody("idempotency_key must be a non-empty string of at most 200 characters")
    return key


def _client_debit(
    signed: SignedEntry, *, head: chain_rules.ChainHead, expected_body: Mapping[str, Any]
) -> tuple[Millis, Signature]:
    entry = signed.entry
    if entry.ledger != head.ledger:
        raise BadEntry(f"the signed entry is for {entry.ledger}, not the sender {head.ledger}")
    if entry.height != head.next_height:
        raise WrongHeight(
            f"the next entry of {head.ledger} has height {head.next_height}, not {entry.height}"
        )
    if entry.prev != head.last_hash:
        raise WrongPrev(f"prev does not match the hash of entry {head.next_height - 1} of {head.ledger}")
    if entry.kind != "transfer" or dict(entry.body) != dict(expected_body):
        raise BadBody("the signed entry is not this payment's debit (kind transfer, side debit, same fields)")
    if signed.party_signature is None:
        raise BadEntry("the signed debit carries no party_signature")
    return entry.time, signed.party_signature


def _existing_transfers(keys: list[str]) -> dict[str, Transfer]:
    """The transfers already made under these idempotency keys (replays; usually none). Asked
    with one array parameter, then loaded whole only for the keys found."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT idempotency_key FROM ledgers_transfer WHERE idempotency_key = ANY(%s)", [keys])
        found = [key for (key,) in cursor.fetchall()]
    if not found:
        return {}
    return {
        transfer.idempotency_key: transfer for transfer in Transfer.objects.filter(idempotency_key__in=found)
    }


@transaction.atomic
def payment_intrabank(*, request: PaymentRequest, actor: Any = None) -> PaymentResult:
    """Move ``amount`` from sender to recipient within this bank: a debit and a credit entry,
    both or neither. A replay of the same idempotency key returns the first result."""
    return payment_intrabank_batch(requests=[request], actor=actor)[0]


@cyclic_gc_paused()
@transaction.atomic
def payment_intrabank_batch(*, requests: Sequence[PaymentRequest], actor: Any = None) -> list[PaymentResult]:
    """Many payments in one transaction and a fixed number of statements (the fast path).

    All or nothing: the first refused payment raises its :class:`LedgerError` (its index in the
    sentence) and nothing of the batch is saved. Replays inside or across batches return the
    first result and append nothing. Python's cyclic collector is paused meanwhile
    (:mod:`settlement.collector`: its walks cost a fifth of the batch's CPU and found nothing).
    """
    if not requests:
        return []
    keys = [_check_key(request.idempotency_key) for request in requests]
    ids = _ledger_ids([ubi for request in requests for ubi in (request.sender, request.recipient)])
    locked = _lock_ledgers(ids.values())
    assets_by_id, assets = _assets()
    asset_rows = {asset.uai: asset for asset in assets_by_id.values()}
    # After the locks: a concurrent first request with one of these keys has committed by now.
    existing = _existing_transfers(keys)
    state = _load_state(locked, assets_by_id)
    signer_key = bank_key()
    now = now_millis()
    appended: list[tuple[int, chain_rules.Appended]] = []
    planned: list[tuple[int, PaymentRequest, int, str]] = []  # (index, request, minor, fingerprint)
    in_batch: dict[str, str] = {}
    for index, request in enumerate(requests):
        try:
            asset = asset_rows.get(request.asset)
            if asset is None:
                raise UnknownAsset(f"{request.asset} is not an asset this node knows")
            minor = minor_units(request.amount, decimals=asset.decimals)
            fingerprint = _fingerprint(request, minor)
            previous = existing.get(request.idempotency_key)
            if previous is not None or request.idempotency_key in in_batch:
                first = previous.fingerprint if previous is not None else in_batch[request.idempotency_key]
                if first != fingerprint:
                    raise IdempotencyKeyReused(
                        f"idempotency key {request.idempotency_key!r} was used for a different payment"
                    )
                continue
            in_batch[request.idempotency_key] = fingerprint
            sender_id, recipient_id = ids[request.sender], ids[request.recipient]
            plan_time = now
            party_signature: Signature | None = None
            sender = locked[sender_id]
            signer = state.signer(sender_id)
            if request.signed_debit is not None:
                if signer is not None and sender.owner == LedgerOwner.COUNTERPARTY:
                    raise CustodyMismatch(f"{request.sender} is custodial: the node signs its entries")
                expected_body = {
                    "transfer": request.idempotency_key,
                    "asset": asset.uai,
                    "amount": amounts.amount_to_wire(amounts.MinorUnits(minor)),
                    "side": "debit",
                    "counterparty": request.recipient,
                }
                plan_time, party_signature = _client_debit(
                    request.signed_debit, head=state.heads[sender_id], expected_body=expected_body
                )
            elif signer is None:
                raise CustodyMismatch(
                    f"{request.sender}'s owner holds its own key: send the debit entry it signed"
                )
            plan = intrabank.plan_intrabank_payment(
                transfer_id=request.idempotency_key,
                sender_head=state.heads[sender_id],
                recipient_head=state.heads[recipient_id],
                asset=AssetId(asset.uai),
                amount=amounts.MinorUnits(minor),
                time=plan_time,
            )
            # Custodial: the node signs the debit as the sender, and the bank co-signs both
            # entries, once the rules passed both (check_intrabank_payment signs nothing before).
            debit, credit = intrabank.check_intrabank_payment(
                plan=plan,
                sender=state.view(sender_id),
                recipient=state.view(recipient_id),
                debit_signature=party_signature,
                debit_signer=signer if party_signature is None else None,
                validator_signer=signer_key,
                assets=assets,
                now=now,
            )
        except LedgerError as error:
            if len(requests) == 1:
                raise
            raise type(error)(f"payment {index}: {error}") from error
        _apply(state, sender_id, debit)
        _apply(state, recipient_id, credit)
        appended += [(sender_id, debit), (recipient_id, credit)]
        planned.append((index, request, minor, fingerprint))
    entry_ids, entry_rows = _write(state, appended) if appended else ([], [])
    stamp = timezone.now()
    transfer_rows = [
        (
            request.idempotency_key,
            fingerprint,
            asset_rows[request.asset].pk,
            minor,
            entry_ids[2 * position],
            entry_ids[2 * position + 1],
            stamp,
        )
        for position, (_, request, minor, fingerprint) in enumerate(planned)
    ]
    try:
        with transaction.atomic():
            transfer_ids = bulk.copy_rows(Transfer, transfer_rows, binary=True)
    except IntegrityError as error:
        # Another sender's payment took one of these keys meanwhile (keys are global). Undo all.
        raise IdempotencyKeyReused("an idempotency key of this request was used meanwhile; retry") from error
    settled = _Settled(
        transfer_ids=transfer_ids,
        transfer_rows=transfer_rows,
        entry_ids=entry_ids,
        entry_rows=entry_rows,
        appended=appended,
        alias=connection.alias,
    )
    created = {request.idempotency_key: position for position, (_, request, _, _) in enumerate(planned)}
    results: list[PaymentResult] = []
    answered: set[str] = set()
    for request in requests:
        key = request.idempotency_key
        position = created.get(key)
        if position is not None:
            results.append(PaymentResult(settled=settled, position=position, replayed=key in answered))
            answered.add(key)
        else:
            results.append(PaymentResult(transfer=existing[key], replayed=True))
    return results


# --- fraud proofs -------------------------------------------------------------------------------


@transaction.atomic
def fraud_proof_record(*, document: Mapping[str, Any], actor: Any) -> FraudProof:
    """Check a fraud proof (ours or one handed to us) and keep it with its verdict for export.
    A proof that does not prove anything is refused, not stored."""
    verdict = fraud.verify_fraud_proof(document)
    if not verdict.proven:
        raise BadFraudProof(verdict.reason)
    proof = FraudProof.objects.create(
        kind=verdict.kind,
        document=dict(document),
        proven=True,
        accused_key=verdict.accused_key,
        reason=verdict.reason,
    )
    audit_record(actor=actor, action="fraud_proof.record", target=proof, after={"kind": proof.kind})
    return proof


def equivocation_document(
    *, validator_key: PublicKey, first: SignedEntry, second: SignedEntry
) -> dict[str, Any]:
    return fraud.equivocation_proof(validator_key=validator_key, first=first, second=second)


# --- records: entries that move nothing (messages) -----------------------------------------------


@dataclass(frozen=True)
class RecordRequest:
    """One entry of ``kind`` with ``body`` to append to the ledger whose id is ``ledger_id``."""

    ledger_id: int
    kind: str
    body: Mapping[str, Any]


def ledger_records_append(*, records: Sequence[RecordRequest]) -> list[LedgerEntry]:
    """Append record entries (such as ``message``) in one write, co-signed by this bank.

    For kinds whose authority is an object the party already signed (``party_must_sign`` is
    false), so the bank signs alone; the rules still check each entry (kind, body, KYC, links).
    Locks every ledger touched at once, in lock order; call it inside the caller's transaction
    so the records commit with whatever they record. All or nothing: the first refusal raises.
    """
    if not records:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger_records_append runs inside the caller's transaction")
    locked = _lock_ledgers(record.ledger_id for record in records)
    for record in records:
        if record.ledger_id not in locked:
            raise UnknownLedger(f"ledger {record.ledger_id} is not kept by this bank")
    assets_by_id, assets = _assets()
    state = _load_state(locked, assets_by_id)
    now = now_millis()
    validator = bank_key()
    appended: list[tuple[int, chain_rules.Appended]] = []
    for record in records:
        view = state.view(record.ledger_id)
        entry = chain_rules.next_entry(head=view.head, kind=record.kind, body=record.body, time=now)
        checked = chain_rules.check_append(
            head=view.head,
            entry=entry,
            party_key=view.party_key,
            party_signature=None,
            balances=view.balances,
            holds=view.holds,
            credit_lines=view.credit_lines,
            party_accepted=view.party_accepted,
            assets=assets,
            now=now,
        )
        checked = chain_rules.cosign(checked, validator_key=validator)
        _apply(state, record.ledger_id, checked)
        appended.append((record.ledger_id, checked))
    return _save(state, appended)
