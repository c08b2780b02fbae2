"""Reading the Adjudicator's packed status word and telling which of our states it records."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels_app.protocol.channel_state import Allocation, ChannelState
from channels_app.protocol.eip712 import OnChainStatus, outcome_fingerprint
from channels_app.protocol.types import ETH, ChannelId, Version, Wei


@given(
    version=st.integers(0, 2**64 - 1),
    finalizes_at=st.integers(0, 2**40 - 1),
    paid=st.booleans(),
    fingerprint=st.integers(0, 2**144 - 1),
)
def test_status_word_unpacks_as_the_contract_packs_it(
    version: int, finalizes_at: int, paid: bool, fingerprint: int
) -> None:
    word = (version << 192) | (finalizes_at << 152) | (int(paid) << 144) | fingerprint
    assert OnChainStatus.from_word(word) == OnChainStatus(version, finalizes_at, paid, fingerprint)


def test_fingerprint_follows_the_outcome_not_the_version() -> None:
    state = ChannelState(ChannelId(b"\x01" * 32), Version(4), (Allocation(ETH, Wei(3), Wei(4)),))
    later_same_outcome = state.next()
    different = state.next(allocations=[Allocation(ETH, Wei(4), Wei(3))])
    assert outcome_fingerprint(state) == outcome_fingerprint(later_same_outcome)
    assert outcome_fingerprint(state) != outcome_fingerprint(different)
    assert outcome_fingerprint(state) < 2**144
