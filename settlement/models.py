"""Models shared by every app: API tokens and the node's health history."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """The roles of ARCHITECTURE.md §8; each is a Django group of the same name."""

    OPERATOR = "operator", "Operator"
    KYC_REVIEWER = "kyc_reviewer", "KYC reviewer"
    AUDITOR = "auditor", "Auditor (read-only)"
    ADMIN = "admin", "Admin"


TOKEN_PREFIX = "psk"  # noqa: S105 - a public marker, not a secret


def hash_token_secret(secret: str) -> str:
    # Tokens are 256-bit random strings: a fast hash is enough (no dictionary to attack), and
    # an API call must not pay for a password hash.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A revocable API token scoped to one role. Only its hash is stored; the token itself is
    shown once, when it is created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=20, choices=Role.choices)
    lookup = models.CharField(max_length=16, unique=True, help_text="Public part of the token, for look-up")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, {TOKEN_PREFIX}_{self.lookup}_…)"

    @classmethod
    def issue(cls, *, user: User, name: str, role: str) -> tuple[ApiToken, str]:
        """Create a token and return it with its plain text, which is never stored."""
        lookup = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, role=role, lookup=lookup, secret_hash=hash_token_secret(secret)
        )
        return token, f"{TOKEN_PREFIX}_{lookup}_{secret}"


class HealthSample(models.Model):
    """One reading of the node's services, taken by beat; the Overview plots the last hour."""

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    database_up = models.BooleanField()
    redis_up = models.BooleanField()
    worker_up = models.BooleanField()
    ethereum_up = models.BooleanField()
    ethereum_block = models.BigIntegerField(null=True)
    ethereum_latency_ms = models.FloatField(null=True)
    database_latency_ms = models.FloatField(null=True)

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"health at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class AuditEvent(models.Model):
    """One change, recorded for ever: who did what to which object, with before and after.

    Append-only: a PostgreSQL trigger (migration 0003) refuses UPDATE and DELETE, so not even
    a bug in the application, or an operator with a shell, can rewrite the record quietly.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text="username, api-token:<lookup>, peer:<name> or system")
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=100, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type}:{self.target_id}"


class KeyPurpose(models.TextChoices):
    SIGNING = "ed25519", "Ed25519 signing"
    ENCRYPTION = "x25519", "X25519 sealed boxes"
    ETHEREUM = "ethereum", "Ethereum account (secp256k1)"


class NodeKey(models.Model):
    """One of the node's own keys. The private half is sealed (secretbox under an Argon2id key
    from the operator's passphrase); retired keys stay, with their validity interval, so old
    signatures still verify."""

    purpose = models.CharField(max_length=10, choices=KeyPurpose.choices)
    key_id = models.CharField(max_length=80, unique=True)
    public = models.CharField(max_length=130, help_text="hex public key, or 0x address for Ethereum")
    sealed_private = models.JSONField()
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    handover_signature = models.CharField(
        max_length=128,
        blank=True,
        help_text="a retired signing key's Ed25519 signature naming its successor (hex; docs/receipt.md)",
    )

    class Meta:
        ordering = ["purpose", "-valid_from"]
        constraints = [
            # At most one current key per purpose: rotation retires the old one in the same transaction.
            models.UniqueConstraint(
                fields=["purpose"],
                condition=models.Q(valid_until__isnull=True),
                name="one_current_key_per_purpose",
            )
        ]

    def __str__(self) -> str:
        return self.key_id

    @property
    def is_current(self) -> bool:
        return self.valid_until is None


class NodeKeyHandover(models.Model):
    """An earlier signing key's hand-over straight to a later key that is not its immediate
    successor (that one is ``NodeKey.handover_signature``). Signed at the rotation that made
    ``successor``, inside the node, by every key retired before it, so that a receipt of an entry
    co-signed by any earlier key needs one hand-over whatever the number of rotations since
    (docs/receipt.md, "Direct hand-overs"). Kept for good: it is a statement the key made."""

    key = models.ForeignKey(NodeKey, on_delete=models.PROTECT, related_name="direct_handovers")
    successor = models.ForeignKey(NodeKey, on_delete=models.PROTECT, related_name="+")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature of the hand-over (hex)")
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["successor_id", "key_id"]
        constraints = [
            models.UniqueConstraint(fields=["key", "successor"], name="one_handover_per_key_and_successor"),
            models.CheckConstraint(
                condition=~models.Q(key=models.F("successor")), name="handover_to_another_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key_id} -> {self.successor_id}"


class PeerStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not yet reached"
    UP = "up", "Up"
    DOWN = "down", "Down"


class Peer(models.Model):
    """Another Parsec node, known by its published identity (/.well-known/parsec.json)."""

    name = models.CharField(max_length=100, unique=True)
    domain = models.CharField(max_length=200, unique=True)
    base_url = models.URLField(unique=True)
    x25519_public = models.CharField(max_length=64, blank=True)
    ethereum_address = models.CharField(max_length=42, blank=True)
    status = models.CharField(max_length=10, choices=PeerStatus.choices, default=PeerStatus.UNKNOWN)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    round_trip_ms = models.FloatField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PeerKey(models.Model):
    """A peer's Ed25519 key with the interval in which it signs; retired keys still verify
    what was signed while they were current."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="keys")
    key_id = models.CharField(max_length=80, unique=True)
    public = models.CharField(max_length=64)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["peer", "-valid_from"]

    def __str__(self) -> str:
        return self.key_id


class PeerCreditLimit(models.Model):
    """How much of an asset this node lets a peer owe it (trust), in the asset's minor units."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="credit_limits")
    asset = models.CharField(max_length=100, help_text="Unified Asset Identifier, e.g. bank-a.test/EUR")
    limit = models.DecimalField(max_digits=30, decimal_places=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["peer", "asset"], name="one_limit_per_peer_asset")]

    def __str__(self) -> str:
        return f"{self.peer} {self.asset} {self.limit}"


class NodeRequestReceipt(models.Model):
    """The first answer to a node-to-node request, by idempotency key: a retry gets the same
    answer and the handler does not run twice."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="request_receipts")
    idempotency_key = models.CharField(max_length=100)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_fingerprint = models.CharField(
        max_length=64, default="", help_text="SHA-256 of method, full path and body digest (hex)"
    )
    status_code = models.PositiveSmallIntegerField()
    response_body = models.BinaryField()
    content_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["peer", "idempotency_key"], name="one_answer_per_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.peer} {self.idempotency_key}"
