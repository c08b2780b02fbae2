"""Channels as PostgreSQL rows: the shell around ``channels_app.protocol``.

A :class:`Channel` row keeps the protocol's ``Channel`` (frozen dataclasses) in three parts: the
parts that change seldom as JSON in ``machine``, our proposal awaiting its countersignature as
bytes in ``pending``, and the latest both-signed state by reference: it is the
:class:`ChannelState` row whose version is ``Channel.version``. Every both-signed state is one
such row (bytes, ``codec.signed_state_bytes``), written in the same transaction as the channel
row, before anything is acknowledged; every applied change is a :class:`ChannelStateChange` row
(the log), or on the batch path one entry of its batch's :class:`ChannelBatchChange` row.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from channels_app import codec
from channels_app.protocol import state as protocol_state
from channels_app.protocol.channel_state import ChannelParams
from channels_app.protocol.channel_state import ChannelState as ChannelStateData
from channels_app.protocol.types import ChannelId


class ChannelKind(models.TextChoices):
    LEDGER = "ledger", "Ledger channel"
    NANOCONTRACT = "nanocontract", "Nanocontract"
    VIRTUAL = "virtual", "Virtual channel"


class ChannelPhase(models.TextChoices):
    PROPOSED = "proposed", "Proposed (awaiting the opening signature)"
    FUNDING = "funding", "Funding"
    OPEN = "open", "Open"
    FINAL = "final", "Final (closing on-chain)"
    DISPUTE = "dispute", "In dispute"
    CONCLUDED = "concluded", "Concluded"


class Channel(models.Model):
    """A channel this node takes part in, with a counterparty of ours or a peer node."""

    channel_id = models.CharField(max_length=66, unique=True, help_text="0x + keccak of the fixed part")
    kind = models.CharField(max_length=12, choices=ChannelKind.choices, default=ChannelKind.LEDGER)
    counterparty = models.ForeignKey(
        "counterparties.Counterparty",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channels",
    )
    peer = models.ForeignKey(
        "settlement.Peer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    our_address = models.CharField(max_length=42)
    their_address = models.CharField(max_length=42)
    our_index = models.PositiveSmallIntegerField()
    params = models.JSONField(help_text="the protocol's ChannelParams")
    phase = models.CharField(max_length=10, choices=ChannelPhase.choices)
    version = models.BigIntegerField(default=0)
    machine = models.JSONField(
        null=True,
        help_text="the protocol's Channel but its latest state (the history row of this version) and pending",
    )
    machine_fingerprint = models.BinaryField(
        null=True,
        editable=False,
        help_text="SHA-256 of machine as PostgreSQL renders it, kept by a trigger on every write of machine",
    )
    pending = models.BinaryField(
        null=True, blank=True, help_text="our proposal awaiting its countersignature (codec.pending_bytes)"
    )
    opening = models.JSONField(null=True, help_text="the proposed opening state and our signature")
    balances = models.JSONField(default=list, help_text="per asset: ours, theirs, locked (display)")
    clock = models.BigIntegerField(default=0, help_text="the latest chain time the rules have seen")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phase"])]

    def __str__(self) -> str:
        return f"channel {self.channel_id[:10]}… ({self.phase})"

    @property
    def id_bytes(self) -> ChannelId:
        return ChannelId(bytes.fromhex(self.channel_id[2:]))

    @property
    def protocol_params(self) -> ChannelParams:
        result: ChannelParams = codec.decode(self.params)
        return result

    @property
    def protocol_channel(self) -> protocol_state.Channel:
        """The rules' channel: the stored machine, the latest both-signed state (the history
        row of ``version``) and our pending proposal."""
        if self.machine is None:
            raise ValueError(f"channel {self.channel_id} has no machine yet (awaiting its opening)")
        return codec.machine_build(
            codec.machine_parts_decode(self.machine),
            self.latest_signed,
            codec.pending_from_bytes(self.pending),
        )

    @property
    def latest_signed(self) -> protocol_state.SignedState:
        """The latest both-signed state: the history row of this channel's version (read once
        per version; ``machine_store`` primes it with the state just written)."""
        known = self.__dict__.get("_latest_signed")
        if known is not None and known.state.version == self.version:
            return known
        try:
            row = ChannelState.objects.only("signed").get(channel_id=self.pk, version=self.version)
        except ChannelState.DoesNotExist:
            raise ValueError(
                f"channel {self.channel_id}: no both-signed state of version {self.version} is stored"
            ) from None
        signed = self.__dict__["_latest_signed"] = row.protocol_signed
        return signed

    def machine_store(self, channel: protocol_state.Channel) -> None:
        """Set the columns that hold ``channel`` (not saved). Its latest state must be stored
        as a history row in the same transaction: ``StateAccepted`` does that."""
        self.machine = codec.machine_encode(channel)
        self.pending = codec.pending_bytes(channel.pending)
        self.version = channel.latest.state.version
        self.__dict__["_latest_signed"] = channel.latest

    @property
    def party_name(self) -> str:
        if self.counterparty is not None:
            return str(self.counterparty.legal_name)
        if self.peer is not None:
            return str(self.peer.name)
        return self.their_address

    @property
    def is_closed(self) -> bool:
        return self.phase == ChannelPhase.CONCLUDED


class ChannelState(models.Model):
    """A both-signed state, persisted before it is acknowledged to anyone; the channel row's
    ``version`` names its latest."""

    # No index of its own: the unique (channel, version) index below starts with the channel,
    # and serves every lookup by channel; a second index cost one more insertion per state.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="states", db_index=False)
    version = models.BigIntegerField()
    signed = models.BinaryField(help_text="the state and [A's, B's] signatures (codec.signed_state_bytes)")
    is_final = models.BooleanField(default=False)
    digest = models.CharField(max_length=66)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["channel", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "version"], name="one_signed_state_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.channel.channel_id[:10]}… v{self.version}"

    @property
    def protocol_signed(self) -> protocol_state.SignedState:
        known = self.__dict__.get("_protocol_signed")
        if known is None:
            known = self.__dict__["_protocol_signed"] = codec.signed_state_from_bytes(self.signed)
        return known

    @property
    def protocol_state(self) -> ChannelStateData:
        return self.protocol_signed.state

    @property
    def signatures(self) -> list[str]:
        """[A's, B's] as 0x hex."""
        return signatures_hex(self.protocol_signed.signatures)


class ChannelStateChange(models.Model):
    """The write-ahead log: each change applied to a channel, in order, with what it caused."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="changes")
    change = models.CharField(max_length=60)
    payload = models.JSONField()
    events = models.JSONField(default=list, help_text="the names of the events it produced")
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.change} on {self.channel_id}"


class ChannelBatchChange(models.Model):
    """The write-ahead log of the batch path (``channels_app.batch``): one row per kind of change
    a batch transaction applied, naming every channel it applied it to, in the batch's order.

    A plain update in a batch carries nothing a log row of its own would add to its history row
    (``ChannelState``: version, EIP-712 digest, the state and both signatures) or, until it is
    countersigned, to the channel row's ``pending``; one row per batch keeps the record of who
    applied which change when, without a row (and two index entries) per update. The single
    path logs each change as a :class:`ChannelStateChange`."""

    change = models.CharField(
        max_length=60, help_text="UpdateProposed, ProposalReceived or CountersignatureReceived"
    )
    channels = ArrayField(models.BigIntegerField(), help_text="the Channel rows' ids, in the batch's order")
    versions = ArrayField(
        models.BigIntegerField(), help_text="each update's state version, in the same order"
    )
    digests = ArrayField(
        models.CharField(max_length=66),
        default=list,
        blank=True,
        help_text="each proposed state's EIP-712 digest, in the same order (none for a countersignature)",
    )
    events = models.JSONField(default=list, help_text="the names of the events each update produced")
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.change} on {len(self.channels)} channels"


class SubAllocation(models.Model):
    """Funds a ledger channel's latest state locks for a sub-channel (nanocontract or virtual)."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="sub_allocations")
    sub_channel_id = models.CharField(max_length=66)
    asset = models.CharField(max_length=42)
    amount = models.DecimalField(max_digits=78, decimal_places=0)
    locked_in_version = models.BigIntegerField()
    released_in_version = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["channel", "locked_in_version"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "sub_channel_id"], name="one_lock_per_sub_channel")
        ]

    def __str__(self) -> str:
        return f"{self.amount} of {self.asset} for {self.sub_channel_id[:10]}…"


class VirtualRole(models.TextChoices):
    PARTICIPANT = "participant", "Participant"
    INTERMEDIARY = "intermediary", "Intermediary"


class VirtualChannel(models.Model):
    """A sub-channel funded by locks in ledger channels; as participant, or as intermediary
    (we keep its latest both-signed state as evidence, see docs/channels.md)."""

    channel_id = models.CharField(max_length=66, unique=True)
    role = models.CharField(max_length=12, choices=VirtualRole.choices)
    params = models.JSONField()
    latest = models.JSONField(help_text="the latest both-signed state we hold")
    version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"virtual {self.channel_id[:10]}… ({self.role})"


class StreamStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Stream(models.Model):
    """A micro-payment stream over a channel (seed 000)."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="streams")
    payer_address = models.CharField(max_length=42)
    asset = models.CharField(max_length=42)
    window = models.PositiveIntegerField()
    checkpoint_every = models.PositiveIntegerField()
    checkpoint_timeout = models.PositiveIntegerField(help_text="seconds")
    status = models.CharField(max_length=8, choices=StreamStatus.choices, default=StreamStatus.OPEN)
    payments_received = models.PositiveBigIntegerField(default=0)
    last_checkpoint_version = models.BigIntegerField(null=True, blank=True)
    last_checkpoint_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"stream on {self.channel_id} ({self.status})"


class StreamPayment(models.Model):
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="payments")
    sequence = models.PositiveBigIntegerField()
    amount = models.DecimalField(max_digits=78, decimal_places=0)
    balance_after = models.DecimalField(max_digits=78, decimal_places=0)
    version = models.BigIntegerField()
    payment = models.JSONField(help_text="the protocol's StreamPayment, signed by the payer")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["stream", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "sequence"], name="one_payment_per_sequence")
        ]

    def __str__(self) -> str:
        return f"payment {self.sequence} of stream {self.stream_id}"


class TransactionStatus(models.TextChoices):
    PENDING = "pending", "Not yet sent"
    SUBMITTED = "submitted", "Submitted"
    MINED = "mined", "Mined"
    FINAL = "final", "Final"
    REVERTED = "reverted", "Reverted"
    DROPPED = "dropped", "Dropped by a reorganisation; no longer needed"


class OnChainTransaction(models.Model):
    """One Ethereum transaction the node sends, followed until final; re-sent if a reorg drops it.

    The call (to, data, value, sender) is recorded before it is sent, so a crash between
    deciding and sending leaves a PENDING row the follower sends later.
    """

    purpose = models.CharField(max_length=40)
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="transactions"
    )
    sender = models.CharField(max_length=42)
    to = models.CharField(max_length=42)
    data = models.TextField(help_text="0x calldata")
    value = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    nonce = models.BigIntegerField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, db_index=True)
    previous_hashes = models.JSONField(default=list, help_text="hashes of earlier sends dropped by reorgs")
    status = models.CharField(
        max_length=10, choices=TransactionStatus.choices, default=TransactionStatus.PENDING
    )
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    gas_used = models.BigIntegerField(null=True, blank=True)
    confirmations = models.PositiveIntegerField(default=0)
    confirmations_needed = models.PositiveIntegerField(default=1)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.tx_hash or '(unsent)'} {self.status}"

    @property
    def progress(self) -> str:
        if self.status == TransactionStatus.MINED:
            return f"{self.confirmations}/{self.confirmations_needed} confirmations"
        return str(self.get_status_display())


class WatcherCursor(models.Model):
    """Where the watcher stopped: the last block it processed and that block's hash, so a
    restart continues there and a reorganisation (the hash changed) is noticed."""

    name = models.CharField(max_length=50, unique=True)
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} at {self.block_number}"


class DisputeAction(models.TextChoices):
    REGISTERED_SEEN = "registered_seen", "Saw a state registered on-chain"
    REFUTED = "refuted", "Refuted a stale state with our later one"
    REGISTERED_OURS = "registered_ours", "Registered our latest state (disputed settlement)"
    CONCLUDE_SENT = "conclude_sent", "Concluded after the challenge period"
    CHECKPOINT_SEEN = "checkpoint_seen", "Saw a checkpoint"
    CONCLUDED_SEEN = "concluded_seen", "Saw the channel concluded"
    REORG = "reorg", "Chain reorganisation: rewound"


class DisputeRecord(models.Model):
    """What the watcher saw and did, for the dispute view and the auditors."""

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    action = models.CharField(max_length=20, choices=DisputeAction.choices)
    registered_version = models.BigIntegerField(null=True, blank=True)
    our_version = models.BigIntegerField(null=True, blank=True)
    finalizes_at = models.BigIntegerField(null=True, blank=True, help_text="chain time, seconds")
    block_number = models.BigIntegerField(null=True, blank=True)
    transaction = models.ForeignKey(
        OnChainTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} on {self.channel_id}"


def signatures_hex(signatures: Any) -> list[str]:
    return ["0x" + bytes(s).hex() for s in signatures]
