"""Store the snapshot uncompressed out of line: PostgreSQL's default (pglz compression of a
megabyte of JSON on every step) cost more than everything else a gossip step does."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("consensus", "0002_gossip_rounds_per_peer")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE consensus_consensusstate ALTER COLUMN snapshot SET STORAGE EXTERNAL",
            "ALTER TABLE consensus_consensusstate ALTER COLUMN snapshot SET STORAGE EXTENDED",
        )
    ]
