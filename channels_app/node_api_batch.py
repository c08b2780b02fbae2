"""The node-to-node batch endpoint: many channel updates in one signed request.

Answered with 200 and one result per proposal, in order: a countersignature, or a refusal with
its code and sentence (see ``channels_app.batch``). The answer leaves only after the accepted
states are committed. A request that is not a batch at all is refused whole with 400.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from channels_app import batch
from channels_app.node_api import _body, _refusal
from channels_app.protocol.errors import BadState, ChannelError
from settlement.transport import node_to_node, on_node_api_threads


# On the node API's threads, which keep their PostgreSQL connection: under daphne each request
# would otherwise open one (SCRAM included), which cost more than the batch's signatures.
@on_node_api_threads
@node_to_node
@require_POST
def channel_proposals_batch(request: HttpRequest) -> JsonResponse:
    peer = request.peer  # type: ignore[attr-defined]
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
