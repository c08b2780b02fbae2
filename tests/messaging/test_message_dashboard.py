"""The messages page: per counterparty an inbox and an outbox with each delivery's state, live
over the websocket (real Redis channel layer); the compose form sends nothing before its
confirmation; roles."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django_otp import DEVICE_ID_SESSION_KEY

from messaging import services
from messaging.consumers import MailboxConsumer
from messaging.models import Message
from tests.support import confirmed_totp_device


def test_the_mailbox_shows_inbox_and_outbox_with_states(operator, make_party):
    alice, carol = make_party("alice"), make_party("carol")
    sent = services.message_send(
        request=services.ComposeRequest(
            sender=alice.address, kind="note", recipients=[carol.address], text="plain hello", encrypt=False
        )
    ).message
    page = operator.get(f"/messages/?counterparty={carol.counterparty.pk}").content.decode()
    assert f'ws-connect="/ws/messages/{carol.counterparty.pk}/"' in page
    assert f'data-message="{sent.message_id}"' in page
    assert "plain hello" in page
    assert 'data-state="delivered"' in page
    outbox = operator.get(f"/messages/?counterparty={alice.counterparty.pk}").content.decode()
    assert f'id="outbox-{sent.pk}"' in outbox
    assert f"{carol.address}: <span" in outbox


def test_the_compose_form_asks_for_confirmation_before_it_sends(operator, make_party):
    alice, carol = make_party("alice"), make_party("carol")
    form = operator.get(f"/messages/compose/?sender={alice.counterparty.pk}")
    assert form.status_code == 200
    message_id = form.context["form"].initial["message_id"]
    fields = {
        "sender": alice.counterparty.pk,
        "recipients": carol.address,
        "kind": "note",
        "agreement": "",
        "reply_to": "",
        "text": "settle at 16:00",
        "encrypt": "on",
        "message_id": message_id,
    }
    review = operator.post("/messages/compose/", fields)
    assert review.status_code == 200
    assert 'id="confirm"' in review.content.decode()
    assert not Message.objects.exists()
    done = operator.post("/messages/compose/", {**fields, "step": "confirm"})
    assert done.status_code == 200, done.content
    assert Message.objects.get().message_id == message_id
    # The form shown once is one message: a resent confirmation is a replay.
    again = operator.post("/messages/compose/", {**fields, "step": "confirm"})
    assert "Already sent" in again.content.decode()
    assert Message.objects.count() == 1
    refused = operator.post(
        "/messages/compose/",
        {**fields, "recipients": "ghost*bank-test.test", "message_id": "e" * 32, "step": "confirm"},
    )
    assert refused.status_code == 404
    assert 'data-code="unknown_recipient"' in refused.content.decode()


def test_an_auditor_reads_the_mailbox_but_cannot_compose(auditor, make_party):
    make_party("alice")
    assert auditor.get("/messages/").status_code == 200
    assert auditor.get("/messages/compose/").status_code == 403


def _close_other_connections() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user"
        )


@pytest.mark.django_db(transaction=True)
def test_the_mailbox_is_pushed_live_when_a_message_arrives(make_user, make_party):
    user = make_user("aldo-auditor", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}
    alice, carol = make_party("alice"), make_party("carol")

    async def scenario() -> tuple[str, str, str]:
        from asgiref.sync import sync_to_async

        communicator = WebsocketCommunicator(
            MailboxConsumer.as_asgi(), f"/ws/messages/{carol.counterparty.pk}/"
        )
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        communicator.scope["url_route"] = {"kwargs": {"counterparty_id": carol.counterparty.pk}}
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        result = await sync_to_async(services.message_send)(
            request=services.ComposeRequest(
                sender=alice.address, kind="note", recipients=[carol.address], text="live"
            )
        )
        second = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return first, second, result.message.message_id

    try:
        first, second, message_id = async_to_sync(scenario)()
    finally:
        _close_other_connections()
    assert message_id not in first
    assert f'data-message="{message_id}"' in second
    assert 'id="mailbox"' in second
