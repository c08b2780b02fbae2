"""Node-to-node endpoints of virtual channels across three nodes (see channels_app.virtual).

Each view checks who is asking (``request.peer``, verified by the signed transport), runs one
service, and answers only after the service committed what it acknowledges.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from channels_app import selectors, services, virtual
from channels_app.node_api import _body, _refusal, _signature
from channels_app.protocol.errors import BadState, ChannelError
from settlement.transport import PeerUnreachable, node_to_node, on_node_api_threads


def _peer_unreachable(error: PeerUnreachable) -> JsonResponse:
    from settlement.errors import error_body

    return JsonResponse(error_body("peer_unreachable", str(error)), status=502)


@on_node_api_threads
@node_to_node
@require_POST
def virtual_channel_open(request: HttpRequest) -> JsonResponse:
    """The other end opens a virtual channel with us: we countersign its opening state."""
    try:
        body = _body(request)
        params = services.params_from_document(body.get("params") or {})
        row = virtual.virtual_channel_accept(
            peer=request.peer,  # type: ignore[attr-defined]
            params=params,
            opening=virtual.state_from_document(params.channel_id, body.get("state")),
            signature=_signature(body.get("signature")),
            intermediary=str(body.get("intermediary") or ""),
        )
    except ValueError as error:  # a malformed intermediary address
        return _refusal(BadState(f"the intermediary is not an address: {error}"))
    except ChannelError as error:
        return _refusal(error)
    opening = row.protocol_channel.latest
    return JsonResponse(
        {"channel_id": row.channel_id, "signature": "0x" + opening.signatures[1].hex()}, status=201
    )


# Not on_node_api_threads: it waits on another node's answer, and a few such waits would hold
# every kept-connection thread and stall the endpoints that never wait (docs/crypto.md).
@node_to_node
@require_POST
def virtual_channel_lock(request: HttpRequest, channel_id: str) -> JsonResponse:
    """The other end locked its side (held by Ingrid): we lock ours, which completes both."""
    try:
        body = _body(request)
        row = virtual.virtual_channel_lock_ours(
            peer=request.peer,  # type: ignore[attr-defined]
            channel_id=channel_id,
            intermediary=str(body.get("intermediary") or ""),
        )
    except ValueError as error:
        return _refusal(BadState(f"the intermediary is not an address: {error}"))
    except ChannelError as error:
        return _refusal(error)
    except PeerUnreachable as error:
        return _peer_unreachable(error)
    return JsonResponse({"channel_id": row.channel_id, "phase": row.phase})


# Not on_node_api_threads: it waits on another node's answer, and a few such waits would hold
# every kept-connection thread and stall the endpoints that never wait (docs/crypto.md).
@node_to_node
@require_POST
def virtual_channel_release(request: HttpRequest, channel_id: str) -> JsonResponse:
    """The other end closed the virtual channel with us: release our lock into our ledger channel."""
    try:
        row = virtual.virtual_channel_release_asked(
            peer=request.peer,  # type: ignore[attr-defined]
            channel_id=channel_id,
        )
    except ChannelError as error:
        return _refusal(error)
    except PeerUnreachable as error:
        return _peer_unreachable(error)
    return JsonResponse({"channel_id": row.channel_id, "phase": row.phase})


@on_node_api_threads
@node_to_node
@require_POST
def channel_virtual_proposal(request: HttpRequest, channel_id: str) -> JsonResponse:
    """A lock or release of a virtual channel in our ledger channel with the requesting node,
    with the virtual channel's both-signed state as evidence; 202 while a first lock is held."""
    try:
        channel = selectors.channel_get(channel_id=channel_id)
        body = _body(request)
        evidence = body.get("evidence")
        if not isinstance(evidence, list):
            raise BadState("evidence is a list of the virtual channel's signed states")
        result = virtual.virtual_proposal_receive(
            peer=request.peer,  # type: ignore[attr-defined]
            channel=channel,
            state=virtual.state_from_document(channel.id_bytes, body.get("state")),
            signature=_signature(body.get("signature")),
            evidence=[virtual.evidence_from_document(item) for item in evidence],
        )
    except ChannelError as error:
        return _refusal(error)
    if result.countersignature is None:
        return JsonResponse({"version": result.state.version, "held": True}, status=202)
    return JsonResponse(
        {"version": result.state.version, "countersignature": "0x" + result.countersignature.hex()}
    )


@on_node_api_threads
@node_to_node
@require_POST
def channel_countersignature(request: HttpRequest, channel_id: str) -> JsonResponse:
    """Our signature on a persisted both-signed state (the lock we released for the mirror)."""
    try:
        channel = selectors.channel_get(channel_id=channel_id)
        version = _body(request).get("version")
        if not isinstance(version, int) or version < 0:
            raise BadState("version is a non-negative integer")
        signature = virtual.countersignature_get(
            peer=request.peer,  # type: ignore[attr-defined]
            channel=channel,
            version=version,
        )
    except ChannelError as error:
        return _refusal(error)
    return JsonResponse({"version": version, "countersignature": "0x" + signature.hex()})


@on_node_api_threads
@node_to_node
@require_POST
def channel_status(request: HttpRequest, channel_id: str) -> JsonResponse:
    """Our phase and version of a channel with the requesting node: lets it wait until we have
    seen the deposits it has seen before it proposes an update."""
    try:
        channel = selectors.channel_get(channel_id=channel_id)
        if channel.peer_id != request.peer.pk:  # type: ignore[attr-defined]
            raise BadState("this channel is not with the requesting node")
    except ChannelError as error:
        return _refusal(error)
    return JsonResponse(
        {"channel_id": channel.channel_id, "phase": channel.phase, "version": channel.version}
    )
