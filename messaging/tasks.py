"""Background work of messaging: the router. Tasks take ids, reload, call a service; safe to run
twice (the receiving node is idempotent on the message id, and only deliveries still accepted
are sent or changed)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from messaging import services


@shared_task(bind=True, ignore_result=True, max_retries=None)
def messages_deliver(self: Any, peer_id: int, message_ids: list[str]) -> int:
    """Carry messages to one recipient node; retry with exponential backoff until every
    delivery is answered or timed out (MESSAGE_DELIVERY_TIMEOUT_SECONDS)."""
    try:
        waiting = services.deliveries_send(peer_id=peer_id, message_ids=message_ids)
    except services.DeliveryRetry as error:
        if services.deliveries_waiting(peer_id=peer_id, message_ids=message_ids):
            raise self.retry(exc=error, countdown=services.retry_countdown(self.request.retries)) from error
        return 0
    if waiting and services.deliveries_waiting(peer_id=peer_id, message_ids=message_ids):
        # Answered, but some recipients not yet (the node gave no outcome for them): ask again.
        raise self.retry(countdown=services.retry_countdown(self.request.retries))
    return waiting


@shared_task(bind=True, ignore_result=True, max_retries=12)
def rejection_notify(self: Any, delivery_id: int) -> None:
    """Tell the sender's node that a recipient here rejected its message."""
    try:
        services.rejection_send(delivery_id=delivery_id)
    except services.DeliveryRetry as error:
        raise self.retry(exc=error, countdown=services.retry_countdown(self.request.retries)) from error


@shared_task(ignore_result=True)
def messages_follow() -> dict[str, int]:
    """Beat: time out undelivered messages; follow sent ones into blocks and anchors."""
    return services.messages_follow()
