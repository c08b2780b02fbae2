"""Background work of ledgers. Tasks take ids, reload, call a service; safe to run twice."""

from __future__ import annotations

from celery import shared_task

from ledgers import interbank_services
from ledgers.protocol.errors import LedgerError
from settlement.transport import PeerUnreachable


@shared_task(ignore_result=True)
def payments_void_expired() -> int:
    """Beat: void the payments between banks still held at their deadline; release the holds."""
    return interbank_services.payments_void_expired()


@shared_task(bind=True, ignore_result=True, max_retries=20)
def payment_deliver(self: object, payment_id: str) -> None:
    """Tell the co-signing bank the outcome (final proof or void notice) until it has it."""
    try:
        interbank_services.payment_deliver_outcome(payment_id=payment_id)
    except (PeerUnreachable, LedgerError) as error:
        raise self.retry(exc=error, countdown=5) from error  # type: ignore[attr-defined]


@shared_task(bind=True, ignore_result=True, max_retries=20)
def payment_forward(self: object, payment_id: str) -> None:
    """A correspondent passes the origin's outcome on to the next bank until that bank has it."""
    from ledgers import correspondent_services

    try:
        correspondent_services.forward_outcome(payment_id=payment_id)
    except (PeerUnreachable, LedgerError) as error:
        raise self.retry(exc=error, countdown=5) from error  # type: ignore[attr-defined]


@shared_task(ignore_result=True)
def offer_spread(offer_id: str) -> None:
    """Send a new local offer to every peer's board (best effort; a peer that is down misses it)."""
    from ledgers import exchange_services

    exchange_services.offer_spread_to_peers(offer_id=offer_id)
