"""Each signed state stored once per node, as bytes.

- ``ChannelState``: the state and both signatures (two JSON columns) become one ``signed``
  column of bytes (``codec.signed_state_bytes``).
- ``Channel``: the machine no longer carries its latest state (the history row whose version
  is ``Channel.version``) nor our pending proposal (``Channel.pending``, bytes).

Existing rows are rewritten in place, after checking that each channel's latest state is its
history row of that version (the shell always wrote both in one transaction). Reversible.
"""

from typing import Any

from django.db import migrations, models

from channels_app import codec


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def forwards(apps: Any, schema_editor: Any) -> None:
    from channels_app.protocol.state import SignedState

    channel_state = apps.get_model("channels_app", "ChannelState")
    channel_model = apps.get_model("channels_app", "Channel")
    for row in channel_state.objects.all().iterator():
        signatures = tuple(bytes.fromhex(s[2:]) for s in row.signatures)
        row.signed = codec.signed_state_bytes(SignedState(codec.decode(row.state), signatures))
        row.save(update_fields=["signed"])
    for row in channel_model.objects.exclude(machine=None).iterator():
        machine = codec.decode(row.machine)
        latest = machine.latest
        stored = channel_state.objects.filter(channel=row, version=latest.state.version).first()
        if stored is None or codec.signed_state_from_bytes(stored.signed) != latest:
            # The shell always wrote both in one transaction; if not, stop rather than guess.
            raise RuntimeError(
                f"channel {row.channel_id}: no history row matches the latest state of its machine"
            )
        row.machine = codec.machine_encode(machine)
        row.pending = codec.pending_bytes(machine.pending)
        row.version = latest.state.version
        row.save(update_fields=["machine", "pending", "version"])


def backwards(apps: Any, schema_editor: Any) -> None:
    channel_state = apps.get_model("channels_app", "ChannelState")
    channel_model = apps.get_model("channels_app", "Channel")
    for row in channel_model.objects.exclude(machine=None).iterator():
        latest = codec.signed_state_from_bytes(
            channel_state.objects.get(channel=row, version=row.version).signed
        )
        pending = codec.pending_from_bytes(None if row.pending is None else bytes(row.pending))
        machine = codec.machine_build(codec.machine_parts_decode(row.machine), latest, pending)
        row.machine = codec.encode(machine)
        row.save(update_fields=["machine"])
    for row in channel_state.objects.all().iterator():
        signed = codec.signed_state_from_bytes(row.signed)
        row.state = codec.encode(signed.state)
        row.signatures = [_hex(s) for s in signed.signatures]
        row.save(update_fields=["state", "signatures"])


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0002_transaction_dropped"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelstate",
            name="signed",
            field=models.BinaryField(null=True),
        ),
        migrations.AlterField(
            model_name="channelstate",
            name="state",
            field=models.JSONField(null=True),
        ),
        migrations.AlterField(
            model_name="channelstate",
            name="signatures",
            field=models.JSONField(null=True),
        ),
        migrations.AddField(
            model_name="channel",
            name="pending",
            field=models.BinaryField(
                blank=True,
                null=True,
                help_text="our proposal awaiting its countersignature (codec.pending_bytes)",
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="channelstate", name="state"),
        migrations.RemoveField(model_name="channelstate", name="signatures"),
        migrations.AlterField(
            model_name="channelstate",
            name="signed",
            field=models.BinaryField(
                help_text="the state and [A's, B's] signatures (codec.signed_state_bytes)"
            ),
        ),
        migrations.AlterField(
            model_name="channel",
            name="machine",
            field=models.JSONField(
                null=True,
                help_text="the protocol's Channel but its latest state (the history row of this version) and pending",
            ),
        ),
    ]
