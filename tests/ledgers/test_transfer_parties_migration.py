"""Migration 0004 drops a transfer's sender and recipient columns (they repeated its entries'
ledgers). Going back brings them back filled from the entries, NOT NULL as before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ledgers import services
from ledgers.services import PaymentRequest

BEFORE = [("ledgers", "0003_fewer_indexes_per_payment")]


@pytest.mark.django_db(transaction=True)
def test_going_back_fills_the_parties_from_the_entries(funded, make_party, eur):
    alice, bob = funded("100.00"), make_party()
    paid = services.payment_intrabank(
        request=PaymentRequest(
            idempotency_key="mig-1", sender=alice.ubi, recipient=bob.ubi, asset=eur.uai, amount="1.00"
        ),
        actor="test",
    )
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        MigrationExecutor(connection).migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sender_id, recipient_id FROM ledgers_transfer WHERE id = %s", [paid.transfer_id]
            )
            assert cursor.fetchone() == (alice.ledger.pk, bob.ledger.pk)
            cursor.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'ledgers_transfer' AND column_name IN ('sender_id', 'recipient_id')"
            )
            assert sorted(cursor.fetchall()) == [("recipient_id", "NO"), ("sender_id", "NO")]
    finally:
        MigrationExecutor(connection).migrate(latest)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ledgers_transfer' AND column_name = 'sender_id'"
        )
        assert cursor.fetchone() == (0,)
