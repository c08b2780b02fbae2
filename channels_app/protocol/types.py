"""Domain types shared by the channel rules.

Amounts are integers in the asset's minor units (wei for ETH, 10**-6 for the demo
stable-coin); never floats. Addresses are lowercase ``0x``-prefixed hex strings, so they
compare equal however the caller spelled them.
"""

from __future__ import annotations

from typing import NewType

ChannelId = NewType("ChannelId", bytes)
"""32 bytes: keccak256 of the channel's fixed part (see ``ChannelParams.channel_id``)."""

Wei = NewType("Wei", int)
"""An amount in the asset's minor units."""

Version = NewType("Version", int)
"""A channel state's version: 0 for the opening state, +1 for every agreed update."""

Address = NewType("Address", str)
"""An Ethereum address as lowercase ``0x`` hex."""

Timestamp = NewType("Timestamp", int)
"""Seconds since the Unix epoch; the clock is always passed in, never read."""

ETH = Address("0x" + "00" * 20)
"""The asset address that stands for ether in allocations and deposits."""

MAX_UINT64 = 2**64 - 1
MAX_UINT256 = 2**256 - 1


def address(value: str | bytes) -> Address:
    """Normalise an address given as hex (any case) or 20 raw bytes."""
    if isinstance(value, bytes):
        if len(value) != 20:
            raise ValueError("an address is 20 bytes")
        return Address("0x" + value.hex())
    text = value.lower()
    if not text.startswith("0x") or len(text) != 42:
        raise ValueError(f"not an address: {value!r}")
    bytes.fromhex(text[2:])  # raises on non-hex
    return Address(text)


def address_bytes(value: Address) -> bytes:
    return bytes.fromhex(value[2:])
