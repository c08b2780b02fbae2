"""Helpers for the consensus shell's tests (fixtures are imported from here by each test file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def single_validator(transactional_db: None) -> Iterator[Any]:
    """This node as the only validator (N=1), its keys made, no state cached from other tests."""
    from django.conf import settings

    from consensus import services
    from settlement.keystore import node_identity_ensure

    services.forget_cached_state()
    node_identity_ensure()
    yield services.consensus_state_ensure(validators=[settings.NODE_NAME])
    services.forget_cached_state()


def agree(payloads: list[bytes], *, kind: str = "test.payment") -> None:
    """Vote and run the worker's step in this process (N=1 needs no gossip to agree)."""
    from consensus import services

    services.consensus_vote_many(payloads=payloads, kind=kind)
    services.votes_apply()


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Work the shell hands to the worker, kept here instead of going to Celery."""
    from consensus import services

    work: list[tuple[Any, ...]] = []
    services.health.redis_client().delete(services._votes_scheduled_key())
    monkeypatch.setattr(services, "dispatch", lambda task, *args: work.append((task, *args)))
    return work


class InProcessPeer:
    """A second validator run by the test: a pure Parsec with its own key, known to the node as
    a peer. Messages pass directly between it and the node's shell services (no HTTP)."""

    def __init__(self, name: str) -> None:
        from django.utils import timezone

        from settlement.models import Peer, PeerKey
        from settlement.protocol.signing import SigningKey

        self.name = name
        self.key = SigningKey.generate()
        self.peer = Peer.objects.create(name=name, domain=f"{name}.test", base_url="http://127.0.0.1:9")
        self.key_id = f"{name}.test#signing-1"
        PeerKey.objects.create(
            peer=self.peer, key_id=self.key_id, public=self.key.public_key.hex(), valid_from=timezone.now()
        )
        self.parsec: Any = None
        self.blocks: list[Any] = []

    def start(self, validators: list[bytes]) -> None:
        from consensus.protocol import Parsec

        self.parsec = Parsec.from_genesis(self.key.public_key, self.key, validators)

    def collect_blocks(self) -> None:
        while (block := self.parsec.poll()) is not None:
            self.blocks.append(block)


@pytest.fixture
def two_validators(transactional_db: None, dispatched: list[tuple[Any, ...]]) -> Iterator[InProcessPeer]:
    """This node and an in-process peer ``bank-z`` as the validator set (N=2: both must sign)."""
    from django.conf import settings

    from consensus import services
    from settlement.keystore import node_identity_ensure, node_signer

    services.forget_cached_state()
    node_identity_ensure()
    peer = InProcessPeer("bank-z")
    services.consensus_state_ensure(validators=[settings.NODE_NAME, peer.name])
    peer.start([node_signer().public_key, peer.key.public_key])
    yield peer
    services.forget_cached_state()


def our_validator_id() -> bytes:
    """The id the validator set knows this node by (its signing key when the state was made,
    which a later key rotation does not change)."""
    from consensus.models import ConsensusState

    return bytes.fromhex(ConsensusState.objects.values_list("our_id", flat=True).get())


def pump(peer: InProcessPeer, dispatched: list[tuple[Any, ...]]) -> None:
    """Carry out what the shell dispatched: votes in this process, gossip to and from ``peer``."""
    from consensus import services
    from consensus.protocol import Request, message_from_wire

    our_id = our_validator_id()
    while dispatched:
        task, *args = dispatched.pop(0)
        if task == "votes_apply":
            services.votes_apply()
        elif task == "gossip_send":
            message = message_from_wire(args[1])
            if isinstance(message, Request):
                answer = peer.parsec.handle_request(our_id, message)
                services.gossip_receive(peer_name=peer.name, wire=answer.to_wire())
            else:
                peer.parsec.handle_response(our_id, message)
            peer.collect_blocks()


def gossip_until(
    peer: InProcessPeer, dispatched: list[tuple[Any, ...]], condition: Callable[[], Any], *, rounds: int = 200
) -> None:
    """Alternate gossip both ways (the node's beat tick, and the peer calling the node) until
    ``condition`` holds."""
    from consensus import services

    our_id = our_validator_id()
    for _ in range(rounds):
        pump(peer, dispatched)
        if condition():
            return
        services.gossip_receive(peer_name=peer.name, wire=peer.parsec.create_gossip(our_id).to_wire())
        pump(peer, dispatched)
        services.gossip_tick()
        pump(peer, dispatched)
        if condition():
            return
    raise AssertionError(f"no agreement after {rounds} gossip rounds")


def agree_with_peer(
    peer: InProcessPeer,
    dispatched: list[tuple[Any, ...]],
    payloads: list[bytes],
    *,
    kind: str = "test.payment",
) -> None:
    from consensus import services
    from consensus.models import ObservationStatus, PendingObservation

    services.consensus_vote_many(payloads=payloads, kind=kind)
    gossip_until(
        peer,
        dispatched,
        lambda: not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists(),
    )
