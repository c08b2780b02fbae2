"""Each kind of provable malice is detected on receipt, accused with evidence that anyone can
check from the accusation alone, and tampered evidence does not check."""

from __future__ import annotations

from dataclasses import replace

from parsec_network import gossip_until, make_network, sync

from consensus.protocol import MaliceKind, Payload, Request, check_accusation
from consensus.protocol.event import create_event
from consensus.protocol.malice import make_accusation


def _kinds(node: object) -> set[str]:
    return {accusation.kind for accusation in node.accusations()}  # type: ignore[attr-defined]


def _push(nodes: list, ids: list, sender: int, receiver: int, events: tuple) -> None:
    """Deliver ``events`` from ``sender`` in a message that ``sender`` signs (a malicious sender)."""
    request = nodes[sender]._signed(Request, ids[receiver], nodes[sender].epoch, (), (), list(events))
    nodes[receiver].handle_request(ids[sender], request)


def test_two_events_at_one_position_are_accused_as_a_fork() -> None:
    keys, ids, nodes = make_network(4, seed=11)
    first, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pa",)
    )
    second, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pb",)
    )
    _push(nodes, ids, 3, 0, (first,))
    _push(nodes, ids, 3, 0, (second,))
    accusation = next(item for item in nodes[0].accusations() if item.kind == MaliceKind.FORK)
    assert accusation.offender == ids[3]
    assert check_accusation(accusation)


def test_a_fork_shown_to_different_peers_reaches_every_peer_as_an_accusation() -> None:
    keys, ids, nodes = make_network(4, seed=12)
    first, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pa",)
    )
    second, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pb",)
    )
    _push(nodes, ids, 3, 0, (first,))
    _push(nodes, ids, 3, 1, (second,))
    outputs: list[list] = [[] for _ in nodes]
    gossip_until(
        nodes, ids, outputs, lambda: all("fork" in _kinds(nodes[i]) for i in range(3)), active=[0, 1, 2]
    )
    assert all(nodes[i].malicious_peers() == {ids[3]} for i in range(3))


def test_an_event_with_a_bad_signature_in_a_signed_message_is_blamed_on_the_sender() -> None:
    keys, ids, nodes = make_network(4, seed=13)
    event, _ = create_event(keys[2], epoch=0, index=0, self_parent=None, other_parent=None)
    broken = replace(event, signature=bytes(64))
    _push(nodes, ids, 1, 0, (broken,))
    (accusation,) = nodes[0].accusations()
    assert (accusation.kind, accusation.offender) == (MaliceKind.INVALID_EVENT_IN_MESSAGE, ids[1])
    assert check_accusation(accusation)
    assert nodes[0].graph.count[nodes[0].graph.slot_of[ids[2]]] == 0  # the broken event was not taken


def test_an_other_parent_by_the_same_creator_is_accused() -> None:
    keys, ids, nodes = make_network(4, seed=14)
    root, root_id = create_event(keys[2], epoch=0, index=0, self_parent=None, other_parent=None)
    bad, _ = create_event(keys[2], epoch=0, index=1, self_parent=root_id, other_parent=root_id)
    _push(nodes, ids, 2, 0, (root, bad))
    accusation = next(item for item in nodes[0].accusations())
    assert accusation.kind == MaliceKind.OTHER_PARENT_BY_SAME_CREATOR
    assert check_accusation(accusation)


def test_a_self_parent_at_the_wrong_index_is_accused() -> None:
    keys, ids, nodes = make_network(4, seed=15)
    root, root_id = create_event(keys[2], epoch=0, index=0, self_parent=None, other_parent=None)
    bad, _ = create_event(keys[2], epoch=0, index=5, self_parent=root_id, other_parent=None)
    _push(nodes, ids, 2, 0, (root, bad))
    (accusation,) = nodes[0].accusations()
    assert accusation.kind == MaliceKind.BAD_SELF_PARENT
    assert check_accusation(accusation)


def test_one_observation_voted_twice_by_one_creator_is_accused() -> None:
    keys, ids, nodes = make_network(4, seed=16)
    first, first_id = create_event(
        keys[2], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"px",)
    )
    second, _ = create_event(
        keys[2], epoch=0, index=1, self_parent=first_id, other_parent=None, observations=(b"px",)
    )
    _push(nodes, ids, 2, 0, (first, second))
    (accusation,) = nodes[0].accusations()
    assert accusation.kind == MaliceKind.DUPLICATE_VOTE
    assert check_accusation(accusation)


def test_an_accusation_with_bogus_evidence_makes_its_author_the_accused() -> None:
    keys, ids, nodes = make_network(4, seed=17)
    bogus = make_accusation(MaliceKind.FORK, ids[0], {"events": []})
    event, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, accusations=(bogus,)
    )
    _push(nodes, ids, 3, 1, (event,))
    kinds = {(item.kind, item.offender) for item in nodes[1].accusations()}
    assert kinds == {(MaliceKind.FALSE_ACCUSATION, ids[3])}
    assert all(check_accusation(item) for item in nodes[1].accusations())


def test_tampered_evidence_does_not_check() -> None:
    keys, ids, nodes = make_network(4, seed=18)
    first, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pa",)
    )
    second, _ = create_event(
        keys[3], epoch=0, index=0, self_parent=None, other_parent=None, observations=(b"pb",)
    )
    _push(nodes, ids, 3, 0, (first, second))
    (accusation,) = nodes[0].accusations()
    blamed_elsewhere = replace(accusation, offender=ids[1])
    altered = replace(accusation, evidence=accusation.evidence.replace('"index":0', '"index":1', 1))
    assert check_accusation(accusation)
    assert not check_accusation(blamed_elsewhere)
    assert not check_accusation(altered)


def test_correct_peers_accuse_nobody_in_a_clean_run() -> None:
    _keys, ids, nodes = make_network(5, seed=19)
    for i, node in enumerate(nodes):
        node.vote_for(Payload(b"clean-%d" % i))
    outputs: list[list] = [[] for _ in nodes]
    gossip_until(nodes, ids, outputs, lambda: all(len(out) >= 1 for out in outputs))
    for a in range(5):
        sync(nodes, ids, a, (a + 1) % 5)
    assert all(node.accusations() == () for node in nodes)
