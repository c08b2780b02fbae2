"""The node's own keys: made on first start, sealed at rest, opened once per process.

The passphrase comes from NODE_KEY_PASSPHRASE or the file named by NODE_KEY_PASSPHRASE_FILE and
is never stored, logged or shown. Argon2id runs once per process (about 0.1 s); opened keys are
kept in memory for the process's life, keyed by key id, so a rotation elsewhere is picked up at
the next look-up of the current key.

The signer (``node_signer``) is kept too, keyed by its public key: building one derives the
public key (a scalar multiplication, dearer than a signature). Which key is current is still
read from the database on every look-up, so a rotation by any process is followed at once; a hot
path that already makes a query can fold that read into it (``CURRENT_PUBLIC_KEY_SQL``, then
``node_signer_for``) and save the round trip.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from settlement.audit import audit_record
from settlement.models import KeyPurpose, NodeKey, NodeKeyHandover
from settlement.protocol import keys as key_rules
from settlement.protocol.handover import KeyHandover, key_handover_holds, key_handover_sign
from settlement.protocol.signing import SigningKey

_lock = threading.Lock()
_derived: key_rules.DerivedKey | None = None
_opened: dict[str, bytes] = {}
_signers: dict[str, NodeSigner] = {}
"""Opened signing keys by public key (hex): the public key names the secret, so a remembered
signer can never stand for another key (a database restored or replaced under a running process
included)."""


class KeystoreLocked(ImproperlyConfigured):
    """The passphrase is missing or does not open the node's keys: the node must not start."""


def _passphrase() -> str:
    value = os.environ.get("NODE_KEY_PASSPHRASE")
    if value:
        return value
    path = os.environ.get("NODE_KEY_PASSPHRASE_FILE")
    if path:
        try:
            text = Path(path).read_text().strip()
        except OSError as error:
            raise KeystoreLocked(
                f"NODE_KEY_PASSPHRASE_FILE {path} cannot be read: {error.strerror}"
            ) from error
        if text:
            return text
    raise KeystoreLocked(
        "set NODE_KEY_PASSPHRASE or NODE_KEY_PASSPHRASE_FILE: the node's keys are sealed with it"
    )


def _derived_key_for(sealed: dict[str, Any] | None) -> key_rules.DerivedKey:
    """The process's derived key; derived from the first sealed key's salt, or freshly."""
    global _derived
    with _lock:
        if _derived is None or (sealed is not None and not _derived.matches(sealed)):
            passphrase = _passphrase()
            _derived = (
                key_rules.derive_key_for(sealed, passphrase)
                if sealed is not None
                else key_rules.derive_key(passphrase)
            )
        return _derived


def _open(key: NodeKey) -> bytes:
    cached = _opened.get(key.key_id)
    if cached is not None:
        return cached
    try:
        secret = key_rules.open_secret(key.sealed_private, derived_key=_derived_key_for(key.sealed_private))
    except key_rules.WrongPassphrase as error:
        raise KeystoreLocked(
            f"the key passphrase does not open {settings.NODE_NAME}'s key {key.key_id}: "
            "check NODE_KEY_PASSPHRASE (or its file); the node will not start without it"
        ) from error
    _opened[key.key_id] = secret
    return secret


def keystore_check() -> None:
    """Open every sealed key once; raise :class:`KeystoreLocked` if the passphrase is wrong.

    Called when a web or worker process starts, so a wrong passphrase stops the node at once
    with a sentence, instead of failing the first request that needs a signature.
    """
    for key in NodeKey.objects.all():
        _open(key)


def forget_opened_keys() -> None:
    """Drop the keys and the derived key from memory (tests; a process that changes passphrase)."""
    global _derived
    with _lock:
        _derived = None
        _opened.clear()
        _signers.clear()
        _handovers.clear()


def _existing_sealed() -> dict[str, Any] | None:
    first = NodeKey.objects.order_by("id").values_list("sealed_private", flat=True).first()
    return first


def _new_key(purpose: str, sequence: int) -> NodeKey:
    if purpose == KeyPurpose.SIGNING:
        signing = SigningKey.generate()
        secret, public = signing.seed, signing.public_key.hex()
    elif purpose == KeyPurpose.ENCRYPTION:
        pair = key_rules.X25519KeyPair.generate()
        secret, public = pair.private_key, pair.public_key.hex()
    else:
        secret = key_rules.eth_generate_private_key()
        public = key_rules.eth_address_from_private_key(secret)
    sealed = key_rules.seal_secret(secret, derived_key=_derived_key_for(_existing_sealed()))
    key = NodeKey(
        purpose=purpose,
        key_id=f"{settings.NODE_DOMAIN}#{purpose}-{sequence}",
        public=public,
        sealed_private=sealed,
    )
    _opened[key.key_id] = secret
    return key


@transaction.atomic
def node_identity_ensure() -> list[NodeKey]:
    """Create whichever of the node's three keys is missing. Safe to run on every start."""
    made = []
    for purpose in KeyPurpose.values:
        if not NodeKey.objects.filter(purpose=purpose, valid_until__isnull=True).exists():
            sequence = NodeKey.objects.filter(purpose=purpose).count() + 1
            key = _new_key(purpose, sequence)
            key.save()
            audit_record(actor=None, action="node_key.create", target=key, after={"public": key.public})
            made.append(key)
    return made


def _handover_signed(key: NodeKey, successor: bytes) -> str:
    """``key``'s hand-over to ``successor`` (hex), verified before it is stored: an Ed25519
    signature computed under a fault can give the private key away once published."""
    signature = key_handover_sign(SigningKey(_open(key)), successor)
    if not key_handover_holds(bytes.fromhex(key.public), successor, signature):
        # Not the passphrase (the key opened): a fault while signing. The rotation's transaction
        # is rolled back, nothing is published.
        raise RuntimeError(f"{key.key_id} made a hand-over that does not verify: rotation refused")
    return signature.hex()


@transaction.atomic
def node_key_rotate(*, purpose: str, actor: Any, reason: str = "") -> NodeKey:
    """Retire the current key of ``purpose`` and make a new one; old signatures still verify.

    A retiring signing key signs its hand-over to the new key while it is still the current one,
    so that what it co-signed can be attributed to this node later (receipts, docs/receipt.md).
    Every key retired before it hands over straight to the new key too, in this transaction: a
    receipt of an entry any earlier key co-signed then carries one hand-over, not one per rotation
    since ("Direct hand-overs"). Apart from the late hand-over of a rotation made before
    hand-overs existed (``signing_key_handovers``), this is the only time a retired key signs."""
    current = NodeKey.objects.select_for_update().get(purpose=purpose, valid_until__isnull=True)
    new = _new_key(purpose, NodeKey.objects.filter(purpose=purpose).count() + 1)
    current.valid_until = timezone.now()
    successor = bytes.fromhex(new.public)
    if purpose == KeyPurpose.SIGNING:
        current.handover_signature = _handover_signed(current, successor)
    current.save(update_fields=["valid_until", "handover_signature"])
    new.valid_from = current.valid_until
    new.save()
    direct: list[NodeKeyHandover] = []
    if purpose == KeyPurpose.SIGNING:
        earlier = NodeKey.objects.filter(purpose=purpose, valid_until__isnull=False).exclude(pk=current.pk)
        direct = [
            NodeKeyHandover(key=key, successor=new, signature=_handover_signed(key, successor))
            for key in earlier.order_by("valid_from", "id")
        ]
        NodeKeyHandover.objects.bulk_create(direct)
    audit_record(
        actor=actor,
        action="node_key.rotate",
        target=new,
        before={"key_id": current.key_id, "public": current.public},
        after={
            "key_id": new.key_id,
            "public": new.public,
            **({"direct_handovers_from": [item.key.key_id for item in direct]} if direct else {}),
        },
        reason=reason,
    )
    return new


def current_key(purpose: str) -> NodeKey:
    try:
        return NodeKey.objects.get(purpose=purpose, valid_until__isnull=True)
    except NodeKey.DoesNotExist as error:
        raise ImproperlyConfigured(
            f"{settings.NODE_NAME} has no {purpose} key yet: run `manage.py node_bootstrap`"
        ) from error


@dataclass(frozen=True)
class NodeSigner:
    key_id: str
    key: SigningKey

    @property
    def public_key(self) -> bytes:
        return self.key.public_key


CURRENT_PUBLIC_KEY_SQL = "SELECT public FROM settlement_nodekey WHERE purpose = %s AND valid_until IS NULL"
"""The current key's public half (hex) of a purpose (the one parameter), as a scalar subquery to
fold into a query made anyway: one round trip fewer than :func:`node_signer`. ``NULL`` when the
node has no such key; never two rows (``one_current_key_per_purpose``), and it reads that index."""


def node_signer() -> NodeSigner:
    """The node's current Ed25519 key, for everything it signs off-chain."""
    # Written SQL: every signed request, answer and co-signature asks this, and compiling the
    # ORM query cost several times more than running it.
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_PUBLIC_KEY_SQL, [KeyPurpose.SIGNING.value])
        row = cursor.fetchone()
    return node_signer_for(row[0] if row else None)


def node_signer_for(public: str | None) -> NodeSigner:
    """The signer whose public key (hex) is ``public``, which the caller read as current in the
    same statement as its own data (``CURRENT_PUBLIC_KEY_SQL``). Opened once per process: a
    rotation changes ``public``, and the new key is opened at its first use."""
    if public is None:
        raise ImproperlyConfigured(
            f"{settings.NODE_NAME} has no {KeyPurpose.SIGNING} key yet: run `manage.py node_bootstrap`"
        )
    signer = _signers.get(public)
    if signer is not None:
        return signer
    key = NodeKey.objects.get(purpose=KeyPurpose.SIGNING, public=public)
    signer = NodeSigner(key.key_id, SigningKey(_open(key)))
    if signer.public_key.hex() != public:
        # The key id was opened from another database (replaced under this process): open the
        # row's own sealed secret instead of the one remembered under its id.
        _opened.pop(key.key_id, None)
        signer = NodeSigner(key.key_id, SigningKey(_open(key)))
        if signer.public_key.hex() != public:
            raise KeystoreLocked(f"the sealed secret of {key.key_id} does not open to its public key")
    _signers[public] = signer
    return signer


_handovers: dict[bytes, tuple[KeyHandover, ...]] = {}
"""Hand-overs by the current key they lead to: a stored hand-over never changes, and a rotation
makes a new current key (so a new entry here)."""


def signing_key_handovers(current: bytes) -> tuple[KeyHandover, ...]:
    """Every hand-over among the node's signing keys up to ``current`` (the public key the caller
    read as current): each retired key's to the key after it, oldest first, then the direct ones
    (an earlier key's straight to a later key, signed at the later key's rotation). Read when a
    receipt needs them (an entry co-signed before a rotation), then kept per process; the receipt
    takes the fewest that lead to ``current`` (``key_handover_path``).

    A rotation made before hand-overs were signed has none stored: the retired key, which the node
    keeps sealed precisely so its old signatures stay attributable, signs it now, once. The
    statement is the rotation that happened; signing it later lends the key no new power. Direct
    hand-overs are never made here: a rotation made before them leaves a chain, which the next
    rotation replaces by direct hand-overs to the new key."""
    kept = _handovers.get(current)
    if kept is not None:
        return kept
    keys = list(NodeKey.objects.filter(purpose=KeyPurpose.SIGNING).order_by("valid_from", "id"))
    handovers: list[KeyHandover] = []
    reached_current = False
    for retired, successor in itertools.pairwise(keys):
        public, next_public = bytes.fromhex(retired.public), bytes.fromhex(successor.public)
        if not retired.handover_signature:
            retired.handover_signature = key_handover_sign(SigningKey(_open(retired)), next_public).hex()
            NodeKey.objects.filter(pk=retired.pk, handover_signature="").update(
                handover_signature=retired.handover_signature
            )
        # Not verified here: a receipt that carries it is checked in full before it is handed out.
        handovers.append(KeyHandover(public, bytes.fromhex(retired.handover_signature), next_public))
        if next_public == current:
            reached_current = True
            break
    known = {handover.key for handover in handovers} | {current}
    direct = NodeKeyHandover.objects.filter(key__purpose=KeyPurpose.SIGNING).values_list(
        "key__public", "successor__public", "signature"
    )
    for key, successor_public, signature in direct.order_by("successor__valid_from", "key__valid_from"):
        if bytes.fromhex(key) in known and bytes.fromhex(successor_public) in known:
            handovers.append(
                KeyHandover(bytes.fromhex(key), bytes.fromhex(signature), bytes.fromhex(successor_public))
            )
    if reached_current:
        _handovers[current] = tuple(handovers)
    return tuple(handovers)  # ``current`` is not the newest key here (rotated since): not kept


def node_signer_opened(public: str) -> NodeSigner | None:
    """The signer of ``public`` if this process has opened it already (no database access: for
    code on an event loop), else None."""
    return _signers.get(public)


def node_encryption_keypair() -> key_rules.X25519KeyPair:
    return key_rules.X25519KeyPair(_open(current_key(KeyPurpose.ENCRYPTION)))


def node_ethereum_private_key() -> bytes:
    return _open(current_key(KeyPurpose.ETHEREUM))


def seal_for_custody(secret: bytes) -> dict[str, Any]:
    """Seal a custodial counterparty's private key under the node's passphrase."""
    return key_rules.seal_secret(secret, derived_key=_derived_key_for(_existing_sealed()))


def open_custodial(sealed: dict[str, Any]) -> bytes:
    try:
        return key_rules.open_secret(sealed, derived_key=_derived_key_for(sealed))
    except key_rules.WrongPassphrase as error:
        raise KeystoreLocked("the key passphrase does not open this custodial key") from error
