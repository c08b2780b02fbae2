"""Store the batch log's three arrays (channel ids, versions, EIP-712 digests) out of line
without trying to compress them.

A batch of 250 writes a log row of about 20 KB: past PostgreSQL's TOAST threshold, so each
insert ran pglz over the arrays first. The digests are hashes (random hex) and the ids and
versions run upwards without repeating: pglz worked through all of it and then gave up, about
a fifteenth of PostgreSQL's CPU per batched update in a profile of the two-node bench (perf on
the backends: ``pglz_compress`` under ``heap_insert``). ``STORAGE EXTERNAL`` keeps the values
out of line, uncompressed; what is stored and read is unchanged. Reverses to the default
(``EXTENDED``)."""

from django.db import migrations

COLUMNS = ("channels", "versions", "digests")


def _storage(kind: str) -> str:
    return "".join(
        f"ALTER TABLE channels_app_channelbatchchange ALTER COLUMN {column} SET STORAGE {kind};\n"
        for column in COLUMNS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0007_channel_machine_fingerprint_kept_by_trigger"),
    ]

    operations = [
        migrations.RunSQL(_storage("EXTERNAL"), reverse_sql=_storage("EXTENDED")),
    ]
