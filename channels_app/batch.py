"""Many channel updates at once: one database transaction and one signed request per batch.

The single-update path (``services.channel_pay`` → ``peer_proposal_deliver`` → the peer's
``channel_proposal_receive``) costs one signed HTTP request, three transactions and a dozen SQL
statements per update. Here the same rules run over a batch of updates across many channels:

- the proposer locks every channel of the batch in one query (in id order, so two batches never
  wait on each other in a circle), signs each next state, runs ``UpdateProposed`` through the
  pure rules, and writes the pending proposals in bulk and one log row for the batch, then commits;
- one signed request (``/node-api/channels/proposals/batch``) carries all the proposals;
- the receiver locks the channels the same way, checks each proposal with ``ProposalReceived``
  (version + 1, conservation, signatures, no loss to it), writes every both-signed state and
  channel head in bulk and one log row, **commits, and only then answers** with the countersignatures;
- the proposer takes them with ``CountersignatureReceived`` and writes the both-signed states
  in bulk.

Each update is checked on its own: a refused update (a wrong version, a bad signature, money
that does not add up, an unknown or closed channel) is answered with its code and sentence and
leaves its channel untouched, while the rest of the batch goes through. A batch that is not a
batch at all (not JSON, no list, too many items) is refused as a whole with 400.

Only plain updates travel in a batch: no sub-allocations before or after, not final. Locks,
releases, closing and virtual channels take the single path, where the sub-channels they touch
are locked and checked with them (they refuse here with ``not_batchable``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from channels_app import batch_wire, codec
from channels_app.models import Channel, ChannelBatchChange, ChannelPhase, ChannelState
from channels_app.protocol import eip712, events, proposals
from channels_app.protocol.channel_state import Allocation
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.errors import BadSignature, BadState, ChannelError, UnknownChannel, WrongPhase
from channels_app.protocol.state import Channel as ProtocolChannel
from channels_app.protocol.state import NodeChannels, PendingUpdate, SignedState
from channels_app.protocol.state_changes import CountersignatureReceived, ProposalReceived, UpdateProposed
from channels_app.protocol.transition import transition
from channels_app.protocol.types import (
    MAX_UINT64,
    MAX_UINT256,
    Address,
    ChannelId,
    Timestamp,
    Version,
    Wei,
    address,
)
from settlement import bulk, keystore
from settlement.collector import cyclic_gc_paused

logger = logging.getLogger("parsec.channels")

BATCH_PATH = "/node-api/channels/proposals/batch"
MAX_BATCH = 1000
"""Updates per batch: a bound on one request's body, locks and transaction."""

# What a plain update may produce; anything else belongs on the single path.
_PLAIN_EVENTS = (events.StateAccepted, events.SendCountersignature, events.SendProposal)
_CHANNEL_ID = re.compile(r"0x[0-9a-f]{64}")
_DIGITS = re.compile(r"\d{1,78}")


class NotBatchable(ChannelError):  # noqa: N818 - named like the protocol's refusals
    code = "not_batchable"


class PeerRefusal(ChannelError):  # noqa: N818 - named like the protocol's refusals
    """The peer node refused one update of a batch: its code and sentence, passed on as given."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Outcome:
    """What happened to one update of a batch, in the batch's order."""

    channel_id: str
    version: int | None = None
    countersignature: bytes | None = None
    error: ChannelError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_document(self) -> dict[str, Any]:
        if self.error is not None:
            return {"channel_id": self.channel_id, "version": self.version, "error": self.error.as_dict()}
        return {
            "channel_id": self.channel_id,
            "version": self.version,
            "countersignature": "0x" + (self.countersignature or b"").hex(),
        }


@dataclass(frozen=True)
class Proposal:
    """One update received in a batch; ``error`` is set when the item itself is malformed."""

    channel_id: str
    state: ProtocolState | None = None
    signature: bytes | None = None
    error: ChannelError | None = None


@dataclass(frozen=True)
class Payment:
    channel_id: str
    asset: str
    amount: int


@functools.lru_cache(maxsize=4)
def _signer(private_key: bytes) -> eip712.Signer:
    # Deriving the key pair costs as much as a signature; a batch signs hundreds of states.
    return eip712.Signer(private_key)


def node_signer() -> eip712.Signer:
    return _signer(keystore.node_ethereum_private_key())


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


# Decoded machines (the channel row's ``machine``: every part of the protocol's channel but the
# latest state and the pending proposal) by the SHA-256 of their JSON as PostgreSQL renders it.
# Decoding a machine (JSON, then the protocol's dataclasses) cost more than checking and
# countersigning its update. The key is the content itself: the same text always decodes to the
# same parts, whichever row, database or writer it came from, so a hit is exactly what decoding
# would give. A plain update does not change the machine at all (it writes the latest state as
# its history row and the pending proposal as bytes), so one decode serves a channel's updates
# until something else happens to it. Immutable values, shared by threads. Bounded: the oldest
# go first, which only costs decodes.
_decoded_machines: dict[bytes, codec.MachineParts] = {}
_DECODED_MACHINES_MAX = 10_000


def _remember(memory: dict[Any, Any], limit: int, key: Any, value: Any) -> None:
    """Keep ``value`` under ``key`` in one of this module's memories, bounded by ``limit``."""
    while len(memory) >= limit:
        # The oldest first (dicts keep insertion order); another thread may have taken it.
        try:
            memory.pop(next(iter(memory)), None)
        except (StopIteration, RuntimeError):
            break
    memory[key] = value


def _remember_machine(fingerprint: bytes, parts: codec.MachineParts) -> None:
    _remember(_decoded_machines, _DECODED_MACHINES_MAX, bytes(fingerprint), parts)


# Signed states and pending proposals by their stored bytes, for the same reason and on the
# same terms (the key is the content). Beyond the decoding, a hit keeps the state object
# whose EIP-712 digest is already known: the proposer checks the countersignature on the very
# state it proposed and stored as pending, and would otherwise hash it again.
_decoded_states: dict[bytes, SignedState | PendingUpdate] = {}
_DECODED_STATES_MAX = 20_000


def _remember_state(stored: bytes, decoded: SignedState | PendingUpdate) -> None:
    _remember(_decoded_states, _DECODED_STATES_MAX, stored, decoded)


# Whole machines by what they are built from: (the stored machine's fingerprint, the latest
# state's bytes, the pending proposal's bytes or b""). The same content always builds the same
# machine; a hit skips building the protocol's channel (a constructor of thirteen fields) at
# each of the three reads of an update (the proposer's two transactions, the receiver's one).
_MachineKey = tuple[bytes, bytes, bytes]
_built_machines: dict[_MachineKey, ProtocolChannel] = {}
_BUILT_MACHINES_MAX = 10_000


def _remember_built(key: _MachineKey, machine: ProtocolChannel) -> None:
    _remember(_built_machines, _BUILT_MACHINES_MAX, key, machine)


def _signed_from_bytes(stored: bytes) -> SignedState:
    known = _decoded_states.get(stored)
    if type(known) is SignedState:
        return known
    signed = codec.signed_state_from_bytes(stored)
    _remember_state(stored, signed)
    return signed


def _pending_from_bytes(stored: bytes | None) -> PendingUpdate | None:
    if stored is None:
        return None
    known = _decoded_states.get(stored)
    if type(known) is PendingUpdate:
        return known
    pending = codec.pending_from_bytes(stored)
    if pending is not None:
        _remember_state(stored, pending)
    return pending


@dataclass(frozen=True, slots=True)
class _Row:
    """What a batch reads of a locked channel row: plain values, no model object (building
    Django model instances for hundreds of rows per batch cost more than the query)."""

    pk: int
    channel_id: str
    peer_id: int | None
    our_address: str
    phase: str
    clock: int
    machine_fingerprint: bytes | None
    id_bytes: ChannelId = field(init=False, repr=False, compare=False)
    """The channel id as bytes, and ``us`` our address as the rules take it: converted once per
    row, not at each of the rules' several uses in an update."""
    us: Address = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_bytes", ChannelId(bytes.fromhex(self.channel_id[2:])))
        object.__setattr__(self, "us", address(self.our_address))


@dataclass
class _Locked:
    rows: dict[str, _Row]
    machines: dict[str, ProtocolChannel | None]
    """Each locked channel as stored (None: no machine yet, awaiting its opening)."""
    built_from: dict[str, _MachineKey] = field(default_factory=dict)
    """What each stored machine was built from (see ``_built_machines``)."""

    def get(self, channel_id: str) -> _Row | None:
        return self.rows.get(channel_id)

    def __getitem__(self, channel_id: str) -> _Row:
        return self.rows[channel_id]


@functools.cache
def _lock_sql() -> str:
    channel, state = Channel._meta, ChannelState._meta
    quote = connection.ops.quote_name

    def column(meta: Any, name: str) -> str:
        return quote(str(meta.get_field(name).column))

    # Identifiers from the models' metadata (quoted); the channel ids are one array parameter
    # (a list of placeholders had Django compile a 250-value IN for every batch), bound on the
    # server in binary, and the statement prepared once per connection (``bulk.fetch_bound``):
    # with the ids quoted into its text, PostgreSQL parsed, analysed and planned it anew at
    # every batch, and parsed the 250 quoted ids back.
    return (
        f"SELECT head.{column(channel, 'id')}, head.{column(channel, 'channel_id')}, "  # noqa: S608
        f"head.{column(channel, 'peer')}, head.{column(channel, 'our_address')}, "
        f"head.{column(channel, 'phase')}, head.{column(channel, 'clock')}, "
        f"head.{column(channel, 'machine_fingerprint')}, "
        f"head.{column(channel, 'pending')}, latest.{column(state, 'signed')} "
        f"FROM {quote(channel.db_table)} AS head "
        f"LEFT JOIN {quote(state.db_table)} AS latest "
        f"ON latest.{column(state, 'channel')} = head.{column(channel, 'id')} "
        f"AND latest.{column(state, 'version')} = head.{column(channel, 'version')} "
        f"WHERE head.{column(channel, 'channel_id')} = ANY(%b::varchar[]) "
        f"ORDER BY head.{column(channel, 'channel_id')} FOR UPDATE OF head"
    )


def _lock(channel_ids: Iterable[str]) -> _Locked:
    """Lock the batch's channels in one query, in id order (as ``services._apply`` does).

    The query returns each machine's fingerprint rather than the machine (the column a trigger
    sets whenever the machine is written, migration 0007: rendering and hashing the machine
    here cost more PostgreSQL time than the rest of the lock), with the channel's
    latest both-signed state (its history row) and pending proposal as bytes; only machines
    not already decoded in this process are fetched (one more query, the rows being locked)
    and decoded. The display columns (params, opening, balances) are not read at all.
    """
    ids = sorted(set(channel_ids))
    found = bulk.fetch_bound(_lock_sql(), [ids]) if ids else []
    rows: list[_Row] = []
    machines: dict[str, ProtocolChannel | None] = {}
    built_from: dict[str, _MachineKey] = {}
    parts: dict[str, codec.MachineParts] = {}
    missing: dict[int, _Row] = {}
    for pk, channel_id, peer_id, our_address, phase, clock, fingerprint, pending, latest in found:
        row = _Row(
            pk,
            channel_id,
            peer_id,
            our_address,
            phase,
            clock,
            None if fingerprint is None else bytes(fingerprint),
        )
        rows.append(row)
        if row.machine_fingerprint is None:
            machines[channel_id] = None
            continue
        if latest is None:
            raise RuntimeError(f"channel {channel_id}: its latest both-signed state is not stored")
        key = built_from[channel_id] = (
            row.machine_fingerprint,
            bytes(latest),
            b"" if pending is None else bytes(pending),
        )
        built = _built_machines.get(key)
        if built is not None:
            machines[channel_id] = built
            continue
        known = _decoded_machines.get(row.machine_fingerprint)
        if known is None:
            missing[row.pk] = row
        else:
            parts[channel_id] = known
    if missing:
        for pk, stored in Channel.objects.filter(pk__in=list(missing)).values_list("pk", "machine"):
            row = missing[pk]
            parts[row.channel_id] = decoded = codec.machine_parts_decode(stored or {})
            if row.machine_fingerprint is not None:
                _remember_machine(row.machine_fingerprint, decoded)
    for channel_id, machine_parts in parts.items():
        fingerprint, latest_bytes, pending_bytes = key = built_from[channel_id]
        machines[channel_id] = built = codec.machine_build(
            machine_parts, _signed_from_bytes(latest_bytes), _pending_from_bytes(pending_bytes or None)
        )
        _remember_built(key, built)
    return _Locked({row.channel_id: row for row in rows}, machines, built_from)


def _require_batchable(machine: ProtocolChannel, new: ProtocolState) -> None:
    if machine.latest.state.sub_allocations or new.sub_allocations:
        raise NotBatchable("an update that locks or releases funds for a sub-channel is sent on its own")
    if new.is_final:
        raise NotBatchable("closing a channel is sent on its own, not in a batch")


@dataclass
class _Writes:
    """The rows a batch writes, gathered while the rules run and written in bulk at the end."""

    actor: str
    domain: eip712.Domain
    locked: _Locked
    machines: dict[str, ProtocolChannel] = field(default_factory=dict)
    changed: dict[str, _Row] = field(default_factory=dict)
    log: dict[tuple[str, tuple[str, ...]], tuple[list[int], list[int], list[str]]] = field(
        default_factory=dict
    )
    """By kind of change and the events it produced: the channels' ids, versions and digests."""
    states: list[tuple[Any, ...]] = field(default_factory=list)
    now: Any = field(default_factory=timezone.now)
    latest_bytes: dict[str, bytes] = field(default_factory=dict)
    """The stored bytes of each channel's new latest state (its history row)."""
    pending_bytes: dict[str, bytes] = field(default_factory=dict)
    """The stored bytes of each channel's new pending proposal (what a batch request carries)."""
    memo: codec.Memo = field(default_factory=dict)
    """Encodings shared by this batch's rows (a machine that did change, a log row of another
    kind of change). Every encoded document is serialised at once and not changed."""

    def machine(self, row: _Row) -> ProtocolChannel:
        found = self.machines.get(row.channel_id)
        if found is not None:
            return found
        stored = self.locked.machines.get(row.channel_id)
        if stored is None or row.phase == ChannelPhase.PROPOSED:
            raise WrongPhase("the channel awaits the counterparty's signature on the opening state")
        self.machines[row.channel_id] = stored
        return stored

    def apply(self, row: _Row, change: object) -> tuple[events.Event, ...]:
        """Run one change through the rules; a refusal raises and records nothing."""
        view = NodeChannels(
            us=row.us,
            domain=self.domain,
            now=Timestamp(row.clock),
            channels={row.id_bytes: self.machine(row)},
        )
        result = transition(view, change)
        if any(not isinstance(event, _PLAIN_EVENTS) for event in result.events):
            # The pre-checks make this unreachable; if a rule ever asks for more, the single
            # path (which carries out every event) must handle the update, not this one.
            raise NotBatchable("this update needs more than a plain update; send it on its own")
        # Noted first: it is the last step that may refuse (nothing is recorded after a refusal).
        self._log(row, change, tuple(type(event).__name__ for event in result.events))
        machine = result.new_state.channels[row.id_bytes]
        self.machines[row.channel_id] = machine
        self.changed[row.channel_id] = row
        for event in result.events:
            if isinstance(event, events.StateAccepted):
                signed = event.signed
                stored = codec.signed_state_bytes(signed)
                _remember_state(stored, signed)
                self.latest_bytes[row.channel_id] = stored
                # In ChannelState's column order (bulk.model_columns), as the COPY writes them.
                self.states.append(
                    (
                        row.pk,
                        signed.state.version,
                        stored,
                        signed.state.is_final,
                        _hex(eip712.state_digest(self.domain, signed.state)),
                        self.now,
                    )
                )
        return result.events

    def _log(self, row: _Row, change: object, event_names: tuple[str, ...]) -> None:
        """Note ``change`` for this batch's log row of its kind (``ChannelBatchChange``)."""
        if isinstance(change, (UpdateProposed, ProposalReceived)):
            version, digest = change.state.version, _hex(eip712.state_digest(self.domain, change.state))
        elif isinstance(change, CountersignatureReceived):
            version, digest = change.version, None
        else:  # unreachable: a batch applies only these three
            raise NotBatchable(f"{type(change).__name__} is not a batch's change")
        entry = self.log.get((type(change).__name__, event_names))
        if entry is None:
            entry = self.log[(type(change).__name__, event_names)] = ([], [], [])
        channels, versions, digests = entry
        channels.append(row.pk)
        versions.append(int(version))
        if digest is not None:
            digests.append(digest)

    def write(self) -> None:
        """Write everything in a few statements; inside the caller's transaction."""
        from channels_app import services

        heads = []
        built_from: dict[str, tuple[bytes, bytes]] = {}
        for channel_id, row in self.changed.items():
            machine, stored = self.machines[channel_id], self.locked.machines[channel_id]
            pending = codec.pending_bytes(machine.pending)
            if pending is not None and machine.pending is not None:
                _remember_state(pending, machine.pending)
                self.pending_bytes[channel_id] = pending
            latest = self.latest_bytes.get(channel_id)
            if latest is None and channel_id in self.locked.built_from:
                latest = self.locked.built_from[channel_id][1]
            if latest is not None:
                built_from[channel_id] = (latest, pending or b"")
            head: dict[str, Any] = {"id": row.pk, "pending": pending}
            if stored is None or machine.latest is not stored.latest:
                # The latest state itself is its history row (self.states), written with it.
                head["version"] = machine.latest.state.version
                head["balances"] = services._balances(machine)
            if stored is None or not codec.machine_unchanged(stored, machine):
                head["machine"] = codec.machine_encode(machine, self.memo)
                head["phase"] = machine.phase.value
            heads.append(head)
        # One log row per kind of change (usually one per transaction); the states go by COPY,
        # not bulk_create: Django quotes every value of a multi-row INSERT in Python, which cost
        # more than the batch's signatures.
        for (change, event_names), (channels, versions, digests) in self.log.items():
            # Bound on the server and sent in binary (``bulk.execute_binary``): through the ORM,
            # Django prepared and psycopg quoted every element of the three arrays in Python,
            # which cost a node several times the COPY of the 250 log rows this row replaces.
            bulk.execute_binary(
                _batch_log_sql(),
                [change, channels, versions, digests, json.dumps(list(event_names)), self.actor, self.now],
            )
        # The rules accepted each version once (version + 1), so nothing can conflict here;
        # a conflict would mean a bug, and fails the transaction rather than being skipped.
        bulk.append_rows_binary(ChannelState, self.states)
        if heads:
            for channel_id, fingerprint in _heads_update(heads, self.now):
                machine = self.machines[channel_id]
                if fingerprint is not None:
                    _remember_machine(fingerprint, codec.machine_parts_of(machine))
                else:
                    fingerprint = self.locked[channel_id].machine_fingerprint
                if fingerprint is not None and channel_id in built_from:
                    _remember_built((fingerprint, *built_from[channel_id]), machine)
            changed = list(self.changed)
            transaction.on_commit(lambda: services.channels_announce(changed))


@functools.cache
def _batch_log_sql() -> str:
    meta = ChannelBatchChange._meta
    quote = connection.ops.quote_name
    fields = {field.name: field for field in meta.concrete_fields}
    columns = ", ".join(
        quote(str(fields[name].column))
        for name in ("change", "channels", "versions", "digests", "events", "actor", "at")
    )
    # Identifiers from the model's metadata (quoted); the values are parameters.
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        "VALUES (%s, %b::bigint[], %b::bigint[], %b::varchar[], %s::jsonb, %s, %s)"
    )


def _heads_update(heads: list[dict[str, Any]], now: Any) -> list[tuple[str, bytes | None]]:
    """The batch's channel heads in one ``UPDATE`` per shape of head (usually one); returns each
    head's channel id and, where the machine was written, its new fingerprint (see ``_lock``).

    A head names only what changed: always the pending proposal (bytes, or None); the version
    (the pointer to the latest history row) and the balances shown when a state was accepted;
    the machine and phase only when the rules changed something else (a plain update does
    not). The heads that leave the machine alone go in a statement that does not name it, so
    that the trigger which fingerprints a written machine (migration 0007) does not fire.

    A plain update's heads (``_plain_heads_sql``) travel as arrays, one per column, bound on the
    server in binary and unnested there, in a statement prepared once per connection: the
    pending proposals as bytes, not hex for ``decode()``; no JSON for PostgreSQL to parse but
    the balances shown. The heads that write a machine (rare: a phase or a dispute changed)
    travel as one JSON parameter (``_heads_sql``). Django's ``bulk_update`` builds a ``CASE
    WHEN`` per row and field, and a ``VALUES`` list of placeholders has every value quoted in
    Python; either cost more than all the rules and signatures of the batch.
    """
    updated: list[tuple[str, bytes | None]] = []
    shapes: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    full = []
    for head in heads:
        if "machine" in head:
            full.append(head)
        else:
            shapes.setdefault(("version" in head, head["pending"] is not None), []).append(head)
    for (accepted, pending), group in shapes.items():
        parameters: list[Any] = [now, [head["id"] for head in group]]
        if accepted:
            parameters.append([head["version"] for head in group])
            parameters.append([json.dumps(head["balances"], separators=(",", ":")) for head in group])
        if pending:
            parameters.append([head["pending"] for head in group])
        updated += [
            (channel_id, None)
            for (channel_id,) in bulk.fetch_bound(_plain_heads_sql(accepted, pending), parameters)
        ]
    if full:
        document = [
            {**head, "pending": None if head["pending"] is None else head["pending"].hex()} for head in full
        ]
        with connection.cursor() as cursor:
            cursor.execute(_heads_sql(), [now, json.dumps(document, separators=(",", ":"))])
            updated += [
                (channel_id, None if fingerprint is None else bytes(fingerprint))
                for channel_id, fingerprint in cursor.fetchall()
            ]
    if len(updated) != len(heads):
        raise RuntimeError(f"updated {len(updated)} channel heads of {len(heads)}")
    return updated


@functools.cache
def _plain_heads_sql(accepted: bool, pending: bool) -> str:
    """The heads of plain updates: ``pending`` always (the proposal's bytes, or NULL when no
    head of the group has one), and with ``accepted`` the version and balances shown. Every
    value is a parameter, bound in binary (``bulk.fetch_bound``)."""
    meta = Channel._meta
    table = connection.ops.quote_name(meta.db_table)
    column = {name: connection.ops.quote_name(_column(name)) for name in _HEAD_FIELDS}
    arrays = ["%b::bigint[]"]
    names = ["id"]
    sets = []
    if accepted:
        arrays += ["%b::bigint[]", "%b::text[]"]
        names += ["version", "balances"]
        sets += [f"{column['version']} = v.version", f"{column['balances']} = v.balances::jsonb"]
    if pending:
        arrays.append("%b::bytea[]")
        names.append("pending")
        sets.append(f"{column['pending']} = v.pending")
    else:
        sets.append(f"{column['pending']} = NULL")
    # Identifiers come from the model's metadata (quoted); the values are parameters.
    return (
        f"UPDATE {table} AS head SET {', '.join(sets)}, {column['updated_at']} = %b "  # noqa: S608
        f"FROM unnest({', '.join(arrays)}) AS v({', '.join(names)}) "
        f"WHERE head.{connection.ops.quote_name(meta.pk.column)} = v.id "
        f"RETURNING head.{connection.ops.quote_name(_column('channel_id'))}"
    )


@functools.cache
def _heads_sql() -> str:
    """The heads that write a machine (and whatever else changed), as one JSON parameter."""
    meta = Channel._meta
    table = connection.ops.quote_name(meta.db_table)
    column = {name: connection.ops.quote_name(_column(name)) for name in _HEAD_FIELDS}
    # Identifiers come from the model's metadata (quoted); the values are parameters.
    return (
        f"UPDATE {table} AS head SET "  # noqa: S608
        f"{column['machine']} = COALESCE(v.machine, head.{column['machine']}), "
        f"{column['phase']} = COALESCE(v.phase, head.{column['phase']}), "
        f"{column['version']} = COALESCE(v.version, head.{column['version']}), "
        f"{column['balances']} = COALESCE(v.balances, head.{column['balances']}), "
        f"{column['pending']} = decode(v.pending, 'hex'), "
        f"{column['updated_at']} = %s "
        "FROM jsonb_to_recordset(%s::jsonb) "
        "AS v(id bigint, machine jsonb, phase text, version bigint, balances jsonb, pending text) "
        f"WHERE head.{connection.ops.quote_name(meta.pk.column)} = v.id "
        f"RETURNING head.{connection.ops.quote_name(_column('channel_id'))}, "
        f"head.{column['machine_fingerprint']}"
    )


_HEAD_FIELDS = ("machine", "machine_fingerprint", "phase", "version", "balances", "pending", "updated_at")


def _column(name: str) -> str:
    field = Channel._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"Channel.{name} is not a column")
    return str(field.column)


# ---------------------------------------------------------------- receiving a batch


def _amount(value: Any, what: str) -> Wei:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadState(f"{what} is an integer amount in minor units, as a string of digits")
    text = str(value)
    if not _DIGITS.fullmatch(text) or int(text) > MAX_UINT256:
        raise BadState(f"{what} is an integer amount in minor units, as a string of digits")
    return Wei(int(text))


def _state_from_document(channel_id: bytes, document: Any) -> ProtocolState:
    """The proposed state, checked field by field (the batch's hot path skips DRF's serializers)."""
    if not isinstance(document, dict):
        raise BadState("the state is an object with version, allocations, sub_allocations and is_final")
    if "channel_id" in document and str(document["channel_id"]).lower() != _hex(channel_id):
        raise BadState("the state belongs to another channel")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_UINT64:
        raise BadState("the state's version is an integer from 0 to 2**64 - 1")
    allocations = document.get("allocations")
    if not isinstance(allocations, list) or not allocations:
        raise BadState("the state's allocations are a non-empty list")
    parsed = []
    for allocation in allocations:
        if not isinstance(allocation, dict):
            raise BadState("each allocation is an object with asset, balance_a and balance_b")
        try:
            asset = address(str(allocation.get("asset")))
        except ValueError:
            raise BadState("an allocation's asset is a 0x address of 40 hex digits") from None
        parsed.append(
            Allocation(
                asset,
                _amount(allocation.get("balance_a"), "balance_a"),
                _amount(allocation.get("balance_b"), "balance_b"),
            )
        )
    if document.get("sub_allocations"):
        raise NotBatchable("an update that locks funds for a sub-channel is sent on its own")
    is_final = document.get("is_final", False)
    if not isinstance(is_final, bool):
        raise BadState("is_final is true or false")
    return ProtocolState(ChannelId(channel_id), Version(version), tuple(parsed), (), is_final)


def _signature_from_document(value: Any) -> bytes:
    text = str(value or "").lower().removeprefix("0x")
    if len(text) != 130:
        raise BadSignature("a channel signature is 65 bytes as 0x + 130 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadSignature("the signature is not hex") from None


def proposal_from_document(document: Any) -> Proposal:
    """One item of a batch request; a malformed item becomes a refusal of that item alone."""
    channel_id = str(document.get("channel_id", "")).lower() if isinstance(document, dict) else ""
    try:
        if not isinstance(document, dict):
            raise BadState("each proposal is an object with channel_id, state and signature")
        if not _CHANNEL_ID.fullmatch(channel_id):
            raise BadState("channel_id is 0x and 64 hex digits")
        state = _state_from_document(bytes.fromhex(channel_id[2:]), document.get("state"))
        return Proposal(channel_id, state, _signature_from_document(document.get("signature")))
    except ChannelError as error:
        return Proposal(channel_id, error=error)


def proposal_from_bytes(item: bytes) -> Proposal:
    """One proposal of a binary batch (``batch_wire``): the state and the proposer's signature
    in the stored layout (``codec.pending_bytes``). A proposal that cannot be read becomes a
    refusal of that proposal alone, as a malformed item of a JSON batch does."""
    channel_id = _hex(batch_wire.channel_id_of(item))
    try:
        pending = codec.pending_update_from_bytes(item)
    except ChannelError as error:  # a field out of range (the state's own checks)
        return Proposal(channel_id, error=error)
    except ValueError as error:
        return Proposal(channel_id, error=BadState(f"the proposal is malformed: {error}"))
    return Proposal(channel_id, pending.state, pending.signature)


def outcomes_as_bytes(outcomes: Sequence[Outcome]) -> bytes:
    """A binary batch's answer (``batch_wire``): one result per proposal, in order."""
    results = []
    for outcome in outcomes:
        channel_id = (
            bytes.fromhex(outcome.channel_id[2:]) if _CHANNEL_ID.fullmatch(outcome.channel_id) else bytes(32)
        )
        version = batch_wire.NO_VERSION if outcome.version is None else outcome.version
        if outcome.error is not None:
            results.append(
                batch_wire.Result(channel_id, version, code=outcome.error.code, message=outcome.error.message)
            )
        else:
            results.append(batch_wire.Result(channel_id, version, outcome.countersignature))
    return batch_wire.answer_bytes(results)


# The receiving end runs with Python's cyclic collector paused (``settlement.collector``, as the
# ledgers' and messages' batches do): a batch of 250 allocates tens of thousands of short-lived
# objects (states, machines, events, rows) that reference counting frees, and the collector's
# walks, young and full (every object the process holds, Django's included), took about a
# seventh of node B's CPU in a perf profile of the two-node bench, collecting nothing (measured:
# 374 -> 318 µs per update). Not the proposing end (``peer_payments``): its pipelines' pauses
# overlap without a gap (each spans the peer's answer too), so the collector fell back to its
# once-a-second full walk of the proposer's larger heap, which cost node A more (448 -> 656 µs)
# than the young walks saved.
@cyclic_gc_paused()
def proposals_receive(*, peer: Any, batch: Sequence[Proposal], actor: str) -> list[Outcome]:
    """A peer node proposes many updates: check each, countersign, persist all, then answer.

    Returns one :class:`Outcome` per proposal, in order, **after** the transaction that stores
    the accepted states has committed: a countersignature never leaves before its state is in
    PostgreSQL.
    """
    if len(batch) > MAX_BATCH:
        raise BadState(f"a batch holds at most {MAX_BATCH} updates")
    signer = node_signer()
    domain = _domain()
    outcomes: list[Outcome] = []
    with transaction.atomic():
        rows = _lock(item.channel_id for item in batch if item.error is None)
        writes = _Writes(actor=actor, domain=domain, locked=rows)
        for item in batch:
            version = item.state.version if item.state is not None else None
            try:
                if item.error is not None:
                    raise item.error
                if item.state is None or item.signature is None:
                    raise BadState("each proposal carries a state and a signature")
                row = rows.get(item.channel_id)
                if row is None:
                    raise UnknownChannel(f"no channel {item.channel_id} is known here")
                if row.peer_id != peer.pk:
                    raise BadState("this channel is not with the requesting node")
                _require_batchable(writes.machine(row), item.state)
                countersignature = signer.sign_state(writes.domain, item.state)
                writes.apply(
                    row,
                    ProposalReceived(
                        row.id_bytes, item.state, eip712.Signature(item.signature), countersignature
                    ),
                )
            except ChannelError as error:
                outcomes.append(Outcome(item.channel_id, version, error=error))
                continue
            outcomes.append(Outcome(item.channel_id, version, countersignature=countersignature))
        writes.write()
    return outcomes


def _domain() -> eip712.Domain:
    from channels_app import services

    return services.domain()


# ---------------------------------------------------------------- sending a batch


def peer_payments(
    *, peer: Any, payments: Sequence[Payment], actor: str, timeout: float = 30.0
) -> list[Outcome]:
    """Pay on many channels with ``peer`` at once: one update per channel per batch.

    Our signed proposals are committed as pending before they leave (as on the single path);
    the peer answers each after committing it; the countersigned states are then committed
    here. An update the peer refuses stays pending, as a refused single proposal does. An
    unreachable peer raises ``PeerUnreachable`` with every proposal of the batch pending.
    """
    from settlement.transport import peer_request

    if len(payments) > MAX_BATCH:
        raise BadState(f"a batch holds at most {MAX_BATCH} updates")
    if len({payment.channel_id for payment in payments}) != len(payments):
        raise BadState("one update per channel per batch: the next one needs this one countersigned")
    signer = node_signer()
    domain = _domain()
    outcomes: dict[int, Outcome] = {}
    sent: list[tuple[int, _Row, ProtocolState]] = []
    with transaction.atomic():
        rows = _lock(payment.channel_id.lower() for payment in payments)
        writes = _Writes(actor=actor, domain=domain, locked=rows)
        for index, payment in enumerate(payments):
            channel_id = payment.channel_id.lower()
            try:
                row = rows.get(channel_id)
                if row is None:
                    raise UnknownChannel(f"no channel {channel_id} is known here")
                if row.peer_id != peer.pk:
                    raise WrongPhase(f"channel {channel_id} is not with {peer.name}")
                machine = writes.machine(row)
                new = proposals.payment(machine, address(payment.asset), payment.amount)
                _require_batchable(machine, new)
                signature = signer.sign_state(domain, new)
                writes.apply(row, UpdateProposed(row.id_bytes, new, signature))
            except ChannelError as error:
                outcomes[index] = Outcome(channel_id, error=error)
                continue
            sent.append((index, row, new))
        writes.write()
    if sent:
        # Each proposal travels as it is stored in ``pending`` (the state and our signature).
        body = batch_wire.request_bytes([writes.pending_bytes[row.channel_id] for _, row, _ in sent])
        answer = peer_request(
            peer,
            "POST",
            BATCH_PATH,
            body=body,
            content_type=batch_wire.BATCH_CONTENT_TYPE,
            idempotency_key=f"proposal-batch-{uuid.uuid4()}",
            timeout=timeout,
        )
        if not answer.ok:
            raise BadState(f"{peer.name} refused the batch: {answer.body[:200]!r}")
        try:
            results = batch_wire.answer_results(answer.body)
        except ValueError as error:
            raise BadState(f"{peer.name} answered the batch with something else: {error}") from None
        if len(results) != len(sent):
            raise BadState(f"{peer.name} answered the batch with {len(results)} results for {len(sent)}")
        with transaction.atomic():
            rows = _lock(row.channel_id for _, row, _ in sent)
            writes = _Writes(actor=f"peer:{peer.name}", domain=domain, locked=rows, memo=writes.memo)
            for (index, row, new), result in zip(sent, results, strict=True):
                outcomes[index] = _countersignature_take(writes, rows[row.channel_id], new, result)
            writes.write()
    return [outcomes[index] for index in range(len(payments))]


def _countersignature_take(
    writes: _Writes, row: _Row, new: ProtocolState, result: batch_wire.Result
) -> Outcome:
    try:
        if result.countersignature is None:
            # A refusal applies nothing, whatever it names: one of a proposal the peer could not
            # read names no channel or version (``batch_wire.NO_VERSION``), and its code says why.
            raise PeerRefusal(result.code or "refused", result.message[:300])
        if result.channel_id != row.id_bytes or result.version != new.version:
            raise BadState("the peer's answer does not match the proposal sent in its place")
        countersignature = result.countersignature
        writes.apply(
            row, CountersignatureReceived(row.id_bytes, new.version, eip712.Signature(countersignature))
        )
    except ChannelError as refused:
        return Outcome(row.channel_id, new.version, error=refused)
    return Outcome(row.channel_id, new.version, countersignature=countersignature)
