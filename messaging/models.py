"""Messages as this node keeps them (ARCHITECTURE.md §6, seed 002).

One ``Message`` row per message this node has seen: sent by one of its counterparties (then it
is recorded on the sender's ledger, ``ledger_entry``), or delivered to one of them by a peer. One
``Delivery`` row per recipient the node is responsible for: on the sender's node, every recipient
(its state is the router's progress); on a recipient's node, its own recipients (the inbox).

The visible state of a delivery is ``accepted → delivered → in block → anchored``, or ``rejected``
or ``timed out``: the first two are the router's (``Delivery.status``), "in block" and
"anchored" follow from the sender entry's commitment being agreed (``Message.block_height``)
and a final anchor covering that block (``Message.anchored_at``).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ledgers.models import LedgerEntry
from settlement.bulk import JsonTextField
from settlement.counterparties.models import Counterparty
from settlement.models import Peer


class Message(models.Model):
    # Unique through Meta.constraints, which unlike unique=True adds no second (pattern) index.
    message_id = models.CharField(max_length=32, help_text="the envelope's id (32 hex)")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the signed envelope bytes")
    # JSON kept as text, not jsonb (settlement.bulk.JsonTextField): never queried inside, and for a
    # message sent here the envelope column is the canonical text its sender signed.
    envelope = JsonTextField(help_text="the signed envelope, as received (body plain or boxed)")
    signature = models.CharField(
        max_length=128,
        help_text="the sender's Ed25519 signature (hex): on the envelope, or on its batch's head (batch)",
    )
    batch = JsonTextField(
        null=True,
        blank=True,
        help_text=(
            "signed as one of a batch: {root, size, index, path} (hex), the path left out when the batch "
            "came whole in a compact request (read from its MessageBatchTree); empty when signed alone"
        ),
    )
    kind = models.CharField(max_length=40)
    sender_address = models.CharField(max_length=320)
    sender = models.ForeignKey(
        Counterparty,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # the outbox looks up by sender_address (indexed), the same for a sender here
        related_name="messages_sent",
        help_text="the sender, when it is a counterparty of this node",
    )
    recipients = models.JSONField(help_text="every recipient's address, as in the envelope")
    reply_to = models.CharField(max_length=32, blank=True)
    encrypted = models.BooleanField(default=False)
    size = models.PositiveIntegerField(help_text="bytes of the canonical signed envelope")
    sent_at_ms = models.BigIntegerField(help_text="the envelope's time (ms since 1970, the sender's clock)")
    accepted_at = models.DateTimeField(default=timezone.now, db_index=True)
    received_from = models.ForeignKey(
        Peer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # never looked up by; a peer is not deleted while it delivered messages
        related_name="messages_received",
        help_text="the peer that delivered it; empty when sent here",
    )
    ledger_entry = models.ForeignKey(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # never looked up by (ledger entries are never deleted)
        related_name="messages",
        help_text="the sender's message entry, or the message-batch entry of its batch (sent here)",
    )
    record = JsonTextField(
        default=dict,
        help_text="the sender's ledger entry {ledger, height, hash}, here or at the sender's bank",
    )
    observation_digest = models.BinaryField(
        max_length=32, null=True, help_text="PendingObservation digest of the entry's head commitment"
    )
    block_height = models.BigIntegerField(null=True, blank=True)
    anchored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-accepted_at", "-id"]
        # Few indexes on purpose: every one is paid on each of thousands of inserts a second (about
        # 3 µs of PostgreSQL's CPU per row each, docs/messaging.md "Speed"). Only what the
        # selectors and messages_follow look up by: id, party (sender address, which the outbox uses
        # too), time, block; no pattern (LIKE) indexes, none on the digest, the sender's id, the
        # record entry or the delivering peer.
        constraints = [models.UniqueConstraint(fields=["message_id"], name="one_message_per_id")]
        indexes = [
            models.Index(fields=["block_height", "anchored_at"]),
            models.Index(fields=["sender_address"], name="message_by_sender_address"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id} from {self.sender_address}"


class MessageBatchTree(models.Model):
    """A batch its sender sent whole in one compact request (docs/messaging.md, "The compact batch
    request"): its leaves, the messages' digests in the order signed, stored once for the batch
    instead of an audit path in every message row. A message's path is read from this tree when a
    receipt or a delivery needs it; the batch's ``message-batch`` entry and root find it."""

    ledger_entry = models.ForeignKey(
        LedgerEntry,
        on_delete=models.PROTECT,
        db_index=False,  # one_tree_per_batch_record leads with it
        related_name="message_batch_trees",
        help_text="the message-batch entry that records the batch",
    )
    root = models.CharField(
        max_length=64, help_text="the batch's RFC 9162 root (hex), as its sender signed it"
    )
    size = models.PositiveIntegerField()
    leaves = models.BinaryField(help_text="the messages' digests in batch order, 32 bytes each")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ledger_entry", "root"], name="one_tree_per_batch_record")
        ]

    def __str__(self) -> str:
        return f"batch {self.root[:12]} of {self.size}"


class DeliveryStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DELIVERED = "delivered", "Delivered"
    REJECTED = "rejected", "Rejected"
    TIMED_OUT = "timed_out", "Timed out"


class Delivery(models.Model):
    # Looked up by message through the (message, recipient_address) unique index. The database
    # keeps its foreign-key constraints on message rows: they cost a few µs of PostgreSQL's CPU per
    # message at commit (docs/messaging.md, "Speed"), a price worth paying for records that must
    # never point at nothing, whatever path writes or deletes them.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    recipient_address = models.CharField(max_length=320)
    recipient = models.ForeignKey(
        Counterparty,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # delivery_by_recipient, partial
        related_name="messages_received",
        help_text="the recipient, when it is a counterparty of this node (its inbox)",
    )
    peer = models.ForeignKey(
        Peer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,  # delivery_by_peer, partial
        related_name="message_deliveries",
        help_text="the recipient's node, when it is another node",
    )
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.ACCEPTED)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    rejection_code = models.CharField(max_length=60, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="rejected or timed out at")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "recipient_address"], name="one_delivery_per_recipient"
            )
        ]
        # Partial indexes: most deliveries are delivered at once (recipients of this node) and never
        # looked up by status again, and a delivery has a recipient here or a peer, not both; a row
        # pays only for the indexes its look-ups need (docs/messaging.md, "Speed").
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                condition=~models.Q(status="delivered"),
                name="delivery_waiting_or_failed",
            ),
            models.Index(
                fields=["recipient"],
                condition=models.Q(recipient__isnull=False),
                name="delivery_by_recipient",
            ),
            models.Index(fields=["peer"], condition=models.Q(peer__isnull=False), name="delivery_by_peer"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} to {self.recipient_address} ({self.status})"

    @property
    def state(self) -> str:
        """The state people see: the router's, then the record's progress once delivered."""
        if self.status != DeliveryStatus.DELIVERED:
            return str(self.get_status_display()).lower()
        if self.message.anchored_at is not None:
            return "anchored"
        if self.message.block_height is not None:
            return "in block"
        return "delivered"


class MessageAttachment(models.Model):
    """A file a message names by SHA-256; the bytes are in the counterparty document store."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveIntegerField()
    media_type = models.CharField(max_length=50)
    uploaded_by = models.CharField(max_length=150)
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.media_type}, {self.size} bytes)"
