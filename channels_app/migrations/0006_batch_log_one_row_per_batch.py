"""The batch path's log: one row per kind of change per batch transaction, naming its channels,
versions and digests in the batch's order, instead of a ChannelStateChange row per update
(three per update across the two nodes, each with two index entries). Reverses by dropping the
table; the batch rows written meanwhile go with it."""

import django.contrib.postgres.fields
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0005_channel_rows_leave_room_for_in_place_updates"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChannelBatchChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "change",
                    models.CharField(
                        help_text="UpdateProposed, ProposalReceived or CountersignatureReceived",
                        max_length=60,
                    ),
                ),
                (
                    "channels",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(),
                        help_text="the Channel rows' ids, in the batch's order",
                        size=None,
                    ),
                ),
                (
                    "versions",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(),
                        help_text="each update's state version, in the same order",
                        size=None,
                    ),
                ),
                (
                    "digests",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=66),
                        blank=True,
                        default=list,
                        help_text="each proposed state's EIP-712 digest, in the same order (none for a countersignature)",
                        size=None,
                    ),
                ),
                (
                    "events",
                    models.JSONField(default=list, help_text="the names of the events each update produced"),
                ),
                ("actor", models.CharField(max_length=150)),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["-at", "-id"],
            },
        ),
    ]
