"""Reads of counterparties and KYC, and the guard later apps call before funds move."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet

from settlement.counterparties.errors import CounterpartyNotAccepted, CounterpartyNotFound
from settlement.counterparties.models import (
    Counterparty,
    FederationKeySet,
    KycDocument,
    KycReview,
    KycStatus,
)
from settlement.models import NodeKey


def counterparty_require_accepted(counterparty: Counterparty) -> Counterparty:
    """Raise :class:`CounterpartyNotAccepted` (code ``counterparty_not_accepted``) unless the
    counterparty's KYC is ACCEPTED. Ledgers and channels call this before holding funds or
    opening a channel; call it on a row read under the same lock as the change it guards."""
    if not counterparty.can_hold_funds:
        raise CounterpartyNotAccepted(
            f"{counterparty.federation_address} is {counterparty.kyc_status}, not ACCEPTED: "
            "it cannot hold funds or open channels until its KYC is accepted."
        )
    return counterparty


def counterparty_list(*, search: str = "", kyc_status: str = "") -> QuerySet[Counterparty]:
    """Counterparties matching ``search`` (legal name, federation name or address, LEI, or a
    KYC status word) and, if given, exactly ``kyc_status``."""
    counterparties = Counterparty.objects.all()
    search = search.strip()
    if search:
        condition = (
            Q(legal_name__icontains=search)
            | Q(federation_name__icontains=search)
            | Q(lei__icontains=search)
            | Q(contact_email__icontains=search)
        )
        if "*" in search:
            name, _, domain = search.partition("*")
            condition |= Q(federation_name__iexact=name, federation_domain__istartswith=domain)
        status = search.upper().replace(" ", "_")
        if status in KycStatus.values:
            condition |= Q(kyc_status=status)
        counterparties = counterparties.filter(condition)
    if kyc_status:
        counterparties = counterparties.filter(kyc_status=kyc_status)
    return counterparties


def counterparty_get(*, counterparty_id: int | str) -> Counterparty:
    try:
        return Counterparty.objects.get(pk=int(counterparty_id))
    except (Counterparty.DoesNotExist, ValueError, TypeError) as error:
        raise CounterpartyNotFound(f"There is no counterparty {counterparty_id}.") from error


def counterparty_find_accepted(*, federation_name: str = "", ed25519_public_key: str = "") -> Counterparty:
    """The ACCEPTED counterparty of this node with that federation name or Ed25519 key."""
    accepted = Counterparty.objects.filter(
        kyc_status=KycStatus.ACCEPTED, federation_domain=settings.NODE_DOMAIN
    )
    found = (
        accepted.filter(federation_name=federation_name).first()
        if federation_name
        else accepted.filter(ed25519_public_key=ed25519_public_key).first()
    )
    if found is None:
        raise CounterpartyNotFound("No accepted counterparty of this node answers to that.")
    return found


def kyc_document_list(*, counterparty: Counterparty) -> QuerySet[KycDocument]:
    return counterparty.kyc_documents.all()


def kyc_document_get(*, counterparty: Counterparty, document_id: int | str) -> KycDocument:
    try:
        return counterparty.kyc_documents.get(pk=int(document_id))
    except (KycDocument.DoesNotExist, ValueError, TypeError) as error:
        raise CounterpartyNotFound(
            f"Counterparty {counterparty.pk} has no document {document_id}."
        ) from error


def kyc_history(*, counterparty: Counterparty) -> QuerySet[KycReview]:
    return counterparty.kyc_reviews.all()


def federation_key_set_list(*, counterparty: Counterparty) -> QuerySet[FederationKeySet]:
    return counterparty.federation_key_sets.all()


def node_key_list() -> QuerySet[NodeKey]:
    """The node's keys, current and retired (public parts only are ever shown)."""
    return NodeKey.objects.order_by("purpose", "-valid_from").only(
        "purpose", "key_id", "public", "valid_from", "valid_until"
    )
