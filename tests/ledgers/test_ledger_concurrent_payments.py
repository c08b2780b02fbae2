"""Many threads paying at once against PostgreSQL, each with its own connection: no deadlock
(payments in opposite directions lock in the same order), no lost update, the books balance and
every chain verifies; and a key replayed by many threads at once settles exactly once."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from ledgers import services
from ledgers.models import LedgerEntry, Transfer
from ledgers.protocol.errors import InsufficientFunds
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import assert_every_entry_voted
from tests.ledgers.test_ledger_invariants_postgres import assert_books_balance, assert_chains_verify

THREADS = 8


def run_threads(work: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * THREADS
    start = threading.Barrier(THREADS)

    def target(index: int) -> None:
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as error:  # reported by the test, not lost in a thread
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return results


def test_many_threads_paying_at_once_keep_the_books(transactional_db, funded, eur):
    parties = [funded("50.00") for _ in range(5)]

    def work(index: int) -> dict[str, int]:
        rng = random.Random(index)
        done = {"paid": 0, "refused": 0}
        for number in range(20):
            sender, recipient = rng.sample(parties, 2)
            request = PaymentRequest(
                idempotency_key=f"c-{index}-{number}",
                sender=sender.ubi,
                recipient=recipient.ubi,
                asset=eur.uai,
                amount=rng.randint(1, 1500),
            )
            try:
                if number % 5 == 4:
                    services.payment_intrabank_batch(
                        requests=[
                            request,
                            PaymentRequest(
                                **{
                                    **request.__dict__,
                                    "idempotency_key": f"c-{index}-{number}b",
                                    "sender": recipient.ubi,
                                    "recipient": sender.ubi,
                                }
                            ),
                        ]
                    )
                else:
                    services.payment_intrabank(request=request)
                done["paid"] += 1
            except InsufficientFunds:
                done["refused"] += 1
        return done

    results = run_threads(work)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    assert sum(result["paid"] for result in results) > 0
    assert_books_balance()
    assert_chains_verify([party.ledger for party in parties])
    assert LedgerEntry.objects.filter(kind="transfer").count() == 2 * Transfer.objects.count()
    assert_every_entry_voted()


def test_one_key_replayed_by_many_threads_at_once_settles_once(transactional_db, funded, make_party, eur):
    alice, bob = funded("50.00"), make_party()
    request = PaymentRequest(
        idempotency_key="once", sender=alice.ubi, recipient=bob.ubi, asset=eur.uai, amount="1.00"
    )
    results = run_threads(lambda index: services.payment_intrabank(request=request))
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    assert len({result.transfer.pk for result in results}) == 1
    assert sorted(result.replayed for result in results) == [False] + [True] * (THREADS - 1)
    assert Transfer.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="transfer").count() == 2
