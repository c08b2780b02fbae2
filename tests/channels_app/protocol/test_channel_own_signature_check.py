"""Our own signature is checked without a recovery only when one of our Signers made it over
that very digest with the key of that address; everything else is still recovered."""

from __future__ import annotations

import pytest
from channel_protocol_world import DOMAIN, key_for

from channels_app.protocol import eip712
from channels_app.protocol.channel_state import Allocation, ChannelState
from channels_app.protocol.errors import BadSignature
from channels_app.protocol.types import ETH, ChannelId, Version, Wei


def _state(version: int) -> ChannelState:
    return ChannelState(ChannelId(b"\x07" * 32), Version(version), (Allocation(ETH, Wei(5), Wei(9)),))


def test_a_signature_our_signer_made_is_accepted_for_our_address_without_recovering(monkeypatch):
    alice = eip712.Signer(key_for("alice"))
    state = _state(1)
    signature = alice.sign_state(DOMAIN, state)

    def no_recovery(*_: object) -> None:
        raise AssertionError("recovered a signature the signer just made")

    monkeypatch.setattr(eip712, "recover_digest", no_recovery)
    eip712.verify_own_state_signature(DOMAIN, state, alice.address, signature)


def test_anything_else_is_recovered_and_refused_when_wrong():
    alice, bob = eip712.Signer(key_for("alice")), eip712.Signer(key_for("bob"))
    state = _state(2)
    by_bob = bob.sign_state(DOMAIN, state)
    # Bob's Signer lives in the same process, but its signature is not Alice's.
    with pytest.raises(BadSignature):
        eip712.verify_own_state_signature(DOMAIN, state, alice.address, by_bob)
    # A signature our Signer made over another state is not one over this state.
    with pytest.raises(BadSignature):
        eip712.verify_own_state_signature(DOMAIN, state, alice.address, alice.sign_state(DOMAIN, _state(3)))
    # A signature made without a Signer (the module function) is recovered, and verifies.
    eip712.verify_own_state_signature(
        DOMAIN, _state(4), alice.address, eip712.sign_state(key_for("alice"), DOMAIN, _state(4))
    )
    # A tampered copy of a remembered signature is recovered, and refused.
    signature = bytearray(alice.sign_state(DOMAIN, state))
    signature[5] ^= 1
    with pytest.raises(BadSignature):
        eip712.verify_own_state_signature(DOMAIN, state, alice.address, bytes(signature))
