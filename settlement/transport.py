"""The signed node-to-node transport: one function sends, one decorator verifies.

Every request between nodes is plain HTTP with signed headers (settlement.protocol.
http_signature): key id, created time, nonce, audience, body digest, Ed25519 signature. The
receiver refuses unknown keys, bad signatures, clocks more than 30 s apart and nonces it has
seen (kept in Redis for twice the allowed skew, after which the timestamp alone refuses a
replay). With an Idempotency-Key header (signed with the rest) the first answer is kept in
PostgreSQL and a retry gets it again without running the handler twice; the same key on a
different request is refused rather than answered with another request's answer.

Answers are signed as well, bound to the request's nonce (``http_signature.sign_response``):
``peer_request`` believes an answer only if the peer it asked signed it for that request.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

import requests
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from settlement.errors import error_body
from settlement.health import redis_client
from settlement.keystore import (
    CURRENT_PUBLIC_KEY_SQL,
    NodeSigner,
    node_signer,
    node_signer_for,
    node_signer_opened,
)
from settlement.models import KeyPurpose, NodeRequestReceipt, Peer, PeerKey
from settlement.protocol import http_signature

logger = logging.getLogger("parsec.transport")

# A request is accepted while its time is within MAX_SKEW of ours on either side; its nonce
# must be remembered at least that long, with a margin for the clocks' own drift.
NONCE_TTL_SECONDS = 2 * http_signature.MAX_SKEW_SECONDS + 10
# A placeholder answer while the first request with a key is still being handled.
IN_PROGRESS = 0

_sessions = threading.local()


class PeerUnreachable(Exception):  # noqa: N818 - the name says what happened
    """The peer did not answer (connection refused, timeout)."""


class PeerAnswerUnverified(PeerUnreachable):
    """An answer came, but not one the peer signed for this request: as good as no answer, so
    every caller's retry applies, and nothing in it is believed."""


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: bytes
    content_type: str
    round_trip_ms: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _session() -> requests.Session:
    """One HTTP session per thread: connections to peers are reused, never shared across threads.

    It does not consult the environment on each call (``trust_env``), which requests otherwise
    does for proxies, ``no_proxy``, netrc and CA bundles, at about 0.2 ms a request: the proxies
    for a peer are looked up once per base URL (``_proxies_for``) and the CA bundle once here.
    """
    session = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        _sessions.session = session
        _sessions.proxies = {}
    return session


def _proxies_for(base_url: str) -> dict[str, str]:
    """The proxies the environment names for this peer (``no_proxy`` honoured), looked up once."""
    known: dict[str, dict[str, str]] = _sessions.proxies
    if base_url not in known:
        known[base_url] = requests.utils.get_environ_proxies(base_url)
    return known[base_url]


def peer_request(
    peer: Peer,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    body: bytes | None = None,
    content_type: str = "application/json",
    idempotency_key: str | None = None,
    timeout: float = 5.0,
) -> PeerResponse:
    """Send one signed request to ``peer`` and return its answer (any status).

    The body is ``json_body`` as JSON, or ``body`` as given with its ``content_type`` (a
    format of the endpoint's own, such as a channel batch); the signature covers it either way.

    One query before sending reads our current signing key and the peer's current keys; the
    answer is believed if one of those keys signed it. (Reading the peer's keys again when the
    answer arrives cost a second PostgreSQL round trip on every request, a gossip hop's included;
    a key the peer retires while our request is in flight counts as current for its answer, as
    it would have had the answer come that much sooner.)
    """
    if body is not None and json_body is not None:
        raise ValueError("a request has one body: json_body or body, not both")
    if body is None:
        body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
    signer, peer_keys = _our_signer_and_keys_of(peer)
    headers = http_signature.sign_request(
        signer.key,
        key_id=signer.key_id,
        method=method.upper(),
        path=path,
        body=body,
        created=int(time.time()),
        nonce=http_signature.new_nonce(),
        audience=peer.domain,
        idempotency_key=idempotency_key or None,
    )
    headers["Content-Type"] = content_type
    started = time.perf_counter()
    try:
        session = _session()
        base_url = peer.base_url.rstrip("/")
        answer = session.request(
            method.upper(),
            base_url + path,
            data=body,
            headers=headers,
            timeout=timeout,
            proxies=_proxies_for(base_url),
        )
    except requests.RequestException as error:
        raise PeerUnreachable(
            f"{peer.name} did not answer {method} {path}: {type(error).__name__}"
        ) from error
    try:
        http_signature.verify_response(
            headers=answer.headers,
            status=answer.status_code,
            body=answer.content,
            request_nonce=headers[http_signature.HEADER_NONCE],
            lookup_key=peer_keys.get,
        )
    except http_signature.ResponseSignatureError as error:
        logger.warning(
            "%s answered %s %s (%s) unverifiably: %s", peer.name, method, path, answer.status_code, error
        )
        raise PeerAnswerUnverified(f"{peer.name} answered {method} {path} unverifiably: {error}") from error
    return PeerResponse(
        status=answer.status_code,
        body=answer.content,
        content_type=answer.headers.get("Content-Type", ""),
        round_trip_ms=(time.perf_counter() - started) * 1000,
    )


def _our_signer_and_keys_of(peer: Peer) -> tuple[NodeSigner, dict[str, bytes]]:
    """Our current signer and ``peer``'s current public keys by key id, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({CURRENT_PUBLIC_KEY_SQL}), k.key_id, k.public FROM (SELECT 1) AS one "  # noqa: S608 - constants only
            "LEFT JOIN settlement_peerkey k ON k.peer_id = %s AND (k.valid_until IS NULL OR k.valid_until > %s)",
            [KeyPurpose.SIGNING.value, peer.pk, timezone.now()],
        )
        rows = cursor.fetchall()
    keys = {key_id: bytes.fromhex(public) for _, key_id, public in rows if key_id is not None}
    return node_signer_for(rows[0][0]), keys


def _current_peer_key(key_id: str) -> tuple[PeerKey | None, str | None]:
    """(the current peer key ``key_id`` with its peer, our own current signing key's public half).

    Ours comes in the same statement, for signing the answer (``sign_answer``): reading it there
    again cost a PostgreSQL round trip per answered request."""
    # A retired key is refused for new requests: a signature made after retirement is the
    # very thing retirement exists to stop. (Old signatures on objects are verified elsewhere.)
    # Written as SQL: every node-to-node request asks this, and compiling the ORM query cost
    # more than running it. The key with its peer, as select_related would load them.
    key_names, peer_names = _peer_key_columns()
    columns = ["k." + name for name in key_names] + ["p." + name for name in peer_names]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({CURRENT_PUBLIC_KEY_SQL}), {', '.join(columns)} FROM (SELECT 1) AS one "  # noqa: S608 - names from the models
            "LEFT JOIN (settlement_peerkey k JOIN settlement_peer p ON p.id = k.peer_id) "
            "ON k.key_id = %s AND (k.valid_until IS NULL OR k.valid_until > %s) ORDER BY k.id LIMIT 1",
            [KeyPurpose.SIGNING.value, key_id, timezone.now()],
        )
        ours, *row = cursor.fetchone()
    if row[0] is None:
        return None, ours
    key = PeerKey.from_db(connection.alias, key_names, row[: len(key_names)])
    PeerKey._meta.get_field("peer").set_cached_value(
        key, Peer.from_db(connection.alias, peer_names, row[len(key_names) :])
    )
    return key, ours


@functools.cache
def _peer_key_columns() -> tuple[list[str], list[str]]:
    """Attribute (= column) names of PeerKey and Peer; neither has a field that needs converting."""
    names = []
    for model in (PeerKey, Peer):
        fields: list[Any] = list(model._meta.concrete_fields)
        if any(field.get_db_converters(connection) or field.attname != field.column for field in fields):
            raise TypeError(f"{model.__name__}: load it through the ORM")
        names.append([field.attname for field in fields])
    return names[0], names[1]


# Set by the signature check on the request: our current signing key (public, hex) as read in
# the same query as the peer's key, so the answer is signed without reading it again.
_ANSWER_KEY = "_node_answer_key"


def sign_answer(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Sign ``response`` as this node's answer to ``request`` (bound to the request's nonce).

    A request without a well-formed nonce gets an unsigned answer: its sender is not a node that
    could check a signature, and there is no request to bind one to."""
    if response.streaming:
        return response
    try:
        ours = getattr(request, _ANSWER_KEY, None)
        signer = node_signer_for(ours) if ours is not None else node_signer()
    except ImproperlyConfigured:
        # A node that has no key yet (before node_bootstrap) cannot sign; its answer goes out
        # unsigned and no peer will believe it, which is the truth about such a node.
        return response
    return _signed_by(signer, request, response)


def sign_answer_on_event_loop(request: HttpRequest, response: HttpResponse) -> HttpResponse | None:
    """``sign_answer`` without any database access, for an async view: the signed answer, or
    None when the key would have to be read or opened first (then call ``sign_answer`` in a
    thread). After the request's signature check it never needs to: the check read our key."""
    ours = getattr(request, _ANSWER_KEY, None)
    signer = node_signer_opened(ours) if ours is not None else None
    if signer is None or response.streaming:
        return None
    return _signed_by(signer, request, response)


def _signed_by(signer: NodeSigner, request: HttpRequest, response: HttpResponse) -> HttpResponse:
    nonce = request.headers.get(http_signature.HEADER_NONCE, "")
    try:
        headers = http_signature.sign_response(
            signer.key,
            key_id=signer.key_id,
            request_nonce=nonce,
            status=response.status_code,
            body=response.content,
        )
    except http_signature.ResponseSignatureError:
        return response
    for name, value in headers.items():
        response[name] = value
    return response


def _nonce_is_fresh(verified: http_signature.VerifiedRequest) -> bool:
    key = f"{settings.REDIS_KEY_PREFIX}:n2n-nonce:{verified.key_id}:{verified.nonce}"
    return bool(redis_client().set(key, "1", nx=True, ex=NONCE_TTL_SECONDS))


def _refuse(request: HttpRequest, code: str, message: str) -> JsonResponse:
    # Logged for the operator (who is knocking, and why refused); never the headers' values.
    logger.warning(
        "refused node-to-node %s %s from %s: %s (%s)",
        request.method,
        request.path,
        request.META.get("REMOTE_ADDR", "?"),
        code,
        message,
    )
    return JsonResponse(error_body(code, message), status=401)


def _request_fingerprint(request: HttpRequest) -> str:
    """What a retry must repeat exactly to be given the first answer: method, path and body."""
    text = f"{request.method} {request.get_full_path()} {http_signature.body_digest(request.body)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_answer(receipt: NodeRequestReceipt, fingerprint: str) -> HttpResponse:
    if receipt.request_fingerprint != fingerprint:
        return JsonResponse(
            error_body(
                "idempotency_key_reused",
                "This Idempotency-Key was already used for a different request; use a new key.",
            ),
            status=422,
        )
    if receipt.status_code == IN_PROGRESS:
        return JsonResponse(
            error_body("request_in_progress", "A request with this Idempotency-Key is still being handled."),
            status=409,
        )
    response = HttpResponse(
        bytes(receipt.response_body), status=receipt.status_code, content_type=receipt.content_type
    )
    response["Idempotent-Replay"] = "true"
    return response


# Set on the views that check a node signature; NodeSignatureRequiredMiddleware refuses the rest.
NODE_SIGNATURE_CHECKED = "node_signature_checked"

ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])


def node_to_node(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Verify a peer's signed request before ``view`` runs; the view finds the peer in ``request.peer``."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return sign_answer(request, verified_and_answered(request, *args, **kwargs))

    def verified_and_answered(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # One query finds the key and its peer; the view gets the peer without asking again.
        found: dict[str, PeerKey] = {}

        def lookup_key(key_id: str) -> bytes | None:
            key, ours = _current_peer_key(key_id)
            setattr(request, _ANSWER_KEY, ours)
            if key is None:
                return None
            found[key_id] = key
            return bytes.fromhex(key.public)

        try:
            verified = http_signature.verify_request(
                method=request.method or "GET",
                path=request.get_full_path(),
                headers=dict(request.headers),
                body=request.body,
                now=int(time.time()),
                lookup_key=lookup_key,
                audience=settings.NODE_DOMAIN,
            )
        except http_signature.RequestSignatureError as error:
            return _refuse(request, error.code, str(error))
        if not _nonce_is_fresh(verified):
            return _refuse(request, "replayed_nonce", "This nonce was already used; a replay is refused.")
        peer = found[verified.key_id].peer
        request.peer = peer  # type: ignore[attr-defined]
        # The signed key, not the raw header: verify_request refused any mismatch already.
        idempotency_key = verified.idempotency_key
        if idempotency_key is None:
            return view(request, *args, **kwargs)
        fingerprint = _request_fingerprint(request)
        try:
            with transaction.atomic():
                receipt = NodeRequestReceipt.objects.create(
                    peer=peer,
                    idempotency_key=idempotency_key,
                    method=request.method or "",
                    path=request.path,
                    request_fingerprint=fingerprint,
                    status_code=IN_PROGRESS,
                    response_body=b"",
                    content_type="",
                )
        except IntegrityError:
            stored = NodeRequestReceipt.objects.get(peer=peer, idempotency_key=idempotency_key)
            return _stored_answer(stored, fingerprint)
        response = view(request, *args, **kwargs)
        if response.status_code >= 500:
            receipt.delete()  # a failure is not an answer: let the retry run the handler
        else:
            receipt.status_code = response.status_code
            receipt.response_body = response.content
            receipt.content_type = response.get("Content-Type", "application/json")
            receipt.save(update_fields=["status_code", "response_body", "content_type"])
        return response

    # The node-api handler has no CSRF or login middleware; these say the same to the dashboard's
    # chain, should a node-to-node view ever be mounted there.
    checked = csrf_exempt(login_not_required(wrapped))
    setattr(checked, NODE_SIGNATURE_CHECKED, True)
    return checked


def checks_node_signature_through(inner: Callable[..., Any]) -> Callable[[ViewFunction], ViewFunction]:
    """Mark a view that refuses or hands every request to ``inner``, a ``node_to_node`` view,
    for NodeSignatureRequiredMiddleware (e.g. gossip, which refuses an oversized body before the
    signature is read)."""
    if not getattr(inner, NODE_SIGNATURE_CHECKED, False):
        raise ImproperlyConfigured(f"{inner.__qualname__} does not check a node signature (node_to_node)")

    def mark(view: ViewFunction) -> ViewFunction:
        setattr(view, NODE_SIGNATURE_CHECKED, True)
        return view

    return mark


# Threads that keep their PostgreSQL connection between node-to-node requests (see below).
NODE_API_THREADS = 4
_node_api_executor = ThreadPoolExecutor(max_workers=NODE_API_THREADS, thread_name_prefix="node-api")


def _on_kept_connection(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def call(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # What Django does around every request (request_started/finished): drop a connection
        # that is broken or older than CONN_MAX_AGE; otherwise keep it for the next request.
        close_old_connections()
        try:
            return view(request, *args, **kwargs)
        finally:
            close_old_connections()

    return call


def on_node_api_threads(view: Callable[..., HttpResponse]) -> Callable[..., Any]:
    """Run a busy node-to-node view on a few long-lived threads. Under ASGI Django runs each
    synchronous view on a thread of its own; without a connection pool every request would open
    a PostgreSQL connection (SCRAM included), which costs more than a batch of co-signatures, so
    outside the web process's pool (``DATABASE_POOL_MAX=0``) these threads keep theirs. Either
    way at most ``NODE_API_THREADS`` of these requests hold a connection at once.
    Outside ASGI (the test client, WSGI) the view runs where Django would run it."""
    kept = _on_kept_connection(view)

    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if isinstance(request, ASGIRequest):
            return await sync_to_async(kept, thread_sensitive=False, executor=_node_api_executor)(
                request, *args, **kwargs
            )
        return await sync_to_async(view)(request, *args, **kwargs)

    # wraps copies the view's attributes too: csrf_exempt, login_required (node_to_node's).
    return wraps(view)(wrapped)


def forget_old_request_receipts(older_than: timedelta = timedelta(days=7)) -> int:
    deleted, _ = NodeRequestReceipt.objects.filter(received_at__lt=timezone.now() - older_than).delete()
    return deleted
