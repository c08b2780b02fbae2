"""The gossip graph and virtual voting: rounds, witnesses, fame, and the consensus order.

The rules follow the published hashgraph / PARSEC idea (Baird 2016, "The Swirlds Hashgraph
Consensus Algorithm"; Maidsafe's PARSEC whitepaper), written here from the definitions:

* ``x`` *sees* ``y`` when ``y`` is an ancestor of ``x`` and ``x``'s ancestry holds no fork by
  ``y``'s creator. A forker's events are invisible to anyone who has seen both branches, which
  is why a forker cannot make two correct peers decide differently.
* ``x`` *strongly sees* ``y`` when more than 2/3 of the validators each have an event that ``x``
  sees and that sees ``y``. Any two such sets of validators overlap in a correct one.
* An event's *round* is its parents' highest round, plus one when it strongly sees more than 2/3
  of that round's *witnesses* (first events of their creators in a round).
* A witness is *famous* when the next rounds' witnesses decide so by virtual voting: round r+1
  votes "I see it", later rounds vote the majority of the witnesses they strongly see and decide
  on a > 2/3 majority. Every ``COIN_ROUND_PERIOD``-th round votes by coin (a bit of the voter's
  signature) when there is no supermajority: the coin is what makes termination possible under an
  adversarial scheduler, where a deterministic rule can be kept split forever (FLP).
* When every witness of round r is decided, the events that are ancestors of every *unique*
  famous witness of round r (one famous witness per creator; a forker with two gets none) and of
  no earlier round's are *received* in round r, and are ordered by generation (a topological
  order) and then by id whitened with the famous witnesses, which no single creator controls.

Everything a result depends on is in the ancestry of the event it is computed for, and the
ancestry is complete when an event is inserted (parents first), so every correct peer computes
the same rounds, votes and order from whatever part of the graph it holds.

Memory stays bounded: once round r is ordered, events of rounds below ``r - prune_margin`` are
dropped (except each creator's newest event, which the next self-parent must name).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from consensus.protocol.event import Event
from consensus.protocol.types import (
    EventId,
    MalformedMessage,
    ObservationHash,
    ValidatorId,
)
from settlement.protocol.encoding import sha256

COIN_ROUND_PERIOD = 10
DEFAULT_PRUNE_MARGIN = 16
STALE_ROUNDS = 256


class MissingParent(MalformedMessage):
    """A parent is not in the graph (not yet received, or pruned): the event waits or is dropped."""

    def __init__(self, missing: EventId) -> None:
        super().__init__(f"parent {missing.hex()[:16]} is unknown")
        self.missing = missing


@dataclass(frozen=True)
class StructuralMalice:
    """A rule broken by an inserted event, with the events that prove it (see ``malice.py``)."""

    kind: str
    offender: ValidatorId
    events: tuple[Event, ...]
    observation: bytes | None = None


class _Record:
    """What this peer computed about one event. Mutable bookkeeping, private to the graph."""

    __slots__ = (
        "event",
        "famous",
        "forked",
        "generation",
        "id",
        "index",
        "last",
        "observation_hashes",
        "ordered",
        "other_parent",
        "round",
        "self_parent",
        "seq",
        "slot",
        "strongly_seen",
        "tips",
        "votes",
        "witness",
    )

    def __init__(self, event: Event, event_id: EventId, slot: int) -> None:
        self.event = event
        self.id = event_id
        self.slot = slot
        self.index = event.index
        self.self_parent = event.self_parent
        self.other_parent = event.other_parent
        self.seq = 0
        self.round = 0
        self.witness = False
        self.famous: bool | None = None
        self.generation = 0
        # tips[c]: id of the highest-index event by validator c in this event's ancestry (itself
        # included); last[c] its index, -1 when there is none. Ids, not records, so that a pruned
        # record is freed even when newer events still mention it.
        self.tips: list[EventId | None] = []
        self.last: list[int] = []
        self.forked: frozenset[int] = frozenset()
        self.ordered = False
        self.strongly_seen: list[EventId] | None = None
        self.votes: dict[EventId, bool] = {}
        self.observation_hashes: tuple[ObservationHash, ...] = ()


@dataclass
class OrderedRound:
    """The events received in one decided round, in consensus order."""

    round: int
    events: list[Event] = field(default_factory=list)
    observation_hashes: list[tuple[ObservationHash, ...]] = field(default_factory=list)


class Graph:
    """The gossip graph of one epoch (one validator set)."""

    def __init__(
        self, validators: tuple[ValidatorId, ...], *, prune_margin: int = DEFAULT_PRUNE_MARGIN
    ) -> None:
        if not validators:
            raise ValueError("a graph needs at least one validator")
        self.validators = validators
        self.n = len(validators)
        self.slot_of = {validator: slot for slot, validator in enumerate(validators)}
        self.prune_margin = prune_margin
        self.records: dict[EventId, _Record] = {}
        self.by_position: dict[tuple[int, int], list[EventId]] = {}
        self.forkers: set[int] = set()
        self.witnesses: dict[int, list[EventId]] = {}
        self.round_members: dict[int, list[EventId]] = {}
        self.newest: list[EventId | None] = [None] * self.n
        self.count: list[int] = [0] * self.n
        self.pruned_index: list[int] = [-1] * self.n
        self.decided_round = -1
        self.max_round = -1
        self.pruned_below = 0
        self.unordered_content = 0
        self._seq = 0
        self._votes_seen: dict[tuple[int, ObservationHash], EventId] = {}
        self._by_signature: dict[bytes, EventId] = {}

    # ----- queries -------------------------------------------------------------------------

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def known_event(self, event: Event) -> bool:
        """Do we hold exactly this event? Checked by signature before any costly hashing."""
        event_id = self._by_signature.get(event.signature)
        return event_id is not None and event_id in self.records and self.records[event_id].event == event

    def event(self, event_id: EventId) -> Event:
        return self.records[event_id].event

    def round_of(self, event_id: EventId) -> int:
        return self.records[event_id].round

    def known_vector(self) -> tuple[int, ...]:
        return tuple(self.count)

    def _records_after(self, known: tuple[int, ...] | list[int]) -> list[_Record]:
        """Our events a peer lacks, judged by its known vector.

        A forker's other branch hides behind an index the peer already holds; the peer finds
        it missing as a parent and asks for it by id (``wants``), so it is not sent blindly.
        """
        picked: list[_Record] = []
        for slot in range(self.n):
            start = known[slot] if slot < len(known) else 0
            for index in range(max(start, 0), self.count[slot]):
                for event_id in self.by_position.get((slot, index), ()):
                    picked.append(self.records[event_id])
        return picked

    def events_for_peer(self, known: tuple[int, ...] | list[int], wanted: Iterable[EventId]) -> list[Event]:
        """``events_after(known)`` plus the events the peer asked for by id, parents first."""
        picked = {record.id: record for record in self._records_after(known)}
        for event_id in wanted:
            record = self.records.get(event_id)
            if record is not None:
                picked[event_id] = record
        return [record.event for record in sorted(picked.values(), key=lambda record: record.seq)]

    # ----- ancestry ------------------------------------------------------------------------

    def _on_chain(self, tip: EventId | None, target: _Record) -> bool:
        """Is ``target`` on the self-parent chain that ends at ``tip``? Walks only for forkers."""
        current = self.records.get(tip) if tip is not None else None
        while current is not None and current.index > target.index:
            current = self.records.get(current.self_parent) if current.self_parent else None
        # A walk that runs into a pruned event cannot prove ancestry; say no, on every peer alike
        # (pruning happens at the same decided rounds everywhere, long after these rounds matter).
        return current is not None and current.id == target.id

    def _is_ancestor(self, tips: list[EventId | None], last: list[int], target: _Record) -> bool:
        slot = target.slot
        if last[slot] < target.index:
            return False
        if slot not in self.forkers:
            return True  # one event per position in the whole graph: position implies identity
        return self._on_chain(tips[slot], target)

    def _sees(self, record: _Record, target: _Record) -> bool:
        return target.slot not in record.forked and self._is_ancestor(record.tips, record.last, target)

    def _middles(self, record: _Record) -> list[_Record]:
        """The newest ancestor by each creator: the only events through which ``record`` can
        strongly see anything (a creator's older events see less than its newest one)."""
        records = self.records
        return [middle for tip in record.tips if tip is not None and (middle := records.get(tip)) is not None]

    def _strongly_sees(self, record: _Record, target: _Record, middles: list[_Record]) -> bool:
        slot, index = target.slot, target.index
        if slot in record.forked or not self._is_ancestor(record.tips, record.last, target):
            return False
        if slot in self.forkers:
            through = sum(1 for middle in middles if self._sees(middle, target))
        else:
            # Hot path (no fork by the target's creator anywhere): seeing is an index comparison.
            through = sum(1 for middle in middles if middle.last[slot] >= index and slot not in middle.forked)
        return 3 * through > 2 * self.n

    # ----- insertion -----------------------------------------------------------------------

    def insert(
        self, event: Event, event_id: EventId, observation_hashes: tuple[ObservationHash, ...]
    ) -> list[StructuralMalice]:
        """Add a verified event (signature already checked) and compute its round.

        Raises :class:`MissingParent` when a parent is not here, :class:`MalformedMessage` when
        the event cannot be placed at all. Returns the provable malice it shows; an event that
        forks is still inserted, because correct peers will build on it and the graph must stay
        the same on every peer.
        """
        if event_id in self.records:
            return []
        slot = self.slot_of.get(event.creator)
        if slot is None:
            raise MalformedMessage("the creator is not a validator of this epoch")
        malice: list[StructuralMalice] = []
        self_parent = self.records.get(event.self_parent) if event.self_parent else None
        other_parent = self.records.get(event.other_parent) if event.other_parent else None
        if event.self_parent is not None and self_parent is None:
            raise MissingParent(event.self_parent)
        if event.other_parent is not None and other_parent is None:
            raise MissingParent(event.other_parent)
        if (event.index == 0) != (event.self_parent is None) or (
            self_parent is not None and (self_parent.slot != slot or self_parent.index != event.index - 1)
        ):
            evidence = (event,) if self_parent is None else (event, self_parent.event)
            return [StructuralMalice("bad-self-parent", event.creator, evidence)]
        if other_parent is not None and other_parent.slot == slot:
            return [
                StructuralMalice("other-parent-by-same-creator", event.creator, (event, other_parent.event))
            ]

        position = (slot, event.index)
        siblings = self.by_position.setdefault(position, [])
        if siblings:
            self.forkers.add(slot)
            malice.append(StructuralMalice("fork", event.creator, (self.records[siblings[0]].event, event)))
        siblings.append(event_id)

        seen_in_event: set[ObservationHash] = set()
        for position_in_event, observation in enumerate(observation_hashes):
            earlier = self._votes_seen.get((slot, observation))
            if observation in seen_in_event:
                malice.append(
                    StructuralMalice(
                        "duplicate-vote", event.creator, (event,), event.observations[position_in_event]
                    )
                )
            elif earlier is not None and earlier in self.records:
                malice.append(
                    StructuralMalice(
                        "duplicate-vote",
                        event.creator,
                        (self.records[earlier].event, event),
                        event.observations[position_in_event],
                    )
                )
            seen_in_event.add(observation)
            self._votes_seen.setdefault((slot, observation), event_id)

        record = _Record(event, event_id, slot)
        record.observation_hashes = observation_hashes
        self._place(record, self_parent, other_parent)
        return malice

    def _place(self, record: _Record, self_parent: _Record | None, other_parent: _Record | None) -> None:
        n = self.n
        forked: set[int] = set()
        if self_parent is None and other_parent is None:
            tips: list[EventId | None] = [None] * n
            last = [-1] * n
        elif other_parent is None or self_parent is None:
            parent = self_parent or other_parent
            assert parent is not None
            tips, last = list(parent.tips), list(parent.last)
            forked.update(parent.forked)
        else:
            tips, last = list(self_parent.tips), list(self_parent.last)
            forked.update(self_parent.forked, other_parent.forked)
            for slot in range(n):
                theirs = other_parent.last[slot]
                if theirs < 0:
                    continue
                ours = last[slot]
                if slot in self.forkers and slot not in forked and ours >= 0:
                    # Two views of one creator's chain must be one chain; otherwise the creator
                    # forked inside this ancestry and this event will not see its events.
                    high_tip, low_tip = (
                        (other_parent.tips[slot], tips[slot])
                        if theirs >= ours
                        else (tips[slot], other_parent.tips[slot])
                    )
                    low = self.records.get(low_tip) if low_tip else None
                    if low is None or not self._on_chain(high_tip, low):
                        forked.add(slot)
                if theirs > ours:
                    tips[slot], last[slot] = other_parent.tips[slot], theirs
        slot = record.slot
        if last[slot] >= record.index:
            forked.add(slot)  # an ancestor by our creator at our index or above: a fork we descend from
        tips[slot], last[slot] = record.id, record.index
        record.tips, record.last, record.forked = tips, last, frozenset(forked)
        # In the graph before its round is computed: ancestry walks that start at this event
        # (for a forker's events) must find it, exactly as they would once it is inserted.
        self.records[record.id] = record

        parents = [parent for parent in (self_parent, other_parent) if parent is not None]
        record.generation = 1 + max((parent.generation for parent in parents), default=-1)
        parent_round = max((parent.round for parent in parents), default=0)
        strongly_seen = 0
        seen_slots: set[int] = set()
        middles = self._middles(record)
        for witness_id in self.witnesses.get(parent_round, ()):
            witness = self.records.get(witness_id)
            if witness is None or witness.slot in seen_slots:
                continue
            if self._strongly_sees(record, witness, middles):
                seen_slots.add(witness.slot)
                strongly_seen += 1
                if 3 * strongly_seen > 2 * self.n:
                    break  # enough to advance; the rest cannot change the round
        record.round = parent_round + 1 if parents and 3 * strongly_seen > 2 * self.n else parent_round
        record.witness = self_parent is None or record.round > self_parent.round

        self._seq += 1
        record.seq = self._seq
        self._by_signature[record.event.signature] = record.id
        self.round_members.setdefault(record.round, []).append(record.id)
        if record.witness:
            self.witnesses.setdefault(record.round, []).append(record.id)
        self.max_round = max(self.max_round, record.round)
        if record.index >= self.count[slot]:
            self.count[slot] = record.index + 1
            self.newest[slot] = record.id
        if _has_content(record.event):
            self.unordered_content += 1

    # ----- virtual voting ------------------------------------------------------------------

    def _strongly_seen_witnesses(self, voter: _Record) -> list[EventId]:
        if voter.strongly_seen is None:
            chosen = []
            middles = self._middles(voter)
            for witness_id in self.witnesses.get(voter.round - 1, ()):
                witness = self.records.get(witness_id)
                if witness is not None and self._strongly_sees(voter, witness, middles):
                    chosen.append(witness_id)
            voter.strongly_seen = chosen
        return voter.strongly_seen

    def _decide_witness(self, candidate: _Record) -> None:
        for voting_round in range(candidate.round + 1, self.max_round + 1):
            distance = voting_round - candidate.round
            for voter_id in self.witnesses.get(voting_round, ()):
                voter = self.records.get(voter_id)
                if voter is None or candidate.id in voter.votes:
                    continue
                if distance == 1:
                    voter.votes[candidate.id] = self._sees(voter, candidate)
                    continue
                yes = no = 0
                for seen_id in self._strongly_seen_witnesses(voter):
                    seen = self.records.get(seen_id)
                    if seen is None:
                        continue
                    if seen.votes.get(candidate.id, False):
                        yes += 1
                    else:
                        no += 1
                majority = yes >= no
                supermajority = 3 * max(yes, no) > 2 * self.n
                if distance % COIN_ROUND_PERIOD != 0:
                    if supermajority:
                        candidate.famous = majority
                        return
                    voter.votes[candidate.id] = majority
                else:
                    voter.votes[candidate.id] = majority if supermajority else _coin(voter.event)

    def decide(self) -> list[OrderedRound]:
        """Decide what the graph now allows; return the newly ordered rounds, oldest first."""
        decided: list[OrderedRound] = []
        while True:
            round_number = self.decided_round + 1
            witnesses = self.witnesses.get(round_number)
            if not witnesses or round_number + 1 > self.max_round:
                break
            undecided = False
            for witness_id in witnesses:
                witness = self.records[witness_id]
                if witness.famous is None:
                    self._decide_witness(witness)
                if witness.famous is None:
                    undecided = True
            if undecided:
                break
            decided.append(self._order_round(round_number))
            self.decided_round = round_number
            self._prune()
        return decided

    def _order_round(self, round_number: int) -> OrderedRound:
        famous_by_slot: dict[int, list[_Record]] = {}
        for witness_id in self.witnesses[round_number]:
            witness = self.records[witness_id]
            if witness.famous:
                famous_by_slot.setdefault(witness.slot, []).append(witness)
        unique_famous = [found[0] for found in famous_by_slot.values() if len(found) == 1]
        result = OrderedRound(round_number)
        if not unique_famous:
            return result
        received: list[_Record] = []
        stack = [unique_famous[0]]
        visited: set[EventId] = set()
        while stack:
            record = stack.pop()
            if record.id in visited or record.ordered:
                continue
            visited.add(record.id)
            if all(self._is_ancestor(famous.tips, famous.last, record) for famous in unique_famous):
                received.append(record)
            for parent_id in (record.self_parent, record.other_parent):
                parent = self.records.get(parent_id) if parent_id else None
                if parent is not None and not parent.ordered:
                    stack.append(parent)
        whitening = sha256(b"".join(sorted(famous.event.signature for famous in unique_famous)))
        received.sort(
            key=lambda record: (
                record.generation,
                bytes(a ^ b for a, b in zip(record.id, whitening, strict=False)),
            )
        )
        for record in received:
            record.ordered = True
            if _has_content(record.event):
                self.unordered_content -= 1
            result.events.append(record.event)
            result.observation_hashes.append(record.observation_hashes)
        return result

    # ----- pruning -------------------------------------------------------------------------

    def _prune(self) -> None:
        """Drop what can no longer matter, keeping what a lagging peer may still build on.

        Ordered events go once they are ``prune_margin`` rounds below the decided round *and*
        below every live creator's newest round: a peer that fell behind (partitioned, or
        restarted) names old events as parents, and if we had dropped them its events could
        never be inserted and its observations never agreed. A creator whose newest event is
        more than ``STALE_ROUNDS`` behind is treated as gone, so a crashed peer cannot make the
        graph grow for ever. Unordered events stay until ``STALE_ROUNDS`` behind: they may still
        be received by a later round (a laggard's events are ordered once others build on them).

        A validator we hold no event of is the furthest behind of all, not absent: it has not
        started yet, or it was cut off (partitioned, crashed) before any of its events reached
        us. Its first sync needs every creator's chain from index 0, since the events it
        receives name their self-parents all the way down, so it counts as lagging at round 0
        until round 0 is stale. Skipping it (as this rule once did) pruned what a late starter
        needed, and every event it was sent then waited for a parent nobody held, for ever
        (simulator seed 1057).

        Rounds alone are not enough: a peer names as other-parent the newest event it holds of
        the peer it synced with, which can be far older than its own round (it has not received
        that peer's later events yet), and every receiver of its event must still hold that
        parent. So an event by creator c at index i also waits until every live validator's
        newest event (as far as we know) descends from a *later* event by c: from then on
        nobody names it as a parent again, and everybody holds it. A validator we hold no event
        of has shown us nothing it holds, so nothing goes while it is live (simulator seed 495).
        """
        decided = self.decided_round
        lagging_floor = decided
        # passed[c]: an index by creator c that every live validator's newest event descends
        # from; c's events below it are held by everyone and named by nobody any more.
        passed = [self.count[slot] for slot in range(self.n)]
        for newest in self.newest:
            record = self.records.get(newest) if newest is not None else None
            if newest is not None and record is None:
                continue
            # Nothing of this creator yet: it will need every chain from the start.
            newest_round = record.round if record is not None else 0
            if newest_round < decided - STALE_ROUNDS:
                continue  # gone: a crashed validator must not keep the graph growing for ever
            lagging_floor = min(lagging_floor, newest_round)
            for slot in range(self.n):
                passed[slot] = min(passed[slot], record.last[slot] if record is not None else -1)
        horizon = min(decided, lagging_floor) - self.prune_margin
        stale = decided - STALE_ROUNDS
        while self.pruned_below < horizon:
            round_number = self.pruned_below
            keep: list[EventId] = []
            for event_id in self.round_members.pop(round_number, []):
                record = self.records.get(event_id)
                if record is None:
                    continue
                # A known forker's chain is kept until stale too: telling its branches apart walks
                # the chain, and the walk must find the same events on every peer.
                if (
                    self.newest[record.slot] == event_id
                    or ((not record.ordered or record.slot in self.forkers) and round_number >= stale)
                    or record.index >= passed[record.slot]
                ):
                    keep.append(event_id)
                    continue
                self._forget(record)
            if keep:
                # Kept events move up a bucket so that the next pass considers them again.
                self.round_members.setdefault(round_number + 1, []).extend(keep)
            self.witnesses.pop(round_number, None)
            self.pruned_below += 1

    def is_below_horizon(self, event: Event) -> bool:
        """An event at or below a position we already pruned: a re-send of something decided long
        ago (or an ancient fork). Inserting it again would make it look new and order it twice."""
        slot = self.slot_of.get(event.creator)
        return slot is not None and event.index <= self.pruned_index[slot]

    def _forget(self, record: _Record) -> None:
        del self.records[record.id]
        if record.index > self.pruned_index[record.slot]:
            self.pruned_index[record.slot] = record.index
        if self._by_signature.get(record.event.signature) == record.id:
            del self._by_signature[record.event.signature]
        if not record.ordered and _has_content(record.event):
            self.unordered_content -= 1
        position = (record.slot, record.index)
        siblings = self.by_position.get(position)
        if siblings is not None:
            if record.id in siblings:
                siblings.remove(record.id)
            if not siblings:
                del self.by_position[position]
        for observation in record.observation_hashes:
            if self._votes_seen.get((record.slot, observation)) == record.id:
                del self._votes_seen[(record.slot, observation)]

    # ----- persistence ---------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything this peer computed, so a restart resumes exactly (a pruned graph cannot be
        recomputed from its events alone: the oldest events' rounds depend on dropped ones)."""
        records = sorted(self.records.values(), key=lambda record: record.seq)
        return {
            "validators": [validator.hex() for validator in self.validators],
            "prune_margin": self.prune_margin,
            "decided_round": self.decided_round,
            "max_round": self.max_round,
            "pruned_below": self.pruned_below,
            "forkers": sorted(self.forkers),
            "seq": self._seq,
            "count": list(self.count),
            "pruned_index": list(self.pruned_index),
            "newest": [item.hex() if item else None for item in self.newest],
            "records": [_export_record(record) for record in records],
            "witnesses": {str(key): [item.hex() for item in value] for key, value in self.witnesses.items()},
            "round_members": {
                str(key): [item.hex() for item in value] for key, value in self.round_members.items()
            },
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Graph:
        graph = cls(
            tuple(ValidatorId(bytes.fromhex(item)) for item in data["validators"]),
            prune_margin=int(data["prune_margin"]),
        )
        graph.decided_round = int(data["decided_round"])
        graph.max_round = int(data["max_round"])
        graph.pruned_below = int(data["pruned_below"])
        graph.forkers = set(data["forkers"])
        graph._seq = int(data["seq"])
        graph.count = [int(item) for item in data["count"]]
        graph.pruned_index = [int(item) for item in data["pruned_index"]]
        graph.newest = [EventId(bytes.fromhex(item)) if item else None for item in data["newest"]]
        for item in data["records"]:
            record = _import_record(item, graph.slot_of)
            graph.records[record.id] = record
            graph._by_signature[record.event.signature] = record.id
            graph.by_position.setdefault((record.slot, record.index), []).append(record.id)
            for observation in record.observation_hashes:
                graph._votes_seen.setdefault((record.slot, observation), record.id)
            if not record.ordered and _has_content(record.event):
                graph.unordered_content += 1
        graph.witnesses = {
            int(key): [EventId(bytes.fromhex(item)) for item in value]
            for key, value in data["witnesses"].items()
        }
        graph.round_members = {
            int(key): [EventId(bytes.fromhex(item)) for item in value]
            for key, value in data["round_members"].items()
        }
        return graph

    def iter_events(self) -> Iterator[Event]:
        for record in sorted(self.records.values(), key=lambda record: record.seq):
            yield record.event


def _has_content(event: Event) -> bool:
    return bool(event.observations or event.block_signatures or event.accusations)


def _coin(event: Event) -> bool:
    # A bit from the middle of the voter's signature: unpredictable before the event exists, and
    # the same for every peer that checks the vote.
    return bool(event.signature[len(event.signature) // 2] & 1) if event.signature else True


def _export_record(record: _Record) -> dict[str, Any]:
    return {
        "event": record.event.to_wire(),
        "id": record.id.hex(),
        "seq": record.seq,
        "round": record.round,
        "witness": record.witness,
        "famous": record.famous,
        "generation": record.generation,
        "tips": [item.hex() if item else None for item in record.tips],
        "last": list(record.last),
        "forked": sorted(record.forked),
        "ordered": record.ordered,
        "strongly_seen": None
        if record.strongly_seen is None
        else [item.hex() for item in record.strongly_seen],
        "votes": {key.hex(): value for key, value in record.votes.items()},
        "observation_hashes": [item.hex() for item in record.observation_hashes],
    }


def _import_record(data: dict[str, Any], slot_of: dict[ValidatorId, int]) -> _Record:
    event = Event.from_wire(data["event"])
    record = _Record(event, EventId(bytes.fromhex(data["id"])), slot_of[event.creator])
    record.seq = int(data["seq"])
    record.round = int(data["round"])
    record.witness = bool(data["witness"])
    record.famous = data["famous"]
    record.generation = int(data["generation"])
    record.tips = [EventId(bytes.fromhex(item)) if item else None for item in data["tips"]]
    record.last = [int(item) for item in data["last"]]
    record.forked = frozenset(int(item) for item in data["forked"])
    record.ordered = bool(data["ordered"])
    strongly_seen = data["strongly_seen"]
    record.strongly_seen = (
        None if strongly_seen is None else [EventId(bytes.fromhex(i)) for i in strongly_seen]
    )
    record.votes = {EventId(bytes.fromhex(key)): bool(value) for key, value in data["votes"].items()}
    record.observation_hashes = tuple(
        ObservationHash(bytes.fromhex(item)) for item in data["observation_hashes"]
    )
    return record
