"""Custodial counterparties: the node makes all three key pairs and keeps only sealed private
parts. The raw database (every counterparty table and the audit log) holds no private key, in
hex or base64, while keystore.open_custodial gives each back and it matches the public part."""

from __future__ import annotations

import base64

import nacl.public
import nacl.signing
import pytest
from django.db import connection

from settlement import keystore
from settlement.counterparties.models import CustodialKeySet
from settlement.protocol import keys as key_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def custodial(client, operator, person_data):
    client.force_login(operator)
    data = person_data("carol", custody="custodial")
    for field in ("ed25519_public_key", "x25519_public_key", "ethereum_address"):
        data.pop(field)
    response = client.post("/api/counterparties/", data, content_type="application/json")
    assert response.status_code == 201, response.json()
    return response


def _private_keys(counterparty_id):
    sealed = CustodialKeySet.objects.get(counterparty_id=counterparty_id)
    return {
        "ed25519": keystore.open_custodial(sealed.sealed_ed25519),
        "x25519": keystore.open_custodial(sealed.sealed_x25519),
        "ethereum": keystore.open_custodial(sealed.sealed_ethereum),
    }


def _all_rows_as_text():
    tables = [
        table
        for table in connection.introspection.table_names()
        if table.startswith("counterparties_") or table == "settlement_auditevent"
    ]
    assert "counterparties_custodialkeyset" in tables
    text: list[str] = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            text.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(text)


def test_the_node_makes_keys_whose_private_parts_open_and_match(custodial):
    keys = custodial.json()["keys"]

    private = _private_keys(custodial.json()["id"])

    assert bytes(nacl.signing.SigningKey(private["ed25519"]).verify_key).hex() == keys["ed25519"]
    assert bytes(nacl.public.PrivateKey(private["x25519"]).public_key).hex() == keys["x25519"]
    assert key_rules.eth_address_from_private_key(private["ethereum"]) == keys["ethereum"]


def test_the_raw_database_holds_no_private_key(custodial):
    private = _private_keys(custodial.json()["id"])
    rows = _all_rows_as_text()

    for secret in private.values():
        for encoding in (
            secret.hex(),
            secret.hex().upper(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode(),
        ):
            assert encoding not in rows
        assert len(secret) == 32


def test_no_answer_or_page_shows_sealed_keys(client, custodial, node_identity, settings, admin_user):
    counterparty_id = custodial.json()["id"]
    sealed = CustodialKeySet.objects.get(counterparty_id=counterparty_id)
    ciphertexts = [sealed.sealed_ed25519["ciphertext"], sealed.sealed_x25519["ciphertext"]]
    client.force_login(admin_user)
    client.post(f"/api/counterparties/{counterparty_id}/kyc/documents/", {"file": _pdf()})
    client.post(f"/api/counterparties/{counterparty_id}/kyc/submit/")
    client.post(f"/api/counterparties/{counterparty_id}/kyc/decision/", {"decision": "accept"})

    bodies = [
        custodial.content,
        client.get(f"/api/counterparties/{counterparty_id}/").content,
        client.get(f"/counterparties/{counterparty_id}/").content,
        client.get(f"/admin/counterparties/counterparty/{counterparty_id}/change/").content,
        client.get("/federation", {"q": f"carol*{settings.NODE_DOMAIN}", "type": "name"}).content,
    ]

    private = _private_keys(counterparty_id)
    for body in bodies:
        text = body.decode()
        assert "ciphertext" not in text
        assert "xsalsa20poly1305" not in text
        assert not any(ciphertext in text for ciphertext in ciphertexts)
        assert not any(secret.hex() in text for secret in private.values())


def test_custodial_keys_cannot_be_replaced_by_an_update(client, custodial, new_keys):
    response = client.patch(
        f"/api/counterparties/{custodial.json()['id']}/", new_keys(), content_type="application/json"
    )

    assert response.status_code == 400
    assert "ed25519_public_key" in response.json()["error"]["fields"]


def _pdf():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("id.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf")
