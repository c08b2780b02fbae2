"""``key_handover_path``: the receipt builder's choice among a node's hand-overs (each retired key's
to the key after it, and the direct ones made at later rotations) is the fewest that lead to the
issuer's key, and always a chain the receipt verifier accepts."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.handover import KeyHandover, key_handover_holds, key_handover_path, key_handover_sign
from settlement.protocol.signing import SigningKey

KEYS = tuple(SigningKey(hashlib.sha256(f"handover-path/{number}".encode()).digest()) for number in range(7))
PUBLIC = tuple(key.public_key for key in KEYS)


def _handover(earlier: int, later: int) -> KeyHandover:
    return KeyHandover(PUBLIC[earlier], key_handover_sign(KEYS[earlier], PUBLIC[later]), PUBLIC[later])


def _is_chain(path: tuple[KeyHandover, ...], start: bytes, end: bytes) -> bool:
    """What the verifier's ``bank-key`` check requires of ``entry.bank_keys``."""
    keys = [link.key for link in path]
    successors = [*keys[1:], end]
    return (
        bool(path)
        and keys[0] == start
        and len(set(keys)) == len(keys)
        and end not in keys
        and all(
            link.successor == successor and key_handover_holds(link.key, successor, link.signature)
            for link, successor in zip(path, successors, strict=True)
        )
    )


def _fewest(handovers: list[KeyHandover], start: bytes, end: bytes) -> int | None:
    """The shortest path's length by brute force: the first length at which some sequence of
    distinct hand-overs chains from ``start`` to ``end``."""
    for length in range(1, len(handovers) + 1):
        for path in itertools.permutations(handovers, length):
            if (
                path[0].key == start
                and path[-1].successor == end
                and all(link.successor == after.key for link, after in itertools.pairwise(path))
            ):
                return length
    return None


def test_after_rotations_with_direct_hand_overs_every_earlier_key_is_one_hand_over_away() -> None:
    # Keys 0..3: each handed over to the next; at the rotations to 2 and 3, every earlier key
    # handed over straight to the new one.
    chain = [_handover(number, number + 1) for number in range(3)]
    direct = [_handover(0, 2), _handover(0, 3), _handover(1, 3)]
    for start in range(3):
        path = key_handover_path([*chain, *direct], PUBLIC[start], PUBLIC[3])
        assert path is not None
        assert len(path) == 1
        assert _is_chain(path, PUBLIC[start], PUBLIC[3])
    # Without the direct ones (rotations made before them), the chain.
    path = key_handover_path(chain, PUBLIC[0], PUBLIC[3])
    assert path == tuple(chain)
    assert key_handover_path(chain, PUBLIC[3], PUBLIC[3]) == ()
    assert key_handover_path(chain, PUBLIC[3], PUBLIC[0]) is None  # hand-overs only go forward


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 5), st.integers(1, 6)).filter(lambda pair: pair[0] != pair[1]),
        max_size=8,
        unique=True,
    ),
    start=st.integers(0, 5),
)
def test_the_path_chosen_is_the_fewest_hand_overs_and_a_chain_the_verifier_accepts(
    pairs: list[tuple[int, int]], start: int
) -> None:
    handovers = [_handover(earlier, later) for earlier, later in pairs]
    path = key_handover_path(handovers, PUBLIC[start], PUBLIC[6])
    fewest = _fewest(handovers, PUBLIC[start], PUBLIC[6])
    if fewest is None:
        assert path is None
    else:
        assert path is not None
        assert len(path) == fewest
        assert _is_chain(path, PUBLIC[start], PUBLIC[6])
        assert key_handover_path(list(handovers), PUBLIC[start], PUBLIC[6]) == path  # the same every time
