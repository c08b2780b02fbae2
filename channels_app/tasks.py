"""Celery tasks of channels: thin, id-based, safe to run twice (beat runs them on a schedule)."""

from __future__ import annotations

from celery import shared_task

from channels_app import services, watcher


@shared_task
def channels_watch() -> int:
    """Follow the Adjudicator's events and refute stale states (see channels_app.watcher)."""
    result = watcher.watcher_poll()
    return result.events if result else 0


@shared_task
def onchain_transactions_follow() -> int:
    return services.onchain_transactions_follow()


@shared_task
def streams_checkpoint_due() -> int:
    return services.streams_checkpoint_due(services.now_seconds())


@shared_task
def transaction_submit(tx_id: int) -> None:
    services.transaction_submit(tx_id=tx_id)
