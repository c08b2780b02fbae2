"""Bad routes through a correspondent, through the API: a 4xx with a code and a sentence, and
nothing changed (no entry, hold, payment row or balance moved). The paths that reach other
nodes are in test_ledger_payments_through_a_correspondent.py."""

from __future__ import annotations

import pytest
from django.conf import settings

from ledgers.models import InterbankPayment
from settlement.models import Peer
from tests.ledgers.ledger_shell_support import post_json, row_counts

URL = "/api/payments/interbank/"


@pytest.mark.parametrize(
    ("via", "recipient_bank", "code", "sentence"),
    [
        ("bank-unknown.test", "bank-far.test", "bad_route", "bank-unknown.test is not a peer of this bank"),
        ("SELF", "bank-far.test", "bad_route", "the correspondent must be a third bank"),
        ("bank-mid.test", "bank-mid.test", "bad_route", "the correspondent must be a third bank"),
        ("bank-mid.test", "SELF", "bad_route", "pay within the bank"),
        ("", "bank-far.test", "invalid", "may not be blank"),
    ],
)
def test_a_bad_correspondent_route_is_refused_and_changes_nothing(
    operator_client, funded, eur, via, recipient_bank, code, sentence
):
    Peer.objects.create(name="bank-mid", domain="bank-mid.test", base_url="http://127.0.0.1:9/")
    alice = funded("10.00")
    recipient_bank = settings.NODE_DOMAIN if recipient_bank == "SELF" else recipient_bank
    before = row_counts()
    answer = post_json(
        operator_client,
        URL,
        {
            "idempotency_key": "bad-via",
            "sender": alice.ubi,
            "recipient": f"ubi:{recipient_bank}:carol",
            "asset": eur.uai,
            "recipient_asset": f"{recipient_bank}/EUR",
            "amount": "1.00",
            "via": settings.NODE_DOMAIN if via == "SELF" else via,
        },
    )
    assert answer.status_code == 400, answer.content
    error = answer.json()["error"]
    assert error["code"] == code
    assert sentence in str(error["message"]) + str(error.get("fields"))
    assert row_counts() == before
    assert not InterbankPayment.objects.exists()
