"""Counterparties: who they are (real names, LEI), their keys, custody and KYC status.

Private keys of custodial counterparties live in :class:`CustodialKeySet`, sealed, in a table
of their own that no serializer, form, admin page or audit record reads.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from settlement.counterparties import kyc_rules


class CounterpartyKind(models.TextChoices):
    PERSON = "person", "Person"
    COMPANY = "company", "Company"
    BANK = "bank", "Bank"


class Custody(models.TextChoices):
    SELF = "self", "Self (holds its own keys)"
    CUSTODIAL = "custodial", "Custodial (the node holds sealed keys)"


class KycStatus(models.TextChoices):
    """SEP-12 customer statuses; the steps between them are in :mod:`kyc_rules`."""

    NEEDS_INFO = kyc_rules.KycState.NEEDS_INFO.value, "Needs information"
    PROCESSING = kyc_rules.KycState.PROCESSING.value, "Processing"
    ACCEPTED = kyc_rules.KycState.ACCEPTED.value, "Accepted"
    REJECTED = kyc_rules.KycState.REJECTED.value, "Rejected"


def _node_domain() -> str:
    return str(settings.NODE_DOMAIN)


class Counterparty(models.Model):
    kind = models.CharField(max_length=10, choices=CounterpartyKind.choices)
    legal_name = models.CharField(max_length=200, help_text="The real, legal name")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    lei = models.CharField(max_length=20, blank=True, help_text="ISO 17442; required for companies")
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    federation_name = models.CharField(max_length=64, help_text="the name in name*domain, lower case")
    federation_domain = models.CharField(max_length=253, default=_node_domain)
    ed25519_public_key = models.CharField(max_length=64, unique=True)
    x25519_public_key = models.CharField(max_length=64)
    ethereum_address = models.CharField(max_length=42, help_text="EIP-55 checksum form")
    custody = models.CharField(max_length=10, choices=Custody.choices)
    kyc_status = models.CharField(max_length=12, choices=KycStatus.choices, default=KycStatus.NEEDS_INFO)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["legal_name", "id"]
        verbose_name_plural = "counterparties"
        constraints = [
            models.UniqueConstraint(
                fields=["federation_name", "federation_domain"], name="unique_federation_address"
            )
        ]
        indexes = [models.Index(fields=["kyc_status"]), models.Index(fields=["lei"])]

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.federation_address})"

    @property
    def federation_address(self) -> str:
        return f"{self.federation_name}*{self.federation_domain}"

    @property
    def is_accepted(self) -> bool:
        return kyc_rules.can_hold_funds(self.kyc_status)

    @property
    def can_hold_funds(self) -> bool:
        """Only ACCEPTED counterparties may hold funds or open channels."""
        return self.is_accepted

    @property
    def public_keys(self) -> dict[str, str]:
        return {
            "ed25519": self.ed25519_public_key,
            "x25519": self.x25519_public_key,
            "ethereum": self.ethereum_address,
        }


class CustodialKeySet(models.Model):
    """The sealed private keys of a custodial counterparty (``keystore.seal_for_custody``).

    Each value is a sealed blob (secretbox under the node's Argon2id-derived key); the plain keys
    exist only in memory, in ``keystore.open_custodial``'s return value.
    """

    counterparty = models.OneToOneField(Counterparty, on_delete=models.PROTECT, related_name="custodial_keys")
    sealed_ed25519 = models.JSONField()
    sealed_x25519 = models.JSONField()
    sealed_ethereum = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:  # never the sealed blobs, even in a shell
        return f"custodial keys of counterparty {self.counterparty_id}"


class KycDocument(models.Model):
    """A document uploaded for KYC; the bytes are in content-addressed storage under its SHA-256."""

    counterparty = models.ForeignKey(Counterparty, on_delete=models.PROTECT, related_name="kyc_documents")
    sha256 = models.CharField(max_length=64)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    uploaded_by = models.CharField(max_length=150)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "sha256"], name="one_document_per_content")
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.sha256[:12]}…)"


class KycReview(models.Model):
    """One KYC step: from, to, who, why, when. The history a regulator reads."""

    counterparty = models.ForeignKey(Counterparty, on_delete=models.PROTECT, related_name="kyc_reviews")
    from_status = models.CharField(max_length=12, choices=KycStatus.choices)
    to_status = models.CharField(max_length=12, choices=KycStatus.choices)
    reviewer = models.CharField(max_length=150, help_text="who took the step (reviewer, or submitter)")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.counterparty_id}: {self.from_status} -> {self.to_status}"


class FederationKeySet(models.Model):
    """A distinct set of keys the federation endpoint served for a counterparty, and when."""

    counterparty = models.ForeignKey(
        Counterparty, on_delete=models.PROTECT, related_name="federation_key_sets"
    )
    keys = models.JSONField()
    keys_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical keys")
    first_served_at = models.DateTimeField(default=timezone.now)
    last_served_at = models.DateTimeField(default=timezone.now)
    times_served = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-first_served_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "keys_hash"], name="one_row_per_served_key_set")
        ]

    def __str__(self) -> str:
        return f"{self.counterparty_id}: {self.keys_hash[:12]}… x{self.times_served}"
