"""Writes of counterparties and KYC. Each service locks what it changes, checks, saves and
records the change in the audit log, all in one transaction: the change and its record commit
together or not at all. Bad input raises :class:`CounterpartyInvalid` (field errors) before
anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from settlement import keystore
from settlement.audit import actor_name, audit_record
from settlement.counterparties import kyc_rules, storage
from settlement.counterparties.countries import ISO_3166_ALPHA2
from settlement.counterparties.errors import CounterpartyInvalid, KycDocumentsMissing
from settlement.counterparties.models import (
    Counterparty,
    CounterpartyKind,
    CustodialKeySet,
    Custody,
    FederationKeySet,
    KycDocument,
    KycReview,
)
from settlement.protocol import keys as key_rules
from settlement.protocol.encoding import canonical, sha256
from settlement.protocol.identifiers import (
    InvalidFederationAddress,
    InvalidLEI,
    parse_federation_address,
    validate_lei,
)
from settlement.protocol.signing import SigningKey

# A module constant rather than a setting: the limit is part of the API's contract.
KYC_DOCUMENT_MAX_BYTES = 10 * 1024 * 1024

_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{4,30}")
KEY_FIELDS = ("ed25519_public_key", "x25519_public_key", "ethereum_address")
UPDATABLE_FIELDS = frozenset(
    {"kind", "legal_name", "country", "lei", "contact_email", "contact_phone", "federation_name", *KEY_FIELDS}
)

# What the audit log keeps of a counterparty: everything public, never the sealed keys.
SNAPSHOT_FIELDS = (
    "kind",
    "legal_name",
    "country",
    "lei",
    "contact_email",
    "contact_phone",
    "federation_name",
    "federation_domain",
    *KEY_FIELDS,
    "custody",
    "kyc_status",
)


def counterparty_snapshot(counterparty: Counterparty) -> dict[str, Any]:
    return {name: getattr(counterparty, name) for name in SNAPSHOT_FIELDS}


# --- validation -----------------------------------------------------------------------------


def _clean_counterparty(values: dict[str, Any], *, instance: Counterparty | None) -> dict[str, Any]:
    """Normalise and check every field at once, so one answer lists every problem."""
    errors: dict[str, list[str]] = {}
    cleaned = dict(values)

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    kind = str(values.get("kind") or "")
    if kind not in CounterpartyKind.values:
        fail("kind", "one of person, company, bank")

    legal_name = " ".join(str(values.get("legal_name") or "").split())
    if not legal_name:
        fail("legal_name", "the legal name is required")
    elif len(legal_name) > 200:
        fail("legal_name", "at most 200 characters")
    cleaned["legal_name"] = legal_name

    country = str(values.get("country") or "").strip().upper()
    if country not in ISO_3166_ALPHA2:
        fail("country", "an ISO 3166-1 alpha-2 country code, such as DE or SG")
    cleaned["country"] = country

    lei = str(values.get("lei") or "").strip().upper()
    if lei:
        try:
            validate_lei(lei)
        except InvalidLEI as error:
            fail("lei", str(error))
    elif kind == CounterpartyKind.COMPANY:
        fail("lei", "a company needs its LEI (ISO 17442)")
    cleaned["lei"] = lei

    email = str(values.get("contact_email") or "").strip()
    phone = str(values.get("contact_phone") or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            fail("contact_email", "not an e-mail address")
    if phone and not _PHONE.fullmatch(phone):
        fail("contact_phone", "a phone number such as +49 30 1234567")
    if not email and not phone:
        fail("contact_email", "give an e-mail address or a phone number")
    cleaned["contact_email"], cleaned["contact_phone"] = email, phone

    domain = instance.federation_domain if instance is not None else str(settings.NODE_DOMAIN)
    try:
        address = parse_federation_address(f"{values.get('federation_name') or ''}*{domain}")
    except InvalidFederationAddress as error:
        fail("federation_name", str(error))
    else:
        cleaned["federation_name"] = address.name
        taken = Counterparty.objects.filter(federation_name=address.name, federation_domain=domain)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            fail("federation_name", f"{address} is already taken")

    custody = values.get("custody")
    if custody == Custody.SELF:
        _clean_public_keys(values, cleaned, fail, instance=instance)
    elif custody == Custody.CUSTODIAL:
        for field in KEY_FIELDS:
            given = values.get(field)
            if given and (instance is None or given != getattr(instance, field)):
                fail(field, "the node makes and holds a custodial counterparty's keys; do not send them")
    else:
        fail("custody", "one of self, custodial")

    if errors:
        raise CounterpartyInvalid("The counterparty has invalid fields; see fields.", fields=errors)
    return cleaned


def _clean_public_keys(
    values: dict[str, Any],
    cleaned: dict[str, Any],
    fail: Callable[[str, str], None],
    *,
    instance: Counterparty | None,
) -> None:
    parsers = {
        "ed25519_public_key": lambda text: key_rules.parse_ed25519_public_key(text.lower()).hex(),
        "x25519_public_key": lambda text: key_rules.parse_x25519_public_key(text.lower()).hex(),
        "ethereum_address": lambda text: str(key_rules.parse_eth_address(text)),
    }
    for field, parse in parsers.items():
        text = str(values.get(field) or "").strip()
        if not text:
            fail(field, "required when the counterparty holds its own keys")
            continue
        try:
            cleaned[field] = parse(text)
        except key_rules.MalformedKey as error:
            fail(field, str(error))
    ed25519 = cleaned.get("ed25519_public_key")
    if isinstance(ed25519, str) and len(ed25519) == 64:
        used = Counterparty.objects.filter(ed25519_public_key=ed25519)
        if instance is not None:
            used = used.exclude(pk=instance.pk)
        if used.exists():
            fail("ed25519_public_key", "another counterparty already has this key")


def _custodial_keys() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Fresh key pairs for a custodial counterparty: public parts, and sealed private parts."""
    signing = SigningKey.generate()
    encryption = key_rules.X25519KeyPair.generate()
    ethereum = key_rules.eth_generate_private_key()
    public = {
        "ed25519_public_key": signing.public_key.hex(),
        "x25519_public_key": encryption.public_key.hex(),
        "ethereum_address": str(key_rules.eth_address_from_private_key(ethereum)),
    }
    sealed = {
        "sealed_ed25519": keystore.seal_for_custody(signing.seed),
        "sealed_x25519": keystore.seal_for_custody(encryption.private_key),
        "sealed_ethereum": keystore.seal_for_custody(ethereum),
    }
    return public, sealed


def _save_or_invalid(counterparty: Counterparty) -> None:
    # The checks above ran before the lock-free save; a concurrent writer can still take the
    # address or key first, and the unique constraints then answer the same way.
    try:
        with transaction.atomic():
            counterparty.save()
    except IntegrityError as error:
        raise CounterpartyInvalid(
            "The federation address or Ed25519 key was taken meanwhile.",
            fields={"federation_name": ["already taken, or the Ed25519 key is in use"]},
        ) from error


def _locked(counterparty: Counterparty) -> Counterparty:
    return Counterparty.objects.select_for_update().get(pk=counterparty.pk)


# --- counterparties -------------------------------------------------------------------------


@transaction.atomic
def counterparty_create(
    *,
    actor: Any,
    kind: str,
    legal_name: str,
    country: str,
    federation_name: str,
    custody: str,
    lei: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    ed25519_public_key: str = "",
    x25519_public_key: str = "",
    ethereum_address: str = "",
) -> Counterparty:
    """Create a counterparty in NEEDS_INFO. Custodial: the node makes all three key pairs."""
    cleaned = _clean_counterparty(
        {
            "kind": kind,
            "legal_name": legal_name,
            "country": country,
            "lei": lei,
            "contact_email": contact_email,
            "contact_phone": contact_phone,
            "federation_name": federation_name,
            "custody": custody,
            "ed25519_public_key": ed25519_public_key,
            "x25519_public_key": x25519_public_key,
            "ethereum_address": ethereum_address,
        },
        instance=None,
    )
    sealed: dict[str, dict[str, Any]] = {}
    if custody == Custody.CUSTODIAL:
        public, sealed = _custodial_keys()
        cleaned.update(public)
    counterparty = Counterparty(
        **cleaned, federation_domain=str(settings.NODE_DOMAIN), kyc_status=kyc_rules.INITIAL_STATE.value
    )
    _save_or_invalid(counterparty)
    if sealed:
        CustodialKeySet.objects.create(counterparty=counterparty, **sealed)
    audit_record(
        actor=actor,
        action="counterparty.create",
        target=counterparty,
        after=counterparty_snapshot(counterparty),
    )
    return counterparty


@transaction.atomic
def counterparty_update(*, counterparty: Counterparty, actor: Any, data: Mapping[str, Any]) -> Counterparty:
    """Change some fields. Custody and KYC status change only through their own steps."""
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise CounterpartyInvalid(
            "These fields cannot be changed here.",
            fields={name: ["cannot be changed by an update"] for name in sorted(unknown)},
        )
    counterparty = _locked(counterparty)
    before = counterparty_snapshot(counterparty)
    merged = {**before, **data}
    if counterparty.custody == Custody.CUSTODIAL:
        for field in KEY_FIELDS:
            merged.setdefault(field, getattr(counterparty, field))
    cleaned = _clean_counterparty(merged, instance=counterparty)
    changed = {name for name in UPDATABLE_FIELDS if cleaned.get(name, before[name]) != before[name]}
    if not changed:
        return counterparty
    for name in changed:
        setattr(counterparty, name, cleaned[name])
    counterparty.updated_at = timezone.now()
    _save_or_invalid(counterparty)
    after = counterparty_snapshot(counterparty)
    audit_record(
        actor=actor,
        action="counterparty.update",
        target=counterparty,
        before={name: before[name] for name in sorted(changed)},
        after={name: after[name] for name in sorted(changed)},
    )
    return counterparty


# --- KYC ------------------------------------------------------------------------------------


@transaction.atomic
def kyc_document_upload(
    *, counterparty: Counterparty, actor: Any, file: IO[bytes], filename: str, content_type: str = ""
) -> KycDocument:
    """Store a PDF, PNG or JPEG of at most KYC_DOCUMENT_MAX_BYTES; the same bytes twice is one document."""
    content = file.read(KYC_DOCUMENT_MAX_BYTES + 1)
    if len(content) > KYC_DOCUMENT_MAX_BYTES:
        raise CounterpartyInvalid(
            "The document is too large.",
            fields={"file": [f"at most {KYC_DOCUMENT_MAX_BYTES // (1024 * 1024)} MiB"]},
        )
    if not content:
        raise CounterpartyInvalid("The document is empty.", fields={"file": ["the file is empty"]})
    detected = storage.sniff_content_type(content[:16])
    if detected is None:
        raise CounterpartyInvalid(
            "Only PDF, PNG and JPEG documents are accepted.",
            fields={"file": ["the content is not a PDF, PNG or JPEG file"]},
        )
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in ("", "application/octet-stream", detected):
        raise CounterpartyInvalid(
            "The document's content does not match its declared type.",
            fields={"file": [f"declared {declared}, but the content is {detected}"]},
        )
    counterparty = _locked(counterparty)
    digest = storage.document_store(content)
    existing = KycDocument.objects.filter(counterparty=counterparty, sha256=digest).first()
    if existing is not None:
        return existing
    name = (filename or "document").replace("\\", "/").rsplit("/", 1)[-1][:255] or "document"
    document = KycDocument.objects.create(
        counterparty=counterparty,
        sha256=digest,
        original_filename=name,
        content_type=detected,
        size=len(content),
        uploaded_by=actor_name(actor),
    )
    audit_record(
        actor=actor,
        action="kyc.document_upload",
        target=counterparty,
        after={
            "document": document.pk,
            "sha256": digest,
            "filename": name,
            "content_type": detected,
            "size": len(content),
        },
    )
    return document


def _kyc_step(
    *, counterparty: Counterparty, actor: Any, target: str, reason: str, action: str
) -> Counterparty:
    source = counterparty.kyc_status
    counterparty.kyc_status = target
    counterparty.updated_at = timezone.now()
    counterparty.save(update_fields=["kyc_status", "updated_at"])
    KycReview.objects.create(
        counterparty=counterparty,
        from_status=source,
        to_status=target,
        reviewer=actor_name(actor),
        reason=reason,
    )
    audit_record(
        actor=actor,
        action=action,
        target=counterparty,
        before={"kyc_status": source},
        after={"kyc_status": target},
        reason=reason,
    )
    return counterparty


@transaction.atomic
def kyc_submit(*, counterparty: Counterparty, actor: Any) -> Counterparty:
    """NEEDS_INFO or REJECTED -> PROCESSING, once there is at least one document to review."""
    counterparty = _locked(counterparty)
    target = kyc_rules.kyc_submit_target(counterparty.kyc_status)
    if not counterparty.kyc_documents.exists():
        raise KycDocumentsMissing(
            "Upload at least one KYC document before submitting.", fields={"documents": ["none uploaded"]}
        )
    return _kyc_step(counterparty=counterparty, actor=actor, target=target, reason="", action="kyc.submit")


@transaction.atomic
def kyc_decide(*, counterparty: Counterparty, actor: Any, decision: str, reason: str = "") -> Counterparty:
    """A reviewer's decision: accept, reject (with reason) or ask for information (with reason)."""
    counterparty = _locked(counterparty)
    reason = reason.strip()
    target = kyc_rules.kyc_decision_target(current=counterparty.kyc_status, decision=decision, reason=reason)
    return _kyc_step(
        counterparty=counterparty, actor=actor, target=target, reason=reason, action=f"kyc.{decision}"
    )


# --- federation -----------------------------------------------------------------------------


def federation_key_set_record(*, counterparty: Counterparty, keys: dict[str, str]) -> FederationKeySet:
    """Count one answer that served ``keys``; a new key set gets its own row (key history).

    Called inside the federation answer's transaction. Concurrent first answers for the same
    set meet at the unique constraint; the loser re-reads, so each set has exactly one row.
    """
    keys_hash = sha256(canonical(keys)).hex()
    now = timezone.now()
    key_set = FederationKeySet.objects.filter(counterparty=counterparty, keys_hash=keys_hash).first()
    if key_set is None:
        try:
            with transaction.atomic():
                key_set = FederationKeySet.objects.create(
                    counterparty=counterparty, keys=keys, keys_hash=keys_hash, first_served_at=now
                )
        except IntegrityError:
            key_set = FederationKeySet.objects.get(counterparty=counterparty, keys_hash=keys_hash)
    FederationKeySet.objects.filter(pk=key_set.pk).update(
        times_served=F("times_served") + 1, last_served_at=now
    )
    key_set.refresh_from_db()
    return key_set
