"""Anchors now hold the root of the block log (one anchor covers every block up to its height),
and each stored observation has its SHA-256 digest, indexed, so a receipt finds its block.

Anchors made before this change put a block's own Merkle root on Ethereum; that value proves
nothing about the log, so they are sent again with the log root (their old transaction is kept
in ``previous_tx_hashes``)."""

import hashlib

from django.db import migrations, models


def forwards(apps, schema_editor):
    block_observation = apps.get_model("consensus", "BlockObservation")
    batch = []
    for row in (
        block_observation.objects.filter(digest__isnull=True).only("pk", "data").iterator(chunk_size=5_000)
    ):
        row.digest = hashlib.sha256(bytes(row.data)).digest()
        batch.append(row)
        if len(batch) == 5_000:
            block_observation.objects.bulk_update(batch, ["digest"])
            batch = []
    block_observation.objects.bulk_update(batch, ["digest"])

    anchor_model = apps.get_model("consensus", "Anchor")
    block_model = apps.get_model("consensus", "Block")
    log_roots = dict(block_model.objects.values_list("height", "log_root"))
    for anchor in anchor_model.objects.all():
        anchor.log_root = bytes(log_roots[anchor.height]) if anchor.height in log_roots else anchor.log_root
        if anchor.tx_hash:
            anchor.previous_tx_hashes = [*anchor.previous_tx_hashes, anchor.tx_hash]
        anchor.status = "pending"
        anchor.tx_hash, anchor.block_number, anchor.block_hash = "", None, ""
        anchor.log_index, anchor.confirmations = None, 0
        anchor.save()


class Migration(migrations.Migration):
    dependencies = [("consensus", "0003_snapshot_storage_external")]

    operations = [
        migrations.RenameField(model_name="anchor", old_name="merkle_root", new_name="log_root"),
        migrations.AlterField(
            model_name="anchor",
            name="log_root",
            field=models.BinaryField(
                max_length=32, help_text="RFC 9162 root of the block log (leaves: block hashes 0..height)"
            ),
        ),
        migrations.AddField(
            model_name="anchor",
            name="account",
            field=models.CharField(
                max_length=42, blank=True, help_text="the Ethereum account that sent it (0x-hex, lower case)"
            ),
        ),
        migrations.AddField(
            model_name="blockobservation",
            name="digest",
            field=models.BinaryField(max_length=32, null=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
