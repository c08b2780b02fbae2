"""The ledger invariants over random sequences of issues, redemptions and payments, against
PostgreSQL (hypothesis): per asset, the sum of balances equals issued minus redeemed; no balance
below minus its credit line; heights contiguous and each prev the hash of the entry before; the
projection equal to the chain's replay. A refused step changes nothing."""

from __future__ import annotations

import itertools

from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgers import selectors, services
from ledgers.models import Asset, Balance, Ledger, LedgerEntry
from ledgers.protocol.errors import LedgerError
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import assert_every_entry_voted, row_counts

PARTIES = 3

step = st.one_of(
    st.tuples(st.just("issue"), st.integers(0, PARTIES - 1), st.integers(1, 5000)),
    st.tuples(st.just("redeem"), st.integers(0, PARTIES - 1), st.integers(1, 5000)),
    st.tuples(st.just("pay"), st.integers(0, PARTIES - 1), st.integers(0, PARTIES - 1), st.integers(1, 5000)),
    st.tuples(
        st.just("batch"),
        st.lists(
            st.tuples(st.integers(0, PARTIES - 1), st.integers(0, PARTIES - 1), st.integers(1, 3000)),
            max_size=5,
        ),
    ),
)


def assert_books_balance() -> None:
    for asset in Asset.objects.all():
        total = Balance.objects.filter(asset=asset).aggregate(total=Sum("amount"))["total"] or 0
        assert total == asset.issued - asset.redeemed, asset.uai
    assert not Balance.objects.filter(amount__lt=-F("credit_line")).exists()


def assert_chains_verify(ledgers: list[Ledger]) -> None:
    for ledger in ledgers:
        ledger = selectors.ledger_get(ledger=ledger.pk)
        heights = list(
            LedgerEntry.objects.filter(ledger=ledger).order_by("height").values_list("height", "prev", "hash")
        )
        assert [height for height, _, _ in heights] == list(range(ledger.next_height))
        for (_, _, previous), (_, prev, _) in itertools.pairwise(heights):
            assert prev == previous
        report = selectors.ledger_verify(ledger=ledger)
        assert report.ok, report.problem
        projected = {b.asset.uai: b.amount for b in ledger.balances.all() if b.amount}
        assert {asset: amount for asset, amount in report.balances.items() if amount} == projected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_random_sequences_keep_the_books_balanced(make_party, eur, steps):
    parties = [make_party() for _ in range(PARTIES)]
    # One party may go 20.00 below zero: its credit line is part of what is checked.
    services.ledger_credit_line_set(ledger=parties[0].ledger, asset=eur, credit_line=2000, actor="test")
    key = iter(range(10**9))
    for operation in steps:
        before = row_counts()
        try:
            if operation[0] == "issue":
                services.asset_issue(
                    ledger=parties[operation[1]].ledger,
                    asset=eur,
                    amount=operation[2],
                    reference="d",
                    actor="t",
                )
            elif operation[0] == "redeem":
                services.asset_redeem(
                    ledger=parties[operation[1]].ledger,
                    asset=eur,
                    amount=operation[2],
                    reference="w",
                    actor="t",
                )
            elif operation[0] == "pay":
                _, sender, recipient, amount = operation
                services.payment_intrabank(
                    request=PaymentRequest(
                        idempotency_key=f"h-{parties[0].ubi}-{next(key)}",
                        sender=parties[sender].ubi,
                        recipient=parties[recipient].ubi,
                        asset=eur.uai,
                        amount=amount,
                    )
                )
            else:
                services.payment_intrabank_batch(
                    requests=[
                        PaymentRequest(
                            idempotency_key=f"h-{parties[0].ubi}-{next(key)}",
                            sender=parties[sender].ubi,
                            recipient=parties[recipient].ubi,
                            asset=eur.uai,
                            amount=amount,
                        )
                        for sender, recipient, amount in operation[1]
                    ]
                )
        except LedgerError:
            assert row_counts() == before
        assert_books_balance()
    assert_chains_verify([party.ledger for party in parties])
    assert_every_entry_voted()
