"""Two validators over real HTTP: a real daphne and Celery worker run this node; the test plays
the second validator ``bank-z`` (a pure Parsec with its own key, reached by a small HTTP inbox).
Many malformed, oversized and wrongly signed gossip messages are sent at the node: each is
refused with a 4xx and a code, a signed message carrying a forged event gets its sender accused,
and the node keeps agreeing blocks with bank-z."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from consensus_shell_support import InProcessPeer, wait_for
from django.conf import settings

from consensus import services
from consensus.models import Accusation, Block, ObservationStatus, PendingObservation
from consensus.protocol import Request, message_from_wire
from consensus.protocol.event import create_event
from consensus.protocol.malice import MESSAGE_KIND, MaliceKind
from consensus.protocol.parsec import _header
from settlement.keystore import node_identity_ensure, node_signer
from settlement.protocol import http_signature
from settlement.protocol.signing import SigningKey, sign

pytestmark = pytest.mark.worker


class _Inbox(BaseHTTPRequestHandler):
    messages: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.messages.put(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inbox() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    server.messages = queue.Queue()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def validator_pair_behind_inbox(inbox: Any, live_web: Any) -> Iterator[tuple[InProcessPeer, Any, Any]]:
    """The node under test and an in-process validator "bank-z" whose gossip endpoint is ``inbox``."""
    services.forget_cached_state()
    node_identity_ensure()
    peer = InProcessPeer("bank-z")
    peer.peer.base_url = f"http://127.0.0.1:{inbox.server_address[1]}"
    peer.peer.save()
    services.consensus_state_ensure(validators=[settings.NODE_NAME, peer.name])
    peer.start([node_signer().public_key, peer.key.public_key])
    yield peer, live_web, inbox
    services.forget_cached_state()


@pytest.fixture
def network(transactional_db, inbox, live_web, celery_worker):
    yield from validator_pair_behind_inbox(inbox, live_web)


def _post(peer: InProcessPeer, url: str, body: bytes, *, key: SigningKey | None = None) -> requests.Response:
    path = "/node-api/consensus/gossip"
    headers = http_signature.sign_request(
        key or peer.key,
        key_id=peer.key_id,
        method="POST",
        path=path,
        body=body,
        created=int(time.time()),
        nonce=http_signature.new_nonce(),
        audience=settings.NODE_DOMAIN,
    )
    return requests.post(
        url + path, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10
    )


def _gossip_round(peer: InProcessPeer, web: Any, inbox: Any) -> None:
    our_id = node_signer().public_key
    request = peer.parsec.create_gossip(our_id)
    answer = _post(peer, web.url, json.dumps({"message": request.to_wire()}).encode())
    assert answer.status_code == 202, answer.content
    while True:
        message = message_from_wire(inbox.messages.get(timeout=15)["message"])
        if isinstance(message, Request):  # the node started a round of its own: answer it
            response = peer.parsec.handle_request(our_id, message)
            assert (
                _post(peer, web.url, json.dumps({"message": response.to_wire()}).encode()).status_code == 202
            )
            continue
        peer.parsec.handle_response(our_id, message)
        break
    peer.collect_blocks()


def _agree(peer: InProcessPeer, web: Any, inbox: Any, payloads: list[bytes]) -> None:
    services.consensus_vote_many(payloads=payloads, kind="test.payment")
    deadline = time.monotonic() + 60
    while PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists():
        assert time.monotonic() < deadline, "no agreement within 60 s"
        _gossip_round(peer, web, inbox)


def _signed_message(
    peer: InProcessPeer, recipient: bytes, events: tuple[Any, ...], *, sender: bytes | None = None
) -> dict[str, Any]:
    """A request signed by ``peer`` (valid message signature) carrying ``events`` as given."""
    header = _header("request", sender or peer.key.public_key, recipient, 0, (0, 0), (), events, 0)
    request = Request(
        sender=sender or peer.key.public_key,
        recipient=recipient,
        epoch=0,
        known=(0, 0),
        wants=(),
        events=events,
        signature=sign(peer.key, MESSAGE_KIND, header),
        sender_epoch=0,
    )
    return request.to_wire()


def test_bad_gossip_is_refused_the_sender_accused_and_blocks_keep_coming(network):
    peer, web, inbox = network
    our_id = node_signer().public_key
    _agree(peer, web, inbox, [f"before {number}".encode() for number in range(5)])
    height_before = Block.objects.count()
    assert height_before >= 1
    assert [block.merkle_root for block in peer.blocks] == [
        bytes(block.merkle_root) for block in Block.objects.order_by("height")
    ]

    good = peer.parsec.create_gossip(our_id).to_wire()
    bad_signature = {**good, "signature": "00" * 64}
    other_parties = _signed_message(peer, bytes(32), ())
    wrong_sender = {**good, "header": {**good["header"], "sender": "11" * 32}}
    cases: list[tuple[bytes, int, str]] = [
        (b"not json", 400, "malformed_gossip"),
        (b"[]", 400, "malformed_gossip"),
        (json.dumps({"message": "x"}).encode(), 400, "malformed_gossip"),
        (json.dumps({"message": {}}).encode(), 400, "malformed_gossip"),
        (
            json.dumps({"message": {"header": {"kind": "request"}, "events": [], "signature": ""}}).encode(),
            400,
            "malformed_gossip",
        ),
        (json.dumps({"message": {**good, "events": [{"creator": "zz"}]}}).encode(), 400, "malformed_gossip"),
        (
            json.dumps({"message": {**good, "header": {**good["header"], "known": ["a"]}}}).encode(),
            401,
            "bad_message_signature",
        ),
        (json.dumps({"message": bad_signature}).encode(), 401, "bad_message_signature"),
        (json.dumps({"message": wrong_sender}).encode(), 403, "wrong_parties"),
        (json.dumps({"message": other_parties}).encode(), 403, "wrong_parties"),
        (b"{" + b" " * (settings.CONSENSUS_MAX_MESSAGE_BYTES + 1) + b"}", 413, "message_too_large"),
    ]
    for _ in range(10):  # many: the node must shrug them all off
        for body, status, code in cases:
            answer = _post(peer, web.url, body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body[:80]

    # Not from a peer at all: no signature, a key the node does not know, a replayed nonce.
    assert requests.post(web.url + "/node-api/consensus/gossip", data=b"{}", timeout=5).status_code == 401
    stranger = _post(peer, web.url, json.dumps({"message": good}).encode(), key=SigningKey.generate())
    assert stranger.status_code == 401
    body = json.dumps({"message": good}).encode()
    headers = http_signature.sign_request(
        peer.key,
        key_id=peer.key_id,
        method="POST",
        path="/node-api/consensus/gossip",
        body=body,
        created=int(time.time()),
        nonce=http_signature.new_nonce(),
        audience=settings.NODE_DOMAIN,
    )
    first = requests.post(web.url + "/node-api/consensus/gossip", data=body, headers=headers, timeout=5)
    replay = requests.post(web.url + "/node-api/consensus/gossip", data=body, headers=headers, timeout=5)
    assert first.status_code == 202
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "replayed_nonce")
    inbox.messages.get(timeout=15)  # the node's answer to the accepted copy

    # A correctly signed message that carries a forged event: provable, so bank-z is accused.
    forged, _ = create_event(peer.key, epoch=0, index=10_000, self_parent=bytes(32), other_parent=None)
    forged = type(forged)(**{**forged.__dict__, "signature": bytes(64)})
    answer = _post(peer, web.url, json.dumps({"message": _signed_message(peer, our_id, (forged,))}).encode())
    assert answer.status_code == 202
    inbox.messages.get(timeout=15)
    accusation = wait_for(
        lambda: Accusation.objects.filter(offender=peer.key.public_key.hex()).first(), what="an accusation"
    )
    assert accusation.kind == MaliceKind.INVALID_EVENT_IN_MESSAGE.value
    assert accusation.offender_name == "bank-z"
    from consensus.protocol import Accusation as ProtocolAccusation
    from consensus.protocol import check_accusation

    assert check_accusation(ProtocolAccusation.from_wire(accusation.evidence))

    # The node keeps going: new observations are agreed into new blocks, the same on both sides.
    _agree(peer, web, inbox, [f"after {number}".encode() for number in range(5)])
    assert Block.objects.count() > height_before
    assert [block.merkle_root for block in peer.blocks] == [
        bytes(block.merkle_root) for block in Block.objects.order_by("height")
    ]
    status = services.gossip_refusals()
    assert int(status["total"]) >= 10 * len(cases)
