"""Migration 0007: each channel row's machine fingerprint is a column a trigger sets whenever the
machine is written (the batch's lock reads it instead of hashing every machine it locks). Rows
written before it get theirs; every later write of the machine, by any writer, moves it with
the machine; a write that leaves the machine alone leaves it; and the migration reverses."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from channels_app import codec
from tests.channels_app.test_channel_state_storage_migration import _channel_history

BEFORE = [("channels_app", "0006_batch_log_one_row_per_batch")]
AFTER = [("channels_app", "0007_channel_machine_fingerprint_kept_by_trigger")]


def _fingerprints() -> dict[str, tuple[bytes | None, bytes | None]]:
    """Per channel: the stored fingerprint, and the SHA-256 of the machine's text computed here
    (from PostgreSQL's rendering of the jsonb, the text the trigger hashes)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel_id, machine_fingerprint, machine::text FROM channels_app_channel")
        return {
            channel_id: (
                None if stored is None else bytes(stored),
                None if text is None else hashlib.sha256(text.encode()).digest(),
            )
            for channel_id, stored, text in cursor.fetchall()
        }


def _trigger_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'channels_app_channel_machine_fingerprint'"
        )
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_fingerprint_follows_every_write_of_the_machine_and_the_migration_reverses():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_channel = executor.loader.project_state(BEFORE).apps.get_model("channels_app", "Channel")
    machines = {}
    for seed in (1, 2):
        machine, _ = _channel_history(seed, 2, False)
        row = old_channel.objects.create(
            channel_id="0x" + machine.channel_id.hex(),
            our_address=machine.us,
            their_address=machine.them,
            our_index=0,
            params=codec.encode(machine.params),
            phase=machine.phase.value,
            version=machine.latest.state.version,
            machine=codec.machine_encode(machine),
        )
        machines[row.channel_id] = machine
    awaiting = old_channel.objects.create(
        channel_id="0x" + "ee" * 32,
        our_address="0x" + "11" * 20,
        their_address="0x" + "22" * 20,
        our_index=0,
        params={},
        phase="proposed",
        machine=None,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    from channels_app.models import Channel

    # Rows written before the migration: fingerprinted by it; no machine, no fingerprint.
    found = _fingerprints()
    assert found.pop(awaiting.channel_id) == (None, None)
    assert all(stored == computed and stored is not None for stored, computed in found.values())
    assert len({stored for stored, _ in found.values()}) == 2

    # The model's save (the single path) writes another machine: the fingerprint moves with it.
    first, second = Channel.objects.filter(machine__isnull=False).order_by("id")
    before = _fingerprints()[first.channel_id][0]
    first.machine = {**first.machine, "our_index": 1}
    first.save()
    stored, computed = _fingerprints()[first.channel_id]
    assert stored == computed != before
    # A raw update that names the machine (as the batch's head update does when the rules
    # changed it): the same.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE channels_app_channel SET machine = %s::jsonb WHERE id = %s",
            [json.dumps(codec.machine_encode(machines[second.channel_id])), second.pk],
        )
    stored, computed = _fingerprints()[second.channel_id]
    assert stored == computed
    # A write that leaves the machine alone leaves the fingerprint.
    unchanged = _fingerprints()
    Channel.objects.filter(pk__in=[first.pk, second.pk]).update(version=5, pending=b"\x01")
    assert _fingerprints() == unchanged
    # A new channel row gets its fingerprint at its insertion.
    Channel.objects.create(
        channel_id="0x" + "dd" * 32,
        our_address="0x" + "11" * 20,
        their_address="0x" + "22" * 20,
        our_index=0,
        params={},
        phase="open",
        machine={"_t": "whatever"},
    )
    stored, computed = _fingerprints()["0x" + "dd" * 32]
    assert stored == computed is not None

    # And back: no column, no trigger, no function; then forward again.
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert not _trigger_exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'channels_app_channel_machine_fingerprint'"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'channels_app_channel' AND column_name = 'machine_fingerprint'"
        )
        assert cursor.fetchone()[0] == 0
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("channels_app"))
    assert _trigger_exists()
    assert all(stored == computed for stored, computed in _fingerprints().values())
