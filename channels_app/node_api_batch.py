"""The node-to-node batch endpoint: many channel updates in one signed request.

Answered with 200 and one result per proposal, in order: a countersignature, or a refusal with
its code and sentence (see ``channels_app.batch``). The answer leaves only after the accepted
states are committed. A request that is not a batch at all is refused whole with 400.

Two encodings of the same batch: bytes (``Content-Type: application/vnd.parsec.channel-batch``,
``channels_app.batch_wire``), what this node sends, answered in bytes; and JSON
(``{"proposals": [{channel_id, state, signature}]}``), still accepted from nodes that send it,
answered in JSON.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from channels_app import batch, batch_wire
from channels_app.node_api import _body, _refusal
from channels_app.protocol.errors import BadState, ChannelError
from settlement.transport import node_to_node, on_node_api_threads


# On the node API's threads, which keep their PostgreSQL connection: under daphne each request
# would otherwise open one (SCRAM included), which cost more than the batch's signatures.
@on_node_api_threads
@node_to_node
@require_POST
def channel_proposals_batch(request: HttpRequest) -> HttpResponse:
    peer = request.peer  # type: ignore[attr-defined]
    if request.content_type == batch_wire.BATCH_CONTENT_TYPE:
        return _binary_batch(request, peer)
    try:
        items = _body(request).get("proposals")
        if not isinstance(items, list) or not items:
            raise BadState("proposals is a non-empty list of {channel_id, state, signature}")
        if len(items) > batch.MAX_BATCH:
            raise BadState(f"a batch holds at most {batch.MAX_BATCH} updates; split it")
        outcomes = batch.proposals_receive(
            peer=peer, batch=[batch.proposal_from_document(item) for item in items], actor=f"peer:{peer.name}"
        )
    except ChannelError as error:
        return _refusal(error)
    accepted = sum(outcome.ok for outcome in outcomes)
    return JsonResponse(
        {
            "accepted": accepted,
            "refused": len(outcomes) - accepted,
            "results": [outcome.as_document() for outcome in outcomes],
        }
    )


def _binary_batch(request: HttpRequest, peer: object) -> HttpResponse:
    try:
        try:
            items = batch_wire.request_items(request.body)
        except ValueError as error:
            raise BadState(f"the body is not a channel batch: {error}") from None
        if not items:
            raise BadState("a batch carries at least one proposal")
        if len(items) > batch.MAX_BATCH:
            raise BadState(f"a batch holds at most {batch.MAX_BATCH} updates; split it")
        outcomes = batch.proposals_receive(
            peer=peer,
            batch=[batch.proposal_from_bytes(item) for item in items],
            actor=f"peer:{peer.name}",  # type: ignore[attr-defined]
        )
    except ChannelError as error:
        return _refusal(error)
    return HttpResponse(batch.outcomes_as_bytes(outcomes), content_type=batch_wire.BATCH_CONTENT_TYPE)
