"""What two participants sign: a channel's fixed part and its versioned state.

The state is ``(channel id, version, allocation per asset, sub-allocations, is_final)``
(ARCHITECTURE.md §5). The Adjudicator checks the same structure, field for field, through
EIP-712 (see :mod:`channels_app.protocol.eip712`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from channels_app.protocol.architecture import replace
from channels_app.protocol.errors import BadState, NotConserved
from channels_app.protocol.keccak import keccak
from channels_app.protocol.types import (
    MAX_UINT64,
    MAX_UINT256,
    Address,
    ChannelId,
    Version,
    Wei,
    address_bytes,
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(value: Address) -> bytes:
    return b"\x00" * 12 + address_bytes(value)


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """The fixed part of a channel; its hash is the channel id, so it cannot change."""

    chain_id: int
    participants: tuple[Address, Address]
    nonce: int
    challenge_duration: int
    """Seconds a registered state can be refuted before it becomes final."""
    _id: ChannelId = field(init=False, repr=False, compare=False)
    """The channel id, computed once: it is asked for about ten times per update, and hashing
    the params for a cache lookup each time cost more than a tenth of the rules' own work.
    Not a field of the encoded params (``codec`` writes the constructor's fields only)."""

    def __post_init__(self) -> None:
        if self.participants[0] == self.participants[1]:
            raise BadState("a channel needs two different participants")
        if not 0 <= self.nonce <= MAX_UINT64:
            raise BadState("the channel nonce must fit in 64 bits")
        if not 0 < self.challenge_duration < 2**32:
            # The Adjudicator keeps deadlines in 40 bits; 2**32 s (136 years) leaves room.
            raise BadState("the challenge duration must be a positive number of seconds below 2**32")
        object.__setattr__(self, "_id", _channel_id(self))

    @property
    def channel_id(self) -> ChannelId:
        return self._id

    def index_of(self, participant: Address) -> int:
        try:
            return self.participants.index(participant)
        except ValueError:
            raise BadState(f"{participant} is not a participant of this channel") from None


def _channel_id(params: ChannelParams) -> ChannelId:
    # keccak256(abi.encode(chainId, participantA, participantB, nonce, challengeDuration)),
    # exactly as Adjudicator.channelIdOf computes it.
    return ChannelId(
        keccak(
            _word(params.chain_id)
            + _address_word(params.participants[0])
            + _address_word(params.participants[1])
            + _word(params.nonce)
            + _word(params.challenge_duration)
        )
    )


@dataclass(frozen=True, slots=True)
class Allocation:
    """One asset's split between participant A (index 0) and participant B (index 1)."""

    asset: Address
    balance_a: Wei
    balance_b: Wei

    def __post_init__(self) -> None:
        if not (0 <= self.balance_a <= MAX_UINT256 and 0 <= self.balance_b <= MAX_UINT256):
            raise BadState("balances are non-negative 256-bit integers")

    def balance(self, index: int) -> Wei:
        return self.balance_a if index == 0 else self.balance_b

    def with_balance(self, index: int, value: int) -> Allocation:
        if index == 0:
            return replace(self, balance_a=Wei(value))
        return replace(self, balance_b=Wei(value))

    @property
    def total(self) -> int:
        return self.balance_a + self.balance_b


@dataclass(frozen=True, slots=True)
class SubAllocation:
    """Funds of this channel locked for a sub-channel (a nanocontract or a virtual channel).

    What the locked amount pays out is decided by the sub-channel's own latest state: its
    participant who is also in this channel gets their balance, the other participant of this
    channel gets the rest. For a virtual channel Alice-Bob funded from Alice-Ingrid, Ingrid
    stands in for Bob, which is what makes the construction neutral for her.
    """

    channel_id: ChannelId
    asset: Address
    amount: Wei

    def __post_init__(self) -> None:
        if len(self.channel_id) != 32:
            raise BadState("a channel id is 32 bytes")
        if not 0 < self.amount <= MAX_UINT256:
            raise BadState("a sub-allocation locks a positive amount")


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel_id: ChannelId
    version: Version
    allocations: tuple[Allocation, ...]
    sub_allocations: tuple[SubAllocation, ...] = ()
    is_final: bool = False
    digest_memo: tuple[object, bytes] | None = field(default=None, init=False, repr=False, compare=False)
    """(domain, EIP-712 digest) once ``eip712.state_digest`` has hashed this state: both sides
    ask for a state's digest about six times per update (sign, check each signature), and a
    cache keyed by the state hashed the whole state each time. Not part of the state: it is
    neither compared, hashed nor encoded (``codec`` writes the constructor's fields only)."""

    def __post_init__(self) -> None:
        if len(self.channel_id) != 32:
            raise BadState("a channel id is 32 bytes")
        if not 0 <= self.version <= MAX_UINT64:
            raise BadState("the version must fit in 64 bits")
        if len(self.allocations) == 1 and not self.sub_allocations:
            return  # one asset, nothing locked: the most common state, nothing more to check
        assets = [allocation.asset for allocation in self.allocations]
        if len(set(assets)) != len(assets):
            raise BadState("each asset appears once in the allocations")
        sub_ids = [sub.channel_id for sub in self.sub_allocations]
        if len(set(sub_ids)) != len(sub_ids):
            raise BadState("each sub-channel appears once in the sub-allocations")
        for sub in self.sub_allocations:
            if sub.asset not in assets:
                raise BadState("a sub-allocation locks an asset the channel does not hold")

    def allocation(self, asset: Address) -> Allocation:
        for allocation in self.allocations:
            if allocation.asset == asset:
                return allocation
        raise BadState(f"asset {asset} is not in this state")

    def totals(self) -> dict[Address, int]:
        """Per asset: everything the state distributes, free balances plus locked funds."""
        totals = {allocation.asset: allocation.total for allocation in self.allocations}
        for sub in self.sub_allocations:
            totals[sub.asset] += sub.amount
        return totals

    def sub_allocation(self, channel_id: ChannelId) -> SubAllocation | None:
        for sub in self.sub_allocations:
            if sub.channel_id == channel_id:
                return sub
        return None

    def next(
        self,
        *,
        allocations: Iterable[Allocation] | None = None,
        sub_allocations: Iterable[SubAllocation] | None = None,
        is_final: bool = False,
    ) -> ChannelState:
        """The state with version + 1 and the given changes."""
        return ChannelState(
            channel_id=self.channel_id,
            version=Version(self.version + 1),
            allocations=self.allocations if allocations is None else tuple(allocations),
            sub_allocations=self.sub_allocations if sub_allocations is None else tuple(sub_allocations),
            is_final=is_final,
        )


def check_next_conserved(current: ChannelState, after: ChannelState) -> None:
    """:func:`check_conserved` of ``after`` against ``current``'s totals; for the common case
    (one asset, nothing locked on either side) without building the dictionaries."""
    if len(current.allocations) == len(after.allocations) == 1 and not (
        current.sub_allocations or after.sub_allocations
    ):
        held, distributed = current.allocations[0], after.allocations[0]
        if distributed.asset != held.asset:
            raise NotConserved("the update adds or removes an asset; every asset must stay in the channel")
        if distributed.total != held.total:
            raise NotConserved(
                f"the update distributes {distributed.total} of asset {held.asset} "
                f"but the channel holds {held.total}"
            )
        return
    check_conserved(current.totals(), after)


def check_conserved(before: Mapping[Address, int], after: ChannelState) -> None:
    """Money is neither made nor lost: per asset, the totals of two states are equal."""
    totals = after.totals()
    if set(totals) != set(before):
        raise NotConserved("the update adds or removes an asset; every asset must stay in the channel")
    for asset, total in before.items():
        if totals[asset] != total:
            raise NotConserved(
                f"the update distributes {totals[asset]} of asset {asset} but the channel holds {total}"
            )
