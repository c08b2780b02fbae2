"""A payment between two real nodes (seed 003 Pic. 4): bank A is this test process on the test
database (its node API served by `live_web`), bank B is a second daphne on a second database with
its own name, domain and keys. They know each other through `peer_add` (each reads the other's
/.well-known/parsec.json) and talk only over the signed node-to-node transport.

Bank A holds, B checks the recipient (KYC) and the credit limit it grants A and co-signs, A
signs last and appends; B appends on the final proof. Refusals leave no hold on either side.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from devstack.services import ManagedProcess, free_port, port_open
from ledgers import interbank_services, services
from ledgers.errors import IdempotencyKeyReused
from ledgers.interbank_services import COSIGN_PATH, InterbankRequest
from ledgers.models import Hold, InterbankPayment
from ledgers.protocol import interbank
from ledgers.protocol.errors import CreditLimitExceeded, NotAccepted
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import Peer
from settlement.transport import peer_request
from settlement.verify import verify_document
from tests.ledgers.ledger_shell_support import assert_every_entry_voted, balance_of, expected_entry_votes
from tests.node_shell import NodeShell
from tests.support import copy_database, database_url_for_processes

REPO = Path(__file__).resolve().parents[2]
B_NAME, B_DOMAIN = "bank-two", "bank-two.test"

B_SETUP = """
from ledgers import services
from settlement import keystore
from settlement.counterparties.models import Counterparty
from settlement.protocol.signing import SigningKey
keystore.node_identity_ensure()
services.asset_create(code="EUR", decimals=2, actor="test")
for name, status in (("bob", "ACCEPTED"), ("carol", "ACCEPTED")):
    key = SigningKey.generate()
    party = Counterparty.objects.create(kind="person", legal_name=name, country="DE", federation_name=name,
        ed25519_public_key=key.public_key.hex(), x25519_public_key="00" * 32, ethereum_address="0x" + "00" * 20,
        custody="self", kyc_status=status)
    services.ledger_open(name=name, counterparty=party, actor="test")
Counterparty.objects.filter(federation_name="carol").update(kyc_status="NEEDS_INFO")
"""

B_PEERS = """
from settlement.identity import fetch_identity_document, peer_add
from settlement.models import PeerCreditLimit
peer = peer_add(base_url=A_URL, document=fetch_identity_document(A_URL), actor="test")
PeerCreditLimit.objects.create(peer=peer, asset="bank-two.test/EUR", limit=5000)
"""


class SecondNode:
    def __init__(self, url: str, database_url: str, env: dict[str, str]) -> None:
        self.url, self.database_url, self.env = url, database_url, env
        self.process: Any = None
        self.port = 0
        self.node_shell: Any = None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if time.monotonic() > deadline or not self.process.running():
                raise RuntimeError(f"bank B did not start:\n{self.process.log_tail()}")
            time.sleep(0.1)

    def shell_start(self, log_path: Path) -> None:
        """Bank B's own Django for its management commands (tests/node_shell.py)."""
        self.node_shell = NodeShell(self.env, log_path)

    def shell_stop(self) -> None:
        self.node_shell.stop()

    def manage(self, *args: str) -> str:
        return self.node_shell.manage(*args)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params).fetchall()

    def assert_every_entry_voted(self) -> int:
        """Bank B's side of ``assert_every_entry_voted``: one head commitment per stored entry."""
        stored = self.query(
            "SELECT l.ubi, e.height, e.hash FROM ledgers_ledgerentry e JOIN ledgers_ledger l ON l.id = e.ledger_id"
        )
        votes = self.query("SELECT data FROM consensus_pendingobservation WHERE kind = 'ledger-entry'")
        assert sorted(bytes(data) for (data,) in votes) == expected_entry_votes(stored)
        return len(stored)

    def balance(self, name: str) -> int:
        rows = self.query(
            "SELECT b.amount FROM ledgers_balance b JOIN ledgers_ledger l ON l.id = b.ledger_id WHERE l.ubi = %s",
            f"ubi:{B_DOMAIN}:{name}",
        )
        return rows[0][0] if rows else 0


@pytest.fixture
def second_node(transactional_db: None, tmp_path: Path) -> Iterator[SecondNode]:
    """Bank B: a copy of the freshly migrated test database, served by its own daphne."""
    source = settings.DATABASES["default"]["NAME"]
    name = f"{source}_bank_two"
    admin = database_url_for_processes().rsplit("/", 1)[0] + "/postgres"
    connections.close_all()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        copy_database(connection, name=name, source=source)
    database_url = database_url_for_processes().rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "NODE_NAME": B_NAME,
        "NODE_DOMAIN": B_DOMAIN,
        "NODE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    node = SecondNode(f"http://127.0.0.1:{port}", database_url, env)
    # daphne starts while bank A's side is prepared; its keys are made below, before any request.
    process = ManagedProcess(
        name="bank-two",
        command=[
            str(Path(sys.executable).parent / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "settlement.asgi:application",
        ],
        log_path=tmp_path / "bank-two.log",
        env=env,
    )
    process.start()
    node.process, node.port = process, port
    node.shell_start(tmp_path / "bank-two-shell.log")
    try:
        yield node
    finally:
        node.shell_stop()
        process.kill()  # the test is over: no graceful shutdown to wait for
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def two_banks(second_node: SecondNode, live_web: Any, funded: Any, eur: Any) -> tuple[SecondNode, Any]:
    services.asset_create(code="EUR", decimals=2, issuer=B_DOMAIN, actor="test")
    alice = funded("100.00")
    second_node.manage("shell", "-c", B_SETUP + B_PEERS.replace("A_URL", repr(live_web.url)))
    second_node.wait_until_up()
    peer_add(base_url=second_node.url, document=fetch_identity_document(second_node.url), actor="test")
    return second_node, alice


def wait_until_confirmed(*payments: InterbankPayment, seconds: float = 20) -> None:
    """A's courier hands final proofs to B after the payer got its answer: wait for B's word."""
    deadline = time.monotonic() + seconds
    pks = [payment.pk for payment in payments]
    while InterbankPayment.objects.filter(pk__in=pks, peer_confirmed=False).exists():
        assert time.monotonic() < deadline, "bank B never confirmed the final proofs"
        time.sleep(0.05)


def send(alice: Any, recipient: str, amount: str, reference: str) -> InterbankPayment:
    return interbank_services.payment_interbank_send(
        request=InterbankRequest(
            reference=reference,
            sender=alice.ubi,
            recipient=f"ubi:{B_DOMAIN}:{recipient}",
            asset="bank-test.test/EUR",
            recipient_asset=f"{B_DOMAIN}/EUR",
            amount=amount,
        )
    )


def test_payments_between_two_real_nodes_settle_refuse_and_respect_the_credit_limit(two_banks, eur):
    bank_b, alice = two_banks

    # A recipient bank B has not accepted (KYC): B refuses, A voids; no hold on either side.
    with pytest.raises(NotAccepted, match=r"refused by bank-two\.test"):
        send(alice, "carol", "10.00", "inv-0")
    assert balance_of(alice.ledger, eur) == 10000
    assert not Hold.objects.exists()
    assert InterbankPayment.objects.get().phase == "voided"
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]

    # A payment to an accepted recipient: final with three signatures, both banks append.
    payment = send(alice, "bob", "10.00", "inv-1")
    assert payment.phase == "final"
    assert set(payment.proof["banks"]) == {"bank-test.test", B_DOMAIN}
    assert verify_document(payment.proof)[0] is True
    assert balance_of(alice.ledger, eur) == 9000
    assert not Hold.objects.exists()
    wait_until_confirmed(payment)
    assert bank_b.balance("bob") == 1000
    assert bank_b.balance("bank.bank-test.test") == -1000  # A owes B, within the 50.00 B allows
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]
    assert bank_b.query("SELECT phase FROM ledgers_interbankpayment ORDER BY id") == [("final",)]

    # Replaying the reference returns the first payment; nothing moves twice.
    assert send(alice, "bob", "10.00", "inv-1").pk == payment.pk
    assert bank_b.balance("bob") == 1000

    # 10.00 + 45.00 would exceed the 50.00 B lets A owe it: refused, nothing held or moved.
    with pytest.raises(CreditLimitExceeded):
        send(alice, "bob", "45.00", "inv-2")
    assert balance_of(alice.ledger, eur) == 9000
    assert not Hold.objects.exists()
    assert bank_b.balance("bob") == 1000
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]

    # A batch: one co-sign request and one final request for all; the one B refuses is voided.
    batch = interbank_services.payment_interbank_send_batch(
        requests=[
            InterbankRequest(
                reference=f"batch-{index}",
                sender=alice.ubi,
                recipient=f"ubi:{B_DOMAIN}:{'carol' if index == 2 else 'bob'}",
                asset="bank-test.test/EUR",
                recipient_asset=f"{B_DOMAIN}/EUR",
                amount="1.00",
            )
            for index in range(6)
        ]
    )
    assert [payment.phase for payment in batch] == ["final", "final", "voided", "final", "final", "final"]
    wait_until_confirmed(*(payment for payment in batch if payment.phase == "final"))
    assert balance_of(alice.ledger, eur) == 8500
    assert not Hold.objects.exists()
    assert bank_b.balance("bob") == 1500
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]
    # Both banks voted each entry of their legs (and nothing for refused payments): A holds its
    # deposit and 6 payments of two entries; B its 6 legs of two entries.
    assert assert_every_entry_voted() == 1 + 2 * 6
    assert bank_b.assert_every_entry_voted() == 2 * 6

    # The same batch again, with one new reference given twice: the first payments come back,
    # and the new one is held, co-signed and appended once.
    def to(recipient: str, reference: str, amount: str = "1.00") -> InterbankRequest:
        return InterbankRequest(
            reference=reference,
            sender=alice.ubi,
            recipient=f"ubi:{B_DOMAIN}:{recipient}",
            asset="bank-test.test/EUR",
            recipient_asset=f"{B_DOMAIN}/EUR",
            amount=amount,
        )

    again = interbank_services.payment_interbank_send_batch(
        requests=[
            *(to("carol" if index == 2 else "bob", f"batch-{index}") for index in range(6)),
            to("bob", "batch-6"),
            to("bob", "batch-6"),
        ]
    )
    assert [row.pk for row in again[:6]] == [row.pk for row in batch]
    assert again[6].pk == again[7].pk
    assert again[6].phase == "final"
    wait_until_confirmed(again[6])
    assert balance_of(alice.ledger, eur) == 8400
    assert bank_b.balance("bob") == 1600
    assert bank_b.query(
        "SELECT count(*) FROM ledgers_interbankpayment WHERE payment_id = %s", again[6].payment_id
    ) == [(1,)]
    assert assert_every_entry_voted() == 1 + 2 * 7

    # A reference used again for another payment (another amount, another recipient; in another
    # call or twice in one): refused with its code, nothing held, nothing moved.
    for requests in (
        [to("bob", "batch-0", amount="2.00")],
        [to("carol", "batch-1")],
        [to("bob", "batch-7"), to("bob", "batch-7", amount="3.00")],
    ):
        with pytest.raises(IdempotencyKeyReused, match="was used for a different payment"):
            interbank_services.payment_interbank_send_batch(requests=requests)
    with pytest.raises(IdempotencyKeyReused):
        send(alice, "bob", "11.00", "inv-1")
    assert balance_of(alice.ledger, eur) == 8400
    assert not Hold.objects.exists()
    assert not InterbankPayment.objects.filter(reference="batch-7").exists()
    assert bank_b.balance("bob") == 1600

    # The courier's process stopped before B confirmed, say: beat sends the proof again, and B
    # applies nothing twice.
    InterbankPayment.objects.filter(pk=payment.pk).update(
        peer_confirmed=False, updated_at=timezone.now() - timedelta(minutes=1)
    )
    interbank_services.payments_void_expired()
    wait_until_confirmed(payment)
    assert bank_b.balance("bob") == 1600
    assert bank_b.assert_every_entry_voted() == 2 * 7

    # B co-signed a payment that A never finished (A crashed before holding it, say): past the
    # deadline B asks A, A signs a void notice (it can never sign the payment now), B releases.
    now = services.now_millis()
    ghost = interbank.plan_route(
        reference="ghost",
        sender=alice.ubi,
        recipient=f"ubi:{B_DOMAIN}:bob",
        amount=100,
        assets=["bank-test.test/EUR", f"{B_DOMAIN}/EUR"],
        created_at=now,
        expires_at=now + 300,
    )
    proof = interbank.PaymentProof(
        instruction=ghost,
        sender_key=alice.key.public_key,
        sender_signature=interbank.sign_payment(ghost, key=alice.key),
    )
    answer = peer_request(
        Peer.objects.get(domain=B_DOMAIN), "POST", COSIGN_PATH, json_body={"proof": proof.to_json()}
    )
    assert answer.ok, answer.body
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(1,)]
    time.sleep(0.4)
    bank_b.manage(
        "shell",
        "-c",
        "from ledgers import interbank_services as s; s.STATUS_GRACE_MS = 0; s.payments_void_expired()",
    )
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]
    assert bank_b.query("SELECT phase FROM ledgers_interbankpayment WHERE payment_id = %s", ghost.id) == [
        ("voided",)
    ]


def test_bank_b_checks_the_origin_signature_of_each_final_proof_in_a_batch(two_banks, eur):
    """B verifies a final proof against its own copy of the payment (the sender's signature it
    checked when co-signing, its own), so only A's signature is verified again: a forged one is
    refused with its code and nothing appended, the genuine one settles, each on its own."""
    bank_b, alice = two_banks
    now = services.now_millis()
    instruction = interbank.plan_route(
        reference="forged-final",
        sender=alice.ubi,
        recipient=f"ubi:{B_DOMAIN}:bob",
        amount=250,
        assets=["bank-test.test/EUR", f"{B_DOMAIN}/EUR"],
        created_at=now,
        expires_at=now + 30_000,
    )
    proof = interbank.PaymentProof(
        instruction=instruction,
        sender_key=alice.key.public_key,
        sender_signature=interbank.sign_payment(instruction, key=alice.key),
    )
    peer = Peer.objects.get(domain=B_DOMAIN)
    answer = peer_request(peer, "POST", COSIGN_PATH, json_body={"proof": proof.to_json()})
    assert answer.ok, answer.body
    cosigned = proof.with_bank_signature(
        bank=B_DOMAIN,
        key=interbank_services.peer_public_key(peer),
        signature=bytes.fromhex(answer.json()["signature"]),
    )
    origin = services.bank_key()
    genuine = cosigned.with_bank_signature(
        bank="bank-test.test",
        key=origin.public_key,
        signature=interbank.sign_payment(instruction, key=origin),
    )
    forged_signature = (
        bytes([genuine.bank_signatures["bank-test.test"][0] ^ 1])
        + genuine.bank_signatures["bank-test.test"][1:]
    )
    forged = cosigned.with_bank_signature(
        bank="bank-test.test", key=origin.public_key, signature=forged_signature
    )
    # A sender signature other than the one B checked is verified again, and refused if bad.
    other_sender = genuine.to_json() | {"sender_signature": "00" * 64}

    answer = peer_request(
        peer,
        "POST",
        interbank_services.FINAL_BATCH_PATH,
        json_body={"proofs": [forged.to_json(), other_sender]},
    )
    assert answer.ok, answer.body
    assert [result["error"]["code"] for result in answer.json()["results"]] == [
        "bad_signature",
        "bad_signature",
    ]
    assert bank_b.balance("bob") == 0
    assert bank_b.query("SELECT count(*) FROM ledgers_ledgerentry") == [(0,)]
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(1,)]

    answer = peer_request(
        peer, "POST", interbank_services.FINAL_BATCH_PATH, json_body={"proofs": [genuine.to_json()]}
    )
    assert answer.ok, answer.body
    assert answer.json()["results"] == [{"payment": instruction.id, "phase": "final"}]
    assert bank_b.balance("bob") == 250
    assert bank_b.query("SELECT count(*) FROM ledgers_hold") == [(0,)]
    assert bank_b.assert_every_entry_voted() == 2


B_TAKER = """
from ledgers import exchange_services, services
from ledgers.models import Asset, Offer
from settlement import keystore
from settlement.counterparties.models import Counterparty, CustodialKeySet
from settlement.protocol.signing import SigningKey
key = SigningKey.generate()
dave = Counterparty.objects.create(kind="person", legal_name="dave", country="DE", federation_name="dave",
    ed25519_public_key=key.public_key.hex(), x25519_public_key="00" * 32, ethereum_address="0x" + "00" * 20,
    custody="custodial", kyc_status="ACCEPTED")
sealed = keystore.seal_for_custody(key.seed)
CustodialKeySet.objects.create(counterparty=dave, sealed_ed25519=sealed, sealed_x25519=sealed, sealed_ethereum=sealed)
ledger = services.ledger_open(name="dave", counterparty=dave, actor="test")
services.asset_create(code="EUR", decimals=2, issuer="bank-test.test", actor="test")
services.asset_issue(ledger=ledger, asset=Asset.objects.get(uai="bank-two.test/EUR"), amount="20.00", reference="d", actor="test")
offer = Offer.objects.get(offer_id=OFFER_ID)
take = exchange_services.offer_take(offer_id=offer.offer_id, taker=ledger, reference="dave-takes", actor="test")
print("TAKE", take.status)
try:
    exchange_services.offer_take(offer_id=offer.offer_id, taker=ledger, reference="dave-again", actor="test")
except Exception as error:
    print("AGAIN", error.code)
"""


def test_an_offer_spreads_to_the_other_node_and_its_party_takes_it_once(two_banks, eur):
    from ledgers import exchange_services
    from ledgers.models import Offer

    bank_b, alice = two_banks
    b_eur = services.asset_create(code="EUR", decimals=2, issuer=B_DOMAIN, actor="test")
    offer = exchange_services.offer_create(
        maker=alice.ledger,
        give_asset=eur.uai,
        give_amount="10.00",
        want_asset=b_eur.uai,
        want_amount="9.00",
        reference="swap-1",
        actor="test",
    )
    assert exchange_services.offer_spread_to_peers(offer_id=offer.offer_id) == 1
    assert bank_b.query("SELECT phase FROM ledgers_offer WHERE offer_id = %s", offer.offer_id) == [("open",)]

    out = bank_b.manage("shell", "-c", B_TAKER.replace("OFFER_ID", repr(offer.offer_id)))
    assert "TAKE applied" in out
    assert "AGAIN offer_already_taken" in out
    # Bank A (maker's bank) accepted it and appended the maker's side; bank B the taker's.
    assert Offer.objects.get(pk=offer.pk).phase == "taken"
    assert balance_of(alice.ledger, eur) == 9000
    assert balance_of(alice.ledger, b_eur) == 900
    assert not Hold.objects.exists()
    rows = bank_b.query(
        "SELECT a.uai, b.amount FROM ledgers_balance b JOIN ledgers_ledger l ON l.id = b.ledger_id "
        "JOIN ledgers_asset a ON a.id = b.asset_id WHERE l.ubi = %s ORDER BY a.uai",
        f"ubi:{B_DOMAIN}:dave",
    )
    assert rows == [("bank-test.test/EUR", 1000), (f"{B_DOMAIN}/EUR", 1100)]
    assert assert_every_entry_voted() == 3  # the deposit, the offer, the maker's take
    assert bank_b.assert_every_entry_voted() == 2  # dave's deposit, the taker's take
