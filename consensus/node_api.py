"""Node-to-node endpoint of consensus: one-way gossip messages (mounted under /node-api/).

The view only checks (transport signature by node_to_node, size, shape, parties, the message's
own signature) and hands the message to the worker, which owns the validator's state, and
answers 202. A request that asks for it (``"answer_inline": true``) is answered with the
worker's response in the HTTP answer instead, ``200 {"message": <response>}``, signed like every
answer (push-pull: one round trip carries both halves of a gossip round); when the response
takes longer than CONSENSUS_INLINE_RESPONSE_SECONDS, the answer is the 202 and the response
travels back the other way, as its own POST.

The view is async and runs those checks in a thread of a small long-lived pool, not in a thread
made for the request: under ASGI a sync view gets a new thread, hence a new PostgreSQL
connection (SCRAM included), per request, which was half of a gossip POST's time (67 of
135 ms at the median on the loaded machine). A pool thread keeps its connection, replaced when
broken or older than CONN_MAX_AGE (``close_old_connections``, as Django does per request).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from consensus import services
from settlement.errors import error_body
from settlement.transport import (
    checks_node_signature_through,
    node_to_node,
    sign_answer,
    sign_answer_on_event_loop,
)


def _refuse(request: HttpRequest, error: services.ConsensusShellError) -> JsonResponse:
    services.gossip_refused(peer=getattr(request, "peer", None), error=error)
    return JsonResponse(error_body(error.code, error.message), status=error.http_status)


@node_to_node
def _gossip(request: HttpRequest) -> HttpResponse:
    try:
        body: Any = json.loads(request.body)
    except (UnicodeDecodeError, ValueError):
        return _refuse(request, services.ConsensusShellError("the body is not JSON", code="malformed_gossip"))
    try:
        services.gossip_check(peer=request.peer, body=body)  # type: ignore[attr-defined]
    except services.ConsensusShellError as error:
        return _refuse(request, error)
    answer_inline = services.gossip_answer_inline(body)
    services.gossip_enqueue(peer_name=request.peer.name, body=request.body, answer_inline=answer_inline)  # type: ignore[attr-defined]
    request.gossip_answer_inline = answer_inline  # type: ignore[attr-defined]
    return JsonResponse({"accepted": True}, status=202)


# Gossip POSTs arrive from n-1 peers, a few at a time each; a burst beyond this waits briefly.
_checkers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gossip-check")


def _gossip_in_checker_thread(request: HttpRequest, arrived: float) -> HttpResponse:
    # What Django does around a request: a connection kept while healthy and young, or, in the
    # web process's pool (CONN_MAX_AGE 0), taken for this request and handed back after it.
    close_old_connections()
    try:
        started = time.time()
        response = _gossip(request)
        services.trace_hop(request, arrived=arrived, started=started, status=response.status_code)
        return response
    finally:
        close_old_connections()


@checks_node_signature_through(_gossip)
@csrf_exempt
@login_not_required
@require_POST
async def gossip(request: HttpRequest) -> HttpResponse:
    arrived = time.time()
    # Refuse an oversized body before anything reads it (the transport check hashes the body).
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.CONSENSUS_MAX_MESSAGE_BYTES:
        error = services.ConsensusShellError(
            f"a gossip message is at most {settings.CONSENSUS_MAX_MESSAGE_BYTES} bytes",
            code="message_too_large",
            http_status=413,
        )
        await sync_to_async(services.gossip_refused, thread_sensitive=False, executor=_checkers)(
            peer=None, error=error
        )
        refusal = JsonResponse(error_body(error.code, error.message), status=413)
        return await sync_to_async(sign_answer, thread_sensitive=False, executor=_checkers)(request, refusal)
    accepted = await sync_to_async(_gossip_in_checker_thread, thread_sensitive=False, executor=_checkers)(
        request, arrived
    )
    answering = getattr(request, "gossip_answer_inline", None)
    if accepted.status_code != 202 or answering is None:
        return accepted
    # Push-pull: hold the exchange open for the loop's response (awaited, no thread held).
    reply = await services.gossip_inline_response(answering)
    if reply is None:
        return accepted  # it did not come in time: it travels as its own POST
    body, handed_over = reply
    answer = HttpResponse(body, status=200, content_type="application/json")
    # Signed right here (an Ed25519 signature and a digest, no query): a hop to a check thread
    # and back cost two wake-ups on the loaded machine, on every gossip round's way back.
    signed = sign_answer_on_event_loop(request, answer) or await sync_to_async(
        sign_answer, thread_sensitive=False, executor=_checkers
    )(request, answer)
    services.trace_inline_answer(request_signature=answering, handed_over=handed_over, body=body)
    return signed
