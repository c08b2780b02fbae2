"""The signed node-to-node transport: what the receiver refuses (401, logged, nothing done),
what it accepts, idempotent retries, signed answers, and real round trips through daphne."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from settlement import keystore
from settlement.identity import peer_ping
from settlement.models import NodeRequestReceipt, Peer, PeerKey, PeerStatus
from settlement.protocol import http_signature
from settlement.protocol.signing import SigningKey
from settlement.transport import PeerAnswerUnverified, PeerUnreachable, peer_request

pytestmark = pytest.mark.django_db

PATH = "/node-api/ping"


@pytest.fixture
def peer_key():
    """A peer whose private key the test holds, so it can sign as that peer."""
    key = SigningKey.generate()
    peer = Peer.objects.create(name="bank-z", domain="bank-z.test", base_url="http://127.0.0.1:9")
    PeerKey.objects.create(
        peer=peer, key_id="bank-z.test#ed25519-1", public=key.public_key.hex(), valid_from=timezone.now()
    )
    return key


def _headers(
    key,
    *,
    body=b"{}",
    skew=0,
    nonce=None,
    key_id="bank-z.test#ed25519-1",
    audience=None,
    path=PATH,
    idempotency_key=None,
):
    signed = http_signature.sign_request(
        key,
        key_id=key_id,
        method="POST",
        path=path,
        body=body,
        created=int(time.time()) + skew,
        nonce=nonce or http_signature.new_nonce(),
        audience=audience or settings.NODE_DOMAIN,
        idempotency_key=idempotency_key,
    )
    return {name: value for name, value in signed.items()}


def _post(client, headers, body=b"{}", path=PATH):
    return client.generic("POST", path, data=body, content_type="application/json", headers=headers)


def test_a_signed_request_from_a_known_peer_is_answered(client, peer_key):
    response = _post(client, _headers(peer_key))

    assert response.status_code == 200
    assert response.json()["node"] == settings.NODE_NAME


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"skew": -31}, "clock_skew"),
        ({"skew": 31}, "clock_skew"),
        ({"key_id": "bank-y.test#ed25519-1"}, "unknown_key"),
        ({"audience": "bank-q.test"}, "wrong_audience"),
    ],
)
def test_refused_requests_get_401_with_a_code_and_are_logged(client, peer_key, caplog, change, code):
    caplog.set_level(logging.WARNING, logger="parsec.transport")

    response = _post(client, _headers(peer_key, **change))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert any(code in record.getMessage() for record in caplog.records)
    assert not NodeRequestReceipt.objects.exists()


def test_a_signature_by_another_key_is_refused(client, peer_key):
    response = _post(client, _headers(SigningKey.generate()))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"


def test_a_body_changed_in_transit_is_refused(client, peer_key):
    response = _post(client, _headers(peer_key, body=b"{}"), body=b'{"amount":1}')

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_digest"


def test_a_replayed_nonce_is_refused(client, peer_key):
    headers = _headers(peer_key)
    assert _post(client, headers).status_code == 200

    replay = _post(client, headers)

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"


def test_a_retired_peer_key_is_refused(client, peer_key):
    PeerKey.objects.update(valid_until=timezone.now())

    response = _post(client, _headers(peer_key))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unknown_key"


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(client, peer_key):
    first = _post(client, _headers(peer_key, idempotency_key="pay-1"))
    time.sleep(1.1)  # a new answer would carry a later time
    retry = _post(client, _headers(peer_key, idempotency_key="pay-1"))

    assert retry.status_code == first.status_code == 200
    assert retry.content == first.content
    assert retry["Idempotent-Replay"] == "true"
    assert NodeRequestReceipt.objects.count() == 1


@pytest.mark.parametrize(
    ("signed_key", "sent_key"),
    [("pay-1", "pay-2"), ("pay-1", None), (None, "pay-2")],
    ids=["changed", "removed", "added"],
)
def test_an_idempotency_key_changed_on_the_way_breaks_the_signature(client, peer_key, signed_key, sent_key):
    headers = _headers(peer_key, idempotency_key=signed_key)
    headers.pop("Idempotency-Key", None)
    if sent_key is not None:
        headers["Idempotency-Key"] = sent_key

    response = _post(client, headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert not NodeRequestReceipt.objects.exists()


def test_an_idempotency_key_reused_for_another_request_is_refused_not_answered(client, peer_key):
    first = _post(client, _headers(peer_key, idempotency_key="pay-1"))
    other_body = b'{"other":true}'

    reused = _post(client, _headers(peer_key, idempotency_key="pay-1", body=other_body), body=other_body)

    assert first.status_code == 200
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert NodeRequestReceipt.objects.count() == 1


def test_an_overlong_idempotency_key_is_refused_as_malformed(client, peer_key):
    headers = _headers(peer_key)
    headers["Idempotency-Key"] = "k" * 101

    response = _post(client, headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "malformed_signature_headers"


@pytest.mark.django_db(transaction=True)
def test_a_signed_ping_round_trip_through_daphne_marks_the_peer_up(live_web):
    keystore.node_identity_ensure()
    signer = keystore.node_signer()
    # The node under test is its own peer here: same database, so it knows the key it signs with.
    peer = Peer.objects.create(name=settings.NODE_NAME, domain=settings.NODE_DOMAIN, base_url=live_web.url)
    PeerKey.objects.create(
        peer=peer, key_id=signer.key_id, public=signer.public_key.hex(), valid_from=timezone.now()
    )

    pinged = peer_ping(peer=peer)

    assert pinged.status == PeerStatus.UP, pinged.last_error
    assert pinged.round_trip_ms is not None
    assert pinged.last_seen_at is not None


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_peer_is_marked_down_with_the_reason():
    keystore.node_identity_ensure()
    peer = Peer.objects.create(name="gone", domain="gone.test", base_url="http://127.0.0.1:9")

    pinged = peer_ping(peer=peer)

    assert pinged.status == PeerStatus.DOWN
    assert "did not answer" in pinged.last_error


def _answer_key_id(response, nonce: str) -> str:
    """Check that the answer is this node's, signed for the request with ``nonce``."""
    signer = keystore.node_signer()
    return http_signature.verify_response(
        headers=dict(response.headers),
        status=response.status_code,
        body=response.content,
        request_nonce=nonce,
        lookup_key={signer.key_id: signer.public_key}.get,
    )


def test_answers_are_signed_for_their_request_refusals_and_replays_included(client, peer_key):
    keystore.node_identity_ensure()
    signer = keystore.node_signer()
    first_nonce, refused_nonce, retry_nonce = (http_signature.new_nonce() for _ in range(3))

    answered = _post(client, _headers(peer_key, nonce=first_nonce, idempotency_key="pay-1"))
    refused = _post(client, _headers(peer_key, nonce=refused_nonce, skew=-31))
    time.sleep(0.01)
    replayed = _post(client, _headers(peer_key, nonce=retry_nonce, idempotency_key="pay-1"))

    assert (answered.status_code, refused.status_code, replayed.status_code) == (200, 401, 200)
    assert _answer_key_id(answered, first_nonce) == signer.key_id
    assert _answer_key_id(refused, refused_nonce) == signer.key_id
    # The stored answer is signed again for the retry, not handed back with the first signature.
    assert replayed["Idempotent-Replay"] == "true"
    assert _answer_key_id(replayed, retry_nonce) == signer.key_id
    with pytest.raises(http_signature.ResponseSignatureError):
        _answer_key_id(replayed, first_nonce)


def _self_as_peer(base_url: str, *, name: str = settings.NODE_NAME) -> Peer:
    keystore.node_identity_ensure()
    signer = keystore.node_signer()
    peer = Peer.objects.create(name=name, domain=settings.NODE_DOMAIN, base_url=base_url)
    PeerKey.objects.create(
        peer=peer, key_id=signer.key_id, public=signer.public_key.hex(), valid_from=timezone.now()
    )
    return peer


class _BodyChangingProxy(BaseHTTPRequestHandler):
    """Someone on the path: forwards each request untouched and changes one byte of the answer."""

    upstream: str

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
        answer = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=10)  # type: ignore[attr-defined]
        changed = answer.content.replace(b'"node"', b'"nodE"', 1)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(changed)))
        self.end_headers()
        self.wfile.write(changed)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def body_changing_proxy(live_web) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BodyChangingProxy)
    server.upstream = live_web.url  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_an_answer_changed_on_the_way_is_not_believed(live_web, body_changing_proxy):
    direct = _self_as_peer(live_web.url)
    assert peer_request(direct, "POST", PATH, json_body={}).json()["node"] == settings.NODE_NAME

    Peer.objects.filter(pk=direct.pk).update(base_url=body_changing_proxy)
    direct.refresh_from_db()
    with pytest.raises(PeerAnswerUnverified, match="does not match its Content-Digest"):
        peer_request(direct, "POST", PATH, json_body={})
    pinged = peer_ping(peer=direct)
    assert pinged.status == PeerStatus.DOWN
    assert "unverifiably" in pinged.last_error


@pytest.mark.django_db(transaction=True)
def test_an_answer_signed_by_a_node_other_than_the_one_asked_is_not_believed(live_web):
    # This node's key belongs to "bank-self"; "bank-other" is asked at the same node under
    # another name, so the answer arrives signed by a known node, just not by the one asked.
    _self_as_peer(live_web.url, name="bank-self")
    other = Peer.objects.create(
        name="bank-other", domain="bank-other.test", base_url=live_web.url.replace("127.0.0.1", "localhost")
    )
    PeerKey.objects.create(
        peer=other,
        key_id="bank-other.test#ed25519-1",
        public=SigningKey.generate().public_key.hex(),
        valid_from=timezone.now(),
    )

    with pytest.raises(PeerAnswerUnverified, match="not a key of the peer asked"):
        peer_request(other, "POST", PATH, json_body={})


@pytest.mark.django_db(transaction=True)
def test_the_environments_proxy_settings_are_honoured_though_read_once(live_web, monkeypatch):
    peer = _self_as_peer(live_web.url)
    # A proxy that does not exist: a request sent through it cannot be answered.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    def ask_in_a_new_thread() -> BaseException | None:
        # Sessions and their proxy look-ups are per thread; a new thread reads the environment.
        outcome: list[BaseException | None] = []

        def ask() -> None:
            try:
                peer_request(peer, "POST", PATH, json_body={})
                outcome.append(None)
            except Exception as error:  # handed to the test to look at
                outcome.append(error)

        thread = threading.Thread(target=ask)
        thread.start()
        thread.join(timeout=30)
        return outcome[0]

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert ask_in_a_new_thread() is None
    monkeypatch.delenv("NO_PROXY")
    assert isinstance(ask_in_a_new_thread(), PeerUnreachable)
