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


def test_a_batchs_results_are_the_stored_rows_built_when_read(funded, make_party, eur):
    """A batch builds no object per payment until a result's transfer is read: then it is the
    stored row (the sender and recipient are its entries' ledgers), with both entries as stored,
    and a key repeated inside the batch answers with the first payment's object, replayed."""
    alice, bob = funded("100.00"), make_party()

    def request(key: str, amount: int) -> PaymentRequest:
        return PaymentRequest(
            idempotency_key=key, sender=alice.ubi, recipient=bob.ubi, asset=eur.uai, amount=amount
        )

    results = services.payment_intrabank_batch(
        requests=[request("lazy-0", 100), request("lazy-1", 250), request("lazy-0", 100)]
    )
    assert [result.replayed for result in results] == [False, False, True]
    assert results[2].transfer is results[0].transfer
    for result in results[:2]:
        stored = Transfer.objects.select_related("asset", "debit__ledger", "credit__ledger").get(
            pk=result.transfer_id
        )
        built = result.transfer
        assert built.pk == stored.pk == result.transfer_id
        for name in (
            "idempotency_key",
            "fingerprint",
            "asset_id",
            "amount",
            "debit_id",
            "credit_id",
            "created_at",
        ):
            assert getattr(built, name) == getattr(stored, name), name
        assert (built.sender.ubi, built.recipient.ubi) == (alice.ubi, bob.ubi)
        assert (stored.sender.ubi, stored.recipient.ubi) == (alice.ubi, bob.ubi)
        for side in ("debit", "credit"):
            entry, row = getattr(built, side), LedgerEntry.objects.get(pk=getattr(stored, f"{side}_id"))
            for name in (
                "ledger_id",
                "height",
                "prev",
                "hash",
                "kind",
                "body",
                "time",
                "party_signature",
                "validator_signature",
                "recorded_at",
            ):
                assert getattr(entry, name) == getattr(row, name), (side, name)
    replay = services.payment_intrabank(request=request("lazy-1", 250))
    assert replay.replayed
    assert replay.transfer_id == results[1].transfer_id
    assert replay.transfer.debit.height == results[1].transfer.debit.height


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
