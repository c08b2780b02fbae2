"""Migration 0003 rewrites existing channels: JSON states become bytes, and the machine gives up
its latest state (the history row of the channel's version) and its pending proposal. Rows
written by the previous code come out as the same protocol objects, and back again."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from channels_app import codec
from channels_app.models import signatures_hex
from channels_app.protocol import eip712, proposals
from channels_app.protocol.state import ChannelKind, NodeChannels, SignedState
from channels_app.protocol.state_changes import (
    ChannelOpened,
    CountersignatureReceived,
    DepositObserved,
    UpdateProposed,
)
from channels_app.protocol.transition import transition
from channels_app.protocol.types import ETH, Address

BEFORE = [("channels_app", "0002_transaction_dropped")]
AFTER = [("channels_app", "0003_signed_states_as_bytes_latest_by_version")]
DOMAIN = eip712.Domain(31337, Address("0x" + "ad" * 20))
KEY_US, KEY_THEM = b"\x11" * 32, b"\x22" * 32


def _channel_history(seed: int, updates: int, pending: bool):
    """A channel as the rules leave it after ``updates`` countersigned payments (and one more
    proposed if ``pending``), with every both-signed state along the way."""
    us, them = eip712.address_of_key(KEY_US), eip712.address_of_key(KEY_THEM)
    params = proposals.channel_params(31337, (us, them), 600, random.Random(seed))
    opening = proposals.opening_state(params, {ETH: (1000, 1000)})
    signed = SignedState(
        opening, (eip712.sign_state(KEY_US, DOMAIN, opening), eip712.sign_state(KEY_THEM, DOMAIN, opening))
    )
    node = transition(
        NodeChannels(us=us, domain=DOMAIN), ChannelOpened(params, ChannelKind.LEDGER, signed)
    ).new_state
    node = transition(node, DepositObserved(params.channel_id, ETH, 2000)).new_state
    history = [signed]
    for step in range(updates + pending):
        new = proposals.payment(node.channels[params.channel_id], ETH, 10 + step)
        node = transition(
            node, UpdateProposed(params.channel_id, new, eip712.sign_state(KEY_US, DOMAIN, new))
        ).new_state
        if step == updates:
            break
        countersignature = eip712.sign_state(KEY_THEM, DOMAIN, new)
        node = transition(
            node, CountersignatureReceived(params.channel_id, new.version, countersignature)
        ).new_state
        history.append(node.channels[params.channel_id].latest)
    return node.channels[params.channel_id], history


@pytest.mark.django_db(transaction=True)
def test_existing_channels_and_states_are_rewritten_and_read_back_the_same():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old_channel, old_state = (
        old.get_model("channels_app", "Channel"),
        old.get_model("channels_app", "ChannelState"),
    )
    made = {}
    for seed, updates, pending in ((1, 0, True), (2, 3, False), (3, 2, True)):
        machine, history = _channel_history(seed, updates, pending)
        row = _old_channel_row(old_channel, machine)
        for signed in history:
            old_state.objects.create(
                channel=row,
                version=signed.state.version,
                state=codec.encode(signed.state),
                signatures=signatures_hex(signed.signatures),
                is_final=signed.state.is_final,
                digest="0x" + eip712.state_digest(DOMAIN, signed.state).hex(),
            )
        made[row.channel_id] = (machine, history)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    # Read with today's models, which know the later migrations' columns (0007's fingerprint).
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("channels_app"))
    from channels_app.models import Channel, ChannelState

    for channel_id, (machine, history) in made.items():
        row = Channel.objects.get(channel_id=channel_id)
        assert row.protocol_channel == machine
        assert not {"latest", "pending"} & row.machine.keys()
        assert (row.pending is None) == (machine.pending is None)
        stored = [s.protocol_signed for s in ChannelState.objects.filter(channel=row).order_by("version")]
        assert stored == history

    # And back: the previous code's rows, as it wrote them.
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old_channel, old_state = (
        old.get_model("channels_app", "Channel"),
        old.get_model("channels_app", "ChannelState"),
    )
    for channel_id, (machine, history) in made.items():
        row = old_channel.objects.get(channel_id=channel_id)
        assert codec.decode(row.machine) == machine
        assert [
            (codec.decode(s.state), s.signatures)
            for s in old_state.objects.filter(channel=row).order_by("version")
        ] == [(signed.state, signatures_hex(signed.signatures)) for signed in history]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("channels_app"))


@pytest.mark.django_db(transaction=True)
def test_a_channel_whose_latest_state_has_no_history_row_stops_the_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    machine, _ = _channel_history(4, 1, False)
    _old_channel_row(old.get_model("channels_app", "Channel"), machine)
    executor = MigrationExecutor(connection)
    try:
        with pytest.raises(RuntimeError, match="no history row matches"):
            executor.migrate(AFTER)
    finally:
        old.get_model("channels_app", "Channel").objects.all().delete()
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("channels_app"))


def _old_channel_row(old_channel: Any, machine: Any) -> Any:
    """A channel row as the code before the migration wrote it: the whole machine as JSON."""
    return old_channel.objects.create(
        channel_id="0x" + machine.channel_id.hex(),
        our_address=machine.us,
        their_address=machine.them,
        our_index=0,
        params=codec.encode(machine.params),
        phase=machine.phase.value,
        version=machine.latest.state.version,
        machine=codec.encode(machine),
    )
