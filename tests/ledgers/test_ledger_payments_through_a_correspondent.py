"""A payment through a correspondent bank between three real nodes (seed 003 Pic. 5 and 6).

Bank A is this test process (its node API served by `live_web`); the correspondent bank-mid and
the recipient's bank bank-far are daphnes on their own databases. A is a peer of bank-mid only,
bank-mid of both, bank-far of bank-mid only: A has no relation with bank-far. bank-mid lets A owe
it 50.00; bank-far lets bank-mid owe it 30.00.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import expect, sync_playwright

from ledgers import correspondent_services, services
from ledgers.correspondent_services import RELAY_PATH
from ledgers.errors import NoRoute, PeerRefused
from ledgers.interbank_services import InterbankRequest
from ledgers.models import Hold, InterbankPayment, Ledger
from ledgers.protocol import interbank
from ledgers.protocol.errors import CreditLimitExceeded, NotAccepted
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import Peer
from settlement.transport import peer_request
from tests.consensus.consensus_shell_support import wait_for
from tests.ledgers.ledger_shell_support import balance_of, post_json
from tests.ledgers.peer_node_support import REPO, PeerNode, peer_nodes, supply_mismatches
from tests.support import confirmed_totp_device, totp_code

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser

MID, FAR = "bank-mid.test", "bank-far.test"
VERIFY_EVERY_LEDGER = """
from django.core.management import call_command
from ledgers.models import Ledger
for ubi in Ledger.objects.values_list("ubi", flat=True):
    call_command("verify_ledger", ubi)
"""


@pytest.fixture
def other_banks(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, PeerNode]]:
    with peer_nodes(["bank-mid", "bank-far"], tmp_path) as nodes:
        yield nodes


@pytest.fixture
def three_banks(other_banks: dict[str, PeerNode], live_web: Any, funded: Any, eur: Any) -> Any:
    mid, far = other_banks["bank-mid"], other_banks["bank-far"]
    alice = funded("100.00")
    far.setup(parties=[("carol", "ACCEPTED"), ("dave", "NEEDS_INFO")])
    mid.setup(parties=[])
    mid.wait_until_up()
    far.wait_until_up()
    mid.meet([live_web.url, far.url], limits={settings.NODE_DOMAIN: 5000})
    far.meet([mid.url], limits={MID: 3000})
    peer_add(base_url=mid.url, document=fetch_identity_document(mid.url), actor="test")
    return mid, far, alice


def pay_in_the_browser(live_web: Any, make_user: Any, alice: Any, eur: Any, far: PeerNode) -> None:
    user = make_user("olga-browser", "operator")
    device = confirmed_totp_device(user)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_web.url}/ledgers/pay/")
        page.fill("#id_username", "olga-browser")
        page.fill("#id_password", "a-long-test-password")  # make_user's
        page.click("main button[type=submit]")
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/ledgers/pay/$"))
        page.select_option("#id_sender", alice.ubi)
        page.fill("#id_recipient", f"ubi:{FAR}:carol")
        page.select_option("#id_asset", eur.uai)
        page.fill("#id_amount", "1.00")
        page.select_option("#id_via", MID)
        page.click("main button[type=submit]")
        expect(page.locator("#route")).to_contain_text(f"correspondent {MID}")
        assert far.balance(f"ubi:{FAR}:carol") == 1500  # nothing moved before the confirmation
        page.click("#confirm button[type=submit]")
        expect(page.locator("#paid")).to_contain_text("final")
        expect(page.locator("#paid")).to_contain_text(MID)
        browser.close()


def send(alice: Any, recipient: str, amount: str, reference: str, via: str | None = None) -> InterbankPayment:
    return correspondent_services.payment_send(
        request=InterbankRequest(
            reference=reference,
            sender=alice.ubi,
            recipient=f"ubi:{FAR}:{recipient}",
            asset=f"{settings.NODE_DOMAIN}/EUR",
            recipient_asset=f"{FAR}/EUR",
            amount=amount,
        ),
        via=via,
    )


def legs_final_at(mid: PeerNode, far: PeerNode, payments: int) -> None:
    """Wait until bank-mid and bank-far both hold ``payments`` final payments: A answers its payer
    as soon as it appended its own leg, and the final proof reaches the other banks just after
    (its courier), so their legs land a moment later."""
    final = "SELECT count(*) FROM ledgers_interbankpayment WHERE phase = 'final'"
    wait_for(
        lambda: mid.query(final) == [(payments,)] and far.query(final) == [(payments,)],
        what=f"{payments} final payments at bank-mid and bank-far",
    )


def our_query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def assert_books_balance_and_nothing_held(mid: PeerNode, far: PeerNode) -> None:
    """Per asset each bank issues, the sum of balances is issued - redeemed; no hold anywhere."""
    assert supply_mismatches(our_query, settings.NODE_DOMAIN) == []
    assert supply_mismatches(mid.query, MID) == []
    assert supply_mismatches(far.query, FAR) == []
    assert not Hold.objects.exists()
    assert mid.holds() == 0
    assert far.holds() == 0


def test_payments_through_a_correspondent_settle_at_three_banks_and_refusals_hold_nothing(
    three_banks, eur, operator_client, make_user, live_web, tmp_path
):
    mid, far, alice = three_banks
    a = settings.NODE_DOMAIN
    a_at_mid, far_at_mid = f"ubi:{MID}:bank.{a}", f"ubi:{MID}:bank.{FAR}"
    mid_at_far, mid_at_a = f"ubi:{FAR}:bank.{MID}", f"ubi:{a}:bank.{MID}"

    # A has no relation with bank-far: the route through bank-mid is found. Final with four
    # signatures (sender, A, bank-mid, bank-far); every bank appended its leg.
    payment = send(alice, "carol", "10.00", "c-1")
    assert payment.phase == "final"
    assert set(payment.proof["banks"]) == {a, MID, FAR}
    assert [leg["bank"] for leg in payment.proof["instruction"]["legs"]] == [a, MID, FAR]
    assert balance_of(alice.ledger, eur) == 9000
    assert our_query(
        "SELECT b.amount FROM ledgers_balance b JOIN ledgers_ledger l ON l.id = b.ledger_id WHERE l.ubi = %s",
        mid_at_a,
    ) == [(1000,)]
    legs_final_at(mid, far, 1)
    assert mid.balance(a_at_mid) == -1000  # A owes bank-mid
    assert mid.balance(far_at_mid) == 1000  # bank-mid owes bank-far
    assert far.balance(mid_at_far) == -1000
    assert far.balance(f"ubi:{FAR}:carol") == 1000
    wait_for(
        lambda: (
            InterbankPayment.objects.get(pk=payment.pk).peer_confirmed
            and mid.query("SELECT phase, peer_confirmed FROM ledgers_interbankpayment") == [("final", True)]
        ),
        what="bank-mid confirmed to A, and bank-far to bank-mid",
    )
    assert far.query("SELECT phase FROM ledgers_interbankpayment") == [("final",)]
    assert_books_balance_and_nothing_held(mid, far)
    # Each leg is a pair of payment entries co-signed by its bank.
    assert far.query(
        "SELECT l.ubi, e.body->>'side', e.body->>'leg' FROM ledgers_ledgerentry e "
        "JOIN ledgers_ledger l ON l.id = e.ledger_id WHERE e.kind = 'payment' ORDER BY l.ubi"
    ) == [(mid_at_far, "debit", "2"), (f"ubi:{FAR}:carol", "credit", "2")]

    # The proof verifies offline; a changed amount does not.
    document = tmp_path / "proof.json"
    document.write_text(json.dumps(payment.proof))
    run = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(document)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"signed by the sender and {a}, {MID}, {FAR}" in run.stdout
    forged = json.loads(document.read_text())
    forged["instruction"]["amount"] = "100000"
    document.write_text(json.dumps(forged))
    run = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(document)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 1

    # A replay of the reference returns the first payment; nothing moves twice.
    assert send(alice, "carol", "10.00", "c-1").pk == payment.pk
    assert far.balance(f"ubi:{FAR}:carol") == 1000

    # Through the API with an explicit correspondent.
    answer = post_json(
        operator_client,
        "/api/payments/interbank/",
        {
            "idempotency_key": "api-1",
            "sender": alice.ubi,
            "recipient": f"ubi:{FAR}:carol",
            "asset": eur.uai,
            "recipient_asset": f"{FAR}/EUR",
            "amount": "5.00",
            "via": MID,
        },
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["phase"] == "final"
    legs_final_at(mid, far, 2)
    assert far.balance(f"ubi:{FAR}:carol") == 1500
    assert mid.balance(a_at_mid) == -1500

    # 15.00 owed + 40.00 > the 50.00 bank-mid allows A: no peer has room, so no route is found;
    # through bank-mid by name, bank-mid refuses. Nothing held or moved anywhere.
    with pytest.raises(NoRoute, match="no peer reaches it"):
        send(alice, "carol", "40.00", "c-2")
    with pytest.raises(CreditLimitExceeded, match=r"refused by bank-mid\.test"):
        send(alice, "carol", "40.00", "c-3", via=MID)
    assert balance_of(alice.ledger, eur) == 8500
    assert mid.balance(a_at_mid) == -1500
    assert_books_balance_and_nothing_held(mid, far)

    # 15.00 + 20.00 > the 30.00 bank-far lets bank-mid owe it: bank-far refuses, bank-mid releases
    # its hold at once (it never signed), A voids.
    with pytest.raises(
        CreditLimitExceeded,
        match=r"bank-far\.test refused: the payment would take .* beyond its credit limit of 3000",
    ):
        send(alice, "carol", "20.00", "c-4")
    assert mid.query("SELECT phase FROM ledgers_interbankpayment ORDER BY id DESC LIMIT 1") == [("voided",)]
    assert far.balance(f"ubi:{FAR}:carol") == 1500
    assert_books_balance_and_nothing_held(mid, far)

    # A recipient bank-far has not accepted (KYC).
    with pytest.raises(NotAccepted):
        send(alice, "dave", "1.00", "c-5")
    assert_books_balance_and_nothing_held(mid, far)

    # The dashboard, in Chromium: pick the correspondent, see the route, confirm.
    pay_in_the_browser(live_web, make_user, alice, eur, far)
    legs_final_at(mid, far, 3)
    assert far.balance(f"ubi:{FAR}:carol") == 1600

    # bank-mid relayed a payment A never held or finished (A crashed, say): bank-far holds past
    # the deadline, asks bank-mid, which asks A; A's void notice travels back and both release.
    now = services.now_millis()
    ghost = interbank.plan_route(
        reference="ghost",
        sender=alice.ubi,
        recipient=f"ubi:{FAR}:carol",
        amount=100,
        assets=[eur.uai, f"{MID}/EUR", f"{FAR}/EUR"],
        created_at=now,
        expires_at=now + 1500,
    )
    proof = interbank.PaymentProof(
        instruction=ghost,
        sender_key=alice.key.public_key,
        sender_signature=interbank.sign_payment(ghost, key=alice.key),
    )
    relayed = peer_request(
        Peer.objects.get(domain=MID), "POST", RELAY_PATH, json_body={"proof": proof.to_json()}
    )
    assert relayed.ok, relayed.body
    assert set(relayed.json()["signatures"]) == {MID, FAR}
    assert (mid.holds(), far.holds()) == (1, 1)
    time.sleep(1.6)
    far.manage(
        "shell",
        "-c",
        "from ledgers import interbank_services as s; s.STATUS_GRACE_MS = 0; s.payments_void_expired()",
    )
    assert (mid.holds(), far.holds()) == (0, 0)
    for node in (mid, far):
        assert node.query("SELECT phase FROM ledgers_interbankpayment WHERE payment_id = %s", ghost.id) == [
            ("voided",)
        ]

    # bank-far is down: bank-mid cannot reach it, releases, A voids; nothing held at A or bank-mid.
    far.process.stop()
    with pytest.raises(PeerRefused, match="could not be reached"):
        send(alice, "carol", "1.00", "c-6")
    assert InterbankPayment.objects.order_by("-id").first().phase == "voided"
    assert mid.query("SELECT phase FROM ledgers_interbankpayment ORDER BY id DESC LIMIT 1") == [("voided",)]
    assert balance_of(alice.ledger, eur) == 8400
    assert_books_balance_and_nothing_held(mid, far)

    # The correspondent itself is down: A cannot reach it and releases at once.
    mid.process.stop()
    with pytest.raises(PeerRefused, match="peer_unreachable"):
        send(alice, "carol", "1.00", "c-7", via=MID)
    assert InterbankPayment.objects.order_by("-id").first().phase == "voided"
    assert balance_of(alice.ledger, eur) == 8400
    assert_books_balance_and_nothing_held(mid, far)

    # Every chain at every bank replays from height 0 to its stored head and balances.
    for ubi in Ledger.objects.values_list("ubi", flat=True):
        call_command("verify_ledger", ubi, stdout=io.StringIO())
    for node in (mid, far):
        out = node.manage("shell", "-c", VERIFY_EVERY_LEDGER)
        assert out.count("entries verify") == node.query("SELECT count(*) FROM ledgers_ledger")[0][0] >= 2
