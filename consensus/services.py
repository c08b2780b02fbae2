"""The consensus shell: runs this node's validator (``consensus.protocol.Parsec``) in the worker.

Lock order and why: every change of the validator's state happens inside one transaction that
holds ``ConsensusState`` (pk 1) ``FOR UPDATE``: the web process never touches the protocol, it
only verifies a gossip message's transport and message signatures and enqueues it; the
worker's tasks take the row lock, so two worker processes (or a worker and a management
command) can never both extend our chain of events, which peers would report as a fork.

In each locked step the shell reuses the instance cached in this process when the stored
version is the one it wrote last (or restores it: the last full snapshot, then the write-ahead
log after it, replayed), runs its protocol calls, drains ``poll()`` into ``Block`` rows (bulk
inserts), stores new accusations, and appends the calls' inputs to the log (``ConsensusStep``)
with ``version + 1``, all in one transaction. Every ``CONSENSUS_SNAPSHOT_EVERY_STEPS`` steps (or
``CONSENSUS_SNAPSHOT_LOG_BYTES`` of log) the step writes a full snapshot instead and the log
before it is deleted (compaction). What the step produced (a gossip request or response) is sent
after commit: what signed it is durable before any peer can see it (Parsec.snapshot's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import queue
import random
import re
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import redis
import redis.asyncio
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from consensus.models import (
    Accusation,
    Block,
    BlockObservation,
    ConsensusState,
    ConsensusStep,
    ObservationStatus,
    PendingObservation,
)
from consensus.protocol import Block as ProtocolBlock
from consensus.protocol import (
    DuplicateVote,
    NotAValidator,
    Parsec,
    Payload,
    Request,
    Response,
    SnapshotError,
    ValidatorId,
    WrongEpoch,
    message_from_wire,
)
from consensus.protocol.malice import MESSAGE_KIND, message_digest
from consensus.protocol.parsec import MAX_EVENTS_PER_MESSAGE
from consensus.protocol.types import ConsensusError, Observation, observation_bytes, observation_from_bytes
from settlement import bulk, health
from settlement.keystore import node_signer, node_signer_for
from settlement.models import NodeKey, Peer, PeerKey
from settlement.protocol.encoding import sha256
from settlement.protocol.merkle import MerkleLog, leaf_hash
from settlement.protocol.signing import SigningKey, is_valid

logger = logging.getLogger("parsec.consensus")
# Timings of each gossip hop and step, one JSON line each (CONSENSUS_TRACE=1; bench/consensus_nodes
# --trace sums them up): what the per-hop breakdown in docs/consensus.md was measured with.
trace_logger = logging.getLogger("parsec.consensus.trace")


def trace_hop(request: Any, *, arrived: float, started: float, status: int) -> None:
    """The receiving view's part of a hop: arrived (ASGI), checks started (pool thread), done."""
    if trace_logger.isEnabledFor(logging.INFO):
        peer = getattr(request, "peer", None)
        _trace(
            "recv",
            sender=peer.name if peer else None,
            arrived=arrived,
            started=started,
            status=status,
            bytes=len(request.body),
        )


def trace_inline_answer(*, request_signature: str, handed_over: float, body: bytes) -> None:
    """A response sent back in the HTTP answer: when the loop handed it over, when it left."""
    if trace_logger.isEnabledFor(logging.INFO):
        signature = json.loads(body)["message"]["signature"]
        _trace("replied", id=signature[:16], answering=request_signature[:16], queued=handed_over)


def _trace(what: str, **fields: Any) -> None:
    if trace_logger.isEnabledFor(logging.INFO):
        trace_logger.info("%s", json.dumps({"t": time.time(), "what": what, **fields}, separators=(",", ":")))


STATE_PK = 1
CONSENSUS_GROUP = "consensus"
BLOCKS_GROUP = "blocks"
GOSSIP_PATH = "/node-api/consensus/gossip"
HEADER_FIELDS = {"kind", "sender_epoch", "sender", "recipient", "epoch", "known", "wants", "events"}
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,39}$")
# The protocol refuses observations over 64 KiB; the kind and separator fit in the rest.
MAX_PAYLOAD_BYTES = 60_000
MEMBERSHIP_KINDS = {b"a": "add-validator", b"r": "remove-validator"}
# How many queued observations one worker step votes for (one event carries them all).
VOTES_PER_STEP = 20_000


class ConsensusShellError(Exception):
    """A refusal of the consensus shell, with a machine-readable code and a sentence."""

    code = "consensus_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status


# ----------------------------------------------------------------- observations and payloads


def observation_for(*, kind: str, payload: bytes) -> Observation:
    """An application observation: the kind, a newline, then the payload (all Merkle-committed)."""
    if not KIND_PATTERN.match(kind):
        raise ConsensusShellError(
            "kind is 1 to 40 characters: a lower-case letter, then letters, digits, '.', '_' or '-'",
            code="bad_kind",
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ConsensusShellError(
            f"a payload is at most {MAX_PAYLOAD_BYTES} bytes", code="payload_too_large", http_status=413
        )
    return Payload(kind.encode() + b"\n" + payload)


def observation_parts(data: bytes) -> tuple[str, bytes]:
    """(kind, payload) of stored observation bytes (membership changes name the validator key)."""
    tag, value = data[:1], data[1:]
    if tag in MEMBERSHIP_KINDS:
        return MEMBERSHIP_KINDS[tag], value
    kind, _, payload = value.partition(b"\n")
    return kind.decode(errors="replace"), payload


def consensus_vote(*, payload: bytes, kind: str) -> PendingObservation:
    """Submit an observation for agreement; the worker votes for it at its next step.

    Call it after your own transaction committed (the observation must describe something that
    happened). Idempotent: the same kind and payload again returns the first submission.
    """
    data = observation_bytes(observation_for(kind=kind, payload=payload))
    digest = sha256(data)
    with transaction.atomic():
        pending, created = PendingObservation.objects.get_or_create(
            digest=digest, defaults={"data": data, "kind": kind}
        )
        if created:
            transaction.on_commit(_schedule_votes)
    return pending


def consensus_vote_many(*, payloads: list[bytes], kind: str) -> int:
    """Submit many observations at once (one bulk insert); returns how many were new."""
    rows: dict[bytes, PendingObservation] = {}
    for payload in payloads:
        data = observation_bytes(observation_for(kind=kind, payload=payload))
        digest = sha256(data)
        rows[digest] = PendingObservation(digest=digest, data=data, kind=kind)
    with transaction.atomic():
        known = {
            bytes(item)
            for start in range(0, len(rows), 5_000)
            for item in PendingObservation.objects.filter(
                digest__in=list(rows)[start : start + 5_000]
            ).values_list("digest", flat=True)
        }
        new = [row for digest, row in rows.items() if digest not in known]
        PendingObservation.objects.bulk_create(new, ignore_conflicts=True, batch_size=5_000)
        transaction.on_commit(_schedule_votes)
    return len(new)


def consensus_vote_in_transaction(*, payloads: list[bytes], kind: str) -> None:
    """Submit observations as part of the caller's open transaction: they exist (and are voted
    for) exactly when what they describe commits. One COPY, no existence query: for payloads
    unique by construction (a ledger entry's commitment names its ledger and height). A digest
    already queued is skipped (the COPY refused, then one INSERT … ON CONFLICT DO NOTHING), so a
    crafted earlier submission cannot block the caller.
    (Not ``bulk_create``: its SQL for thousands of rows costs more than the rows themselves.)"""
    if not payloads:
        return
    # Checked once per call, not once per payload (a payment batch votes two thousand entries of
    # one kind): the kind, and the size on the longest payload. Every row's bytes are then the
    # same head (tag, kind, newline) and its payload, as observation_bytes(observation_for(...)).
    observation_for(kind=kind, payload=max(payloads, key=len))
    head = observation_bytes(observation_for(kind=kind, payload=b""))
    data = [head + payload for payload in payloads]
    digests = [sha256(item) for item in data]
    queued, submitted_at = ObservationStatus.QUEUED.value, timezone.now()
    try:
        # The usual case, none of these digests queued yet: one binary COPY in a savepoint.
        # INSERT … ON CONFLICT probed the digest index once before each row and again to insert
        # it, and wrote each row on its own; COPY checks uniqueness in its one descent and
        # writes rows a page at a time (a fifth less of PostgreSQL's CPU for the votes,
        # docs/ledgers.md "seventh round").
        with transaction.atomic():
            bulk.copy_binary(
                PendingObservation._meta.db_table,
                ("digest", "data", "kind", "status", "submitted_at"),
                ("bytea", "bytea", "text", "text", "timestamptz"),
                (
                    (digest, item, kind, queued, submitted_at)
                    for digest, item in zip(digests, data, strict=True)
                ),
            )
    except IntegrityError:
        # A digest was queued already (a crafted earlier submission of the same bytes): skip it
        # rather than refuse the caller. Two bytea arrays sent in binary (bulk.execute_binary).
        bulk.execute_binary(
            "INSERT INTO consensus_pendingobservation (digest, data, kind, status, submitted_at) "
            "SELECT d.digest, d.data, %s, %s, %s FROM unnest(%b::bytea[], %b::bytea[]) AS d(digest, data) "
            "ON CONFLICT (digest) DO NOTHING",
            [kind, queued, submitted_at, digests, data],
        )
    transaction.on_commit(_schedule_votes)


def dispatch(task: str, *args: Any) -> None:
    """Hand work on (``consensus.tasks.<task>``); the one door, so tests can watch it.

    Gossip is sent at once by the worker step that made it (after its commit), not through
    another trip through the queue: every hop of a gossip round is latency until agreement. It
    leaves from a sender thread of the worker process, one per peer, so the worker goes on with
    its next step while the peer's web process checks the message (a POST took ~150 ms under
    load, most of the worker's time when it waited for it).
    """
    from consensus import tasks

    if task == "gossip_send":
        _sender_for(args[0]).send(*args)
    else:
        getattr(tasks, task).delay(*args)


class _PeerSender:
    """One thread that POSTs our gossip to one peer, in order, from a bounded queue.

    Sending is after commit (what signed a message is already durable), so a message lost here
    (queue full, process killed) is a message lost in the network: gossip recovers it, the
    request is given up after CONSENSUS_RESPONSE_TIMEOUT_SECONDS and the peer is asked again.
    """

    BACKLOG = 64

    def __init__(self, peer_name: str) -> None:
        self.peer_name = peer_name
        self.queue: queue.Queue[tuple[str, dict[str, Any], float]] = queue.Queue(self.BACKLOG)
        self.thread = threading.Thread(target=self._run, name=f"gossip-to-{peer_name}", daemon=True)
        self.thread.start()

    def send(self, peer_name: str, wire: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((peer_name, wire, time.time()))
        except queue.Full:
            logger.warning("consensus: %s is not taking our gossip; a message is dropped", peer_name)

    def _run(self) -> None:
        from django.db import close_old_connections

        from consensus import tasks

        while True:
            peer_name, wire, queued_at = self.queue.get()
            started = time.time()
            try:
                close_old_connections()  # this thread's own connection: reused while healthy
                tasks.gossip_send.run(peer_name, wire)
            except Exception:
                logger.exception("consensus: sending gossip to %s failed", peer_name)
            _trace("sent", id=wire["signature"][:16], to=peer_name, queued=queued_at, started=started)


_senders: dict[tuple[int, str], _PeerSender] = {}
_senders_lock = threading.Lock()


def _sender_for(peer_name: str) -> _PeerSender:
    # Keyed by process id too: a forked worker child must start threads of its own.
    key = (os.getpid(), peer_name)
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None:
            sender = _senders[key] = _PeerSender(peer_name)
        return sender


def _votes_scheduled_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:votes-scheduled"


def _schedule_votes() -> None:
    # Many submissions a second must not become many worker steps a second: one wake-up (or one
    # votes_apply when no gossip loop runs) is pending at a time; the flag expires by itself
    # should it be lost.
    try:
        client = health.redis_client()
        if not client.set(_votes_scheduled_key(), "1", nx=True, ex=2):
            return
        if gossip_loop_running():
            client.rpush(_inbox_key(), VOTES_WAKE)
            return
    except Exception:  # noqa: S110 - without Redis there is no Celery either; dispatch decides
        pass
    dispatch("votes_apply")


# ----------------------------------------------------------------- the validator directory


@dataclass(frozen=True)
class Directory:
    """Validator ids (Ed25519 public keys) and the node names they belong to."""

    name_of: dict[bytes, str]

    def id_of(self, name: str) -> bytes | None:
        for key, value in self.name_of.items():
            if value == name:
                return key
        return None


def _current_peer_keys() -> dict[str, bytes]:
    keys = PeerKey.objects.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=timezone.now()))
    return {
        key.peer.name: bytes.fromhex(key.public) for key in keys.select_related("peer").order_by("valid_from")
    }


def validator_directory(names: list[str]) -> Directory:
    """Resolve node names to validator ids: ours from the node key, peers' from their current key."""
    ours = node_signer().public_key
    peer_keys = _current_peer_keys()
    name_of: dict[bytes, str] = {}
    for name in names:
        key = ours if name == settings.NODE_NAME else peer_keys.get(name)
        if key is None:
            raise ConsensusShellError(
                f"validator {name} is not a known peer yet (add it with manage.py peer_add)",
                code="unknown_validator",
                http_status=409,
            )
        name_of[key] = name
    return Directory(name_of)


def _names_for(ids: tuple[ValidatorId, ...] | list[bytes], known: dict[str, str]) -> dict[str, str]:
    if all(item.hex() in known for item in ids):
        return {item.hex(): known[item.hex()] for item in ids}
    peer_names = {key.hex(): name for name, key in _current_peer_keys().items()}
    peer_names[node_signer().public_key.hex()] = settings.NODE_NAME
    return {item.hex(): known.get(item.hex()) or peer_names.get(item.hex(), item.hex()[:12]) for item in ids}


# ----------------------------------------------------------------- the state and its lock


@dataclass
class _Cache:
    version: int | None = None
    parsec: Parsec | None = None
    block_log: MerkleLog | None = None
    accusations: int = 0


_cache = _Cache()


def forget_cached_state() -> None:
    """Drop this process's cached validator (tests; after a failed step)."""
    _cache.version = None
    _cache.parsec = None
    _cache.block_log = None
    _cache.accusations = 0
    _parties_cache[:] = [0.0, None]
    _peers_cache.clear()


def consensus_state_ensure(*, validators: list[str] | None = None) -> ConsensusState:
    """Make the validator's genesis state once (names from CONSENSUS_VALIDATORS by default)."""
    existing = ConsensusState.objects.defer("snapshot").filter(pk=STATE_PK).first()
    if existing is not None:
        return existing
    names = list(dict.fromkeys(validators or settings.CONSENSUS_VALIDATORS))
    if settings.NODE_NAME not in names:
        raise ConsensusShellError(
            f"{settings.NODE_NAME} is not among the validators {names}", code="not_a_validator"
        )
    directory = validator_directory(names)
    signer = node_signer()
    parsec = Parsec.from_genesis(
        ValidatorId(signer.public_key), signer.key, [ValidatorId(key) for key in directory.name_of]
    )
    snapshot = json.dumps(parsec.snapshot(), separators=(",", ":")).encode()
    try:
        with transaction.atomic():
            state = ConsensusState.objects.create(
                pk=STATE_PK,
                version=1,
                our_id=signer.public_key.hex(),
                validators={key.hex(): name for key, name in directory.name_of.items()},
                snapshot=snapshot,
                snapshot_bytes=len(snapshot),
                snapshot_version=1,
            )
    except IntegrityError:
        return ConsensusState.objects.defer("snapshot").get(pk=STATE_PK)
    logger.info("consensus: genesis with validators %s", ", ".join(names))
    return state


@dataclass
class Step:
    """What one locked step produced, to be carried out after commit."""

    state: ConsensusState
    parsec: Parsec
    blocks: int = 0
    # (peer name, wire, the signature (hex) of the request it answers, or None).
    sends: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    # The inputs of every protocol call of this step, in order: its write-ahead log row.
    operations: list[list[Any]] = field(default_factory=list)
    head_before: Any = None
    # For the timing trace: the messages handled ([id, sender, queued at]) and votes made.
    received: list[list[Any]] = field(default_factory=list)
    votes: int = 0
    voted_ids: list[int] = field(default_factory=list)
    # Blocks the step's log row (committed) produced, stored after its messages left
    # (``_store_deferred_blocks``).
    deferred_blocks: list[ProtocolBlock] = field(default_factory=list)


# ----------------------------------------------------------------- the write-ahead log
#
# Every protocol call goes through ``_apply`` and is recorded as an operation; a restart replays
# the same operations through the same function. The protocol does no I/O, reads no clock and
# draws no random numbers, and Ed25519 signatures are deterministic, so the replay signs the
# very events the original step signed and sent.


def _run_operation(
    parsec: Parsec, operation: list[Any], message: Request | Response | None = None
) -> Request | Response | None:
    kind = operation[0]
    if kind == "vote":
        for item in operation[1]:
            # DuplicateVote: voted before a crash, or agreed already; the row is updated anyway.
            # drive_alone=False: a validator alone would otherwise make one block per vote; the
            # step polls once after all of them.
            with contextlib.suppress(DuplicateVote):
                parsec.vote_for(observation_from_bytes(bytes.fromhex(item)), drive_alone=False)
        return None
    if kind == "gossip":
        return parsec.create_gossip(ValidatorId(bytes.fromhex(operation[1])))
    if kind == "message":
        sender = ValidatorId(bytes.fromhex(operation[1]))
        if message is None:
            message = message_from_wire(operation[2])
        if isinstance(message, Request):
            return parsec.handle_request(sender, message)
        parsec.handle_response(sender, message)
        return None
    raise SnapshotError(f"unknown operation {kind!r} in the consensus log")


def _apply(
    step: Step, operation: list[Any], message: Request | Response | None = None
) -> Request | Response | None:
    """Record one protocol call in the step's log row, then make it (``message``: the
    operation's wire message, already decoded)."""
    step.operations.append(operation)
    return _run_operation(step.parsec, operation, message)


def _head(parsec: Parsec) -> list[Any] | None:
    head = parsec.own_chain_head()
    if head is None:
        return None
    epoch, count, newest = head
    return [int(epoch), count, newest.hex() if newest is not None else None]


def _replay(parsec: Parsec, operations: list[list[Any]], polled: list[ProtocolBlock]) -> None:
    for operation in operations:
        # The original step refused the same messages the same way (and logged them anyway).
        with contextlib.suppress(ConsensusError, ValueError):
            _run_operation(parsec, operation)
    # Stored already (in the original step's transaction, or by the loop right after its
    # commit), unless the process stopped before that: the caller stores those it lacks.
    while (block := parsec.poll()) is not None:
        polled.append(block)


def _validator_key(our_id: str) -> SigningKey:
    """The key this node's events and block signatures are made with: the one the validator set
    knows it by (``our_id``), which is not the node's current signing key after a rotation. A
    rotation changes at once what signs requests and co-signatures, but a validator's identity
    only through a membership change agreed by the others (restoring the validator with the new
    key is refused: the snapshot's ``our_id`` is not its public key)."""
    try:
        return node_signer_for(our_id).key
    except NodeKey.DoesNotExist as error:
        raise SnapshotError(
            f"the validator state names {our_id[:16]}… as this node, which has no such key"
            " (a database restored beside another node's keys?)"
        ) from error


def _restore(state: ConsensusState) -> tuple[Parsec, list[ProtocolBlock]]:
    """The validator as the last committed step left it (the full snapshot, then the log), and
    the blocks the log's steps produced, in order: the loop stores a step's blocks after its
    commit, so the last ones may be missing after a crash (see ``_store_deferred_blocks``)."""
    raw = ConsensusState.objects.values_list("snapshot", flat=True).get(pk=STATE_PK)
    parsec = Parsec.restore(_validator_key(state.our_id), json.loads(bytes(raw)))
    expected = state.snapshot_version + 1
    rows = (
        ConsensusStep.objects.filter(version__gt=state.snapshot_version)
        .order_by("version")
        .values_list("version", "operations", "own")
    )
    polled: list[ProtocolBlock] = []
    for version, operations, own in rows.iterator(chunk_size=50):
        if version != expected:
            raise SnapshotError(f"the consensus log misses step {expected} (next is {version})")
        _replay(parsec, json.loads(bytes(operations)), polled)
        if _head(parsec) != own:
            # Never continue from a state that differs from what peers saw: the next event would
            # sit at a position we already signed (a fork). Stop, loudly, and send nothing.
            raise SnapshotError(
                f"replaying consensus step {version} gave our chain head {_head(parsec)}, "
                f"the log says {own}: refusing to sign from a diverged state"
            )
        expected += 1
    if expected - 1 != state.version:
        raise SnapshotError(f"the consensus log ends at step {expected - 1}, the state is at {state.version}")
    return parsec, polled


class StaleConsensusStateError(Exception):
    """Another process changed the validator's state since this process's last step: the step
    is dropped (nothing of it was committed or sent) and the next one restores the state."""


@contextmanager
def _locked_step(known: ConsensusState | None = None) -> Iterator[Step]:
    """Lock the state row, hand out the validator, then persist everything in one transaction.

    ``known``: the row as this process's last step wrote it (the gossip loop keeps it). When the
    cached validator is at that version, the step skips the locking read and instead writes
    the row with ``WHERE version = <known>`` (``_commit_step``): the same exclusion (a step of
    another process in between makes ours fail and roll back, and nothing of it was sent), with
    one round trip to PostgreSQL for the usual step instead of five."""
    if known is not None and _cache.parsec is not None and _cache.version == known.version:
        with _step_on_known_state(known) as step:
            yield step
        return
    started = time.time()
    timings: dict[str, float] = {}
    try:
        with transaction.atomic():
            state = ConsensusState.objects.select_for_update().defer("snapshot").filter(pk=STATE_PK).first()
            if state is None:
                consensus_state_ensure()
                state = ConsensusState.objects.select_for_update().defer("snapshot").get(pk=STATE_PK)
            timings["locked"] = time.time()
            unstored: list[ProtocolBlock] = []
            if _cache.parsec is None or _cache.version != state.version:
                _cache.parsec, replayed = _restore(state)
                _cache.version = state.version
                unstored = [block for block in replayed if block.height >= state.next_height]
                timings["restored"] = time.time()
            step = Step(state, _cache.parsec, head_before=_head(_cache.parsec))
            for block in unstored:  # a loop stopped between a step's commit and its blocks
                _store_block(block, state)
                step.blocks += 1
            yield step
            timings["protocol"] = time.time()
            _persist(step)
            timings["persisted"] = time.time()
    except BaseException:
        forget_cached_state()  # the instance may hold changes the rollback undid
        raise
    _after_step(step, started, timings)


@contextmanager
def _step_on_known_state(state: ConsensusState) -> Iterator[Step]:
    started = time.time()
    timings: dict[str, float] = {"locked": started}
    try:
        assert _cache.parsec is not None
        step = Step(state, _cache.parsec, head_before=_head(_cache.parsec))
        expected = state.version
        yield step
        timings["protocol"] = time.time()
        blocks = []
        while (block := step.parsec.poll()) is not None:
            blocks.append(block)
        if step.voted_ids or len(step.parsec.accusations()) != _cache.accusations:
            with transaction.atomic():
                _persist(step, polled=blocks, expected_version=expected, defer_blocks=True)
        else:
            _commit_step(step, expected, blocks)
        timings["persisted"] = time.time()
    except BaseException:
        forget_cached_state()  # the instance may hold changes that were not committed
        raise
    _after_step(step, started, timings)


# The usual step (gossip handled, no block, vote or accusation): its log row and the state row in
# one statement, in autocommit. The UPDATE takes the row lock; a step of another process in between
# changed the version, so no row comes back and this step counts as never made.
_UPDATE_STATE_SQL = """
    UPDATE consensus_consensusstate
    SET version = %s, log_bytes = %s, epoch = %s, events_in_graph = %s, rounds_completed = %s,
        rounds_per_second = %s, rate_window_started_at = %s, rate_window_rounds = %s,
        messages_rejected = %s, awaiting = %s::jsonb, peers = %s::jsonb, updated_at = %s
    WHERE id = %s AND version = %s
    RETURNING version
"""
_COMMIT_STEP_SQL = f"""
WITH state AS ({_UPDATE_STATE_SQL})
INSERT INTO consensus_consensusstep (version, operations, own, recorded_at)
SELECT version, %s, %s::jsonb, %s FROM state
RETURNING version
"""  # noqa: S608 - composed of constants only


def _commit_step(step: Step, expected: int, blocks: list[ProtocolBlock] | None = None) -> None:
    """The step's log row and the state row in one statement; ``blocks`` (polled in this step)
    are left in ``step.deferred_blocks``, for after its messages left. They need not be in the
    step's transaction: they are a deterministic output of the logged inputs, which a restart
    replays (``_restore`` hands back what the replay polls and ``_locked_step`` stores what is
    missing). A compaction stores them in its own transaction: the snapshot is past them."""
    state, parsec = step.state, step.parsec
    head = _head(parsec)
    operations = json.dumps(step.operations, separators=(",", ":")).encode()
    logged = bool(step.operations) or head != step.head_before
    version = expected + 1 if logged else expected
    if logged and (
        version - state.snapshot_version >= settings.CONSENSUS_SNAPSHOT_EVERY_STEPS
        or state.log_bytes + len(operations) >= settings.CONSENSUS_SNAPSHOT_LOG_BYTES
    ):
        with transaction.atomic():  # compaction: the full snapshot, in a transaction
            _persist(step, polled=blocks or [], expected_version=expected)
        return
    now = timezone.now()
    log_bytes = state.log_bytes + (len(operations) if logged else 0)
    state_values: list[Any] = [
        version,
        log_bytes,
        parsec.epoch,
        len(parsec.graph),
        state.rounds_completed,
        state.rounds_per_second,
        state.rate_window_started_at,
        state.rate_window_rounds,
        state.messages_rejected,
        json.dumps(state.awaiting),
        json.dumps(state.peers),
        now,
        STATE_PK,
        expected,
    ]
    with connection.cursor() as cursor:
        if logged:
            cursor.execute(_COMMIT_STEP_SQL, [*state_values, operations, json.dumps(head), now])
        else:
            cursor.execute(_UPDATE_STATE_SQL, state_values)
        if cursor.fetchone() is None:
            raise StaleConsensusStateError(f"the consensus state is no longer at version {expected}")
    state.version, state.log_bytes, state.updated_at = version, log_bytes, now
    state.epoch, state.events_in_graph = parsec.epoch, len(parsec.graph)
    _cache.version = version
    step.deferred_blocks = list(blocks or [])


def _store_deferred_blocks(step: Step) -> None:
    """Store the blocks of a committed step after its messages were handed to the senders.

    A block-storing transaction (the block row, its observations by COPY, the submissions marked
    agreed) took 100-300 ms on the loaded machine, and the step's gossip waited for it; the
    blocks are the end of their payloads' path, the gossip is the start of the next ones'. The
    row is written only while it is still at the version our step wrote (another process that
    stepped meanwhile restored from the log and stored these blocks itself)."""
    if not step.deferred_blocks:
        return
    blocks, step.deferred_blocks = step.deferred_blocks, []
    state = step.state
    started = time.time()
    try:
        with transaction.atomic():
            # Takes the row lock first: no other process's step runs while ours stores.
            locked = ConsensusState.objects.filter(pk=STATE_PK, version=state.version).update(
                next_height=blocks[-1].height + 1, updated_at=timezone.now()
            )
            if not locked:
                raise StaleConsensusStateError(f"the consensus state is no longer at version {state.version}")
            for block in blocks:
                _store_block(block, state)
                step.blocks += 1
            transaction.on_commit(lambda: health.broadcast(BLOCKS_GROUP, "blocks.changed"))
    except BaseException:
        forget_cached_state()
        raise
    _trace("stored", started=started, committed=time.time(), blocks=len(blocks))


def _after_step(step: Step, started: float, timings: dict[str, float]) -> None:
    if step.blocks:
        transaction.on_commit(lambda: health.broadcast(BLOCKS_GROUP, "blocks.changed"))
    _announce_throttled()
    if trace_logger.isEnabledFor(logging.INFO):
        _trace(
            "step",
            started=started,
            committed=time.time(),
            **timings,
            received=step.received,
            votes=step.votes,
            blocks=step.blocks,
            sends=[[name, wire["signature"][:16]] for name, wire, _ in step.sends],
            own_events=(_head(step.parsec) or [0, 0])[1] - (step.head_before or [0, 0])[1],
        )


_last_announced = [0.0]


def _announce_throttled() -> None:
    # Gossip steps run many times a second; the Consensus page needs at most one look a second.
    now = time.monotonic()
    if now - _last_announced[0] >= 1.0:
        _last_announced[0] = now
        transaction.on_commit(lambda: health.broadcast(CONSENSUS_GROUP, "consensus.changed"))


def _persist(
    step: Step,
    *,
    polled: list[ProtocolBlock] | None = None,
    expected_version: int | None = None,
    defer_blocks: bool = False,
) -> None:
    """Write what the step did, in the caller's transaction. ``polled``: blocks already taken from
    ``poll()``; ``expected_version``: the row was not locked by a read (``_step_on_known_state``),
    so it is written only if still at that version; ``defer_blocks``: ``polled`` is left in
    ``step.deferred_blocks`` for after the step's sends, unless this step compacts the log (its
    snapshot is past them: a replay would not meet them again)."""
    state, parsec = step.state, step.parsec
    if step.voted_ids:
        for start in range(0, len(step.voted_ids), 5_000):
            PendingObservation.objects.filter(id__in=step.voted_ids[start : start + 5_000]).update(
                status=ObservationStatus.VOTED, voted_at=timezone.now()
            )
    for ready in [] if defer_blocks else polled or []:
        _store_block(ready, state)
        step.blocks += 1
    while (block := parsec.poll()) is not None:
        _store_block(block, state)
        step.blocks += 1
    accusations = parsec.accusations()
    if len(accusations) != _cache.accusations:
        names = _names_for([item.offender for item in accusations], state.validators)
        Accusation.objects.bulk_create(
            [
                Accusation(
                    offender=item.offender.hex(),
                    offender_name=names[item.offender.hex()],
                    kind=item.kind,
                    evidence=item.to_wire(),
                )
                for item in accusations
            ],
            ignore_conflicts=True,
        )
        _cache.accusations = len(accusations)
    head = _head(parsec)
    if step.operations or step.blocks or head != step.head_before:
        state.version += 1
        _log_or_compact(step, head)
    if defer_blocks and polled:
        if state.snapshot_version == state.version:  # compacted (in this step or the last)
            for ready in polled:
                _store_block(ready, state)
                step.blocks += 1
        else:
            step.deferred_blocks = list(polled)
    state.epoch = parsec.epoch
    state.events_in_graph = len(parsec.graph)
    if set(state.validators) != {item.hex() for item in parsec.validators}:
        state.validators = _names_for(parsec.validators, state.validators)
    state.updated_at = timezone.now()
    if expected_version is None:
        state.save()
    else:
        fields = [
            field.attname
            for field in ConsensusState._meta.concrete_fields
            if field.attname not in ("id", "snapshot")
        ]
        if state.snapshot_version == state.version:
            fields.append("snapshot")  # compacted in this step
        changed = ConsensusState.objects.filter(pk=STATE_PK, version=expected_version).update(
            **{name: getattr(state, name) for name in fields}
        )
        if not changed:
            raise StaleConsensusStateError(f"the consensus state is no longer at version {expected_version}")
    _cache.version = state.version


def _log_or_compact(step: Step, head: list[Any] | None) -> None:
    """Append the step to the write-ahead log, or, when the log has grown long enough, write a
    full snapshot instead and drop the log it replaces (one transaction either way)."""
    state, parsec = step.state, step.parsec
    operations = json.dumps(step.operations, separators=(",", ":")).encode()
    if (
        state.version - state.snapshot_version < settings.CONSENSUS_SNAPSHOT_EVERY_STEPS
        and state.log_bytes + len(operations) < settings.CONSENSUS_SNAPSHOT_LOG_BYTES
    ):
        ConsensusStep.objects.create(version=state.version, operations=operations, own=head)
        state.log_bytes += len(operations)
        return
    snapshot = json.dumps(parsec.snapshot(), separators=(",", ":")).encode()
    state.snapshot = snapshot
    state.snapshot_bytes = len(snapshot)
    state.snapshot_version = state.version
    state.log_bytes = 0
    ConsensusStep.objects.filter(version__lte=state.version).delete()
    # Continue from what a fresh process would restore, not from this instance: restore() keeps
    # no transient state (orphans waiting for parents), and a later replay from this snapshot
    # must meet exactly the events this process goes on to sign. What peers are believed to
    # hold is carried over (it changes what we send, not what we sign).
    rebased = Parsec.restore(_validator_key(state.our_id), json.loads(snapshot))
    rebased.carry_peer_views(parsec)
    step.parsec = _cache.parsec = rebased


def _block_log(state: ConsensusState) -> MerkleLog:
    """The log of block hashes (leaf i = hash of block i), kept in memory, rebuilt when stale.

    The state row's ``next_height`` is written in the same transaction as the blocks, so a log
    of that size is current without counting the blocks (a query per block stored)."""
    if _cache.block_log is not None and _cache.block_log.size == state.next_height:
        return _cache.block_log
    count = Block.objects.count()
    if _cache.block_log is None or _cache.block_log.size != count:
        hashes = Block.objects.order_by("height").values_list("block_hash", flat=True)
        _cache.block_log = MerkleLog(leaf_hash(bytes(item)) for item in hashes)
    return _cache.block_log


def _store_block(block: ProtocolBlock, state: ConsensusState) -> None:
    log = _block_log(state)
    if log.size != block.height:
        raise ConsensusShellError(f"block {block.height} does not follow the {log.size} blocks stored")
    log.append(leaf_hash(block.hash))
    names = _names_for([item.validator for item in block.signatures], state.validators)
    row = Block.objects.create(
        height=block.height,
        block_hash=block.hash,
        previous_hash=block.previous_hash,
        epoch=block.epoch,
        round=block.round,
        merkle_root=block.merkle_root,
        tree_size=len(block.observations),
        signatures=[
            {
                "validator": item.validator.hex(),
                "name": names[item.validator.hex()],
                "signature": item.signature.hex(),
            }
            for item in block.signatures
        ],
        validators=list(state.validators),
        log_root=log.root,
    )
    leaves = [observation_bytes(item) for item in block.observations]
    digests = [sha256(data) for data in leaves]
    # Tuples straight into COPY (no model instance per row: building them cost as much as the
    # COPY itself for a block of thousands).
    bulk.copy_rows(
        BlockObservation,
        [
            (row.pk, index, observation_parts(data)[0], data, digest)
            for index, (data, digest) in enumerate(zip(leaves, digests, strict=True))
        ],
    )
    if digests:
        # One UPDATE over an array of hex digests (as bytea parameters, the client-side binding
        # would escape every byte, and an IN list compiles a placeholder per digest).
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE consensus_pendingobservation SET status = %s, agreed_at = %s, block_height = %s "
                "WHERE digest = ANY(SELECT decode(unnest(string_to_array(%s, ',')), 'hex'))",
                [
                    ObservationStatus.AGREED.value,
                    timezone.now(),
                    block.height,
                    ",".join(digest.hex() for digest in digests),
                ],
            )
    state.next_height = block.height + 1
    transaction.on_commit(lambda: _anchor_soon())


def _anchor_soon() -> None:
    if settings.ANCHOR_EVERY_BLOCKS == 1:
        dispatch("anchors_tick")


# ----------------------------------------------------------------- the worker's steps


def _vote_queued(step: Step) -> int:
    """Vote for what is queued; it travels in our next event. Every step does this, so a busy
    node votes in the gossip it is doing anyway."""
    queued = list(
        PendingObservation.objects.filter(status=ObservationStatus.QUEUED)
        .order_by("id")
        .values_list("id", "data")[:VOTES_PER_STEP]
    )
    if queued:
        _apply(step, ["vote", [bytes(data).hex() for _, data in queued]])
        step.votes += len(queued)
        step.voted_ids.extend(item[0] for item in queued)  # marked voted with the step's log row
    return len(queued)


def votes_apply() -> int:
    """Vote for queued observations and start a round if none is under way. Returns how many."""
    with contextlib.suppress(Exception):
        health.redis_client().delete(_votes_scheduled_key())
    with _locked_step() as step:
        voted = _vote_queued(step)
        _maybe_start_round(step)
    _send(step)
    return voted


def _nothing_to_do() -> bool:
    """A cheap look without the lock: a round is under way (and not overdue) and nothing is queued."""
    state = ConsensusState.objects.defer("snapshot").filter(pk=STATE_PK).first()
    if state is None or PendingObservation.objects.filter(status=ObservationStatus.QUEUED).exists():
        return False
    if len(state.validators) <= 1:
        return True
    return not _free_peers(state)


def gossip_tick() -> None:
    """One tick's worth of gossip without the loop: vote what is queued and start a round with a
    random validator we are not waiting for. (Beat's task runs ``gossip_loop`` instead; tests
    drive a node step by step with this.)"""
    if _nothing_to_do():
        return
    with _locked_step() as step:
        _vote_queued(step)
        _maybe_start_round(step)
    _send(step)


def _free_peers(state: ConsensusState) -> list[str]:
    """Validators we may start a round with: none of our requests to them is waiting for an
    answer (or it is overdue). One round per peer at a time, so up to n-1 run at once."""
    ours = state.our_id
    limit = timedelta(seconds=settings.CONSENSUS_RESPONSE_TIMEOUT_SECONDS)
    now = timezone.now()
    free = []
    for key, name in state.validators.items():
        if key == ours:
            continue
        sent = state.awaiting.get(name)
        if sent is None or now - datetime.fromisoformat(sent) >= limit:
            free.append(name)
    return free


def _maybe_start_round(step: Step, *, every_free_peer: bool = False) -> None:
    state = step.state
    peers = _free_peers(state)
    if not peers:
        return
    if every_free_peer:
        random.shuffle(peers)
        for name in peers:
            _start_round_with(step, name)
    else:
        _start_round_with(step, random.choice(peers))  # noqa: S311 - gossip partner, not a secret


def _start_round_with(step: Step, name: str) -> None:
    state = step.state
    if name in state.awaiting:
        _note_peer(state, name, error="no response in time")
    peer_id = bytes.fromhex(next(key for key, value in state.validators.items() if value == name))
    request = _apply(step, ["gossip", peer_id.hex()])
    assert request is not None
    state.awaiting = {**state.awaiting, name: timezone.now().isoformat()}
    _note_peer(state, name, sent=True)
    step.sends.append((name, request.to_wire(), None))


def gossip_receive(*, peer_name: str, wire: dict[str, Any]) -> None:
    """Handle one gossip message a peer sent (already transport- and signature-checked by the view)."""
    gossip_receive_many([(peer_name, wire, None)])


def gossip_receive_many(messages: list[tuple[str, dict[str, Any], float | None]]) -> None:
    """Handle several messages (sender, wire, when queued) in one locked step: one log row for
    all of them."""
    with _locked_step() as step:
        _vote_queued(step)
        _receive_all(step, messages)
        if step.parsec.has_unfinished_work():
            # Keep the conversation going while something waits for agreement or signatures:
            # with every peer we are not waiting for, so what this step created spreads at once.
            _maybe_start_round(step, every_free_peer=True)
    _send(step)


def _receive_all(step: Step, messages: Iterable[tuple[str, dict[str, Any], float | None]]) -> None:
    """Handle received messages in order inside one step, noting each for the step's log row."""
    for peer_name, wire, queued_at in messages:
        step.received.append([str(wire.get("signature", ""))[:16], peer_name, queued_at])
        _receive_one(step, peer_name, wire)


def _receive_one(step: Step, peer_name: str, wire: dict[str, Any]) -> bool:
    """Handle one message inside a step; True if it was a request we answered."""
    state = step.state
    peer_key = next((key for key, value in state.validators.items() if value == peer_name), None)
    try:
        message = message_from_wire(wire)
        sender = ValidatorId(bytes.fromhex(peer_key) if peer_key else message.sender)
        response = _apply(step, ["message", sender.hex(), wire], message)
        if response is not None:
            step.sends.append((peer_name, response.to_wire(), str(wire.get("signature", ""))))
            answered = True
        else:
            answered = False
            state.awaiting = {name: sent for name, sent in state.awaiting.items() if name != peer_name}
        _count_round(state)
        _note_peer(state, peer_name, heard=True)
    except (ConsensusError, ValueError) as error:
        state.messages_rejected += 1
        _note_peer(state, peer_name, error=f"{type(error).__name__}: {error}"[:200])
        logger.warning("consensus: refused gossip from %s: %s", peer_name, error)
        if type(error).__name__ in _REFUSAL_CODES:
            # Unattributable (nobody is accused): counted with the receiving view's refusals,
            # which is where an inline response handed over in memory is checked first.
            code, sentence = _REFUSAL_CODES[type(error).__name__]
            _count_refusal(peer_name, ConsensusShellError(f"{sentence}: {error}"[:200], code=code))
        return False
    return answered


def _inbox_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:inbox"


def _drain_scheduled_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:drain-scheduled"


def _inline_wait_key(request_signature: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:inline-wait:{request_signature}"


def _inline_reply_key(request_signature: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:inline-reply:{request_signature}"


# How long a waiting mark or an unread inline response lives in Redis (well past any wait).
INLINE_KEY_SECONDS = 30


def gossip_enqueue(*, peer_name: str, body: bytes, answer_inline: str | None = None) -> None:
    """The receiving view's hand-off: queue the checked message (``body``: the request body it
    checked, ``{"message": <wire>}``, as received: not encoded a second time) for the loop.

    ``answer_inline``: the request's signature (hex) when the view holds the HTTP exchange open
    for the response (``gossip_inline_response``); marked before the message is queued, so the
    step that answers it always finds the mark.

    Messages wait in a Redis list that the gossip loop blocks on. Without a loop (none started:
    a worker without beat), one ``gossip_drain`` is queued at a time, so a burst of messages
    becomes one locked step, not one step each."""
    client = health.redis_client()
    pipeline = client.pipeline(transaction=False)
    if answer_inline:
        pipeline.set(_inline_wait_key(answer_inline), b"1", ex=INLINE_KEY_SECONDS)
    pipeline.rpush(_inbox_key(), b"[%s,%.6f,%s]" % (json.dumps(peer_name).encode(), time.time(), body))
    pipeline.exists(_loop_lock_key())
    loop_running = pipeline.execute()[-1]
    if loop_running:
        return  # the loop is blocked on the inbox (or about to look at it): the push wakes it
    if client.set(_drain_scheduled_key(), "1", nx=True, ex=5):
        dispatch("gossip_drain")


def gossip_answer_inline(body: dict[str, Any]) -> str | None:
    """The request's signature (hex) when a checked message asks for its response in the HTTP
    answer (``"answer_inline": true`` next to a request), else None."""
    wire = body["message"]
    if body.get("answer_inline") is True and wire["header"]["kind"] == "request":
        return str(wire["signature"])
    return None


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)


def _async_redis() -> redis.asyncio.Redis:
    """A Redis client of the running event loop (daphne's), for waits that hold no thread."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2
        )
    return client


async def gossip_inline_response(request_signature: str) -> tuple[bytes, float] | None:
    """Wait (on the event loop, no thread held) for the loop's response to a request queued with
    ``answer_inline``; (body ``{"message": <wire>}``, when the loop handed it over), or None when
    it did not come in CONSENSUS_INLINE_RESPONSE_SECONDS (then the loop POSTs it, see
    ``_answer_or_dispatch``)."""
    client = _async_redis()
    reply_key = _inline_reply_key(request_signature)
    popped = await client.blpop([reply_key], timeout=settings.CONSENSUS_INLINE_RESPONSE_SECONDS)
    if popped is None:
        if await client.delete(_inline_wait_key(request_signature)):
            return None  # we gave up first: the step that answers will POST its response
        # The step took the mark just now: its response is on the way to the list.
        popped = await client.blpop([reply_key], timeout=1)
        if popped is None:
            return None  # lost (the worker died in between): as a message lost in the network
    item = cast(bytes, popped[1])
    pushed_at, body = item.split(b" ", 1)
    return body, float(pushed_at)


def _inbox_message(item: bytes) -> tuple[str, dict[str, Any], float]:
    """(sender, wire, when queued) of an inbox item written by ``gossip_enqueue``."""
    name, queued_at, body = json.loads(item)
    return str(name), body["message"], float(queued_at)


def _inbox_pop(client: redis.Redis, count: int) -> list[bytes]:
    return cast(list[bytes], client.lpop(_inbox_key(), count) or [])


# At most this many messages are handled in one locked step (bounded work per transaction).
DRAIN_BATCH = 32


def gossip_drain() -> int:
    """Handle every queued message, up to DRAIN_BATCH per locked step. Returns how many."""
    client = health.redis_client()
    client.delete(_drain_scheduled_key())
    handled = 0
    for _ in range(50):
        raw = _inbox_pop(client, DRAIN_BATCH)
        if not raw:
            break
        batch = [
            _inbox_message(item)
            for item in raw
            if item not in (VOTES_WAKE, LOCAL_WAKE) and not item.startswith(STOP_PREFIX)
        ]
        gossip_receive_many(batch)  # type: ignore[arg-type]
        handled += len(batch)
    return handled


# ----------------------------------------------------------------- the gossip loop
#
# One long-running loop per node does all of the validator's work while it runs: it blocks on
# the Redis inbox (the receiving view pushes every checked message there, the vote services push
# a wake-up), and takes a locked step as soon as something arrived, handling every queued
# message in that one step, then starts rounds with every free peer while anything waits for
# agreement. No Celery hand-off and no beat tick lies between two hops of a gossip round.
#
# It is a Celery task (the worker does the work, as everywhere else) that holds a Redis lock,
# one per node: beat's gossip_tick starts it when nobody holds the lock, so a loop that died
# (an exception, a killed process whose lock expired) is replaced at the next tick. The lock is
# only about not running two loops (they would take turns on the row lock and each restore the
# other's state); what keeps our chain single is still the state row's FOR UPDATE in every step.

VOTES_WAKE = b"votes"
# Pushed by the sender thread after it handed an inline response to this process's loop.
LOCAL_WAKE = b"local"
STOP_PREFIX = b"stop:"


def _loop_lock_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:gossip-loop"


def gossip_loop_running() -> bool:
    """True while some process holds this node's gossip-loop lock."""
    return bool(health.redis_client().exists(_loop_lock_key()))


def gossip_loop_holder() -> str | None:
    """Who holds the loop lock ("<host>:<pid>:<random>"), for the dashboard and tests."""
    value = health.redis_client().get(_loop_lock_key())
    return _text(value) if value is not None else None


def gossip_loop(*, seconds: float | None = None) -> str:
    """Run this node's gossip loop for up to ``seconds`` (CONSENSUS_LOOP_SECONDS) unless another
    loop holds the lock. Returns "busy" (another loop runs), "done" (it ran its time) or
    "stopped" (its worker is shutting down), after releasing the lock."""
    client = _loop_redis()
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lock = client.lock(_loop_lock_key(), timeout=settings.CONSENSUS_LOOP_LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False, token=token):
        return "busy"
    logger.info("consensus: gossip loop %s started", token)
    loop = _GossipLoop(client, lock)
    try:
        loop.run(time.monotonic() + (seconds or settings.CONSENSUS_LOOP_SECONDS))
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.exceptions.RedisError):
            lock.release()
        logger.info("consensus: gossip loop %s ended", token)
    return "stopped" if loop.stopping else "done"


def gossip_loop_stop(*, worker_pid: int) -> None:
    """Ask the loop running in this worker (its process or a child of it) to end: called when
    the worker shuts down, which otherwise waits for the task (the loop) to return."""
    health.redis_client().rpush(_inbox_key(), f"{STOP_PREFIX.decode()}{worker_pid}")


@functools.cache
def _loop_redis_for(url: str, block_seconds: float) -> redis.Redis:
    # Its own client: the shared one times out a read after 1 s, and the loop blocks longer.
    return redis.Redis.from_url(
        url, socket_timeout=block_seconds + 5, socket_connect_timeout=2, health_check_interval=30
    )


def _loop_redis() -> redis.Redis:
    return _loop_redis_for(settings.REDIS_URL, _loop_longest_wait())


def _loop_longest_wait() -> float:
    return min(settings.CONSENSUS_GOSSIP_SECONDS, settings.CONSENSUS_LOOP_LOCK_SECONDS / 3)


class _GossipLoop:
    def __init__(self, client: redis.Redis, lock: Any) -> None:
        self.client = client
        self.lock = lock
        self.state: ConsensusState | None = None
        self.parsec: Parsec | None = None
        self.check_votes = True  # the first step looks for votes queued while no loop ran
        self.next_idle_round = 0.0
        self.next_refresh = time.monotonic() + settings.CONSENSUS_LOOP_LOCK_SECONDS / 3
        self.stopping = False
        self.local: queue.SimpleQueue[tuple[str, dict[str, Any], float]] = queue.SimpleQueue()

    def run(self, deadline: float) -> None:
        # What a loop that ran here before left unread is dropped (answers to requests it made).
        _local_inbox[os.getpid()] = self.local
        try:
            self._run(deadline)
        finally:
            _local_inbox.pop(os.getpid(), None)

    def _run(self, deadline: float) -> None:
        while (now := time.monotonic()) < deadline and not self.stopping:
            if now >= self.next_refresh:
                self.lock.reacquire()  # LockNotOwnedError: it expired and another loop took over
                self.next_refresh = now + settings.CONSENSUS_LOOP_LOCK_SECONDS / 3
            messages = self._take(_inbox_pop(self.client, DRAIN_BATCH))
            if not messages and not self._work_without_messages(now):
                wait = min(self.next_refresh, self._next_timer(now), deadline) - now
                popped = cast(
                    "tuple[bytes, bytes] | None", self.client.blpop([_inbox_key()], timeout=max(0.001, wait))
                )
                if popped is None:
                    continue
                messages = self._take([popped[1], *_inbox_pop(self.client, DRAIN_BATCH - 1)])
                if not messages and not self._work_without_messages(time.monotonic()):
                    continue
            if messages or not self.stopping:
                self._step(messages)

    def _take(self, items: list[bytes]) -> list[tuple[str, dict[str, Any], float]]:
        """The gossip messages among inbox items, then the inline responses our sender threads
        handed over; wake-ups and stop requests are noted."""
        messages: list[tuple[str, dict[str, Any], float]] = []
        while len(messages) < DRAIN_BATCH and not self.local.empty():
            messages.append(self.local.get_nowait())
        for item in items:
            if item == LOCAL_WAKE:
                continue
            if item == VOTES_WAKE:
                self.check_votes = True
            elif item.startswith(STOP_PREFIX):
                # Ours when it names this process's worker (prefork: our parent; solo: us).
                self.stopping |= int(item[len(STOP_PREFIX) :]) in (os.getpid(), os.getppid())
            else:
                messages.append(_inbox_message(item))
        return messages

    def _work_without_messages(self, now: float) -> bool:
        """Something to do before waiting for the inbox: votes to make, rounds to start."""
        if self.state is None or self.parsec is None:
            return True
        free = bool(_free_peers(self.state))
        if self.check_votes:
            # Votes travel in our next event, which is made when new events arrive: while every
            # peer owes us an answer, the step that handles the first answer votes them (a step
            # of its own would only write them down). Alone, nobody answers: vote now.
            return free or len(self.state.validators) <= 1
        if self.parsec.has_unfinished_work():
            return free
        return now >= self.next_idle_round and free

    def _next_timer(self, now: float) -> float:
        """When waiting must end even if nothing arrives: an idle round, or a request overdue."""
        timer = now + _loop_longest_wait()
        if self.state is None:
            return now
        if self.parsec is not None and not self.parsec.has_unfinished_work():
            timer = min(timer, self.next_idle_round)
        limit = settings.CONSENSUS_RESPONSE_TIMEOUT_SECONDS
        wall = time.time()
        for sent in self.state.awaiting.values():
            due = datetime.fromisoformat(sent).timestamp() + limit
            timer = min(timer, now + max(0.0, due - wall))
        return timer

    def _step(self, messages: list[tuple[str, dict[str, Any], float]]) -> None:
        if self.check_votes:
            self.client.delete(_votes_scheduled_key())  # later submissions wake us again
        now = time.monotonic()
        try:
            step = self._locked_step_body(messages, now)
        except (StaleConsensusStateError, IntegrityError) as error:
            # Another process stepped meanwhile (a drain or votes task racing a new loop): this
            # step was neither committed nor sent; its messages are lost like network drops.
            logger.warning("consensus: gossip loop step dropped: %s", error)
            self.state = self.parsec = None
            self.check_votes = True
            return
        try:
            _send(step)
        except BaseException:
            # The step is committed and its blocks are not stored yet: a step that went on from
            # this process's cache would never store them (nor could any block after them be).
            # A restore replays the log and stores what is missing.
            forget_cached_state()
            raise
        try:
            _store_deferred_blocks(step)
        except (StaleConsensusStateError, IntegrityError) as error:
            logger.warning("consensus: gossip loop's blocks left to the process that stepped: %s", error)
            self.state = self.parsec = None
            self.check_votes = True
            return
        self.check_votes = False
        self.state, self.parsec = step.state, step.parsec

    def _locked_step_body(self, messages: list[tuple[str, dict[str, Any], float]], now: float) -> Step:
        with _locked_step(self.state) as step:
            if self.check_votes:
                _vote_queued(step)
            _receive_all(step, messages)
            if step.parsec.has_unfinished_work():
                # Back to back: what this step created (or learnt) goes to every peer we are
                # not waiting for, at once.
                _maybe_start_round(step, every_free_peer=True)
            elif now >= self.next_idle_round:
                # Idle: one round with a random peer per CONSENSUS_GOSSIP_SECONDS (a peer that
                # restarted, or fell behind, learns what it missed).
                _maybe_start_round(step)
                self.next_idle_round = now + settings.CONSENSUS_GOSSIP_SECONDS
        return step


def _count_round(state: ConsensusState) -> None:
    state.rounds_completed += 1
    state.rate_window_rounds += 1
    elapsed = (timezone.now() - state.rate_window_started_at).total_seconds()
    if elapsed >= 5:
        state.rounds_per_second = state.rate_window_rounds / elapsed
        state.rate_window_rounds = 0
        state.rate_window_started_at = timezone.now()


def _note_peer(
    state: ConsensusState, name: str, *, heard: bool = False, sent: bool = False, error: str = ""
) -> None:
    entry = dict(state.peers.get(name, {}))
    now = timezone.now().isoformat()
    if heard:
        entry["last_heard_at"] = now
        entry["last_error"] = ""
    if sent:
        entry["last_sent_at"] = now
    if error:
        entry["last_error"] = error
        entry["last_error_at"] = now
    state.peers = {**state.peers, name: entry}


def _send(step: Step) -> None:
    for name, wire, answering in step.sends:
        transaction.on_commit(
            lambda name=name, wire=wire, answering=answering: _answer_or_dispatch(name, wire, answering)  # type: ignore[misc]
        )


def _answer_or_dispatch(name: str, wire: dict[str, Any], answering: str | None) -> None:
    """Hand a response to the receiving view that still holds its request's HTTP exchange open
    (push-pull: one POST carries a request and its response), or else POST it as its own message.

    Who delivers is settled by one atomic DEL of the request's waiting mark: the view deletes it
    when it gives up waiting, this deletes it when it answers; whichever deletes it first owns
    the response, so it travels exactly once (or is lost with a crash, as in the network)."""
    if answering:
        try:
            client = health.redis_client()
            if client.delete(_inline_wait_key(answering)):
                reply = b"%.6f " % time.time() + json.dumps({"message": wire}, separators=(",", ":")).encode()
                pipeline = client.pipeline(transaction=False)
                pipeline.rpush(_inline_reply_key(answering), reply)
                pipeline.expire(_inline_reply_key(answering), INLINE_KEY_SECONDS)
                pipeline.execute()
                return
        except redis.exceptions.RedisError:
            logger.warning("consensus: could not hand a response to the waiting view; posting it")
    dispatch("gossip_send", name, wire)


# Looked up again after this long: a query per message cost a PostgreSQL round trip per gossip
# hop, and a peer's address changes rarely (peer_add); keys are checked by the receiver anyway.
PEER_CACHE_SECONDS = 5.0
_peers_cache: dict[str, tuple[float, Peer | None]] = {}


def _peer_named(name: str) -> Peer | None:
    cached = _peers_cache.get(name)
    if cached is not None and time.monotonic() - cached[0] < PEER_CACHE_SECONDS:
        return cached[1]
    peer = Peer.objects.filter(name=name).first()
    _peers_cache[name] = (time.monotonic(), peer)
    return peer


def gossip_deliver(*, peer_name: str, wire: dict[str, Any]) -> bool:
    """POST one message to a peer over the signed transport (after the snapshot is committed)."""
    from settlement.transport import PeerUnreachable, peer_request

    peer = _peer_named(peer_name)
    if peer is None:
        logger.warning("consensus: validator %s is not a known peer", peer_name)
        return False
    body: dict[str, Any] = {"message": wire}
    if wire.get("header", {}).get("kind") == "request":
        body["answer_inline"] = True  # push-pull: the response may come back in the answer
    try:
        answer = peer_request(peer, "POST", GOSSIP_PATH, json_body=body, timeout=10)
    except PeerUnreachable as error:
        logger.info("consensus: %s", error)
        return False
    if answer.status == 200:
        _take_inline_response(peer, answer.body)
        return True
    if answer.status != 202:
        logger.warning("consensus: %s refused our gossip: %s %s", peer_name, answer.status, answer.body[:300])
        return False
    return True


def _take_inline_response(peer: Peer, body: bytes) -> None:
    """A response that came back in the answer to our request (its transport signature, bound to
    our request's nonce, already verified by ``peer_request``): queued for the loop.

    When the loop runs in this process (it does: this is its sender thread), the decoded
    message is handed to it in memory, checked once, by the protocol: its message signature and
    every event (``handle_response``), a refusal counted as the receiving view counts one
    (``_receive_one``). Anything but a response gets the view's checks here, as before.
    Checking it here first, then encoding it into Redis and decoding it again in the loop, cost
    a signature check and two JSON passes per gossip round (a one-byte Redis push still wakes a
    loop blocked on its inbox). Otherwise it is checked as the receiving view checks a POSTed one and queued through Redis."""
    try:
        parsed: Any = json.loads(body)
        local = _local_inbox_if_loop_here()
        wire: Any = parsed.get("message") if isinstance(parsed, dict) else None
        header = wire.get("header") if isinstance(wire, dict) else None
        if local is None or not isinstance(header, dict) or header.get("kind") != "response":
            # Anything but a response (or no loop here): the receiving view's checks, in its order.
            local = None
            wire = gossip_check(peer=peer, body=parsed)
            if wire["header"]["kind"] != "response":
                raise ConsensusShellError("a request was answered with a request", code="malformed_gossip")
        else:
            # The parties at least, as the view checks them (no signature or event decoded here):
            # a response naming another sender or recipient never reaches the step's log.
            parties = _validator_parties()
            if parties is None:
                raise ConsensusShellError("this node's validator has not started yet", code="not_started")
            _check_parties(peer, parties, str(header.get("sender")), str(header.get("recipient")))
    except (UnicodeDecodeError, ValueError):
        gossip_refused(
            peer=peer, error=ConsensusShellError("the answer is not JSON", code="malformed_gossip")
        )
        logger.warning("consensus: %s answered our gossip with something that is not JSON", peer.name)
        return
    except ConsensusShellError as error:
        gossip_refused(peer=peer, error=error)
        logger.warning("consensus: refused the answer of %s: %s", peer.name, error.message)
        return
    if local is not None:
        local.put((peer.name, wire, time.time()))
        # Wakes the loop if it is blocked on the Redis inbox (pushed after the message, so a
        # loop that found the local queue empty is woken by this).
        health.redis_client().rpush(_inbox_key(), LOCAL_WAKE)
    else:
        gossip_enqueue(peer_name=peer.name, body=body)
    _trace("answer", id=str(wire.get("signature"))[:16], sender=peer.name)


# Inline responses for the gossip loop of this process (see ``_take_inline_response``): set
# while a loop runs here, by pid (a forked worker child has a loop, or not, of its own).
_local_inbox: dict[int, queue.SimpleQueue[tuple[str, dict[str, Any], float]]] = {}


def _local_inbox_if_loop_here() -> queue.SimpleQueue[tuple[str, dict[str, Any], float]] | None:
    return _local_inbox.get(os.getpid())


# Codes of the receiving view's refusals, for an inline response the protocol refused (the loop
# counts it as the view would have: nobody is blamed for an unattributable message).
_REFUSAL_CODES = {
    "InvalidMessageSignature": ("bad_message_signature", "the message is not signed by its sender"),
    "NotAValidator": ("not_a_validator", "the sender is not a validator"),
    "MalformedMessage": ("malformed_gossip", "malformed gossip message"),
}


# ----------------------------------------------------------------- receiving (web process)


def gossip_check(*, peer: Peer, body: Any) -> dict[str, Any]:
    """What the receiving view checks before enqueueing: shape, parties, the message signature.

    Raises :class:`ConsensusShellError` (4xx) for what the node refuses outright. What the
    protocol can prove against the sender (bad events inside a signed message) is left to the
    worker, where ``handle_*`` records the accusation.
    """
    parties = _validator_parties()
    if parties is None:
        raise ConsensusShellError(
            "this node's validator has not started yet", code="not_started", http_status=503
        )
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise ConsensusShellError('the body is {"message": <gossip message>}', code="malformed_gossip")
    wire = body["message"]
    # Only the header, the event signatures it commits to and its signature are checked here:
    # decoding every event of a large message would hold the web process for what the worker
    # (the authority: ``handle_*`` checks everything again) must do anyway.
    try:
        header = wire["header"]
        if (
            not isinstance(header, dict)
            or set(header) != HEADER_FIELDS
            or header["kind"] not in ("request", "response")
        ):
            raise ValueError("the header has other fields")
        events = wire["events"]
        if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_MESSAGE:
            raise ValueError("events is a list of at most 50,000 events")
        signatures = [bytes.fromhex(event["signature"]) for event in events]
        if message_digest(signatures).hex() != header["events"]:
            raise ValueError("the header does not commit to these events")
        sender, recipient = bytes.fromhex(header["sender"]), bytes.fromhex(header["recipient"])
        signature = bytes.fromhex(wire["signature"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConsensusShellError(
            f"malformed gossip message: {error}"[:300], code="malformed_gossip"
        ) from error
    _check_parties(peer, parties, sender.hex(), recipient.hex())
    try:
        signed = is_valid(sender, MESSAGE_KIND, header, signature)
    except (TypeError, ValueError):
        signed = False
    if not signed:
        raise ConsensusShellError(
            "the message is not signed by its sender", code="bad_message_signature", http_status=401
        )
    return wire


def _check_parties(peer: Peer, parties: tuple[str, dict[str, str]], sender: str, recipient: str) -> None:
    """A gossip message from ``peer`` names it (its validator id) as sender and us as recipient."""
    our_id, validators = parties
    peer_key = next((key for key, value in validators.items() if value == peer.name), None)
    if peer_key is None:
        raise ConsensusShellError(f"{peer.name} is not a validator", code="not_a_validator", http_status=403)
    if sender != peer_key or recipient != our_id:
        raise ConsensusShellError("the message names other parties", code="wrong_parties", http_status=403)


# The receiving view reads our id and the validator set at most this often (a PostgreSQL round
# trip per message otherwise). A membership change reaches the view this much later; the worker
# checks every message against the protocol's own validator set regardless.
PARTIES_CACHE_SECONDS = 1.0
_parties_cache: list[Any] = [0.0, None]


def _validator_parties() -> tuple[str, dict[str, str]] | None:
    """(our validator id, validators by id) as the state row has them, or None before genesis."""
    read_at, parties = _parties_cache
    if parties is not None and time.monotonic() - read_at < PARTIES_CACHE_SECONDS:
        return parties
    row = ConsensusState.objects.filter(pk=STATE_PK).values_list("our_id", "validators").first()
    parties = (row[0], dict(row[1])) if row is not None else None
    _parties_cache[:] = [time.monotonic(), parties]
    return parties


def _refusals_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:consensus:refused"


def gossip_refused(*, peer: Peer | None, error: ConsensusShellError) -> None:
    """Count a refusal for the dashboard. In Redis, not the state row: a flood of bad messages
    must not queue the web process behind the worker's lock. Best effort, never fails the 4xx."""
    _count_refusal(peer.name if peer is not None else None, error)


def _count_refusal(peer_name: str | None, error: ConsensusShellError) -> None:
    try:
        # One MULTI/EXEC: a reader never sees the count moved without the peer's last refusal.
        with health.redis_client().pipeline() as both:
            both.hincrby(_refusals_key(), "total", 1)
            if peer_name is not None:
                both.hset(_refusals_key(), f"last:{peer_name}", f"{error.code}: {error.message}"[:200])
            both.execute()
    except Exception:
        logger.warning("consensus: could not count a refused message")


def gossip_refusals() -> dict[str, str]:
    """Refusals by the receiving view: {"total": n, "last:<peer>": "<code>: <sentence>"}."""
    try:
        raw = health.redis_client().hgetall(_refusals_key())
    except Exception:
        return {}
    return {_text(key): _text(value) for key, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "BLOCKS_GROUP",
    "CONSENSUS_GROUP",
    "ConsensusShellError",
    "NotAValidator",
    "WrongEpoch",
    "consensus_state_ensure",
    "consensus_vote",
    "consensus_vote_many",
    "gossip_check",
    "gossip_deliver",
    "gossip_receive",
    "gossip_tick",
    "votes_apply",
]
