"""Migration 0008: the batch log's three arrays are stored out of line without compression
(``STORAGE EXTERNAL``), so inserting a batch's log row no longer runs pglz over hashes it cannot
compress. A row written under it reads back as written (the storage changes where the bytes
go, not what they are), and the migration reverses to PostgreSQL's default."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("channels_app", "0007_channel_machine_fingerprint_kept_by_trigger")]
AFTER = [("channels_app", "0008_batch_log_arrays_stored_uncompressed")]
ARRAYS = ("channels", "versions", "digests")


def _storage() -> dict[str, str]:
    """Each column's storage as PostgreSQL records it: 'x' extended (the default), 'e' external."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstorage FROM pg_attribute "
            "WHERE attrelid = 'channels_app_channelbatchchange'::regclass AND attname = ANY(%s)",
            [list(ARRAYS)],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_batch_log_arrays_are_stored_uncompressed_and_the_migration_reverses():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert _storage() == dict.fromkeys(ARRAYS, "x")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    assert _storage() == dict.fromkeys(ARRAYS, "e")
    from channels_app.models import ChannelBatchChange

    # A batch-sized row (past the TOAST threshold): stored out of line, uncompressed, and read
    # back exactly.
    channels = list(range(1, 251))
    digests = ["0x" + f"{index:064x}" for index in channels]
    row = ChannelBatchChange.objects.create(
        change="ProposalReceived",
        channels=channels,
        versions=[7] * 250,
        digests=digests,
        events=["StateAccepted", "SendCountersignature"],
        actor="test",
    )
    stored = ChannelBatchChange.objects.get(pk=row.pk)
    assert (stored.channels, stored.versions, stored.digests) == (channels, [7] * 250, digests)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_size(digests), octet_length(digests::text) "
            "FROM channels_app_channelbatchchange WHERE id = %s",
            [row.pk],
        )
        stored_size, text_size = cursor.fetchone()
    assert stored_size >= text_size  # not compressed: at least as large as its elements' text

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert _storage() == dict.fromkeys(ARRAYS, "x")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert _storage() == dict.fromkeys(ARRAYS, "e")
