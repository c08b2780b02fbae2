"""The ledgers shell's state: assets, per-party chains, the balance projection, holds, payments,
offers and exported fraud proofs.

The rules are in :mod:`ledgers.protocol`; these tables only keep what the rules decided. Amounts
are minor units in ``bigint`` (the protocol's maximum is ``2**63 - 1``); cumulative supply
counters are ``NUMERIC(78, 0)``, since what was ever issued may exceed what can be outstanding.
Hashes, keys and signatures are lowercase hex, as they are exported.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from settlement.counterparties.models import Counterparty
from settlement.models import Peer


class Asset(models.Model):
    """A Unified Asset Identifier (``bank-a.test/EUR``): its issuer's namespace and code."""

    uai = models.CharField(max_length=290, unique=True)
    issuer = models.CharField(max_length=253, help_text="the issuing bank's namespace")
    code = models.CharField(max_length=32)
    decimals = models.PositiveSmallIntegerField()
    issued = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    redeemed = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uai"]
        constraints = [
            models.CheckConstraint(condition=Q(decimals__lte=18), name="asset_decimals_at_most_18")
        ]

    def __str__(self) -> str:
        return self.uai


class LedgerOwner(models.TextChoices):
    COUNTERPARTY = "counterparty", "A counterparty of this bank"
    BANK = "bank", "This bank's own books"
    PEER = "peer", "A peer bank's account here"


class Ledger(models.Model):
    """One party's chain (a UBI). The head (next height, last hash, last time) is what an append
    locks (``select_for_update``) and moves; entries are never changed once written."""

    ubi = models.CharField(max_length=330, unique=True)
    owner = models.CharField(max_length=12, choices=LedgerOwner.choices)
    counterparty = models.ForeignKey(
        Counterparty, null=True, blank=True, on_delete=models.PROTECT, related_name="ledgers"
    )
    peer = models.ForeignKey(Peer, null=True, blank=True, on_delete=models.PROTECT, related_name="ledgers")
    party_key = models.CharField(max_length=64, help_text="the owner's Ed25519 public key (hex)")
    next_height = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    last_time = models.BigIntegerField(default=0, help_text="milliseconds since the epoch")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ubi"]
        constraints = [
            models.CheckConstraint(condition=Q(next_height__gte=0), name="ledger_height_not_negative"),
            models.CheckConstraint(
                condition=Q(owner="counterparty", counterparty__isnull=False)
                | Q(owner="peer", peer__isnull=False)
                | Q(owner="bank", counterparty__isnull=True, peer__isnull=True),
                name="ledger_owner_matches",
            ),
        ]

    def __str__(self) -> str:
        return self.ubi


class LedgerEntry(models.Model):
    """One link of a chain, with the party's and the validator's signatures (hex)."""

    # No index of its own: one_entry_per_height's (ledger, height) index serves look-ups by
    # ledger, and every index costs each of the thousands of entries appended a second.
    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="entries", db_index=False)
    height = models.BigIntegerField()
    prev = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=40)
    body = models.JSONField()
    time = models.BigIntegerField(help_text="milliseconds since the epoch")
    party_signature = models.CharField(max_length=128, blank=True, help_text="empty when the kind needs none")
    validator_signature = models.CharField(max_length=128)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ledger_id", "height"]
        constraints = [
            models.UniqueConstraint(fields=["ledger", "height"], name="one_entry_per_height"),
            models.CheckConstraint(condition=Q(height__gte=0), name="entry_height_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger_id}#{self.height} {self.kind}"


class Balance(models.Model):
    """The projection of a chain: the balance of one asset, written in the same transaction as
    the entry that changed it. The database refuses a balance below the credit line."""

    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="balances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="balances")
    amount = models.BigIntegerField(default=0)
    credit_line = models.BigIntegerField(default=0, help_text="how far below zero the balance may go")

    class Meta:
        ordering = ["ledger_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["ledger", "asset"], name="one_balance_per_ledger_asset"),
            models.CheckConstraint(condition=Q(credit_line__gte=0), name="credit_line_not_negative"),
            models.CheckConstraint(
                condition=Q(amount__gte=-F("credit_line")), name="balance_within_credit_line"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ledger_id} {self.asset_id} {self.amount}"


class Hold(models.Model):
    """Funds set aside on a ledger (``payment:<id>``, ``offer:<id>``, ``take:<id>``) until an
    entry consumes them or they are released."""

    # one_hold_per_key's (ledger, key) index serves look-ups by ledger.
    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="holds", db_index=False)
    key = models.CharField(max_length=80)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="holds")
    amount = models.BigIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ledger", "key"], name="one_hold_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger_id} {self.key}"


class Transfer(models.Model):
    """A payment within this bank, by its idempotency key: a replay finds this row and gets the
    first result back; nothing is appended twice."""

    # Indexes: each costs every payment an insertion. The key is unique through a constraint
    # (a unique field would add a second, LIKE-pattern index nothing uses); nothing looks
    # transfers up by asset (the foreign key is kept, not indexed).
    # The sender and the recipient are the ledgers of the debit and the credit entry (the
    # `sender`/`recipient` properties), not columns of their own: two foreign keys repeating what
    # the entries' own reference, each checked at commit (about a tenth of PostgreSQL's CPU a
    # payment), and two facts that could only ever disagree with the chains.
    idempotency_key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of what was asked, to spot a reused key")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="transfers", db_index=False)
    amount = models.BigIntegerField()
    debit = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    credit = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="one_transfer_per_idempotency_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_positive"),
        ]

    def __str__(self) -> str:
        return self.idempotency_key

    @property
    def sender(self) -> Ledger:
        """The ledger debited: the debit entry's."""
        return self.debit.ledger

    @property
    def recipient(self) -> Ledger:
        """The ledger credited: the credit entry's."""
        return self.credit.ledger


class PaymentRole(models.TextChoices):
    ORIGIN = "origin", "Origin (bank A)"
    COSIGNER = "cosigner", "Co-signer (bank B or a correspondent)"


class InterbankPayment(models.Model):
    """A payment between banks, as this bank sees it: the signed instruction, the signatures
    gathered so far, and its phase (held, final, voided)."""

    # Indexes: each costs every payment two insertions (the row is written, then its phase
    # moves). The id is unique through a constraint (a unique field adds a LIKE-pattern index
    # nothing uses); look-ups by debit ledger go through one_origin_payment_per_reference, and
    # none go by credit ledger (the foreign keys are kept, not indexed).
    payment_id = models.CharField(max_length=64, help_text="hash of the signed instruction")
    reference = models.CharField(max_length=200, help_text="the sender's idempotency key")
    role = models.CharField(max_length=10, choices=PaymentRole.choices)
    phase = models.CharField(max_length=10, default="held")
    proof = models.JSONField(help_text="PaymentProof.to_json(): instruction and signatures so far")
    amount = models.BigIntegerField()
    debit_ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="+", db_index=False)
    credit_ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="+", db_index=False)
    expires_at = models.BigIntegerField(help_text="milliseconds since the epoch")
    void_reason = models.CharField(max_length=300, blank=True)
    void_signature = models.CharField(max_length=128, blank=True)
    peer_confirmed = models.BooleanField(default=False, help_text="the co-signer took the outcome (origin)")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["phase", "expires_at"])]
        constraints = [
            models.UniqueConstraint(fields=["payment_id"], name="one_row_per_interbank_payment"),
            # A replay of the sender's idempotency key finds the first payment, never a second one.
            models.UniqueConstraint(
                fields=["debit_ledger", "reference"],
                condition=Q(role="origin"),
                name="one_origin_payment_per_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id[:16]}… {self.phase}"


class Offer(models.Model):
    """An exchange offer signed by its maker and the maker's bank; kept by the maker's bank
    (``local``) and by peers it spread to. ``book`` is the maker's bank's OfferBook state."""

    offer_id = models.CharField(max_length=64, unique=True)
    signed_offer = models.JSONField()
    maker_bank = models.CharField(max_length=253)
    local = models.BooleanField(help_text="kept (and settled) by this bank")
    phase = models.CharField(max_length=10, default="open")
    accepted = models.JSONField(
        null=True, blank=True, help_text="the AcceptedTake, once one take is accepted"
    )
    expires_at = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"offer {self.offer_id[:16]}… {self.phase}"


class Take(models.Model):
    """A take of an offer, from the taker's bank's side."""

    take_id = models.CharField(max_length=64, unique=True)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="takes")
    signed_take = models.JSONField()
    taker_ledger = models.ForeignKey(
        Ledger, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, default="pending")
    accepted = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"take {self.take_id[:16]}… {self.status}"


class FraudProof(models.Model):
    """A fraud proof this node exported, with the verdict it got when checked here."""

    kind = models.CharField(max_length=40)
    document = models.JSONField()
    proven = models.BooleanField()
    accused_key = models.CharField(max_length=64)
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} against {self.accused_key[:16]}…"
