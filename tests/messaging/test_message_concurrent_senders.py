"""Two senders' batches accepted at once (docs/messaging.md, "How it scales out"): accepting is
partitioned by sender, so one sender's batch never waits for another sender's transaction, even
while that transaction is still open and the two share recipients (each names the other, and a
third party). Each sender's ledger stays a contiguous co-signed chain, every message is stored
once and recorded on its own sender's ledger.

Each thread sends its batch inside a transaction it keeps open until the other thread has sent
too: every lock the accept path takes is still held when the other sender's batch runs. A lock
shared across senders (a bank-wide row, a counter row, an advisory lock) would make the second
wait for the first: its ``lock_timeout`` ends the wait with an error and the test fails within
seconds; a deadlock between the two would fail it the same way (PostgreSQL refuses one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction

from ledgers.models import Ledger, LedgerEntry
from ledgers.selectors import ledger_verify
from messaging import services
from messaging.models import Delivery, Message
from messaging.protocol.envelope import compact_batch_json, parse_signed_message
from tests.consensus.consensus_shell_support import dispatched, single_validator
from tests.messaging.messaging_support import Party, batch_signed_messages

__all__ = ["dispatched", "single_validator"]

ROUNDS = 3
BATCH = 40


def _compact(sender: Party, recipients: list[str], count: int, *, time_ms: int) -> dict[str, Any]:
    messages = batch_signed_messages(sender, recipients, count, time_ms=time_ms)
    return compact_batch_json([parse_signed_message(item) for item in messages])


@pytest.mark.django_db(transaction=True)
def test_two_senders_batches_are_accepted_side_by_side_and_both_chains_stay_valid(
    single_validator: Any, dispatched: Any, make_party: Callable[..., Party]
) -> None:
    bob, erin = make_party("bob", custody="self"), make_party("erin", custody="self")
    carol = make_party("carol")
    senders = [(bob, [carol.address, erin.address]), (erin, [carol.address, bob.address])]
    # A first batch of each opens its ledger (one at a time): what runs at once below is the
    # steady state, the senders' ledgers there.
    for sender, to in senders:
        services.message_send_compact(batch=_compact(sender, to, 2, time_ms=1_800_000_000_000), actor="test")
    work = {
        sender.address: [
            _compact(sender, to, BATCH, time_ms=1_800_000_010_000 + 1_000 * round_)
            for round_ in range(ROUNDS)
        ]
        for sender, to in senders
    }
    both_sent = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []
    accepted: dict[str, int] = {}

    def accept(sender: str) -> None:
        try:
            for batch in work[sender]:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        # Waiting for a lock the other sender's open transaction holds is the failure.
                        cursor.execute("SET LOCAL lock_timeout = '5s'")
                    results = services.message_send_compact(batch=batch, actor="test")
                    accepted[sender] = accepted.get(sender, 0) + len(results)
                    # Still inside the transaction: its locks are held until the other has sent too.
                    both_sent.wait()
        except BaseException as error:
            both_sent.abort()
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept, args=(sender.address,)) for sender, _ in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a sender's batch never finished"
    assert errors == []
    assert accepted == {bob.address: ROUNDS * BATCH, erin.address: ROUNDS * BATCH}

    for sender, _ in senders:
        ledger = Ledger.objects.get(counterparty=sender.counterparty)
        report = ledger_verify(ledger=ledger)
        assert report.ok, report.problem
        entries = LedgerEntry.objects.filter(ledger=ledger).order_by("height")
        assert [entry.height for entry in entries] == list(range(ROUNDS + 1))
        assert {entry.kind for entry in entries} == {"message-batch"}
        assert report.verified == entries.count()
        messages = Message.objects.filter(sender=sender.counterparty)
        assert messages.count() == 2 + ROUNDS * BATCH
        # Every message is recorded on its own sender's ledger, never the other's.
        assert set(messages.values_list("ledger_entry__ledger_id", flat=True)) == {ledger.pk}
    assert Delivery.objects.count() == 2 * 2 * (2 + ROUNDS * BATCH)
