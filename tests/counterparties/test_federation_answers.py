"""Federation answers (SEP-0002 shape) are signed by the node, and the signature verifies with
the key /.well-known/parsec.json publishes, checked here with PyNaCl and rfc8785 directly,
independently of the project's own verify function."""

from __future__ import annotations

import base64

import nacl.exceptions
import nacl.signing
import pytest
import rfc8785
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous():
    return Client()


def _published_signing_key(anonymous, key_id):
    document = anonymous.get("/.well-known/parsec.json").json()
    (key,) = [key for key in document["keys"]["ed25519"] if key["key_id"] == key_id]
    return bytes.fromhex(key["public"])


def _verify(answer, public_key):
    unsigned = {name: value for name, value in answer.items() if name != "signature"}
    signature = base64.b64decode(answer["signature"]["value"])
    nacl.signing.VerifyKey(public_key).verify(
        b"parsec/v1/federation-answer\x00" + rfc8785.dumps(unsigned), signature
    )


def test_a_name_lookup_answers_signed_keys_and_routing(anonymous, node_identity, make_counterparty, settings):
    alice = make_counterparty("alice", status="ACCEPTED")

    response = anonymous.get("/federation", {"q": f"alice*{settings.NODE_DOMAIN}", "type": "name"})

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["stellar_address"] == f"alice*{settings.NODE_DOMAIN}"
    assert answer["account_id"] == alice.ed25519_public_key
    assert answer["parsec"]["legal_name"] == "Alice Example"
    assert answer["parsec"]["kind"] == "person"
    assert answer["parsec"]["keys"] == {
        "ed25519": alice.ed25519_public_key,
        "x25519": alice.x25519_public_key,
        "ethereum": alice.ethereum_address,
    }
    assert answer["parsec"]["routing"] == {
        "node": settings.NODE_NAME,
        "api": f"{settings.NODE_BASE_URL}/api/",
    }
    assert answer["signature"]["algorithm"] == "ed25519"
    public_key = _published_signing_key(anonymous, answer["signature"]["key_id"])
    assert answer["signature"]["public_key"] == public_key.hex()
    _verify(answer, public_key)
    assert response["Access-Control-Allow-Origin"] == "*"


def test_an_altered_answer_does_not_verify(anonymous, node_identity, make_counterparty, settings):
    make_counterparty("alice", status="ACCEPTED")
    answer = anonymous.get("/federation", {"q": f"alice*{settings.NODE_DOMAIN}", "type": "name"}).json()
    public_key = _published_signing_key(anonymous, answer["signature"]["key_id"])

    answer["parsec"]["keys"]["ed25519"] = "00" * 32

    with pytest.raises(nacl.exceptions.BadSignatureError):
        _verify(answer, public_key)


def test_a_reverse_lookup_by_ed25519_key_gives_the_same_counterparty(
    anonymous, node_identity, make_counterparty
):
    alice = make_counterparty("alice", status="ACCEPTED")

    response = anonymous.get("/federation", {"q": alice.ed25519_public_key.upper(), "type": "id"})

    assert response.status_code == 200
    assert response.json()["stellar_address"] == alice.federation_address
    _verify(response.json(), _published_signing_key(anonymous, response.json()["signature"]["key_id"]))


def test_names_are_case_insensitive(anonymous, node_identity, make_counterparty, settings):
    make_counterparty("alice", status="ACCEPTED")

    response = anonymous.get("/federation", {"q": f"Alice*{settings.NODE_DOMAIN.upper()}", "type": "name"})

    assert response.status_code == 200


@pytest.mark.parametrize("status", ["NEEDS_INFO", "PROCESSING", "REJECTED"])
def test_only_accepted_counterparties_are_answered(
    anonymous, node_identity, make_counterparty, settings, status
):
    alice = make_counterparty("alice", status=status)

    by_name = anonymous.get("/federation", {"q": f"alice*{settings.NODE_DOMAIN}", "type": "name"})
    by_id = anonymous.get("/federation", {"q": alice.ed25519_public_key, "type": "id"})

    for response in (by_name, by_id):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("q", ["nobody*{domain}", "alice*bank-z.test"])
def test_unknown_names_and_other_domains_are_404(anonymous, node_identity, make_counterparty, settings, q):
    make_counterparty("alice", status="ACCEPTED")

    response = anonymous.get("/federation", {"q": q.format(domain=settings.NODE_DOMAIN), "type": "name"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "alice*bank-a.test", "type": "txid"}, "type"),
        ({"q": "alice*bank-a.test"}, "type"),
        ({"q": "alice", "type": "name"}, "q"),
        ({"type": "name"}, "q"),
        ({"q": "not-hex", "type": "id"}, "q"),
        ({"q": "00" * 31, "type": "id"}, "q"),
    ],
)
def test_a_bad_query_is_400_invalid(anonymous, params, field):
    response = anonymous.get("/federation", params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["fields"]
