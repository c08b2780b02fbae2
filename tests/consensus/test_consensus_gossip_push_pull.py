"""Push-pull gossip over real HTTP: a request that asks for it (``"answer_inline": true``) gets
the gossip loop's response in its HTTP answer, signed by the node's transport key for that
request, so one POST carries both halves of a round. Both sides are tested against a real daphne
and a real two-process Celery worker running the loop; the test plays the second validator
``bank-z`` (a pure Parsec with its own key behind a small HTTP server).

* the node answers bank-z's requests in the HTTP answer, and they agree blocks that way;
* the node asks bank-z for inline answers and agrees blocks with a bank-z that only ever answers
  inline (it never POSTs anything);
* an inline answer whose message signature is wrong is refused and counted (nobody is blamed: an
  unsigned message proves nothing); one that is signed but carries a forged event gets bank-z
  accused; and the node goes on agreeing with bank-z afterwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from consensus_shell_support import wait_for
from test_consensus_gossip_loop import _tick_until_a_loop_runs, _worker
from test_consensus_shell_bad_gossip import _post, inbox, validator_pair_behind_inbox

from consensus import services
from consensus.models import Accusation, Block, ObservationStatus, PendingObservation
from consensus.protocol import Request, Response, message_from_wire
from consensus.protocol.event import create_event
from consensus.protocol.malice import MESSAGE_KIND, MaliceKind
from consensus.protocol.parsec import _header
from settlement.keystore import node_signer
from settlement.protocol import http_signature
from settlement.protocol.signing import sign

pytestmark = pytest.mark.worker
__all__ = ["inbox"]


@pytest.fixture
def push_pull_worker(transactional_db: None, tmp_path: Any) -> Iterator[Any]:
    """A two-process worker running the loop; a request unanswered for 1 s is asked again."""
    worker = _worker(tmp_path, CONSENSUS_RESPONSE_TIMEOUT_SECONDS="1", CONSENSUS_GOSSIP_SECONDS="0.3")
    worker.start()
    yield worker
    worker.stop()
    services.health.redis_client().delete(services._loop_lock_key(), services._inbox_key())


@pytest.fixture
def pair(transactional_db, inbox, live_web, push_pull_worker):
    yield from validator_pair_behind_inbox(inbox, live_web)


def _all_agreed() -> bool:
    return not PendingObservation.objects.exclude(status=ObservationStatus.AGREED).exists()


def test_the_node_answers_a_request_in_its_http_answer(pair):
    peer, web, inbox = pair
    our_id = node_signer().public_key
    _tick_until_a_loop_runs()
    services.consensus_vote_many(payloads=[f"inline {n}".encode() for n in range(5)], kind="test.payment")

    inline_answers = 0
    deadline = time.monotonic() + 60
    while not (_all_agreed() and len(peer.blocks) == Block.objects.count() and inline_answers >= 3):
        assert time.monotonic() < deadline, (
            f"no agreement and 3 inline answers within 60 s ({inline_answers})"
        )
        request = peer.parsec.create_gossip(our_id).to_wire()
        body = json.dumps({"message": request, "answer_inline": True}).encode()
        answer = _post(peer, web.url, body)
        if answer.status_code == 200:
            # The transport signed it as the node's answer to this very request...
            http_signature.verify_response(
                headers=answer.headers,
                status=200,
                body=answer.content,
                request_nonce=answer.request.headers[http_signature.HEADER_NONCE],
                lookup_key=lambda key_id: node_signer().public_key,
            )
            # ...and it is the loop's signed response, which bank-z's protocol checks again.
            response = message_from_wire(answer.json()["message"])
            assert isinstance(response, Response)
            peer.parsec.handle_response(our_id, response)
            inline_answers += 1
        else:
            assert answer.status_code == 202, answer.content  # the loop was slower than the wait
        # The node's own rounds reach the plain inbox (it answers 202, as a node before push-pull).
        while not inbox.messages.empty():
            message = message_from_wire(inbox.messages.get()["message"])
            if isinstance(message, Request):
                response = peer.parsec.handle_request(our_id, message)
                _post(peer, web.url, json.dumps({"message": response.to_wire()}).encode())
            else:
                peer.parsec.handle_response(our_id, message)
        peer.collect_blocks()
        time.sleep(0.05)

    assert [block.merkle_root for block in peer.blocks] == [
        bytes(block.merkle_root) for block in Block.objects.order_by("height")
    ]
    # A request without the flag is answered 202 as before, and its response is POSTed.
    request = peer.parsec.create_gossip(our_id).to_wire()
    assert _post(peer, web.url, json.dumps({"message": request}).encode()).status_code == 202
    message = message_from_wire(inbox.messages.get(timeout=15)["message"])
    while isinstance(message, Request):  # a round of the node's own on the way: not our answer
        message = message_from_wire(inbox.messages.get(timeout=15)["message"])
    assert isinstance(message, Response)


class _InlineAnswering(BaseHTTPRequestHandler):
    """bank-z answering every request in its HTTP answer, signed for that request's nonce;
    ``server.respond(request) -> response wire`` makes the response."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        message = message_from_wire(body["message"])
        status, answer = 202, b""
        if isinstance(message, Request) and body.get("answer_inline") is True:
            status = 200
            answer = json.dumps({"message": self.server.respond(message)}).encode()  # type: ignore[attr-defined]
        peer = self.server.peer  # type: ignore[attr-defined]
        headers = http_signature.sign_response(
            peer.key,
            key_id=peer.key_id,
            request_nonce=self.headers[http_signature.HEADER_NONCE],
            status=status,
            body=answer,
        )
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def answering_peer(transactional_db, live_web, push_pull_worker) -> Iterator[tuple[Any, Any]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _InlineAnswering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for peer, _, _ in validator_pair_behind_inbox(server, live_web):
        server.peer = peer  # type: ignore[attr-defined]
        yield peer, server
    server.shutdown()


def test_the_node_takes_inline_answers_refuses_bad_ones_and_accuses_forged_events(answering_peer):
    peer, server = answering_peer
    our_id = node_signer().public_key
    lock = threading.Lock()

    def honest(request: Request) -> dict[str, Any]:
        with lock:
            response = peer.parsec.handle_request(our_id, request)
            peer.collect_blocks()
            return response.to_wire()

    def respond_with(make: Callable[[], dict[str, Any]]) -> Callable[[Request], dict[str, Any]]:
        def respond(request: Request) -> dict[str, Any]:
            honest(request)  # bank-z still takes in what the node sent
            return make()

        return respond

    server.respond = honest
    _tick_until_a_loop_runs()
    services.consensus_vote_many(payloads=[f"pulled {n}".encode() for n in range(5)], kind="test.payment")
    wait_for(_all_agreed, timeout=60, what="agreement through inline answers only")
    wait_for(lambda: len(peer.blocks) == Block.objects.count(), timeout=30, what="bank-z's blocks")
    assert [block.merkle_root for block in peer.blocks] == [
        bytes(block.merkle_root) for block in Block.objects.order_by("height")
    ]

    # A response whose message signature is wrong: refused, counted, nobody accused.
    def badly_signed() -> dict[str, Any]:
        with lock:
            return {**peer.parsec.create_gossip(our_id).to_wire(), "signature": "00" * 64}

    refused_before = int(services.gossip_refusals().get("total", 0))
    server.respond = respond_with(badly_signed)
    services.consensus_vote(payload=b"answered badly", kind="test.payment")
    wait_for(
        lambda: int(services.gossip_refusals().get("total", 0)) > refused_before,
        timeout=30,
        what="a refused inline answer",
    )
    assert "bad_message_signature" in services.gossip_refusals()["last:bank-z"]
    assert not Accusation.objects.exists()

    # A signed response carrying a forged event: provable, so bank-z is accused.
    def forging() -> dict[str, Any]:
        forged, _ = create_event(peer.key, epoch=0, index=10_000, self_parent=bytes(32), other_parent=None)
        forged = type(forged)(**{**forged.__dict__, "signature": bytes(64)})
        header = _header("response", peer.key.public_key, our_id, 0, (0, 0), (), (forged,), 0)
        return Response(
            sender=peer.key.public_key,
            recipient=our_id,
            epoch=0,
            known=(0, 0),
            wants=(),
            events=(forged,),
            signature=sign(peer.key, MESSAGE_KIND, header),
            sender_epoch=0,
        ).to_wire()

    server.respond = respond_with(forging)
    accusation = wait_for(
        lambda: Accusation.objects.filter(offender=peer.key.public_key.hex()).first(),
        timeout=30,
        what="an accusation",
    )
    assert accusation.kind == MaliceKind.INVALID_EVENT_IN_MESSAGE.value

    # Honest again: the node goes on agreeing with bank-z.
    server.respond = honest
    wait_for(_all_agreed, timeout=60, what="agreement after the bad answers")
    wait_for(lambda: len(peer.blocks) == Block.objects.count(), timeout=30, what="bank-z's blocks")
    assert [block.merkle_root for block in peer.blocks] == [
        bytes(block.merkle_root) for block in Block.objects.order_by("height")
    ]
