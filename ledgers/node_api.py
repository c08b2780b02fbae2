"""Endpoints other banks call, under /node-api/ledgers/. Each is wrapped by ``node_to_node``:
the request is signed by a peer we know (``request.peer``), and an Idempotency-Key replay gets
the first answer without running the handler again. ``on_node_api_threads`` runs them on a few
threads that keep their database connection between requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from ledgers import interbank_services
from ledgers.errors import http_status
from ledgers.protocol.errors import LedgerError
from settlement.errors import error_body
from settlement.transport import node_to_node, on_node_api_threads


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _peer(request: HttpRequest) -> Any:
    return getattr(request, "peer")  # noqa: B009 - set by node_to_node


def _refused(error: LedgerError) -> JsonResponse:
    return JsonResponse(error_body(error.code, str(error)), status=http_status(error))


def refuses_ledger_errors(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """A rule the caller's request breaks is answered with its code and sentence, not a 500."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except LedgerError as error:
            return _refused(error)

    return wrapped


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_cosign(request: HttpRequest) -> JsonResponse:
    """Bank B's check-hold-sign step of a payment from the calling bank."""
    signature = interbank_services.payment_cosign(peer=_peer(request), proof_json=_body(request).get("proof"))
    return JsonResponse({"signature": signature.hex()})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_final(request: HttpRequest) -> JsonResponse:
    row = interbank_services.payment_apply_final(peer=_peer(request), proof_json=_body(request).get("proof"))
    return JsonResponse({"payment": row.payment_id, "phase": row.phase})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_void(request: HttpRequest) -> JsonResponse:
    body = _body(request)
    row = interbank_services.payment_apply_void(
        peer=_peer(request),
        instruction_json=body.get("instruction"),
        signature_hex=str(body.get("signature", "")),
        origin_key_hex=body.get("origin_key"),
    )
    return JsonResponse(
        {"payment": row.payment_id if row else None, "phase": row.phase if row else "unknown"}
    )


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def offer_receive(request: HttpRequest) -> JsonResponse:
    """A peer spreads an offer made by one of its parties, for our offer board."""
    from ledgers import exchange_services

    row = exchange_services.offer_receive(
        peer=_peer(request), signed_offer_json=_body(request).get("signed_offer")
    )
    return JsonResponse({"offer": row.offer_id})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def offer_take(request: HttpRequest) -> JsonResponse:
    """A peer's party takes one of our offers: accepted exactly once, maker's side appended."""
    from ledgers import exchange_services

    accepted = exchange_services.offer_accept_remote_take(
        peer=_peer(request), signed_take_json=_body(request).get("signed_take")
    )
    return JsonResponse({"accepted": accepted.to_json()})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_cosign_batch(request: HttpRequest) -> JsonResponse:
    """Many co-signatures in one request and one transaction; one answer per payment."""
    results = interbank_services.payment_cosign_batch(
        peer=_peer(request), proofs=_body(request).get("proofs")
    )
    return JsonResponse({"results": results})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_final_batch(request: HttpRequest) -> JsonResponse:
    results = interbank_services.payment_apply_final_batch(
        peer=_peer(request), proofs=_body(request).get("proofs")
    )
    return JsonResponse({"results": results})


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_status(request: HttpRequest) -> JsonResponse:
    """A co-signer asks the origin (us) what became of a payment it still holds."""
    answer = interbank_services.payment_status_for_peer(
        peer=_peer(request), instruction_json=_body(request).get("instruction")
    )
    return JsonResponse(answer)


# Not on_node_api_threads: it waits on another node's answer, and a few such waits would hold
# every kept-connection thread and stall the endpoints that never wait (docs/crypto.md).
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_relay(request: HttpRequest) -> JsonResponse:
    """We are the correspondent (Pic. 5/6): check and hold our leg, have the next bank co-sign,
    sign, and answer with every co-signature."""
    from ledgers import correspondent_services

    answer = correspondent_services.relay_cosign(peer=_peer(request), proof_json=_body(request).get("proof"))
    return JsonResponse(answer)


@on_node_api_threads
@node_to_node
@require_POST
@refuses_ledger_errors
def payment_route(request: HttpRequest) -> JsonResponse:
    """A peer looking for a correspondent asks whether we reach a bank, and with how much credit."""
    from ledgers import correspondent_services

    body = _body(request)
    answer = correspondent_services.route_answer(
        peer=_peer(request), bank=body.get("bank"), code=body.get("code")
    )
    return JsonResponse(answer)
