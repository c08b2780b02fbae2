"""Two reviewers deciding the same PROCESSING counterparty at once: the row lock serialises
them, so exactly one decision is taken and the other is refused as a step from the new state."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from settlement.counterparties import services
from settlement.counterparties.errors import KycTransitionNotAllowed
from settlement.counterparties.models import KycReview


@pytest.mark.django_db(transaction=True)
def test_one_of_two_simultaneous_decisions_wins(make_counterparty):
    bob = make_counterparty("bob", status="PROCESSING")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(decision: str) -> None:
        try:
            barrier.wait()
            services.kyc_decide(
                counterparty=bob, actor=f"reviewer-{decision}", decision=decision, reason="checked"
            )
            outcomes[decision] = "taken"
        except KycTransitionNotAllowed:
            outcomes[decision] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(decision,)) for decision in ("accept", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["refused", "taken"]
    winner = next(decision for decision, outcome in outcomes.items() if outcome == "taken")
    bob.refresh_from_db()
    assert bob.kyc_status == {"accept": "ACCEPTED", "reject": "REJECTED"}[winner]
    assert KycReview.objects.filter(counterparty=bob, from_status="PROCESSING").count() == 1
