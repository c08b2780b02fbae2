"""Dashboard pages of consensus. Thin: every read goes through consensus.selectors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from consensus import firehose, selectors
from consensus.services import ConsensusShellError
from settlement.permissions import read_roles_required, roles_required

BLOCKS_ON_PAGE = 50
OBSERVATIONS_ON_PAGE = 200
FIREHOSE_BLOCKS_BACK = 10


def consensus_context() -> dict[str, Any]:
    return {"consensus": selectors.consensus_status()}


def blocks_context() -> dict[str, Any]:
    blocks = list(selectors.block_list()[:BLOCKS_ON_PAGE])
    anchors = selectors.covering_anchors([block.height for block in blocks])
    return {"rows": [{"block": block, "anchor": anchors.get(block.height)} for block in blocks]}


@never_cache
@require_safe
@read_roles_required
def consensus_page(request: HttpRequest) -> HttpResponse:
    return render(request, "consensus/consensus.html", {**consensus_context(), "section": "consensus"})


@never_cache
@require_safe
@read_roles_required
def block_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "consensus/blocks.html", {**blocks_context(), "section": "blocks"})


@never_cache
@require_safe
@read_roles_required
def block_page(request: HttpRequest, height: int) -> HttpResponse:
    try:
        block = selectors.block_get(height=height)
    except ConsensusShellError as error:
        return render(request, "404.html", {"path": request.path, "message": error.message}, status=404)
    context: dict[str, Any] = {
        "section": "blocks",
        "agreed": block,
        "observations": selectors.block_observations(block, limit=OBSERVATIONS_ON_PAGE),
        "anchor": selectors.block_anchor(block),
    }
    proof_index = request.GET.get("proof", "")
    if proof_index:
        try:
            _, leaf, proof = selectors.inclusion_proof(height=height, index=int(proof_index))
        except (ValueError, ConsensusShellError) as error:
            context["proof_error"] = getattr(error, "message", "the leaf index is a whole number")
        else:
            context["proof"] = {
                "index": proof.leaf_index,
                "leaf": leaf.hex(),
                "path": [p.hex() for p in proof.audit_path],
            }
    return render(request, "consensus/block.html", context)


@never_cache
@require_safe
@roles_required(firehose.FIREHOSE_ROLES)
def firehose_page(request: HttpRequest) -> HttpResponse:
    # Start a few blocks back, so the page shows something before the next block arrives.
    newest = firehose.next_height()
    return render(
        request,
        "consensus/firehose.html",
        {"section": "firehose", "next_height": newest, "start": max(0, newest - FIREHOSE_BLOCKS_BACK)},
    )
