"""The consensus shell's state in PostgreSQL (ARCHITECTURE.md §6).

``ConsensusState`` is one row: the validator's last full protocol snapshot (its gossip graph
included), versioned, and the lock every mutation takes. ``ConsensusStep`` is the write-ahead log
since that snapshot: the inputs of every protocol call, one row per locked step, which a restart
replays on top of the snapshot. Blocks and their observations are stored when ``Parsec.poll``
hands them out, in the same transaction as the log row of the step that produced them, so a
crash can neither lose a block nor store one twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils import timezone

from settlement import bulk


class ConsensusState(models.Model):
    """The one validator this node runs. Lock it (``select_for_update``) before any change."""

    version = models.BigIntegerField(default=0, help_text="bumped on every persisted change")
    our_id = models.CharField(max_length=64, help_text="our validator id: the node's Ed25519 key, hex")
    validators = models.JSONField(
        default=dict, help_text="validator id (hex) -> node name, of the current epoch"
    )
    snapshot = models.BinaryField(help_text="Parsec.snapshot() as JSON bytes, at snapshot_version")
    snapshot_bytes = models.PositiveIntegerField(default=0)
    snapshot_version = models.BigIntegerField(
        default=0, help_text="the version the snapshot was taken at; ConsensusStep rows after it replay"
    )
    log_bytes = models.BigIntegerField(default=0, help_text="bytes of ConsensusStep rows since the snapshot")
    epoch = models.PositiveIntegerField(default=0)
    next_height = models.BigIntegerField(default=0)
    events_in_graph = models.PositiveIntegerField(default=0)
    rounds_completed = models.BigIntegerField(default=0, help_text="gossip exchanges answered or handled")
    rounds_per_second = models.FloatField(default=0.0)
    rate_window_started_at = models.DateTimeField(default=timezone.now)
    rate_window_rounds = models.PositiveIntegerField(default=0)
    messages_rejected = models.BigIntegerField(default=0)
    awaiting = models.JSONField(
        default=dict, help_text="node name -> when our unanswered gossip request to it was sent (ISO)"
    )
    peers = models.JSONField(default=dict, help_text="node name -> {last_heard_at, last_sent_at, last_error}")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"consensus state v{self.version} (height {self.next_height})"


class ConsensusStep(models.Model):
    """One locked step of the validator, as the inputs of its protocol calls (write-ahead log).

    The protocol is deterministic (no clock, no randomness, Ed25519 signatures are
    deterministic), so the snapshot at ``snapshot_version`` plus these inputs, replayed in
    order, is the state the step committed. ``own`` is where our own chain stood after the
    step; a replay that arrives elsewhere refuses to continue rather than sign a fork.
    """

    version = models.BigIntegerField(unique=True, help_text="the state version this step produced")
    operations = models.BinaryField(
        help_text='JSON: [["vote", [hex]], ["gossip", peer], ["message", sender, wire], ...]'
    )
    own = models.JSONField(
        null=True, help_text="[epoch, events in our chain, newest own event id hex] after it"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"consensus step v{self.version}"


class ObservationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    VOTED = "voted", "Voted"
    AGREED = "agreed", "Agreed"


class PendingObservation(models.Model):
    """An observation this node voted for (or will at the worker's next step), until agreed."""

    digest = models.BinaryField(max_length=32, unique=True, help_text="SHA-256 of the observation bytes")
    data = models.BinaryField(help_text="the observation bytes (consensus.protocol observation_bytes)")
    kind = models.CharField(max_length=40)
    status = models.CharField(
        max_length=10, choices=ObservationStatus.choices, default=ObservationStatus.QUEUED
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    voted_at = models.DateTimeField(null=True, blank=True)
    agreed_at = models.DateTimeField(null=True, blank=True)
    block_height = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "id"])]

    def __str__(self) -> str:
        return f"{self.kind} {bytes(self.digest).hex()[:12]} ({self.status})"


class Block(models.Model):
    height = models.BigIntegerField(unique=True)
    block_hash = models.BinaryField(max_length=32, help_text="object_hash('block', header)")
    previous_hash = models.BinaryField(max_length=32)
    epoch = models.PositiveIntegerField()
    round = models.BigIntegerField()
    merkle_root = models.BinaryField(max_length=32, help_text="RFC 9162 root over the observations")
    tree_size = models.PositiveIntegerField(help_text="how many observations (leaves)")
    signatures = models.JSONField(help_text="[{validator, name, signature}] (hex), more than 2/3")
    validators = models.JSONField(default=list, help_text="the epoch's validator ids (hex)")
    log_root = models.BinaryField(
        max_length=32, help_text="RFC 9162 root of the block log: leaves = block hashes 0..height"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-height"]

    def __str__(self) -> str:
        return f"block {self.height}"


class BulkCopyManager(models.Manager["BlockObservation"]):
    """``bulk_copy``: many rows in one PostgreSQL ``COPY`` (an agreed block holds thousands).

    ``bulk_create`` compiled an INSERT with a placeholder per value in Python: ~0.5 ms a row
    on the loaded machine, 2-3 s for a block of a few thousand observations, with the
    validator's lock held. COPY (``settlement.bulk``) streams the same rows, every concrete
    field of the model, so a field added later is copied too."""

    def bulk_copy(self, objs: Iterable[BlockObservation]) -> int:
        rows = list(objs)
        bulk.copy_objects(rows)
        return len(rows)


class BlockObservation(models.Model):
    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="observations")
    index = models.PositiveIntegerField(help_text="leaf index in the block's Merkle tree, 0-based")
    kind = models.CharField(max_length=40)
    data = models.BinaryField(help_text="the leaf: the observation bytes the Merkle tree commits to")
    digest = models.BinaryField(
        max_length=32,
        help_text="SHA-256 of the leaf bytes (PendingObservation.digest): finds an observation's block",
    )

    objects = BulkCopyManager()

    class Meta:
        ordering = ["block", "index"]
        constraints = [models.UniqueConstraint(fields=["block", "index"], name="one_observation_per_leaf")]
        # Not unique: an observation is agreed once within the de-duplication window (4,096
        # blocks), but may be agreed again after it; a receipt takes the first.
        indexes = [models.Index(fields=["digest"], name="observation_by_digest")]

    def __str__(self) -> str:
        return f"block {self.block_id} leaf {self.index}"


class BlockTree(models.Model):
    """Every node hash of a block's Merkle tree, level by level (leaf hashes first, root last),
    written the first time a receipt needs the block (blocks never change). An audit path is
    then ``log2(n)`` 32-byte slices read with ``substring`` from this uncompressed, out-of-line
    value, instead of reading and hashing every observation of the block again."""

    block = models.OneToOneField(Block, on_delete=models.CASCADE, primary_key=True, related_name="tree")
    levels = models.BinaryField(help_text="the levels' hashes concatenated, 32 bytes each")

    def __str__(self) -> str:
        return f"tree of block {self.block_id}"


class Accusation(models.Model):
    offender = models.CharField(max_length=64, help_text="validator id (hex)")
    offender_name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=40)
    evidence = models.JSONField(help_text="Accusation.to_wire(): checkable by anyone (check_accusation)")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [models.UniqueConstraint(fields=["offender", "kind"], name="one_accusation_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} by {self.offender_name or self.offender[:12]}"


class AnchorStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTED = "submitted", "Submitted"
    MINED = "mined", "Mined"
    FINAL = "final", "Final"
    REVERTED = "reverted", "Reverted"


class Anchor(models.Model):
    """The block log's root at size ``height + 1`` written to the AnchorRegistry contract, followed
    until final. One anchor covers every block up to ``height``: each block's hash is a leaf of
    that log, and a consistency proof ties the block's own log size to the anchored one."""

    height = models.BigIntegerField(unique=True)
    log_root = models.BinaryField(
        max_length=32, help_text="RFC 9162 root of the block log (leaves: block hashes 0..height)"
    )
    account = models.CharField(
        max_length=42, blank=True, help_text="the Ethereum account that sent it (0x-hex, lower case)"
    )
    status = models.CharField(max_length=10, choices=AnchorStatus.choices, default=AnchorStatus.PENDING)
    tx_hash = models.CharField(max_length=66, blank=True)
    previous_tx_hashes = models.JSONField(default=list, help_text="sent before and dropped by a reorg")
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    log_index = models.PositiveIntegerField(null=True, blank=True)
    gas_used = models.PositiveIntegerField(null=True, blank=True)
    confirmations = models.PositiveIntegerField(default=0)
    confirmations_needed = models.PositiveIntegerField(default=3)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-height"]
        indexes = [
            # A receipt's covering anchor (consensus.receipts.covering_anchor): the newest usable
            # anchor of a status at or above a height is the first row of a backward scan.
            models.Index(
                fields=["status", "height"],
                name="anchor_usable_by_status_height",
                condition=models.Q(log_index__isnull=False, block_number__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"anchor of blocks 0..{self.height} ({self.status})"
