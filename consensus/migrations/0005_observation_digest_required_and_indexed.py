"""The observation digest, filled by 0004 in its own transaction, becomes required and indexed
(a separate migration: PostgreSQL refuses to alter a table with updates pending in the same
transaction)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("consensus", "0004_anchor_the_block_log_and_observation_digest")]

    operations = [
        migrations.AlterField(
            model_name="blockobservation",
            name="digest",
            field=models.BinaryField(
                max_length=32,
                help_text="SHA-256 of the leaf bytes (PendingObservation.digest): finds an observation's block",
            ),
        ),
        migrations.AddIndex(
            model_name="blockobservation",
            index=models.Index(fields=["digest"], name="observation_by_digest"),
        ),
    ]
