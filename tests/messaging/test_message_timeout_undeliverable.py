"""A recipient node that never answers: the router (a real Celery worker) retries with backoff;
after MESSAGE_DELIVERY_TIMEOUT_SECONDS the delivery is "timed out" and listed as undeliverable.
The message and its ledger record stay: it is in the records because it timed out, not lost."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from devstack.services import free_port
from ledgers.models import LedgerEntry
from messaging import services
from messaging.errors import RecipientsUnreachable
from messaging.models import Delivery, DeliveryStatus, Message
from settlement.models import Peer


@pytest.mark.worker
def test_an_undeliverable_message_is_retried_then_timed_out_and_listed_never_lost(
    transactional_db, celery_worker, make_party, operator, settings
):
    alice = make_party("alice")
    # A peer whose node is down: nothing listens on its port.
    Peer.objects.create(name="bank-gone", domain="bank-gone.test", base_url=f"http://127.0.0.1:{free_port()}")
    recipient = "zoe*bank-gone.test"

    # Encrypting needs the recipient's key from its node: refused, nothing stored.
    with pytest.raises(RecipientsUnreachable):
        services.message_send(
            request=services.ComposeRequest(
                sender=alice.address, kind="note", recipients=[recipient], text="x"
            )
        )
    assert not Message.objects.exists()

    # A plain message needs no key: accepted and recorded; delivering it is the router's job.
    result = services.message_send(
        request=services.ComposeRequest(
            sender=alice.address, kind="note", recipients=[recipient], text="are you there?", encrypt=False
        ),
        actor="test",
    )
    delivery = Delivery.objects.get(message=result.message)
    deadline = time.monotonic() + 30
    while Delivery.objects.get(pk=delivery.pk).attempts < 2:  # the first try and one retry
        assert time.monotonic() < deadline, "the worker did not retry the delivery"
        time.sleep(0.2)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.ACCEPTED
    assert "did not answer" in delivery.last_error

    # A delivery whose router task went missing (no attempt for longer than any backoff) is
    # handed to the router again, once.
    Delivery.objects.filter(pk=delivery.pk).update(last_attempt_at=timezone.now() - timedelta(hours=1))
    followed = services.messages_follow()
    assert followed["redispatched"] == 1
    assert followed["timed_out"] == 0  # not yet past the timeout: still waiting
    assert services.messages_follow()["redispatched"] == 0

    # Past the timeout: timed out, listed, never dropped.
    settings.MESSAGE_DELIVERY_TIMEOUT_SECONDS = 0.5
    time.sleep(0.6)
    assert services.messages_follow()["timed_out"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.TIMED_OUT
    assert delivery.finished_at is not None
    listed = operator.get("/api/messages/undeliverable/").json()
    assert [(row["id"], row["recipient"], row["state"]) for row in listed] == [
        (result.message.message_id, recipient, "timed out")
    ]
    assert Message.objects.filter(pk=result.message.pk).exists()
    assert LedgerEntry.objects.filter(pk=result.message.ledger_entry_id, kind="message").exists()
    page = operator.get("/messages/").content.decode()
    assert f'id="undeliverable-{delivery.pk}"' in page
    assert "timed out" in page
