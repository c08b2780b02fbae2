"""``Parsec``: one validator's consensus state, driven by the shell (or the simulator).

The interface mirrors Maidsafe's PARSEC crate: ``from_genesis`` / ``from_existing``,
``vote_for``, ``create_gossip(peer) -> Request``, ``handle_request(peer, request) -> Response``,
``handle_response(peer, response)`` and ``poll() -> Block | None``. It does no I/O, reads no clock
and draws no random numbers: the shell decides when to gossip and with whom.

Gossip: a request carries the events the requester believes the peer lacks (from the peer's last
known vector) and the requester's own known vector; the response carries what the requester
lacks. Whoever receives new events records a new event naming the peer's newest event as its
other-parent, and that event is the gossip about gossip that virtual voting runs on.

Batching: an event carries every observation voted since the creator's previous event (up to
``MAX_BATCH``), so the cost of signing, sending and voting is paid per event, not per payload.

Epochs: a membership change ends the epoch at the block that agrees it. Every correct peer cuts
at the same block (agreement), starts a fresh graph with the new validator set, and re-votes its
own observations that the old epoch had not agreed. The previous graph is kept to serve peers
that have not reached the cut yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from consensus.protocol.block import (
    GENESIS_PREVIOUS,
    Block,
    ValidatorSignature,
    build_block,
    sign_block,
)
from consensus.protocol.event import (
    MAX_ACCUSATIONS_PER_EVENT,
    MAX_BLOCK_SIGNATURES_PER_EVENT,
    Accusation,
    BlockSignature,
    Event,
    checked_event_id,
    create_event,
)
from consensus.protocol.graph import DEFAULT_PRUNE_MARGIN, Graph, MissingParent, OrderedRound
from consensus.protocol.malice import (
    MESSAGE_KIND,
    MaliceKind,
    accusation_from_events,
    check_accusation,
    make_accusation,
    message_digest,
)
from consensus.protocol.types import (
    AddValidator,
    BlockHeight,
    DuplicateVote,
    Epoch,
    EventId,
    InvalidMessageSignature,
    MalformedMessage,
    NotAValidator,
    Observation,
    ObservationHash,
    RemoveValidator,
    Round,
    SnapshotError,
    ValidatorId,
    observation_bytes,
    observation_from_bytes,
)
from settlement.protocol.encoding import sha256
from settlement.protocol.signing import BadSignature, SigningKey, is_valid, sign

MAX_BATCH = 10_000
MAX_EVENTS_PER_MESSAGE = 50_000
MAX_ORPHANS = 5_000
# Heights ahead of our own for which we keep signatures that arrive before we built the block.
EARLY_SIGNATURE_WINDOW = 256
# How many recent blocks' observation hashes we remember to drop re-submitted observations.
# Bounded on purpose (memory); the application's own idempotency keys cover older replays.
AGREED_WINDOW_BLOCKS = 4_096


@dataclass(frozen=True)
class _Message:
    KIND: ClassVar[str] = ""

    sender: ValidatorId
    recipient: ValidatorId
    epoch: Epoch
    known: tuple[int, ...]
    wants: tuple[EventId, ...]
    events: tuple[Event, ...]
    signature: bytes
    sender_epoch: Epoch = Epoch(0)  # noqa: RUF009 - a NewType call is the identity at run time
    """The sender's own epoch; ``epoch`` is the graph this message is about, which is older when
    the sender serves a peer that has not reached the cut yet."""

    def header(self) -> dict[str, Any]:
        return _header(
            self.KIND,
            self.sender,
            self.recipient,
            self.epoch,
            self.known,
            self.wants,
            self.events,
            self.sender_epoch,
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "header": self.header(),
            "signature": self.signature.hex(),
            "events": [event.to_wire() for event in self.events],
        }


MessageT = TypeVar("MessageT", bound=_Message)


@dataclass(frozen=True)
class Request(_Message):
    KIND: ClassVar[str] = "request"


@dataclass(frozen=True)
class Response(_Message):
    KIND: ClassVar[str] = "response"


def _header(
    kind: str,
    sender: ValidatorId,
    recipient: ValidatorId,
    epoch: Epoch,
    known: tuple[int, ...],
    wants: tuple[EventId, ...],
    events: tuple[Event, ...],
    sender_epoch: Epoch,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "sender_epoch": sender_epoch,
        "sender": sender.hex(),
        "recipient": recipient.hex(),
        "epoch": epoch,
        "known": list(known),
        "wants": [item.hex() for item in wants],
        "events": message_digest([event.signature for event in events]).hex(),
    }


def message_from_wire(value: Any) -> Request | Response:
    """Decode a message from its JSON form (what the node-to-node transport carries)."""
    try:
        header = value["header"]
        cls: type[Request] | type[Response] = Request if header["kind"] == "request" else Response
        if header["kind"] not in ("request", "response"):
            raise MalformedMessage("unknown message kind")
        if len(value["events"]) > MAX_EVENTS_PER_MESSAGE:
            raise MalformedMessage("too many events in one message")
        return cls(
            sender=ValidatorId(bytes.fromhex(header["sender"])),
            recipient=ValidatorId(bytes.fromhex(header["recipient"])),
            epoch=Epoch(int(header["epoch"])),
            known=tuple(int(item) for item in header["known"]),
            wants=tuple(EventId(bytes.fromhex(item)) for item in header["wants"]),
            events=tuple(Event.from_wire(item) for item in value["events"]),
            signature=bytes.fromhex(value["signature"]),
            sender_epoch=Epoch(int(header["sender_epoch"])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessage(f"bad gossip message: {error}") from error


@dataclass(frozen=True)
class Section:
    """What a validator joining an existing section needs to know (from the agreed blocks)."""

    epoch: Epoch
    validators: tuple[ValidatorId, ...]
    next_height: BlockHeight
    previous_hash: bytes


class Parsec:
    def __init__(
        self,
        our_id: ValidatorId,
        signing_key: SigningKey,
        section: Section,
        *,
        prune_margin: int = DEFAULT_PRUNE_MARGIN,
    ) -> None:
        if bytes(signing_key.public_key) != bytes(our_id):
            raise ValueError("our_id must be the public key of signing_key")
        if len(set(section.validators)) != len(section.validators):
            raise ValueError("validators must be distinct")
        self.our_id = our_id
        self._key = signing_key
        self._prune_margin = prune_margin
        self.epoch = section.epoch
        self.validators = tuple(sorted(section.validators))
        self.graph = Graph(self.validators, prune_margin=prune_margin)
        self._previous: tuple[Epoch, Graph] | None = None
        self._pending: list[bytes] = []
        self._pending_hashes: list[ObservationHash] = []
        self._own_unagreed: dict[ObservationHash, bytes] = {}
        self._agreed: dict[ObservationHash, int] = {}
        self._height: int = section.next_height
        self._previous_hash = section.previous_hash
        self._built: dict[int, Block] = {}
        self._block_validators: dict[int, tuple[ValidatorId, ...]] = {}
        self._signatures: dict[int, dict[ValidatorId, bytes]] = {}
        self._early_signatures: dict[int, dict[ValidatorId, tuple[bytes, bytes]]] = {}
        self._next_poll: int = section.next_height
        self._signatures_to_send: list[BlockSignature] = []
        self._accusations: dict[tuple[ValidatorId, str], Accusation] = {}
        self._to_accuse: list[Accusation] = []
        self._peer_known: dict[tuple[ValidatorId, int], tuple[int, ...]] = {}
        self._peer_epoch: dict[ValidatorId, int] = {}
        self._peer_wants: dict[ValidatorId, set[EventId]] = {}
        self._missing_from: dict[ValidatorId, set[EventId]] = {}
        self._orphans: dict[EventId, Event] = {}

    # ----- construction --------------------------------------------------------------------

    @classmethod
    def from_genesis(
        cls,
        our_id: ValidatorId,
        signing_key: SigningKey,
        genesis_peers: tuple[ValidatorId, ...] | list[ValidatorId] | set[ValidatorId],
        *,
        prune_margin: int = DEFAULT_PRUNE_MARGIN,
    ) -> Parsec:
        peers = tuple(sorted(set(genesis_peers)))
        if our_id not in peers:
            raise NotAValidator("a genesis member must be among the genesis peers")
        section = Section(Epoch(0), peers, BlockHeight(0), GENESIS_PREVIOUS)
        return cls(our_id, signing_key, section, prune_margin=prune_margin)

    @classmethod
    def from_existing(
        cls,
        our_id: ValidatorId,
        signing_key: SigningKey,
        section: Section,
        *,
        prune_margin: int = DEFAULT_PRUNE_MARGIN,
    ) -> Parsec:
        """Join a section that already runs: start at the epoch that added us (see ``Section``)."""
        if our_id not in section.validators:
            raise NotAValidator("join only once the membership change adding us is agreed")
        return cls(our_id, signing_key, section, prune_margin=prune_margin)

    # ----- the application's side ----------------------------------------------------------

    def section(self) -> Section:
        """What a validator needs to join at our current epoch (``from_existing``): the shell
        hands it over, with the agreed blocks that justify it, when the addition is agreed."""
        return Section(self.epoch, self.validators, BlockHeight(self._height), self._previous_hash)

    def vote_for(self, observation: Observation, *, drive_alone: bool = True) -> None:
        """Queue ``observation`` for the next own event. A section of one decides at once unless
        ``drive_alone`` is false (a shell voting many in a row, which then calls ``poll``):
        otherwise every vote would become its own block."""
        data = observation_bytes(observation)
        digest = ObservationHash(sha256(data))
        if digest in self._own_unagreed or digest in self._agreed:
            raise DuplicateVote("this observation is already voted or agreed")
        self._own_unagreed[digest] = data
        self._pending.append(data)
        self._pending_hashes.append(digest)
        if drive_alone and self.validators == (self.our_id,):
            self._drive_alone()

    def poll(self) -> Block | None:
        """The next agreed block once more than 2/3 of its validators have signed it."""
        if self.validators == (self.our_id,):
            self._drive_alone()
        block = self._built.get(self._next_poll)
        if block is None:
            return None
        validators = self._block_validators[self._next_poll]
        signatures = self._signatures.get(self._next_poll, {})
        if 3 * len(signatures) <= 2 * len(validators):
            return None
        del self._built[self._next_poll]
        del self._signatures[self._next_poll]
        del self._block_validators[self._next_poll]
        self._next_poll += 1
        return Block(
            height=block.height,
            previous_hash=block.previous_hash,
            epoch=block.epoch,
            round=block.round,
            observations=block.observations,
            merkle_root=block.merkle_root,
            signatures=tuple(
                ValidatorSignature(who, signature) for who, signature in sorted(signatures.items())
            ),
        )

    def accusations(self) -> tuple[Accusation, ...]:
        """Every proven malice this peer knows of (found itself or checked from others)."""
        return tuple(self._accusations.values())

    def malicious_peers(self) -> set[ValidatorId]:
        return {offender for offender, _ in self._accusations}

    @property
    def is_validator(self) -> bool:
        return self.our_id in self.validators

    def has_unfinished_work(self) -> bool:
        """True while something voted or built here still waits for consensus or signatures."""
        return bool(self._own_unagreed or self._built or self.graph.unordered_content)

    def own_chain_head(self) -> tuple[Epoch, int, EventId | None] | None:
        """(epoch, events in our chain, our newest event id), None when we are not a validator.

        A write-ahead log replayed on a snapshot must arrive at the same head: the id commits to
        the whole chain through self-parents, so an equal head means no event would be signed
        twice at one position."""
        slot = self.graph.slot_of.get(self.our_id)
        if slot is None:
            return None
        return self.epoch, self.graph.count[slot], self.graph.newest[slot]

    def carry_peer_views(self, other: Parsec) -> None:
        """Take over what ``other`` believes its peers hold (known vectors, epochs).

        For a shell that swaps its live instance for ``restore(snapshot())``: without this the
        next request to each peer would carry the whole graph. Only what we *send* depends on
        these views, never what we sign, so a replay from the snapshot still signs the same
        events."""
        self._peer_known = dict(other._peer_known)
        self._peer_epoch = dict(other._peer_epoch)

    # ----- gossip --------------------------------------------------------------------------

    def create_gossip(self, peer: ValidatorId) -> Request:
        if peer == self.our_id:
            raise ValueError("gossip goes to another peer")
        epoch, graph = self._graph_for_peer(peer)
        known = self._peer_known.get((peer, epoch), ())
        wants = self._take_wants(peer)
        events = graph.events_for_peer(known, self._peer_wants.pop(peer, set()))
        # Optimistic: assume the peer will hold what we send; its next message corrects us.
        self._peer_known[(peer, epoch)] = graph.known_vector()
        return self._signed(Request, peer, epoch, graph.known_vector(), wants, events)

    def handle_request(self, peer: ValidatorId, request: Request) -> Response:
        self._check_message(peer, request, Request)
        self._peer_epoch[peer] = request.sender_epoch
        self._peer_known[(peer, request.epoch)] = request.known
        if request.epoch == self.epoch:
            self._receive(peer, request)
        served = self._graph_of_epoch(request.epoch)
        if served is None:
            # Their epoch is ahead of ours (we lag) or long gone: tell them where we are.
            return self._signed(Response, peer, self.epoch, self.graph.known_vector(), (), [])
        epoch, graph = served
        wants = self._take_wants(peer) if epoch == self.epoch else ()
        events = graph.events_for_peer(request.known, set(request.wants) | self._peer_wants.pop(peer, set()))
        return self._signed(Response, peer, epoch, graph.known_vector(), wants, events)

    def handle_response(self, peer: ValidatorId, response: Response) -> None:
        self._check_message(peer, response, Response)
        self._peer_epoch[peer] = response.sender_epoch
        self._peer_known[(peer, response.epoch)] = response.known
        if response.epoch == self.epoch:
            if response.wants:
                # Only ids we hold are worth remembering: a peer cannot grow this set at will.
                held = [item for item in response.wants[:MAX_EVENTS_PER_MESSAGE] if item in self.graph]
                self._peer_wants.setdefault(peer, set()).update(held)
            self._receive(peer, response)

    # ----- internals: messages -------------------------------------------------------------

    def _graph_for_peer(self, peer: ValidatorId) -> tuple[Epoch, Graph]:
        peer_epoch = self._peer_epoch.get(peer, self.epoch)
        served = self._graph_of_epoch(Epoch(peer_epoch))
        return served if served is not None else (self.epoch, self.graph)

    def _graph_of_epoch(self, epoch: Epoch) -> tuple[Epoch, Graph] | None:
        if epoch == self.epoch:
            return self.epoch, self.graph
        if self._previous is not None and self._previous[0] == epoch:
            return self._previous
        return None

    def _take_wants(self, peer: ValidatorId) -> tuple[EventId, ...]:
        missing = self._missing_from.pop(peer, set())
        return tuple(sorted(item for item in missing if item not in self.graph))

    def _signed(
        self,
        cls: type[MessageT],
        peer: ValidatorId,
        epoch: Epoch,
        known: tuple[int, ...],
        wants: tuple[EventId, ...],
        events: list[Event],
    ) -> MessageT:
        header = _header(cls.KIND, self.our_id, peer, epoch, known, wants, tuple(events), self.epoch)
        signature = sign(self._key, MESSAGE_KIND, header)
        return cls(self.our_id, peer, epoch, known, wants, tuple(events), signature, self.epoch)

    def _known_validators(self) -> set[ValidatorId]:
        known = set(self.validators)
        if self._previous is not None:
            known.update(self._previous[1].validators)
        return known

    def _check_message(self, peer: ValidatorId, message: object, expected: type[_Message]) -> None:
        """Refuse what cannot be attributed: wrong type, wrong parties, bad message signature."""
        if not isinstance(message, expected):
            raise MalformedMessage(f"expected a {expected.KIND}")
        if message.sender != peer or message.recipient != self.our_id:
            raise MalformedMessage("the message names other parties")
        if peer not in self._known_validators():
            raise NotAValidator("the sender is not a validator")
        if len(message.events) > MAX_EVENTS_PER_MESSAGE:
            raise MalformedMessage("too many events in one message")
        try:
            header = message.header()
        except (AttributeError, TypeError, ValueError) as error:
            raise MalformedMessage(f"message cannot be encoded: {error}") from error
        if not isinstance(message.signature, bytes) or not is_valid(
            peer, MESSAGE_KIND, header, message.signature
        ):
            raise InvalidMessageSignature("the message is not signed by its sender")

    def _accuse_message(self, peer: ValidatorId, message: _Message, bad: Event) -> None:
        try:
            evidence = {
                "header": message.header(),
                "signature": message.signature.hex(),
                "event_signatures": [event.signature.hex() for event in message.events],
                "event": bad.to_wire(),
            }
        except (AttributeError, TypeError, ValueError):
            return  # evidence that cannot even be written down proves nothing
        self._record(make_accusation(MaliceKind.INVALID_EVENT_IN_MESSAGE, peer, evidence), ours=True)

    # ----- internals: events ---------------------------------------------------------------

    def _receive(self, peer: ValidatorId, message: _Message) -> None:
        before = self.graph.known_vector()
        for event in message.events:
            if not isinstance(event, Event):
                break
            if event.epoch != self.epoch or self.graph.known_event(event):
                continue
            try:
                event_id = checked_event_id(event)
            except (BadSignature, MalformedMessage, TypeError, ValueError, AttributeError):
                # A correct peer checks every event before passing it on, so the sender, who
                # signed this message, is to blame; the rest of the message is not trusted.
                if isinstance(event.signature, bytes):
                    self._accuse_message(peer, message, event)
                break
            # Checked after the signature, so an invalid event is accused even when it is old.
            if event_id in self.graph or event_id in self._orphans or self.graph.is_below_horizon(event):
                continue
            self._insert(peer, event, event_id)
        self._retry_orphans()
        received_new = self.graph.known_vector() != before
        other_parent = self.graph.newest[self.graph.slot_of[peer]] if peer in self.graph.slot_of else None
        if self.is_validator and (
            self._has_own_content() or (received_new and self.graph.unordered_content > 0)
        ):
            self._create_own_event(other_parent)
        epoch = self.epoch
        self._decide()
        if self.is_validator and self.epoch == epoch and self._signatures_to_send:
            # A block was built just now: our signature on it goes into an event at once, so it
            # leaves with the answer to this very message (and the rounds started after it)
            # instead of waiting for the next message to arrive, a gossip hop later. A block is
            # certified only with more than 2/3 of the signatures, so this hop was on every
            # payload's path. (After an epoch cut the signature waits for the new graph's
            # first event: the other-parent belongs to the old graph.)
            self._create_own_event(other_parent)
            self._decide()

    def _insert(self, peer: ValidatorId, event: Event, event_id: EventId) -> bool:
        hashes = tuple(ObservationHash(sha256(item)) for item in event.observations)
        try:
            malice = self.graph.insert(event, event_id, hashes)
        except MissingParent as missing:
            if len(self._orphans) >= MAX_ORPHANS:
                self._orphans.pop(next(iter(self._orphans)))
            self._orphans[event_id] = event
            self._missing_from.setdefault(peer, set()).add(missing.missing)
            return False
        except MalformedMessage:
            return False
        for found in malice:
            self._record(
                accusation_from_events(found.kind, found.offender, found.events, found.observation), ours=True
            )
        if event_id not in self.graph:
            return False  # refused (bad parents): the accusation above is all that remains of it
        for accusation in event.accusations:
            if check_accusation(accusation):
                self._record(accusation, ours=False)
            else:
                self._record(
                    accusation_from_events(MaliceKind.FALSE_ACCUSATION.value, event.creator, (event,), None),
                    ours=True,
                )
        for block_signature in event.block_signatures:
            self._collect_signature(event.creator, block_signature)
        return True

    def _retry_orphans(self) -> None:
        progress = True
        while progress and self._orphans:
            progress = False
            for event_id, event in list(self._orphans.items()):
                parents = (event.self_parent, event.other_parent)
                if all(parent is None or parent in self.graph for parent in parents):
                    del self._orphans[event_id]
                    if self._insert(event.creator, event, event_id):
                        progress = True

    def _has_own_content(self) -> bool:
        return bool(self._pending or self._signatures_to_send or self._to_accuse)

    def _create_own_event(self, other_parent: EventId | None) -> None:
        slot = self.graph.slot_of[self.our_id]
        observations = tuple(self._pending[:MAX_BATCH])
        hashes = tuple(self._pending_hashes[:MAX_BATCH])
        # Signatures and accusations are capped per event like observations (the wire format
        # refuses more): a peer catching up builds many blocks between two of its events, and
        # an event over the cap could not even be signed, so it never made another one. The
        # rest goes in the next events (``_has_own_content`` stays true until it has).
        block_signatures = tuple(self._signatures_to_send[:MAX_BLOCK_SIGNATURES_PER_EVENT])
        accusations = tuple(self._to_accuse[:MAX_ACCUSATIONS_PER_EVENT])
        event, event_id = create_event(
            self._key,
            epoch=self.epoch,
            index=self.graph.count[slot],
            self_parent=self.graph.newest[slot],
            other_parent=other_parent,
            observations=observations,
            block_signatures=block_signatures,
            accusations=accusations,
        )
        del self._pending[:MAX_BATCH]
        del self._pending_hashes[:MAX_BATCH]
        del self._signatures_to_send[: len(block_signatures)]
        del self._to_accuse[: len(accusations)]
        self.graph.insert(event, event_id, hashes)

    def _drive_alone(self) -> None:
        # A section of one has nobody to gossip with: its own events are the whole graph, and
        # three of them decide a round (witness, voter, decider).
        for _ in range(8):
            if not (self._has_own_content() or self.graph.unordered_content):
                break
            self._create_own_event(None)
            self._decide()

    # ----- internals: accusations ----------------------------------------------------------

    def _record(self, accusation: Accusation, *, ours: bool) -> None:
        key = (accusation.offender, accusation.kind)
        if key in self._accusations:
            return
        self._accusations[key] = accusation
        if ours:
            self._to_accuse.append(accusation)

    # ----- internals: blocks ---------------------------------------------------------------

    def _collect_signature(self, signer: ValidatorId, item: BlockSignature) -> None:
        height = int(item.height)
        block = self._built.get(height)
        if block is not None:
            if (
                signer in self._block_validators[height]
                and item.block_hash == block.hash
                and is_valid(signer, "block", block.header(), item.signature)
            ):
                self._signatures.setdefault(height, {})[signer] = item.signature
        elif self._height <= height < self._height + EARLY_SIGNATURE_WINDOW:
            self._early_signatures.setdefault(height, {})[signer] = (item.block_hash, item.signature)

    def _decide(self) -> None:
        for ordered in self.graph.decide():
            if self._build_block(ordered):
                break  # the epoch ended with this block; later rounds of the old graph are void

    def _build_block(self, ordered: OrderedRound) -> bool:
        observations: list[Observation] = []
        membership_changed = False
        seen_here: set[ObservationHash] = set()
        for event, hashes in zip(ordered.events, ordered.observation_hashes, strict=True):
            for data, digest in zip(event.observations, hashes, strict=True):
                if digest in self._agreed or digest in seen_here:
                    continue
                seen_here.add(digest)
                observation = observation_from_bytes(data)
                observations.append(observation)
                membership_changed |= isinstance(observation, AddValidator | RemoveValidator)
                self._own_unagreed.pop(digest, None)
        if not observations:
            return False
        height = self._height
        block = build_block(
            height=BlockHeight(height),
            previous_hash=self._previous_hash,
            epoch=self.epoch,
            round_number=Round(ordered.round),
            observations=tuple(observations),
        )
        for digest in seen_here:
            self._agreed[digest] = height
        self._forget_old_agreed(height)
        self._built[height] = block
        self._block_validators[height] = self.validators
        self._height += 1
        self._previous_hash = block.hash
        signatures = self._signatures.setdefault(height, {})
        for signer, (block_hash, signature) in self._early_signatures.pop(height, {}).items():
            if (
                signer in self.validators
                and block_hash == block.hash
                and is_valid(signer, "block", block.header(), signature)
            ):
                signatures[signer] = signature
        if self.is_validator:
            own = sign_block(self._key, block)
            signatures[self.our_id] = own
            self._signatures_to_send.append(BlockSignature(BlockHeight(height), block.hash, own))
        if membership_changed:
            self._start_epoch(block)
            return True
        return False

    def _forget_old_agreed(self, height: int) -> None:
        if len(self._agreed) > 4 * AGREED_WINDOW_BLOCKS and height % 64 == 0:
            floor = height - AGREED_WINDOW_BLOCKS
            self._agreed = {digest: at for digest, at in self._agreed.items() if at >= floor}

    def _start_epoch(self, block: Block) -> None:
        validators = list(self.validators)
        for observation in block.observations:
            if isinstance(observation, AddValidator) and observation.validator not in validators:
                validators.append(observation.validator)
            elif isinstance(observation, RemoveValidator) and observation.validator in validators:
                validators.remove(observation.validator)
        self._previous = (self.epoch, self.graph)
        self.epoch = Epoch(self.epoch + 1)
        self.validators = tuple(sorted(validators))
        self.graph = Graph(self.validators or (self.our_id,), prune_margin=self._prune_margin)
        self._orphans.clear()
        self._missing_from.clear()
        self._peer_wants.clear()
        # Our observations the old epoch never agreed are voted again in the new one.
        self._pending = list(self._own_unagreed.values())
        self._pending_hashes = list(self._own_unagreed.keys())

    # ----- persistence ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable image of this peer; persist it after every state change (before
        sending what the change produced), so a restart can never sign a second event at one
        position of our chain, which every peer would rightly report as a fork."""
        if self._previous is not None:
            previous: dict[str, Any] | None = {
                "epoch": self._previous[0],
                "graph": self._previous[1].export(),
            }
        else:
            previous = None
        return {
            "version": 1,
            "our_id": self.our_id.hex(),
            "epoch": self.epoch,
            "validators": [item.hex() for item in self.validators],
            "prune_margin": self._prune_margin,
            "graph": self.graph.export(),
            "previous": previous,
            "pending": [item.hex() for item in self._pending],
            "own_unagreed": [item.hex() for item in self._own_unagreed.values()],
            "agreed": {digest.hex(): height for digest, height in self._agreed.items()},
            "height": self._height,
            "previous_hash": self._previous_hash.hex(),
            "next_poll": self._next_poll,
            "built": [
                _block_to_json(block, self._block_validators[height]) for height, block in self._built.items()
            ],
            "signatures": {
                str(height): {who.hex(): sig.hex() for who, sig in by.items()}
                for height, by in self._signatures.items()
            },
            "early_signatures": {
                str(height): {who.hex(): [h.hex(), s.hex()] for who, (h, s) in by.items()}
                for height, by in self._early_signatures.items()
            },
            "signatures_to_send": [item.to_wire() for item in self._signatures_to_send],
            "accusations": [item.to_wire() for item in self._accusations.values()],
            "to_accuse": [item.to_wire() for item in self._to_accuse],
        }

    @classmethod
    def restore(cls, signing_key: SigningKey, snapshot: dict[str, Any]) -> Parsec:
        """Resume from :meth:`snapshot` after a crash (the crash-restart path of ``from_existing``)."""
        try:
            if snapshot.get("version") != 1:
                raise SnapshotError("unknown snapshot version")
            our_id = ValidatorId(bytes.fromhex(snapshot["our_id"]))
            validators = tuple(ValidatorId(bytes.fromhex(item)) for item in snapshot["validators"])
            section = Section(
                Epoch(int(snapshot["epoch"])),
                validators,
                BlockHeight(int(snapshot["next_poll"])),
                bytes.fromhex(snapshot["previous_hash"]),
            )
            parsec = cls(our_id, signing_key, section, prune_margin=int(snapshot["prune_margin"]))
            parsec.validators = validators
            parsec.graph = Graph.restore(snapshot["graph"])
            if snapshot["previous"] is not None:
                parsec._previous = (
                    Epoch(int(snapshot["previous"]["epoch"])),
                    Graph.restore(snapshot["previous"]["graph"]),
                )
            parsec._pending = [bytes.fromhex(item) for item in snapshot["pending"]]
            parsec._pending_hashes = [ObservationHash(sha256(item)) for item in parsec._pending]
            unagreed = [bytes.fromhex(item) for item in snapshot["own_unagreed"]]
            parsec._own_unagreed = {ObservationHash(sha256(item)): item for item in unagreed}
            parsec._agreed = {
                ObservationHash(bytes.fromhex(k)): int(v) for k, v in snapshot["agreed"].items()
            }
            parsec._height = int(snapshot["height"])
            parsec._next_poll = int(snapshot["next_poll"])
            for item in snapshot["built"]:
                block, block_validators = _block_from_json(item)
                parsec._built[int(block.height)] = block
                parsec._block_validators[int(block.height)] = block_validators
            parsec._signatures = {
                int(height): {ValidatorId(bytes.fromhex(w)): bytes.fromhex(s) for w, s in by.items()}
                for height, by in snapshot["signatures"].items()
            }
            parsec._early_signatures = {
                int(height): {
                    ValidatorId(bytes.fromhex(w)): (bytes.fromhex(h), bytes.fromhex(s))
                    for w, (h, s) in by.items()
                }
                for height, by in snapshot["early_signatures"].items()
            }
            parsec._signatures_to_send = [
                BlockSignature.from_wire(item) for item in snapshot["signatures_to_send"]
            ]
            for item in snapshot["accusations"]:
                accusation = Accusation.from_wire(item)
                parsec._accusations[(accusation.offender, accusation.kind)] = accusation
            parsec._to_accuse = [Accusation.from_wire(item) for item in snapshot["to_accuse"]]
        except (KeyError, TypeError, ValueError, MalformedMessage) as error:
            raise SnapshotError(f"snapshot cannot be restored: {error}") from error
        if bytes(parsec.our_id) != bytes(signing_key.public_key):
            raise SnapshotError("the snapshot belongs to another key")
        return parsec


def _block_to_json(block: Block, validators: tuple[ValidatorId, ...]) -> dict[str, Any]:
    return {
        "height": block.height,
        "previous": block.previous_hash.hex(),
        "epoch": block.epoch,
        "round": block.round,
        "observations": [observation_bytes(item).hex() for item in block.observations],
        "validators": [item.hex() for item in validators],
    }


def _block_from_json(data: dict[str, Any]) -> tuple[Block, tuple[ValidatorId, ...]]:
    block = build_block(
        height=BlockHeight(int(data["height"])),
        previous_hash=bytes.fromhex(data["previous"]),
        epoch=Epoch(int(data["epoch"])),
        round_number=Round(int(data["round"])),
        observations=tuple(observation_from_bytes(bytes.fromhex(item)) for item in data["observations"]),
    )
    return block, tuple(ValidatorId(bytes.fromhex(item)) for item in data["validators"])
