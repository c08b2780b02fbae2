"""A payment between banks that is still held at its deadline is voided by the beat task: the
hold is released, the void notice is signed, and bank A never signs the payment after that."""

from __future__ import annotations

import time

from django.utils import timezone

from ledgers import interbank_services, services, tasks
from ledgers.interbank_services import InterbankRequest
from ledgers.models import Hold, InterbankPayment
from ledgers.protocol import interbank
from settlement.models import Peer, PeerKey
from settlement.protocol.signing import SigningKey
from tests.ledgers.ledger_shell_support import balance_of


def test_an_expired_hold_is_voided_and_released(funded, eur):
    alice = funded("10.00")
    peer = Peer.objects.create(name="bank-gone", domain="bank-gone.test", base_url="http://127.0.0.1:9")
    PeerKey.objects.create(
        peer=peer,
        key_id="bank-gone.test#ed25519-1",
        public=SigningKey.generate().public_key.hex(),
        valid_from=timezone.now(),
    )
    services.asset_create(code="EUR", decimals=2, issuer="bank-gone.test", actor="test")
    payment, _ = interbank_services._hold(
        InterbankRequest(
            reference="late-1",
            sender=alice.ubi,
            recipient="ubi:bank-gone.test:bob",
            asset=eur.uai,
            recipient_asset="bank-gone.test/EUR",
            amount="4.00",
            expires_in_ms=50,
        )
    )
    assert Hold.objects.filter(ledger=alice.ledger).count() == 1
    time.sleep(0.1)
    assert tasks.payments_void_expired() == 1
    payment = InterbankPayment.objects.get(pk=payment.pk)
    assert payment.phase == "voided"
    assert payment.void_reason == "expired"
    proof = interbank.PaymentProof.from_json(payment.proof)
    interbank.verify_void_notice(
        proof.instruction,
        origin_key=services.bank_key().public_key,
        signature=bytes.fromhex(payment.void_signature),
    )
    assert not Hold.objects.exists()
    assert balance_of(alice.ledger, eur) == 1000
    assert tasks.payments_void_expired() == 0  # safe to run again
