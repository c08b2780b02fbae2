"""The ledgers pages: balances per asset, a chain view that flags a tampered link, a payment
form that moves nothing before its confirmation, roles; and the live table pushed over the
websocket when a payment lands (real Redis channel layer)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django_otp import DEVICE_ID_SESSION_KEY

from ledgers import services
from ledgers.consumers import LedgersConsumer
from ledgers.models import LedgerEntry, Transfer
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import balance_of
from tests.support import confirmed_totp_device


def test_the_ledgers_page_lists_balances_per_asset(operator_client, funded):
    alice = funded("12.34")
    page = operator_client.get("/ledgers/").content.decode()
    assert alice.ubi in page
    assert "12.34" in page
    assert 'ws-connect="/ws/ledgers/"' in page


def test_the_chain_view_verifies_each_link_and_flags_a_tampered_one(operator_client, funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    for index in range(2):
        services.payment_intrabank(
            request=PaymentRequest(
                idempotency_key=f"c-{index}",
                sender=alice.ubi,
                recipient=bob.ubi,
                asset=eur.uai,
                amount="1.00",
            )
        )
    page = operator_client.get(f"/ledgers/{alice.ledger.pk}/").content.decode()
    assert page.count('data-ok="true"') == 3
    row = LedgerEntry.objects.get(ledger=alice.ledger, height=1)
    LedgerEntry.objects.filter(pk=row.pk).update(body={**row.body, "amount": "1"})
    page = operator_client.get(f"/ledgers/{alice.ledger.pk}/").content.decode()
    # Entry 1's hash no longer matches its content, and entry 2 now links to nothing that exists.
    assert page.count('data-ok="true"') == 1
    assert 'id="entry-1" class="broken error" data-ok="false"' in page
    assert 'id="entry-2" class="broken error" data-ok="false"' in page


def test_the_payment_form_asks_for_confirmation_before_it_moves_money(
    operator_client, funded, make_party, eur
):
    alice, bob = funded("10.00"), make_party()
    form = {
        "sender": alice.ubi,
        "recipient": bob.ubi,
        "asset": eur.uai,
        "amount": "3.00",
        "idempotency_key": "web-test-1",
    }
    review = operator_client.post("/ledgers/pay/", form)
    assert review.status_code == 200
    assert "Confirm the payment" in review.content.decode()
    assert Transfer.objects.count() == 0
    done = operator_client.post("/ledgers/pay/", {**form, "step": "confirm"})
    assert done.status_code == 200
    assert balance_of(bob.ledger, eur) == 300
    again = operator_client.post("/ledgers/pay/", {**form, "step": "confirm"})
    assert "Already paid" in again.content.decode()
    assert Transfer.objects.count() == 1


def test_the_payment_form_shows_the_rules_refusal(operator_client, funded, make_party, eur):
    alice, bob = funded("1.00"), make_party()
    form = {
        "sender": alice.ubi,
        "recipient": bob.ubi,
        "asset": eur.uai,
        "amount": "5.00",
        "idempotency_key": "w-2",
    }
    answer = operator_client.post("/ledgers/pay/", {**form, "step": "confirm"})
    assert answer.status_code == 409
    assert 'data-code="insufficient_funds"' in answer.content.decode()
    assert Transfer.objects.count() == 0


def test_an_auditor_sees_the_ledgers_but_cannot_pay(client, make_user, node):
    client.force_login(make_user("aldo-auditor", "auditor"))
    assert client.get("/ledgers/").status_code == 200
    assert client.get("/ledgers/pay/").status_code == 403


def _close_other_connections() -> None:
    """The consumer renders, and sync_to_async ran the payment, in executor threads whose
    connections outlive the test; close them so the test database can be flushed and dropped."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user"
        )


@pytest.mark.django_db(transaction=True)
def test_the_live_table_is_pushed_when_a_payment_lands(make_user, funded, make_party, eur):
    user = make_user("aldo-auditor", "auditor")
    session = {DEVICE_ID_SESSION_KEY: confirmed_totp_device(user).persistent_id}
    alice, bob = funded("10.00"), make_party()

    async def scenario() -> tuple[str, str]:
        from asgiref.sync import sync_to_async

        communicator = WebsocketCommunicator(LedgersConsumer.as_asgi(), "/ws/ledgers/")
        communicator.scope["user"] = user
        communicator.scope["session"] = session
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        await sync_to_async(services.payment_intrabank)(
            request=PaymentRequest(
                idempotency_key="live-1", sender=alice.ubi, recipient=bob.ubi, asset=eur.uai, amount="4.00"
            )
        )
        second = await communicator.receive_from(timeout=10)
        # The setup's own writes (funding, opening bob's ledger) asked for a push too; the
        # broadcaster sends at most one per 0.2 s, so that push may land after we connected,
        # rendered before the payment. The payment's own push must follow within the timeout.
        while "live-1" not in second:
            second = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return first, second

    try:
        first, second = async_to_sync(scenario)()
    finally:
        _close_other_connections()
    assert "live-1" not in first
    assert "live-1" in second
    assert 'id="ledgers-table"' in second


def test_the_payment_form_sends_to_another_bank_through_it_and_shows_the_refusal(
    operator_client, funded, eur
):
    alice = funded("10.00")
    form = {
        "sender": alice.ubi,
        "recipient": "ubi:bank-nowhere.test:bob",
        "asset": eur.uai,
        "amount": "1.00",
        "idempotency_key": "w-3",
    }
    review = operator_client.post("/ledgers/pay/", form).content.decode()
    assert "The recipient is at <strong>bank-nowhere.test</strong>" in review
    answer = operator_client.post("/ledgers/pay/", {**form, "step": "confirm"})
    # Not a peer, and no peer reaches it: no route (409), nothing held or moved.
    assert answer.status_code == 409
    assert 'data-code="no_route"' in answer.content.decode()
    assert Transfer.objects.count() == 0
    assert balance_of(alice.ledger, eur) == 1000


def test_the_payment_form_refuses_an_unknown_local_recipient(operator_client, funded, eur):
    alice = funded("10.00")
    form = {
        "sender": alice.ubi,
        "recipient": "ubi:bank-test.test:nobody",
        "asset": eur.uai,
        "amount": "1.00",
        "idempotency_key": "w-4",
    }
    answer = operator_client.post("/ledgers/pay/", form)
    assert answer.status_code == 400
    assert "is not a ledger kept by this bank" in answer.content.decode()
