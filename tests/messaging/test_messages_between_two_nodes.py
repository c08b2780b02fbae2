"""Messages between two real nodes, delivered by real Celery workers over the signed transport.

Bank A is this test process on the test database (its node API served by `live_web`, its router
run by `celery_worker`); bank B is a second daphne and a second Celery worker on a copy of the
database with its own name, domain, keys and Redis database. A's custodial counterparty alice
writes to B's bob (self custody: this test holds bob's X25519 key, as bob's own device would)
and B's carol (custodial: B's node opens boxes for her). A asks B who its recipients are and
which keys to encrypt to, records the message on alice's ledger, and its worker carries it to B,
which checks the signature and the record, and stores it in the inboxes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from devstack.services import ManagedProcess, free_port
from ledgers.models import LedgerEntry
from messaging import services
from messaging.errors import RecipientNotAccepted, UnknownRecipient
from messaging.models import Delivery, DeliveryStatus, Message
from messaging.protocol import open_body, parse_envelope
from settlement.identity import fetch_identity_document, peer_add
from settlement.protocol.keys import X25519KeyPair
from settlement.protocol.signing import SigningKey
from tests.ledgers.test_ledger_payments_between_two_nodes import SecondNode
from tests.messaging.messaging_support import batch_signed_messages, signed_message
from tests.support import copy_database, database_url_for_processes

B_NAME, B_DOMAIN = "bank-two", "bank-two.test"
BOB_KEY, BOB_BOX = SigningKey.generate(), X25519KeyPair.generate()

B_SETUP = f"""
from settlement import keystore
from settlement.counterparties import services
from settlement.counterparties.models import Counterparty
from settlement.identity import fetch_identity_document, peer_add
keystore.node_identity_ensure()
Counterparty.objects.create(kind="person", legal_name="Bob Example", country="DE", federation_name="bob",
    ed25519_public_key={BOB_KEY.public_key.hex()!r}, x25519_public_key={BOB_BOX.public_key.hex()!r},
    ethereum_address="0x" + "00" * 20, custody="self", kyc_status="ACCEPTED")
for name, status in (("carol", "ACCEPTED"), ("nina", "NEEDS_INFO")):
    party = services.counterparty_create(actor="test", kind="person", legal_name=name.capitalize(), country="DE",
        federation_name=name, custody="custodial", contact_email=name + "@example.test")
    Counterparty.objects.filter(pk=party.pk).update(kyc_status=status)
peer_add(base_url=A_URL, document=fetch_identity_document(A_URL), actor="test")
"""


def _redis_url_for_b() -> str:
    # Its own Redis database: B's Celery queue and nonces must not mix with A's.
    base, _, number = settings.REDIS_URL.rpartition("/")
    return f"{base}/{(int(number) + 7) % 16 if number.isdigit() else 9}"


@pytest.fixture
def bank_b(transactional_db: None, tmp_path: Path) -> Iterator[SecondNode]:
    source = settings.DATABASES["default"]["NAME"]
    name = f"{source}_messaging_b"
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
        "REDIS_URL": _redis_url_for_b(),
        "CELERY_BROKER_URL": _redis_url_for_b(),
        "WORKER_HEARTBEAT_SECONDS": "0.5",
    }
    node = SecondNode(f"http://127.0.0.1:{port}", database_url, env)
    bin_dir = Path(sys.executable).parent
    web = ManagedProcess(
        name="bank-two-web",
        command=[
            str(bin_dir / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "settlement.asgi:application",
        ],
        log_path=tmp_path / "bank-two-web.log",
        env=env,
    )
    worker = ManagedProcess(
        name="bank-two-worker",
        command=[
            str(bin_dir / "celery"),
            "--app",
            "settlement",
            "worker",
            "--concurrency",
            "1",
            "--hostname",
            f"bank-two-{os.getpid()}@test",
            "--without-gossip",
            "--without-mingle",
        ],
        log_path=tmp_path / "bank-two-worker.log",
        env=env,
    )
    web.start()
    worker.start()
    node.process, node.port = web, port
    node.shell_start(tmp_path / "bank-two-shell.log")
    try:
        yield node
    finally:
        node.shell_stop()
        worker.stop()
        web.kill()  # the test is over: no graceful shutdown to wait for
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def two_nodes(
    bank_b: SecondNode, live_web: Any, celery_worker: Any, make_party: Callable[..., Any]
) -> tuple[SecondNode, Any]:
    alice = make_party("alice")
    bank_b.manage("shell", "-c", B_SETUP.replace("A_URL", repr(live_web.url)))
    bank_b.wait_until_up()
    peer_add(base_url=bank_b.url, document=fetch_identity_document(bank_b.url), actor="test")
    return bank_b, alice


def wait_for(condition: Callable[[], Any], *, seconds: float = 40, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def b_deliveries(bank_b: SecondNode, message_id: str) -> dict[str, str]:
    rows = bank_b.query(
        "SELECT d.recipient_address, d.status FROM messaging_delivery d JOIN messaging_message m "
        "ON m.id = d.message_id WHERE m.message_id = %s",
        message_id,
    )
    return dict(rows)


@pytest.mark.worker
def test_an_encrypted_message_goes_from_a_counterparty_of_one_node_to_counterparties_of_another(
    two_nodes, make_party
):
    bank_b, alice = two_nodes
    bob, carol = f"bob*{B_DOMAIN}", f"carol*{B_DOMAIN}"

    # Bank B's answer decides: a recipient it does not know, or has not accepted, is refused
    # before anything is recorded here.
    with pytest.raises(UnknownRecipient):
        services.message_send(
            request=services.ComposeRequest(
                sender=alice.address, kind="note", recipients=[f"zed*{B_DOMAIN}"], text="x"
            )
        )
    with pytest.raises(RecipientNotAccepted):
        services.message_send(
            request=services.ComposeRequest(
                sender=alice.address, kind="note", recipients=[f"nina*{B_DOMAIN}"], text="x"
            )
        )
    assert not Message.objects.exists()
    assert not LedgerEntry.objects.filter(kind="message").exists()

    secret = "I deliver 10 MEGA to your custody account against 125.00 EUR by 16:00"
    result = services.message_send(
        request=services.ComposeRequest(
            sender=alice.address, kind="otc-trade", recipients=[bob, carol], text=secret, encrypt=True
        ),
        actor="test",
    )
    message = result.message
    assert message.encrypted
    assert secret not in json.dumps(message.envelope)
    # A's worker carries it to B; B verifies, stores, and answers per recipient.
    wait_for(
        lambda: (
            set(Delivery.objects.filter(message=message).values_list("status", flat=True))
            == {DeliveryStatus.DELIVERED}
        ),
        what="both deliveries to be delivered",
    )
    assert b_deliveries(bank_b, message.message_id) == {bob: "delivered", carol: "delivered"}

    # End to end: bob opens the envelope bank B stored with the key only bob holds.
    # The JSON columns hold text (settlement.bulk.JsonTextField): read raw, they are decoded here.
    (stored_envelope, record_text) = bank_b.query(
        "SELECT envelope, record FROM messaging_message WHERE message_id = %s", message.message_id
    )[0]
    received = parse_envelope(json.loads(stored_envelope))
    record = json.loads(record_text)
    assert open_body(received, recipient=bob, recipient_box=BOB_BOX) == secret
    # Bank B keeps the sender's record (alice's ledger entry, co-signed by A) to follow it into a block.
    entry = message.ledger_entry
    assert record == {"ledger": message.record["ledger"], "height": entry.height, "hash": entry.hash}

    # A box bank B cannot open for its custodial recipient: B rejects it, A records the rejection;
    # B stores nothing.
    dan = make_party("dan", custody="self")
    wrong_box = signed_message(dan, {carol: X25519KeyPair.generate().public_key}, text="hidden", encrypt=True)
    bad = services.message_send(request=services.SignedRequest(message=wrong_box), actor="test").message
    delivery = wait_for(
        lambda: Delivery.objects.filter(message=bad, status=DeliveryStatus.REJECTED).first(),
        what="the rejection of a box that does not open",
    )
    assert delivery.rejection_code == "ciphertext_does_not_open"
    assert bank_b.query("SELECT count(*) FROM messaging_message WHERE message_id = %s", bad.message_id) == [
        (0,)
    ]

    # Bob (self custody) rejects the first message at bank B; B's worker tells A.
    bank_b.manage(
        "shell",
        "-c",
        f"from messaging import services; services.delivery_reject(message_id={message.message_id!r}, "
        f"recipient={bob!r}, reason='not for me', actor='bob')",
    )
    wait_for(
        lambda: Delivery.objects.filter(
            message=message, recipient_address=bob, status=DeliveryStatus.REJECTED
        ).exists(),
        what="bob's rejection to reach bank A",
    )
    assert Delivery.objects.get(message=message, recipient_address=carol).status == DeliveryStatus.DELIVERED

    # Messages dan signed once as a batch: one message-batch record here; bank B checks the batch
    # signature, each path and the co-signed record, and stores each with its place in the batch.
    batch = batch_signed_messages(dan, [carol], 3)
    results = services.message_send_batch(
        requests=[services.SignedRequest(message=item) for item in batch], actor="test"
    )
    entries = {result.message.ledger_entry_id for result in results}
    assert len(entries) == 1
    assert LedgerEntry.objects.get(pk=entries.pop()).kind == "message-batch"
    wait_for(
        lambda: (
            set(
                Delivery.objects.filter(message__in=[result.message for result in results]).values_list(
                    "status", flat=True
                )
            )
            == {DeliveryStatus.DELIVERED}
        ),
        what="the batch's three deliveries to be delivered",
    )
    stored = [
        (message_id, json.loads(batch_text), json.loads(record_text))
        for message_id, batch_text, record_text in bank_b.query(
            "SELECT message_id, batch, record FROM messaging_message WHERE message_id = ANY(%s) "
            "ORDER BY message_id",
            [result.message.message_id for result in results],
        )
    ]
    assert len(stored) == 3
    assert {row[1]["root"] for row in stored} == {batch[0]["batch"]["root"]}
    assert sorted(row[1]["index"] for row in stored) == [0, 1, 2]
    assert len({json.dumps(row[2], sort_keys=True) for row in stored}) == 1
