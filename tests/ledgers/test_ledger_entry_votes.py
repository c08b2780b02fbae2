"""Every appended ledger entry submits its head commitment to consensus (ARCHITECTURE.md §6) in
the transaction that appends it: one ``ledger-entry`` observation per entry, whose payload names
the entry's ledger, height and stored hash. A refused payment appends nothing and votes nothing;
a replay votes nothing again."""

from __future__ import annotations

import pytest
from django.db import transaction

from consensus.models import PendingObservation
from ledgers import services
from ledgers.models import LedgerEntry
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND
from ledgers.protocol.errors import InsufficientFunds
from ledgers.services import PaymentRequest
from tests.ledgers.ledger_shell_support import assert_every_entry_voted, row_counts


def pay(sender, recipient, eur, amount, key):
    return PaymentRequest(
        idempotency_key=key, sender=sender.ubi, recipient=recipient.ubi, asset=eur.uai, amount=amount
    )


def test_deposits_payments_and_batches_vote_one_commitment_per_entry(funded, make_party, eur):
    alice, bob = funded("100.00"), make_party()
    services.payment_intrabank(request=pay(alice, bob, eur, "10.00", "v-1"))
    services.payment_intrabank_batch(
        requests=[pay(alice, bob, eur, "1.00", f"v-batch-{index}") for index in range(20)]
        + [pay(bob, alice, eur, "2.00", "v-back")]
    )
    services.asset_redeem(ledger=alice.ledger, asset=eur, amount="5.00", reference="w", actor="test")
    # 1 deposit, 22 payments of two entries each, 1 redeem.
    assert assert_every_entry_voted() == 1 + 2 * 22 + 1
    assert PendingObservation.objects.filter(kind=ENTRY_OBSERVATION_KIND, status="queued").count() == 46


def test_a_refused_payment_and_a_replay_vote_nothing(funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    services.payment_intrabank(request=pay(alice, bob, eur, "1.00", "once"))
    before = row_counts()
    with pytest.raises(InsufficientFunds):
        services.payment_intrabank(request=pay(alice, bob, eur, "50.00", "too-much"))
    with pytest.raises(InsufficientFunds):
        services.payment_intrabank_batch(
            requests=[pay(alice, bob, eur, "1.00", "fine"), pay(alice, bob, eur, "99.00", "not-fine")]
        )
    assert services.payment_intrabank(request=pay(alice, bob, eur, "1.00", "once")).replayed
    assert row_counts() == before
    assert assert_every_entry_voted() == 3


def test_an_entry_and_its_vote_commit_or_roll_back_together(funded, make_party, eur):
    alice, bob = funded("10.00"), make_party()
    before = row_counts()
    inside: dict[str, int] = {}

    def append_then_fail() -> None:
        with transaction.atomic():
            services.payment_intrabank(request=pay(alice, bob, eur, "1.00", "rolled-back"))
            inside.update(entries=LedgerEntry.objects.count(), votes=PendingObservation.objects.count())
            raise RuntimeError("the surrounding transaction fails after the append")

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert inside == {"entries": before["entries"] + 2, "votes": before["votes"] + 2}
    assert row_counts() == before
    assert_every_entry_voted()


def test_votes_store_their_exact_bytes_and_a_digest_already_queued_is_skipped(funded, make_party, eur):
    """The votes travel as binary bytea arrays (settlement.bulk.execute_binary): each row's data
    is the observation's bytes and its digest their SHA-256, byte for byte. Voting a commitment
    whose digest is already queued (a crafted earlier submission) inserts nothing and raises
    nothing, so it cannot refuse the append that votes it."""
    import hashlib

    from consensus.protocol.types import observation_bytes
    from consensus.services import consensus_vote_in_transaction, observation_for

    alice, bob = funded("10.00"), make_party()
    services.payment_intrabank(request=pay(alice, bob, eur, "1.00", "first"))
    rows = list(PendingObservation.objects.values_list("data", "digest"))
    assert len(rows) == assert_every_entry_voted() == 3
    for data, digest in rows:
        assert bytes(digest) == hashlib.sha256(bytes(data)).digest()
    queued_payload = bytes(rows[0][0]).split(b"\n", 1)[1]
    with transaction.atomic():
        consensus_vote_in_transaction(payloads=[queued_payload], kind=ENTRY_OBSERVATION_KIND)
    assert PendingObservation.objects.count() == 3
    # Among new ones (the COPY refused, the INSERT … ON CONFLICT after it): the new ones are
    # queued, each once, and the queued one is skipped; the caller's transaction goes on.
    with transaction.atomic():
        consensus_vote_in_transaction(
            payloads=[b'{"new":1}', queued_payload, b'{"new":2}', b'{"new":1}'], kind=ENTRY_OBSERVATION_KIND
        )
        assert PendingObservation.objects.count() == 5
    assert PendingObservation.objects.count() == 5
    PendingObservation.objects.filter(
        data__in=[
            observation_bytes(observation_for(kind=ENTRY_OBSERVATION_KIND, payload=payload))
            for payload in (b'{"new":1}', b'{"new":2}')
        ]
    ).delete()
    services.payment_intrabank(request=pay(alice, bob, eur, "1.00", "second"))
    assert assert_every_entry_voted() == 5


def test_votes_in_a_transaction_check_the_kind_and_every_payload_size_before_writing_any(db):
    """The kind and the size are checked once per call (on the longest payload), not once per
    payload: a bad kind, or one payload over the limit among small ones, still refuses the whole
    call with nothing queued; the rows written are the kind's observation bytes of each payload."""
    import hashlib

    from consensus.protocol.types import observation_bytes
    from consensus.services import (
        MAX_PAYLOAD_BYTES,
        ConsensusShellError,
        consensus_vote_in_transaction,
        observation_for,
    )

    small = [b'{"n":1}', b'{"n":2}']
    for payloads, kind, code in (
        (small, "Not A Kind", "bad_kind"),
        ([*small, b"x" * (MAX_PAYLOAD_BYTES + 1), b'{"n":3}'], ENTRY_OBSERVATION_KIND, "payload_too_large"),
    ):
        with pytest.raises(ConsensusShellError) as refused, transaction.atomic():
            consensus_vote_in_transaction(payloads=payloads, kind=kind)
        assert refused.value.code == code
        assert PendingObservation.objects.count() == 0
    with transaction.atomic():
        consensus_vote_in_transaction(
            payloads=[*small, b"y" * MAX_PAYLOAD_BYTES], kind=ENTRY_OBSERVATION_KIND
        )
    stored = {
        bytes(data): bytes(digest)
        for data, digest in PendingObservation.objects.values_list("data", "digest")
    }
    expected = [
        observation_bytes(observation_for(kind=ENTRY_OBSERVATION_KIND, payload=payload))
        for payload in [*small, b"y" * MAX_PAYLOAD_BYTES]
    ]
    assert sorted(stored) == sorted(expected)
    assert all(digest == hashlib.sha256(data).digest() for data, digest in stored.items())
