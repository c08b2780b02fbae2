"""Reads of the messaging app: look-ups by id, party, time range and block; inbox and outbox."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from messaging.errors import UnknownMessage
from messaging.models import Delivery, DeliveryStatus, Message
from settlement.counterparties.models import Counterparty

MAX_PAGE = 500


def _with_deliveries(queryset: QuerySet[Message]) -> QuerySet[Message]:
    return queryset.select_related("ledger_entry", "received_from").prefetch_related(
        Prefetch("deliveries", queryset=Delivery.objects.select_related("peer").order_by("id"))
    )


def message_get(*, message_id: str) -> Message:
    message = _with_deliveries(Message.objects.filter(message_id=message_id)).first()
    if message is None:
        raise UnknownMessage(f"message {message_id} is not known to this node")
    return message


def message_search(
    *,
    party: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    block: int | None = None,
    kind: str = "",
    limit: int = 100,
) -> QuerySet[Message]:
    """Messages by party (sender or recipient address), accepted in [since, until), in a block."""
    queryset = Message.objects.all()
    if party:
        queryset = queryset.filter(Q(sender_address=party) | Q(recipients__contains=[party]))
    if since is not None:
        queryset = queryset.filter(accepted_at__gte=since)
    if until is not None:
        queryset = queryset.filter(accepted_at__lt=until)
    if block is not None:
        queryset = queryset.filter(block_height=block)
    if kind:
        queryset = queryset.filter(kind=kind)
    return _with_deliveries(queryset.order_by("-accepted_at", "-id"))[: max(1, min(limit, MAX_PAGE))]


def outbox(*, counterparty: Counterparty, limit: int = 100) -> QuerySet[Message]:
    # By address (indexed): the messages a counterparty here sent are those naming it as sender.
    sent = Message.objects.filter(sender=counterparty, sender_address=counterparty.federation_address)
    return _with_deliveries(sent.order_by("-accepted_at", "-id"))[: max(1, min(limit, MAX_PAGE))]


def inbox(*, counterparty: Counterparty, limit: int = 100) -> QuerySet[Delivery]:
    return (
        Delivery.objects.filter(recipient=counterparty)
        .select_related("message")
        .order_by("-created_at", "-id")[: max(1, min(limit, MAX_PAGE))]
    )


def undeliverable(*, limit: int = 100) -> QuerySet[Delivery]:
    """Deliveries that timed out or were rejected: kept and listed, never dropped."""
    return (
        Delivery.objects.filter(status__in=[DeliveryStatus.TIMED_OUT, DeliveryStatus.REJECTED])
        .select_related("message", "peer")
        .order_by("-finished_at", "-id")[: max(1, min(limit, MAX_PAGE))]
    )
