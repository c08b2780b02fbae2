"""Payments within one bank: both entries land, co-signed and linked, and balances follow."""

from __future__ import annotations

import pytest

from ledgers import selectors, services
from ledgers.models import LedgerEntry, Transfer
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import balance_of


def test_a_custodial_payment_appends_a_signed_debit_and_credit_and_moves_the_balances(
    funded, make_party, eur
):
    alice, bob = funded("100.00"), make_party()
    result = services.payment_intrabank(
        request=PaymentRequest(
            idempotency_key="pay-1", sender=alice.ubi, recipient=bob.ubi, asset=eur.uai, amount="10.50"
        ),
        actor="test",
    )
    assert not result.replayed
    assert balance_of(alice.ledger, eur) == 10000 - 1050
    assert balance_of(bob.ledger, eur) == 1050
    debit, credit = result.transfer.debit, result.transfer.credit
    assert (debit.kind, debit.body["side"], debit.height) == ("transfer", "debit", 1)
    assert (credit.kind, credit.body["side"], credit.height) == ("transfer", "credit", 0)
    assert debit.party_signature
    assert debit.validator_signature
    assert not credit.party_signature
    for party in (alice, bob):
        report = selectors.ledger_verify(ledger=selectors.ledger_get(ledger=party.ubi))
        assert report.ok, report.problem
    assert all(link.ok for link in selectors.chain_links(ledger=alice.ledger))


def test_a_self_custody_sender_signs_its_own_debit(funded, make_party, eur):
    alice, bob = funded("5.00", custody="self"), make_party()
    from ledgers.protocol.chain import next_entry

    entry = next_entry(
        head=services.head_of(selectors.ledger_get(ledger=alice.ubi)),
        kind="transfer",
        body={
            "transfer": "self-1",
            "asset": eur.uai,
            "amount": "200",
            "side": "debit",
            "counterparty": bob.ubi,
        },
        time=services.now_millis(),
    )
    result = services.payment_intrabank(
        request=PaymentRequest(
            idempotency_key="self-1",
            sender=alice.ubi,
            recipient=bob.ubi,
            asset=eur.uai,
            amount=200,
            signed_debit=alice.sign(entry),
        )
    )
    assert result.transfer.debit.time == entry.time
    assert balance_of(bob.ledger, eur) == 200


def test_a_batch_settles_many_payments_in_one_transaction(funded, make_party, eur):
    alice, bob, carol = funded("100.00"), funded("100.00"), make_party()
    requests = [
        PaymentRequest(
            idempotency_key=f"batch-{index}",
            sender=(alice, bob)[index % 2].ubi,
            recipient=(bob, carol)[index % 2].ubi,
            asset=eur.uai,
            amount=100 + index,
        )
        for index in range(40)
    ]
    results = services.payment_intrabank_batch(requests=requests)
    assert [result.replayed for result in results] == [False] * 40
    assert Transfer.objects.count() == 40
    assert LedgerEntry.objects.filter(kind="transfer").count() == 80
    assert (
        balance_of(alice.ledger, eur) + balance_of(bob.ledger, eur) + balance_of(carol.ledger, eur) == 20000
    )
    assert balance_of(carol.ledger, eur) == sum(100 + index for index in range(40) if index % 2)
    for party in (alice, bob, carol):
        assert selectors.ledger_verify(ledger=selectors.ledger_get(ledger=party.ubi)).ok


def test_a_batch_runs_with_the_cyclic_collector_paused_and_switches_it_back_on(funded, make_party, eur):
    """settlement.collector: every statement of the batch ran with the collector off; it is on
    again after a batch that settled and after one that was refused."""
    import gc

    from django.db import connection

    from ledgers.protocol.errors import InsufficientFunds

    alice, bob = funded("1.00"), make_party()
    collector_on_at_statement: list[bool] = []

    def observe(execute, sql, params, many, context):
        collector_on_at_statement.append(gc.isenabled())
        return execute(sql, params, many, context)

    def pay(key: str, amount: int) -> None:
        services.payment_intrabank_batch(
            requests=[
                PaymentRequest(
                    idempotency_key=f"{key}-{index}",
                    sender=alice.ubi,
                    recipient=bob.ubi,
                    asset=eur.uai,
                    amount=amount,
                )
                for index in range(3)
            ]
        )

    assert gc.isenabled()
    with connection.execute_wrapper(observe):
        pay("paused", 10)
    assert collector_on_at_statement
    assert not any(collector_on_at_statement)
    assert gc.isenabled()
    with pytest.raises(InsufficientFunds):
        pay("refused", 50)
    assert gc.isenabled()
    assert balance_of(bob.ledger, eur) == 30
