"""The same message sent by several requests at once (a client retrying impatiently): one message,
one ledger entry, every other answer a replay; never an error."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from ledgers.models import LedgerEntry
from messaging import services
from messaging.models import Message
from tests.messaging.messaging_support import signed_message


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_sends_of_one_message_store_it_once(make_party):
    bob, carol = make_party("bob", custody="self"), make_party("carol")
    message = signed_message(bob, [carol.address], text="once")
    barrier = threading.Barrier(8)
    outcomes: list[object] = []

    def send() -> None:
        try:
            barrier.wait()
            result = services.message_send(request=services.SignedRequest(message=message), actor="test")
            outcomes.append(result.replayed)
        except Exception as error:
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == ["False"] + ["True"] * 7, outcomes
    assert Message.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="message").count() == 1
