"""The write-ahead log of validator steps: a full snapshot only now and then, and per step the
inputs of its protocol calls (docs/consensus.md "One lock, a write-ahead log")."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consensus", "0006_block_tree_for_receipts"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsensusStep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "version",
                    models.BigIntegerField(help_text="the state version this step produced", unique=True),
                ),
                (
                    "operations",
                    models.BinaryField(
                        help_text='JSON: [["vote", [hex]], ["gossip", peer], ["message", sender, wire], ...]'
                    ),
                ),
                (
                    "own",
                    models.JSONField(
                        help_text="[epoch, events in our chain, newest own event id hex] after it", null=True
                    ),
                ),
                ("recorded_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["version"],
            },
        ),
        migrations.AddField(
            model_name="consensusstate",
            name="log_bytes",
            field=models.BigIntegerField(
                default=0, help_text="bytes of ConsensusStep rows since the snapshot"
            ),
        ),
        migrations.AddField(
            model_name="consensusstate",
            name="snapshot_version",
            field=models.BigIntegerField(
                default=0,
                help_text="the version the snapshot was taken at; ConsensusStep rows after it replay",
            ),
        ),
        migrations.AlterField(
            model_name="consensusstate",
            name="snapshot",
            field=models.BinaryField(help_text="Parsec.snapshot() as JSON bytes, at snapshot_version"),
        ),
        # A state written before this migration holds its snapshot at its current version.
        migrations.RunSQL(
            "UPDATE consensus_consensusstate SET snapshot_version = version", migrations.RunSQL.noop
        ),
        # Uncompressed, like the snapshot (0003): pglz on every step cost more than the step.
        migrations.RunSQL(
            "ALTER TABLE consensus_consensusstep ALTER COLUMN operations SET STORAGE EXTERNAL",
            migrations.RunSQL.noop,
        ),
    ]
