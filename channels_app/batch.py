"""Many channel updates at once: one database transaction and one signed request per batch.

The single-update path (``services.channel_pay`` → ``peer_proposal_deliver`` → the peer's
``channel_proposal_receive``) costs one signed HTTP request, three transactions and a dozen SQL
statements per update. Here the same rules run over a batch of updates across many channels:

- the proposer locks every channel of the batch in one query (in id order, so two batches never
  wait on each other in a circle), signs each next state, runs ``UpdateProposed`` through the
  pure rules, and writes the pending proposals and the log rows in bulk, then commits;
- one signed request (``/node-api/channels/proposals/batch``) carries all the proposals;
- the receiver locks the channels the same way, checks each proposal with ``ProposalReceived``
  (version + 1, conservation, signatures, no loss to it), writes every both-signed state, log
  row and channel head in bulk, **commits, and only then answers** with the countersignatures;
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
import queue
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from channels_app import codec
from channels_app.models import Channel, ChannelPhase, ChannelState, ChannelStateChange, signatures_hex
from channels_app.protocol import eip712, events, proposals
from channels_app.protocol.channel_state import Allocation
from channels_app.protocol.channel_state import ChannelState as ProtocolState
from channels_app.protocol.errors import BadSignature, BadState, ChannelError, UnknownChannel, WrongPhase
from channels_app.protocol.state import Channel as ProtocolChannel
from channels_app.protocol.state import NodeChannels
from channels_app.protocol.state_changes import CountersignatureReceived, ProposalReceived, UpdateProposed
from channels_app.protocol.transition import transition
from channels_app.protocol.types import MAX_UINT64, MAX_UINT256, ChannelId, Timestamp, Version, Wei, address
from settlement import keystore

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


def _lock(channel_ids: Iterable[str]) -> dict[str, Channel]:
    """Lock the batch's channels in one query, in id order (as ``services._apply`` does)."""
    ids = sorted(set(channel_ids))
    rows = Channel.objects.select_for_update().filter(channel_id__in=ids).order_by("channel_id")
    return {row.channel_id: row for row in rows}


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
    machines: dict[str, ProtocolChannel] = field(default_factory=dict)
    changed: dict[str, Channel] = field(default_factory=dict)
    log: list[ChannelStateChange] = field(default_factory=list)
    states: list[ChannelState] = field(default_factory=list)

    def machine(self, row: Channel) -> ProtocolChannel:
        if row.machine is None or row.phase == ChannelPhase.PROPOSED:
            raise WrongPhase("the channel awaits the counterparty's signature on the opening state")
        found = self.machines.get(row.channel_id)
        if found is None:
            found = self.machines[row.channel_id] = row.protocol_channel
        return found

    def apply(self, row: Channel, change: object) -> tuple[events.Event, ...]:
        """Run one change through the rules; a refusal raises and records nothing."""
        view = NodeChannels(
            us=address(row.our_address),
            domain=self.domain,
            now=Timestamp(row.clock),
            channels={row.id_bytes: self.machine(row)},
        )
        result = transition(view, change)
        if any(not isinstance(event, _PLAIN_EVENTS) for event in result.events):
            # The pre-checks make this unreachable; if a rule ever asks for more, the single
            # path (which carries out every event) must handle the update, not this one.
            raise NotBatchable("this update needs more than a plain update; send it on its own")
        machine = result.new_state.channels[row.id_bytes]
        self.machines[row.channel_id] = machine
        self.changed[row.channel_id] = row
        self.log.append(
            ChannelStateChange(
                channel=row,
                change=type(change).__name__,
                payload=codec.encode(change),
                events=[type(event).__name__ for event in result.events],
                actor=self.actor,
            )
        )
        for event in result.events:
            if isinstance(event, events.StateAccepted):
                signed = event.signed
                self.states.append(
                    ChannelState(
                        channel=row,
                        version=signed.state.version,
                        state=codec.encode(signed.state),
                        signatures=signatures_hex(signed.signatures),
                        is_final=signed.state.is_final,
                        digest=_hex(eip712.state_digest(self.domain, signed.state)),
                    )
                )
        return result.events

    def write(self) -> None:
        """Write everything in a few statements; inside the caller's transaction."""
        from channels_app import services

        now = timezone.now()
        for channel_id, row in self.changed.items():
            machine = self.machines[channel_id]
            row.machine = codec.encode(machine)
            row.phase = machine.phase.value
            row.version = machine.latest.state.version
            row.balances = services._balances(machine)
            row.updated_at = now
        if self.log:
            ChannelStateChange.objects.bulk_create(self.log)
        if self.states:
            # The rules accepted each version once (version + 1), so nothing can conflict here;
            # a conflict would mean a bug, and must fail the transaction rather than be skipped.
            ChannelState.objects.bulk_create(self.states)
        if self.changed:
            _heads_update(list(self.changed.values()))
            changed = list(self.changed)
            transaction.on_commit(lambda: _announce(changed))


_announcements: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
_announcer_lock = threading.Lock()
_announcer: threading.Thread | None = None


def _announce(channel_ids: list[str]) -> None:
    """Tell the pages a batch's channels changed, from a background thread (as
    ``services._announce`` does for one channel), all in one event loop: a ``group_send``
    through ``async_to_sync`` from a fresh loop each time cost milliseconds per channel, more
    than the update itself."""
    global _announcer
    _announcements.put(channel_ids)
    with _announcer_lock:
        if _announcer is None or not _announcer.is_alive():
            _announcer = threading.Thread(target=_announce_forever, name="batch-announcer", daemon=True)
            _announcer.start()


def _announce_forever() -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    while True:
        changed = set(_announcements.get())
        while not _announcements.empty():
            changed.update(_announcements.get_nowait())
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(_send_changed)(layer, sorted(changed))
        except Exception:  # best effort, as settlement.health.broadcast: pages re-read anyway
            logger.warning("could not tell the pages about %d changed channels", len(changed))


async def _send_changed(layer: Any, channel_ids: list[str]) -> None:
    from channels_app import services

    await layer.group_send(services.CHANNELS_GROUP, {"type": "channels.changed"})
    for channel_id in channel_ids:
        await layer.group_send(services.channel_group(channel_id), {"type": "channel.changed"})


def _heads_update(rows: Sequence[Channel]) -> None:
    """One ``UPDATE … FROM (VALUES …)`` for every channel head of the batch.

    Django's ``bulk_update`` builds a ``CASE WHEN`` expression per row and field and resolves
    each through the ORM: half a second for a hundred channels, more than all the rules and
    signatures of the batch. The columns are the ones ``services._apply`` saves.
    """
    meta = Channel._meta
    table = connection.ops.quote_name(meta.db_table)
    column = {name: connection.ops.quote_name(_column(name)) for name in _HEAD_FIELDS}
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    parameters: list[Any] = []
    for row in rows:
        parameters += [
            row.pk,
            json.dumps(row.machine),
            row.phase,
            row.version,
            json.dumps(row.balances),
            row.updated_at,
        ]
    # Identifiers come from the model's metadata (quoted), every value travels as a parameter.
    sql = (
        f"UPDATE {table} AS head SET "  # noqa: S608
        f"{column['machine']} = v.machine::jsonb, {column['phase']} = v.phase, "
        f"{column['version']} = v.version::bigint, {column['balances']} = v.balances::jsonb, "
        f"{column['updated_at']} = v.updated_at::timestamptz "
        f"FROM (VALUES {placeholders}) AS v(id, machine, phase, version, balances, updated_at) "
        f"WHERE head.{connection.ops.quote_name(meta.pk.column)} = v.id::bigint"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        if cursor.rowcount != len(rows):
            raise RuntimeError(f"updated {cursor.rowcount} channel heads of {len(rows)}")


_HEAD_FIELDS = ("machine", "phase", "version", "balances", "updated_at")


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


def proposals_receive(*, peer: Any, batch: Sequence[Proposal], actor: str) -> list[Outcome]:
    """A peer node proposes many updates: check each, countersign, persist all, then answer.

    Returns one :class:`Outcome` per proposal, in order, **after** the transaction that stores
    the accepted states has committed: a countersignature never leaves before its state is in
    PostgreSQL.
    """
    if len(batch) > MAX_BATCH:
        raise BadState(f"a batch holds at most {MAX_BATCH} updates")
    signer = node_signer()
    writes = _Writes(actor=actor, domain=_domain())
    outcomes: list[Outcome] = []
    with transaction.atomic():
        rows = _lock(item.channel_id for item in batch if item.error is None)
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
    from channels_app.api import state_output
    from settlement.transport import peer_request

    if len(payments) > MAX_BATCH:
        raise BadState(f"a batch holds at most {MAX_BATCH} updates")
    if len({payment.channel_id for payment in payments}) != len(payments):
        raise BadState("one update per channel per batch: the next one needs this one countersigned")
    signer = node_signer()
    domain = _domain()
    outcomes: dict[int, Outcome] = {}
    sent: list[tuple[int, Channel, ProtocolState]] = []
    documents: list[dict[str, Any]] = []
    writes = _Writes(actor=actor, domain=domain)
    with transaction.atomic():
        rows = _lock(payment.channel_id.lower() for payment in payments)
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
            documents.append(
                {"channel_id": channel_id, "state": state_output(new), "signature": _hex(signature)}
            )
        writes.write()
    if sent:
        answer = peer_request(
            peer,
            "POST",
            BATCH_PATH,
            json_body={"proposals": documents},
            idempotency_key=f"proposal-batch-{uuid.uuid4()}",
            timeout=timeout,
        )
        if not answer.ok:
            raise BadState(f"{peer.name} refused the batch: {answer.body[:200]!r}")
        results = answer.json().get("results")
        if not isinstance(results, list) or len(results) != len(sent):
            raise BadState(
                f"{peer.name} answered the batch with {len(results or [])} results for {len(sent)}"
            )
        writes = _Writes(actor=f"peer:{peer.name}", domain=domain)
        with transaction.atomic():
            rows = _lock(row.channel_id for _, row, _ in sent)
            for (index, row, new), result in zip(sent, results, strict=True):
                outcomes[index] = _countersignature_take(writes, rows[row.channel_id], new, result)
            writes.write()
    return [outcomes[index] for index in range(len(payments))]


def _countersignature_take(writes: _Writes, row: Channel, new: ProtocolState, result: Any) -> Outcome:
    try:
        if not isinstance(result, dict) or result.get("channel_id") != row.channel_id:
            raise BadState("the peer's answer does not match the proposal sent in its place")
        error = result.get("error")
        if error is not None:
            raise PeerRefusal(str(error.get("code", "refused")), str(error.get("message", ""))[:300])
        countersignature = _signature_from_document(result.get("countersignature"))
        writes.apply(
            row, CountersignatureReceived(row.id_bytes, new.version, eip712.Signature(countersignature))
        )
    except ChannelError as refused:
        return Outcome(row.channel_id, new.version, error=refused)
    return Outcome(row.channel_id, new.version, countersignature=countersignature)
