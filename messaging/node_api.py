"""Endpoints other nodes call, under /node-api/messaging/. Each is wrapped by ``node_to_node``:
the request is signed by a peer we know (``request.peer``)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from messaging import services
from messaging.errors import error_fields
from messaging.protocol.errors import MessageError
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


@on_node_api_threads
@node_to_node
@require_POST
def recipients(request: HttpRequest) -> JsonResponse:
    """Who of these addresses may receive here, and the X25519 key to encrypt to."""
    addresses = _body(request).get("addresses")
    if not isinstance(addresses, list) or len(addresses) > 1_000:
        return JsonResponse(
            error_body("invalid", "addresses is a list of at most 1,000 addresses"), status=400
        )
    return JsonResponse({"recipients": services.recipients_describe(addresses)})


@on_node_api_threads
@node_to_node
@require_POST
def deliver(request: HttpRequest) -> JsonResponse:
    """Messages for counterparties of this node; one result per message."""
    items = _body(request).get("messages")
    if not isinstance(items, list) or len(items) > services.DELIVERY_BATCH:
        return JsonResponse(
            error_body("invalid", f"messages is a list of at most {services.DELIVERY_BATCH} messages"),
            status=400,
        )
    return JsonResponse({"results": services.messages_receive(peer=_peer(request), items=items)})


@on_node_api_threads
@node_to_node
@require_POST
def rejections(request: HttpRequest) -> JsonResponse:
    """A recipient at the calling node rejected a message sent from here."""
    try:
        row = services.rejection_receive(peer=_peer(request), body=_body(request))
    except MessageError as error:
        return JsonResponse(
            error_body(error.code, error.message, error_fields(error)), status=error.http_status
        )
    return JsonResponse(
        {"id": row.message.message_id, "recipient": row.recipient_address, "status": row.status}
    )
