"""The hot path's own primitives give exactly what the public libraries give.

``keccak`` (pycryptodome's C code called directly, one state per thread), the positional
``replace`` of the protocol's dataclasses, and the signing and recovery that call
libsecp256k1 through coincurve's binding with buffers kept per thread: each is compared with
eth_hash, ``dataclasses.replace``, coincurve's public API, eth_keys and eth_account.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
from collections.abc import Callable

import coincurve
import pytest
from channel_protocol_world import DOMAIN, key_for
from eth_account import Account
from eth_hash.auto import keccak as eth_hash_keccak
from eth_keys import keys

from channels_app.protocol import eip712
from channels_app.protocol.architecture import replace
from channels_app.protocol.channel_state import (
    Allocation,
    ChannelState,
    check_conserved,
    check_next_conserved,
)
from channels_app.protocol.errors import BadSignature, BadState, NotConserved
from channels_app.protocol.keccak import NATIVE, keccak
from channels_app.protocol.types import ETH, ChannelId, Version, Wei

_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_keccak_is_eth_hash_keccak_on_every_length_around_the_rate():
    assert NATIVE, "the direct path is expected with the pinned pycryptodome"
    rng = random.Random(5)
    for length in [*range(0, 300), 1000, 4096]:
        data = rng.randbytes(length)
        assert keccak(data) == eth_hash_keccak(data)


def test_keccak_threads_do_not_share_a_state():
    rng = random.Random(6)
    inputs = [rng.randbytes(rng.randrange(0, 400)) for _ in range(200)]
    expected = [eth_hash_keccak(data) for data in inputs]
    failures: list[int] = []

    def hash_all() -> None:
        for _ in range(20):
            for index, data in enumerate(inputs):
                if keccak(data) != expected[index]:
                    failures.append(index)

    threads = [threading.Thread(target=hash_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_replace_is_dataclasses_replace_and_still_checks():
    state = ChannelState(ChannelId(b"\x01" * 32), Version(3), (Allocation(ETH, Wei(5), Wei(9)),))
    for changes in ({"version": Version(4)}, {"is_final": True}, {}, {"allocations": ()}):
        assert replace(state, **changes) == dataclasses.replace(state, **changes)
    with pytest.raises(TypeError):
        replace(state, colour="red")
    with pytest.raises(BadState):  # __post_init__ runs as with the constructor
        replace(state, version=Version(2**64))
    with pytest.raises(BadState):
        replace(state.allocations[0], balance_a=Wei(-1))


def test_signer_signs_what_coincurve_signs_and_eth_account_recovers_it():
    for _ in range(50):
        key, digest = os.urandom(32), os.urandom(32)
        ours = eip712.Signer(key).sign_digest(digest)
        theirs = coincurve.PrivateKey(key).sign_recoverable(digest, hasher=None)
        assert ours == theirs[:64] + bytes([theirs[64] + 27])
        assert int.from_bytes(ours[32:64], "big") <= _ORDER // 2
        expected = Account.from_key(key).address.lower()
        theirs_view = keys.Signature(
            vrs=(ours[64] - 27, int.from_bytes(ours[:32], "big"), int.from_bytes(ours[32:64], "big"))
        )
        assert theirs_view.recover_public_key_from_msg_hash(digest).to_checksum_address().lower() == expected
        assert eip712.recover_digest(digest, ours) == expected


def test_recovery_refuses_what_ecrecover_would_not_accept():
    signer = eip712.Signer(key_for("alice"))
    state = ChannelState(ChannelId(b"\x02" * 32), Version(1), (Allocation(ETH, Wei(5), Wei(9)),))
    digest = eip712.state_digest(DOMAIN, state)
    good = signer.sign_state(DOMAIN, state)
    r, s, v = good[:32], good[32:64], good[64]
    flipped_v = r + s + bytes([55 - v])
    high_s = r + (_ORDER - int.from_bytes(s, "big")).to_bytes(32, "big") + bytes([55 - v])
    for bad in (
        good[:64],  # no v
        r + s + b"\x00",  # v not 27/28
        high_s,  # the malleable twin
        (0).to_bytes(32, "big") + s + bytes([v]),  # r = 0
        _ORDER.to_bytes(32, "big") + s + bytes([v]),  # r at the order
    ):
        with pytest.raises(BadSignature):
            eip712.recover_digest(digest, bad)
    # The other v recovers some other key (or none): never alice's.
    with contextlib.suppress(BadSignature):
        assert eip712.recover_digest(digest, flipped_v) != signer.address
    with pytest.raises(BadSignature):
        eip712.recover_digest(digest[:31], good)
    with pytest.raises(BadSignature):
        eip712.verify_state_signature(DOMAIN, state, signer.address, flipped_v)


def _outcome(check: Callable[..., None], *arguments: object) -> str:
    try:
        check(*arguments)
    except NotConserved as refusal:
        return str(refusal)
    return "ok"


def test_the_one_asset_conservation_check_decides_as_the_general_one():
    rng = random.Random(8)
    other = "0x" + "11" * 20
    channel = ChannelId(b"\x03" * 32)
    for _ in range(500):
        a, b = rng.randrange(0, 50), rng.randrange(0, 50)
        current = ChannelState(channel, Version(1), (Allocation(ETH, Wei(a), Wei(b)),))
        asset = ETH if rng.random() < 0.8 else other
        moved = rng.randrange(-3, 4) + (0 if rng.random() < 0.5 else a)
        after = ChannelState(
            channel,
            Version(2),
            (Allocation(asset, Wei(max(0, a - moved)), Wei(max(0, b + moved))),),  # type: ignore[arg-type]
        )
        assert _outcome(check_next_conserved, current, after) == _outcome(
            check_conserved, current.totals(), after
        )
