"""An idempotency key taken meanwhile by a payment between other ledgers (keys are global, so no
ledger lock orders the two): the second payment's transfer row waits for the first transaction
on the key's unique index and, once that commits, is refused as ``idempotency_key_reused`` with
nothing of it appended, not as a database error escaping the service (the transfers' COPY
raises Django's ``IntegrityError``, which the service turns into the typed refusal)."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection, transaction

from ledgers import services
from ledgers.errors import IdempotencyKeyReused
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import row_counts


def _request(sender: Any, recipient: Any, eur: Any, key: str) -> PaymentRequest:
    return PaymentRequest(
        idempotency_key=key, sender=sender.ubi, recipient=recipient.ubi, asset=eur.uai, amount="1.00"
    )


def _waiting_on_a_lock(backend: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_a_key_taken_meanwhile_by_other_ledgers_is_refused_with_nothing_appended(
    transactional_db, funded, make_party, eur
):
    alice, bob, carol, dave = funded("10.00"), make_party(), funded("10.00"), make_party()
    first_paid, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.payment_intrabank(request=_request(alice, bob, eur, "shared-key"))
                first_paid.set()
                release.wait(60)
        finally:
            connection.close()

    def second() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["backend"] = cursor.fetchone()[0]
            services.payment_intrabank_batch(requests=[_request(carol, dave, eur, "shared-key")])
            outcome["result"] = "paid"
        except BaseException as error:  # reported by the test, not lost in the thread
            outcome["result"] = error
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert first_paid.wait(60)
    before = row_counts()
    two = threading.Thread(target=second)
    two.start()
    # The second payment passed its checks (the first is not committed, so its key is unseen)
    # and waits on the key's index entry.
    deadline = time.monotonic() + 60
    while "backend" not in outcome or not _waiting_on_a_lock(outcome["backend"]):
        assert time.monotonic() < deadline, "the second payment never waited on the key"
        time.sleep(0.05)
    release.set()
    one.join(60)
    two.join(60)
    assert isinstance(outcome["result"], IdempotencyKeyReused), outcome["result"]
    assert "meanwhile" in str(outcome["result"])
    # Only the first payment's rows were added (it committed while the second waited).
    assert row_counts() == before | {
        "transfers": before["transfers"] + 1,
        "entries": before["entries"] + 2,
        "heights": before["heights"] + 2,
        "votes": before["votes"] + 2,
    }
