"""The node's keys: made once, sealed at rest, rotated with their history, and a wrong
passphrase stops the node."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import nacl.signing
import pytest
from django.db import connection

from devstack.services import free_port
from settlement import keystore
from settlement.identity import node_identity_document
from settlement.models import AuditEvent, KeyPurpose, NodeKey, NodeKeyHandover
from settlement.protocol.handover import key_handover_holds
from settlement.protocol.signing import sign
from tests.support import VerifiedClient, database_url_for_processes

pytestmark = pytest.mark.django_db


def _private_keys() -> list[bytes]:
    return [
        keystore.node_signer().key.seed,
        keystore.node_encryption_keypair().private_key,
        keystore.node_ethereum_private_key(),
    ]


def test_first_start_makes_one_key_of_each_purpose_and_a_second_changes_nothing():
    made = keystore.node_identity_ensure()

    assert sorted(key.purpose for key in made) == sorted(KeyPurpose.values)
    assert keystore.node_identity_ensure() == []
    assert NodeKey.objects.count() == 3


def test_the_raw_database_holds_no_private_key():
    keystore.node_identity_ensure()
    secrets = _private_keys()

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM settlement_nodekey t")
        rows = " ".join(row[0] for row in cursor.fetchall()).lower()
        cursor.execute(
            "SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') FROM settlement_auditevent t"
        )
        rows += cursor.fetchone()[0].lower()

    for secret in secrets:
        assert secret.hex() not in rows
        assert base64.b64encode(secret).decode().lower() not in rows


def test_a_rotated_key_is_retired_with_its_interval_and_old_signatures_still_verify():
    keystore.node_identity_ensure()
    old = keystore.node_signer()
    signature = sign(old.key, "test", {"n": 1})

    new_key = keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor="test", reason="scheduled")

    retired = NodeKey.objects.get(key_id=old.key_id)
    assert retired.valid_until == new_key.valid_from
    assert keystore.node_signer().key_id == new_key.key_id != old.key_id
    published = {key["key_id"]: key for key in node_identity_document()["keys"]["ed25519"]}
    assert published[old.key_id]["valid_until"] is not None
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(published[old.key_id]["public"]))
    verify_key.verify(b"parsec/v1/test\x00" + b'{"n":1}', signature)
    # The retired key signed its hand-over to the new one before it retired (receipts of what it
    # co-signed carry it), and the identity document publishes it.
    assert key_handover_holds(
        old.public_key, bytes.fromhex(new_key.public), bytes.fromhex(published[old.key_id]["handover"])
    )
    assert published[new_key.key_id]["handover"] is None
    assert published[old.key_id]["direct_handovers"] == []  # its successor is the next key
    rotation = AuditEvent.objects.get(action="node_key.rotate")
    assert (rotation.before["key_id"], rotation.after["key_id"], rotation.reason) == (
        old.key_id,
        new_key.key_id,
        "scheduled",
    )


def test_a_wrong_passphrase_is_refused_with_a_sentence(monkeypatch):
    keystore.node_identity_ensure()
    keystore.forget_opened_keys()
    monkeypatch.setenv("NODE_KEY_PASSPHRASE", "not the passphrase")

    with pytest.raises(keystore.KeystoreLocked, match="does not open"):
        keystore.keystore_check()


def test_only_an_admin_may_rotate_from_the_dashboard(make_user):
    keystore.node_identity_ensure()
    operator, admin = VerifiedClient(), VerifiedClient()
    operator.force_login(make_user("op", "operator"))
    admin.force_login(make_user("root", "admin"))

    assert operator.post("/node/", {"purpose": "ed25519"}).status_code == 403
    assert admin.post("/node/", {"purpose": "ed25519", "reason": "drill"}).status_code == 302
    assert NodeKey.objects.filter(purpose="ed25519").count() == 2
    page = admin.get("/node/").content.decode()
    assert "drill" in page
    assert "current" in page


@pytest.mark.django_db(transaction=True)
def test_the_web_process_refuses_to_start_with_a_wrong_passphrase(tmp_path):
    keystore.node_identity_ensure()
    env = {**os.environ, "DATABASE_URL": database_url_for_processes(), "NODE_KEY_PASSPHRASE": "wrong"}
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "daphne"),
            "--port",
            str(free_port()),
            "settlement.asgi:application",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "the key passphrase does not open" in result.stderr


def test_at_each_rotation_every_earlier_signing_key_hands_over_straight_to_the_new_key():
    """Direct hand-overs (docs/receipt.md): signed in the rotation's transaction by each key
    retired before, verified, stored, published; the retiring key's own stays its handover."""
    keystore.node_identity_ensure()
    keys = [keystore.node_signer()]
    for reason in ("first", "second", "third"):
        keystore.node_key_rotate(purpose=KeyPurpose.SIGNING, actor="test", reason=reason)
        keys.append(keystore.node_signer())

    stored = {
        (bytes.fromhex(key), bytes.fromhex(successor)): bytes.fromhex(signature)
        for key, successor, signature in NodeKeyHandover.objects.values_list(
            "key__public", "successor__public", "signature"
        )
    }
    # To key 2 from key 0; to key 3 from keys 0 and 1 (each key's hand-over to the next is apart).
    expected = {(0, 2), (0, 3), (1, 3)}
    assert set(stored) == {(keys[earlier].public_key, keys[later].public_key) for earlier, later in expected}
    for (key, successor), signature in stored.items():
        assert key_handover_holds(key, successor, signature)
    published = {key["public"]: key for key in node_identity_document()["keys"]["ed25519"]}
    assert published[keys[0].public_key.hex()]["direct_handovers"] == [
        {
            "successor": keys[later].public_key.hex(),
            "signature": stored[(keys[0].public_key, keys[later].public_key)].hex(),
        }
        for later in (2, 3)
    ]
    assert published[keys[3].public_key.hex()]["direct_handovers"] == []
    last = AuditEvent.objects.filter(action="node_key.rotate").order_by("id").last()
    assert last is not None
    assert last.after["direct_handovers_from"] == [keys[0].key_id, keys[1].key_id]
    # Only the signing key hands over: the other purposes' rotations sign nothing.
    keystore.node_key_rotate(purpose=KeyPurpose.ENCRYPTION, actor="test", reason="scheduled")
    assert NodeKeyHandover.objects.count() == 3
