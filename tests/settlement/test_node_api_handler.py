"""Node-to-node requests (/node-api/) have a handler of their own (settlement.node_api_handler):
every route of its URLconf refuses unsigned and badly signed requests, nothing else is reachable
through it, a route that does not check a signature answers nobody, and daphne routes by path."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import get_resolver
from django.utils import timezone

from settlement import keystore
from settlement.models import Peer, PeerKey
from settlement.protocol import http_signature
from settlement.protocol.signing import SigningKey
from settlement.transport import checks_node_signature_through, peer_request
from tests.support import NodeApiClientHandler, url_routes


def _example_path(route: str) -> str:
    return "/" + re.sub(r"<[^>]+>", "x", route).lstrip("/")


NODE_API_PATHS = sorted(
    {_example_path(route) for route in url_routes(get_resolver(settings.NODE_API_URLCONF).url_patterns)}
)


def test_the_walk_finds_every_apps_node_to_node_routes():
    assert {
        "/node-api/ping",
        "/node-api/ledgers/payments/cosign",
        "/node-api/channels/open",
        "/node-api/virtual-channels/x/lock",
        "/node-api/consensus/gossip",
        "/node-api/messaging/deliver",
    } <= set(NODE_API_PATHS)
    assert all(path.startswith("/node-api/") for path in NODE_API_PATHS)


# They wait on another node's answer before they answer, so they must not hold a kept-connection
# thread (docs/crypto.md, "Kept connections").
WAITS_ON_ANOTHER_NODE = {
    "/node-api/ledgers/payments/relay",
    "/node-api/virtual-channels/x/lock",
    "/node-api/virtual-channels/x/release",
}


def test_every_node_api_view_but_those_that_wait_on_a_node_runs_on_threads_that_keep_their_connection():
    resolver = get_resolver(settings.NODE_API_URLCONF)
    on_threads = {path for path in NODE_API_PATHS if iscoroutinefunction(resolver.resolve(path).func)}

    assert set(NODE_API_PATHS) - on_threads == WAITS_ON_ANOTHER_NODE


@pytest.fixture
def peer_key() -> SigningKey:
    """A known peer whose private key the test holds."""
    key = SigningKey.generate()
    peer = Peer.objects.create(name="bank-z", domain="bank-z.test", base_url="http://127.0.0.1:9")
    PeerKey.objects.create(
        peer=peer, key_id="bank-z.test#ed25519-1", public=key.public_key.hex(), valid_from=timezone.now()
    )
    return key


@pytest.fixture
def gossip_checker_connections_closed() -> Iterator[None]:
    """The gossip view checks signatures on a pool of threads that keep their connections (the
    test client's requests too): close them after the test, or the test database stays in use."""
    yield
    from consensus.node_api import _checkers

    threads = _checkers._max_workers
    all_busy = threading.Barrier(threads)

    def close() -> None:
        all_busy.wait(timeout=10)  # one task per thread: each closes its own connection
        connection.close()

    for done in [_checkers.submit(close) for _ in range(threads)]:
        done.result(timeout=15)


def _signed(key: SigningKey, path: str, body: bytes, key_id: str = "bank-z.test#ed25519-1") -> dict[str, str]:
    return http_signature.sign_request(
        key,
        key_id=key_id,
        method="POST",
        path=path,
        body=body,
        created=int(time.time()),
        nonce=http_signature.new_nonce(),
        audience=settings.NODE_DOMAIN,
    )


def _refused(response, codes: set[str]) -> None:
    assert response.status_code in {401, 403}, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] in codes


# transaction=True: the gossip view checks signatures on threads of its own, with connections of
# their own, which see only committed rows (the known peer's key here).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", NODE_API_PATHS)
def test_every_node_api_route_refuses_unsigned_and_badly_signed_requests(
    client, peer_key, gossip_checker_connections_closed, path
):
    body = b'{"proof": {}, "proofs": [], "messages": [], "addresses": []}'

    unsigned = client.generic("POST", path, data=body, content_type="application/json")
    _refused(unsigned, {"malformed_signature_headers"})

    by_a_stranger = _signed(SigningKey.generate(), path, body, key_id="bank-y.test#ed25519-1")
    _refused(
        client.generic("POST", path, data=body, content_type="application/json", headers=by_a_stranger),
        {"unknown_key"},
    )

    tampered = _signed(peer_key, path, body)
    signature = tampered[http_signature.HEADER_SIGNATURE]
    tampered[http_signature.HEADER_SIGNATURE] = ("B" if signature[0] == "A" else "A") + signature[1:]
    _refused(
        client.generic("POST", path, data=body, content_type="application/json", headers=tampered),
        {"bad_signature"},
    )

    changed_body = _signed(peer_key, path, body)
    _refused(
        client.generic("POST", path, data=body + b" ", content_type="application/json", headers=changed_body),
        {"bad_digest"},
    )


def _through_the_node_api_handler(method: str, path: str):
    environ = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD=method)
    return NodeApiClientHandler(enforce_csrf_checks=True)(environ)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/accounts/login/", "/api/node/", "/api/schema/", "/admin/", "/counterparties/"]
)
def test_a_dashboard_or_api_url_under_the_node_api_handler_is_not_found(path):
    response = _through_the_node_api_handler("GET", path)

    assert response.status_code == 404
    assert json.loads(response.content)["error"]["code"] == "not_found"
    assert "sessionid" not in response.cookies


@pytest.mark.django_db
def test_a_node_api_url_under_the_dashboards_handler_is_not_found(make_user):
    # A plain client (no routing by path): only the dashboard's handler, logged in.
    client = Client()
    client.force_login(make_user("operator-n", "operator"))

    assert client.post("/node-api/ping", data=b"{}", content_type="application/json").status_code == 404


@pytest.mark.django_db
def test_the_node_api_handler_answers_no_path_outside_its_routes(client):
    for path in ("/node-api/ping/", "/node-api/", "/node-api/../admin/", "/node-api/ledgers/payments"):
        response = client.post(path, data=b"{}", content_type="application/json")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_a_route_that_does_not_check_a_signature_answers_nobody(settings, client):
    settings.NODE_API_URLCONF = "tests.settlement.node_api_urls_with_an_unchecked_view"

    response = client.post("/node-api/unchecked", data=b"{}", content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "node_signature_not_checked"


def test_only_async_middleware_is_accepted_in_the_node_api_chain(settings):
    settings.NODE_API_MIDDLEWARE = [
        *settings.NODE_API_MIDDLEWARE,
        "django.contrib.sessions.middleware.SessionMiddleware",
    ]

    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware would cost"):
        NodeApiClientHandler().load_middleware()


def test_a_view_cannot_claim_a_signature_check_it_does_not_delegate():
    def not_node_to_node(request):
        raise AssertionError("never called")

    with pytest.raises(ImproperlyConfigured, match="does not check a node signature"):
        checks_node_signature_through(not_node_to_node)


def _raw(port: int, method: str, path: str, *, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """One request exactly as written (no client normalises the path or sets the Host)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        connection.putheader("Content-Length", "2")
        connection.endheaders(b"{}")
        answer = connection.getresponse()
        return answer.status, {name.lower(): value for name, value in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_daphne_routes_node_to_node_requests_to_the_lean_handler(live_web):
    keystore.node_identity_ensure()
    signer = keystore.node_signer()
    # The node is its own peer here (same database), so it knows the key it signs with.
    peer = Peer.objects.create(name=settings.NODE_NAME, domain=settings.NODE_DOMAIN, base_url=live_web.url)
    PeerKey.objects.create(
        peer=peer, key_id=signer.key_id, public=signer.public_key.hex(), valid_from=timezone.now()
    )

    pong = peer_request(peer, "POST", "/node-api/ping", json_body={})  # the answer's signature is checked
    assert pong.status == 200
    assert pong.json()["node"] == settings.NODE_NAME

    status, headers, body = _raw(live_web.port, "POST", "/node-api/ping")
    assert status == 401
    assert b"malformed_signature_headers" in body
    # SecurityMiddleware and CommonMiddleware ran; the dashboard's session, CSRF and frame
    # middlewares did not.
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-length"] == str(len(body))
    assert "x-frame-options" not in headers
    assert "set-cookie" not in headers
    assert "vary" not in headers

    status, _, body = _raw(live_web.port, "POST", "/node-api/ping", host="evil.example")
    assert status == 400
    assert b'"bad_request"' in body

    status, _, body = _raw(live_web.port, "GET", "/node-api/../accounts/login/")
    assert status == 404
    assert b'"not_found"' in body

    # Everything else still takes the dashboard's chain: login first, frames denied.
    status, headers, _ = _raw(live_web.port, "GET", "/")
    assert status == 302
    assert headers["location"].startswith("/accounts/login/")
    assert headers["x-frame-options"] == "DENY"
