"""Node-to-node endpoints of channels: a peer node opens a channel with us and proposes
updates; we check, countersign, persist, and only then answer with our countersignature."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from channels_app import selectors, services
from channels_app.api import ChannelStateInput, state_from_input
from channels_app.protocol.channel_state import ChannelState
from channels_app.protocol.errors import BadSignature, BadState, ChannelError
from settlement.errors import error_body
from settlement.transport import node_to_node, on_node_api_threads


def _refusal(error: ChannelError) -> JsonResponse:
    return JsonResponse(
        error_body(error.code, error.message), status=404 if error.code == "unknown_channel" else 400
    )


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise BadState("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadState("the body is a JSON object")
    return body


def _signature(text: Any) -> bytes:
    value = str(text or "").lower().removeprefix("0x")
    if len(value) != 130:
        raise BadSignature("a channel signature is 65 bytes as 0x + 130 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadSignature("the signature is not hex") from None


def _state(channel_id: bytes, document: Any) -> ChannelState:
    serializer = ChannelStateInput(data=document)
    if not serializer.is_valid():
        raise BadState(f"the state is malformed: {serializer.errors}")

    class _Channel:
        id_bytes = channel_id

    return state_from_input(_Channel(), serializer.validated_data)  # type: ignore[arg-type]


@on_node_api_threads
@node_to_node
@require_POST
def channel_open(request: HttpRequest) -> JsonResponse:
    try:
        body = _body(request)
        params = services.params_from_document(body.get("params") or {})
        opening = _state(params.channel_id, body.get("state"))
        channel = services.peer_channel_accept(
            peer=request.peer,  # type: ignore[attr-defined]
            params=params,
            opening=opening,
            signature=_signature(body.get("signature")),
        )
    except ChannelError as error:
        return _refusal(error)
    answer: dict[str, Any] = channel.opening or {}
    return JsonResponse({"channel_id": channel.channel_id, "signature": answer["signature"]}, status=201)


@on_node_api_threads
@node_to_node
@require_POST
def channel_proposal(request: HttpRequest, channel_id: str) -> JsonResponse:
    try:
        channel = selectors.channel_get(channel_id=channel_id)
        if channel.peer_id != request.peer.pk:  # type: ignore[attr-defined]
            raise BadState("this channel is not with the requesting node")
        body = _body(request)
        result = services.channel_proposal_receive(
            channel=channel,
            state=_state(channel.id_bytes, body.get("state")),
            signature=_signature(body.get("signature")),
            actor=f"peer:{request.peer.name}",  # type: ignore[attr-defined]
        )
    except ChannelError as error:
        return _refusal(error)
    return JsonResponse(
        {"version": result.state.version, "countersignature": "0x" + (result.countersignature or b"").hex()}
    )
