"""REST API of consensus: blocks, RFC 9162 proofs, anchors and the validator's status.

Read-only (any role). Proofs use RFC 9162's JSON field names (``leaf_index``, ``tree_size``,
``inclusion_path``; ``first_size``, ``second_size``, ``consistency_path``), hex-encoded; what
each tree is, is written in ``consensus.selectors``' docstring and docs/consensus.md.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consensus import firehose, selectors
from consensus.firehose import FIREHOSE_ROLES
from consensus.models import Anchor, Block
from consensus.protocol.firehose import HEIGHT_NOT_REACHED, FirehoseRequestError
from consensus.services import MAX_PAYLOAD_BYTES, ConsensusShellError, consensus_vote_many
from settlement.errors import error_body
from settlement.protocol.merkle import leaf_hash


class ErrorOutput(serializers.Serializer):
    class Body(serializers.Serializer):
        code = serializers.CharField(help_text="unknown_block, unknown_leaf, bad_tree_size, invalid")
        message = serializers.CharField()

    error = Body()


class ConsensusApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ConsensusShellError):
            return Response(error_body(exc.code, exc.message), status=exc.http_status)
        return super().handle_exception(exc)


def _hex(value: Any) -> str | None:
    return None if value is None else bytes(value).hex()


class AnchorOutput(serializers.Serializer):
    height = serializers.IntegerField(help_text="the anchor covers blocks 0..height")
    log_root = serializers.SerializerMethodField(
        help_text="RFC 9162 root of the block log at size height + 1 (leaves: block hashes), as anchored"
    )
    account = serializers.CharField(help_text="the Ethereum account that sent the anchor")
    status = serializers.CharField(help_text="pending, submitted, mined, final, reverted")
    tx_hash = serializers.CharField()
    previous_tx_hashes = serializers.ListField(child=serializers.CharField(), help_text="dropped by reorgs")
    block_number = serializers.IntegerField(allow_null=True, help_text="Ethereum block number")
    block_hash = serializers.CharField()
    log_index = serializers.IntegerField(allow_null=True)
    gas_used = serializers.IntegerField(allow_null=True)
    confirmations = serializers.IntegerField()
    confirmations_needed = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

    def get_log_root(self, anchor: Anchor) -> str:
        return bytes(anchor.log_root).hex()


class BlockSummaryOutput(serializers.Serializer):
    height = serializers.IntegerField()
    block_hash = serializers.SerializerMethodField()
    previous_hash = serializers.SerializerMethodField()
    epoch = serializers.IntegerField()
    round = serializers.IntegerField()
    merkle_root = serializers.SerializerMethodField(help_text="RFC 9162 root over the observations")
    tree_size = serializers.IntegerField(help_text="number of observations")
    log_root = serializers.SerializerMethodField(help_text="root of the block log at size height + 1")
    signature_count = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_block_hash(self, block: Block) -> str:
        return bytes(block.block_hash).hex()

    def get_previous_hash(self, block: Block) -> str:
        return bytes(block.previous_hash).hex()

    def get_merkle_root(self, block: Block) -> str:
        return bytes(block.merkle_root).hex()

    def get_log_root(self, block: Block) -> str:
        return bytes(block.log_root).hex()

    def get_signature_count(self, block: Block) -> int:
        return len(block.signatures)


class SignatureOutput(serializers.Serializer):
    validator = serializers.CharField(help_text="Ed25519 public key, hex")
    name = serializers.CharField()
    signature = serializers.CharField(help_text="over the block header, kind 'block'")


class ObservationOutput(serializers.Serializer):
    index = serializers.IntegerField()
    kind = serializers.CharField()
    leaf = serializers.SerializerMethodField(help_text="the Merkle leaf (observation bytes), hex")
    payload = serializers.SerializerMethodField(help_text="hex")

    def get_leaf(self, item: dict[str, Any]) -> str:
        return bytes(item["data"]).hex()

    def get_payload(self, item: dict[str, Any]) -> str:
        return bytes(item["payload"]).hex()


class BlockDetailOutput(BlockSummaryOutput):
    header = serializers.SerializerMethodField(help_text="the signed header (canonical JSON, kind 'block')")
    signatures = SignatureOutput(many=True)
    validators = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]
    observations = serializers.SerializerMethodField()
    anchor = serializers.SerializerMethodField()

    def get_header(self, block: Block) -> dict[str, Any]:
        return {
            "height": block.height,
            "previous": bytes(block.previous_hash).hex(),
            "epoch": block.epoch,
            "round": block.round,
            "root": bytes(block.merkle_root).hex(),
            "count": block.tree_size,
        }

    def get_observations(self, block: Block) -> list[dict[str, Any]]:
        return ObservationOutput(selectors.block_observations(block, **self.context["page"]), many=True).data  # type: ignore[return-value]

    def get_anchor(self, block: Block) -> dict[str, Any] | None:
        anchor = selectors.block_anchor(block)
        return None if anchor is None else AnchorOutput(anchor).data


class BlockListApi(ConsensusApiView):
    class Filter(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
        before = serializers.IntegerField(min_value=0, required=False, help_text="heights below this")

    @extend_schema(
        summary="Agreed blocks, newest first", parameters=[Filter], responses=BlockSummaryOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        query = self.Filter(data=request.query_params)
        query.is_valid(raise_exception=True)
        blocks = selectors.block_list()
        if "before" in query.validated_data:
            blocks = blocks.filter(height__lt=query.validated_data["before"])
        return Response(BlockSummaryOutput(blocks[: query.validated_data["limit"]], many=True).data)


class BlockDetailApi(ConsensusApiView):
    class Filter(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=5_000, default=500)
        offset = serializers.IntegerField(min_value=0, default=0)

    @extend_schema(
        summary="One block: header, observations, signatures, anchor",
        parameters=[Filter],
        responses={200: BlockDetailOutput, 404: OpenApiResponse(ErrorOutput, description="unknown_block")},
    )
    def get(self, request: Request, height: int) -> Response:
        query = self.Filter(data=request.query_params)
        query.is_valid(raise_exception=True)
        block = selectors.block_get(height=height)
        return Response(BlockDetailOutput(block, context={"page": query.validated_data}).data)


class InclusionProofOutput(serializers.Serializer):
    height = serializers.IntegerField()
    leaf = serializers.CharField(help_text="the observation bytes, hex; leaf hash = SHA-256(0x00 || leaf)")
    leaf_hash = serializers.CharField(help_text="SHA-256(0x00 || leaf), hex: what the path starts from")
    merkle_root = serializers.CharField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    inclusion_path = serializers.ListField(child=serializers.CharField())


class BlockProofApi(ConsensusApiView):
    @extend_schema(
        summary="RFC 9162 inclusion proof of one observation in its block's tree",
        responses={
            200: InclusionProofOutput,
            404: OpenApiResponse(ErrorOutput, description="unknown_block, unknown_leaf"),
        },
    )
    def get(self, request: Request, height: int, index: int) -> Response:
        block, leaf, proof = selectors.inclusion_proof(height=height, index=index)
        return Response(
            {
                "height": block.height,
                "leaf": leaf.hex(),
                "leaf_hash": leaf_hash(leaf).hex(),
                "merkle_root": bytes(block.merkle_root).hex(),
                **proof.to_json(),
            }
        )


class ConsistencyProofOutput(serializers.Serializer):
    first_size = serializers.IntegerField(help_text="number of blocks")
    second_size = serializers.IntegerField()
    first_root = serializers.CharField(
        help_text="block log root at first_size (= log_root of block first_size-1)"
    )
    second_root = serializers.CharField()
    consistency_path = serializers.ListField(child=serializers.CharField())


class BlockConsistencyApi(ConsensusApiView):
    class Filter(serializers.Serializer):
        first = serializers.IntegerField(min_value=1, help_text="an earlier size of the block log")
        second = serializers.IntegerField(min_value=1, help_text="a later size (at most the block count)")

    @extend_schema(
        summary="RFC 9162 consistency proof between two sizes of the block log",
        parameters=[Filter],
        responses={
            200: ConsistencyProofOutput,
            400: OpenApiResponse(ErrorOutput, description="invalid, bad_tree_size"),
        },
    )
    def get(self, request: Request) -> Response:
        query = self.Filter(data=request.query_params)
        query.is_valid(raise_exception=True)
        first_root, second_root, proof = selectors.consistency_proof(
            first=query.validated_data["first"], second=query.validated_data["second"]
        )
        return Response({**proof.to_json(), "first_root": first_root.hex(), "second_root": second_root.hex()})


class AccusationOutput(serializers.Serializer):
    offender = serializers.CharField()
    offender_name = serializers.CharField()
    kind = serializers.CharField()
    evidence = serializers.JSONField(help_text="checkable by anyone: consensus.protocol.check_accusation")
    recorded_at = serializers.DateTimeField()


class ValidatorOutput(serializers.Serializer):
    name = serializers.CharField()
    validator_id = serializers.CharField()
    is_us = serializers.BooleanField()
    status = serializers.CharField()
    last_heard_at = serializers.CharField(allow_null=True)
    last_error = serializers.CharField()


class StatusOutput(serializers.Serializer):
    status = serializers.CharField()
    validators = ValidatorOutput(many=True)  # type: ignore[assignment]
    epoch = serializers.IntegerField(required=False)
    next_height = serializers.IntegerField(required=False)
    events_in_graph = serializers.IntegerField(required=False)
    rounds_completed = serializers.IntegerField(required=False)
    rounds_per_second = serializers.FloatField(required=False)
    refused = serializers.IntegerField(help_text="gossip messages refused")
    pending = serializers.IntegerField(required=False, help_text="our observations not agreed yet")
    accusations = AccusationOutput(many=True)


class ConsensusStatusApi(ConsensusApiView):
    @extend_schema(
        summary="The validator: validators, gossip rate, graph size, accusations", responses=StatusOutput
    )
    def get(self, request: Request) -> Response:
        return Response(StatusOutput(selectors.consensus_status()).data)


class ObservationSubmitApi(ConsensusApiView):
    """Operators (and other apps, through ``consensus_vote``) submit observations for agreement."""

    class Input(serializers.Serializer):
        kind = serializers.CharField(max_length=40, help_text="e.g. ledger.head, offer, message.digest")
        payloads = serializers.ListField(
            child=serializers.CharField(max_length=2 * MAX_PAYLOAD_BYTES),
            min_length=1,
            max_length=10_000,
            help_text="hex-encoded payloads",
        )

        def validate_payloads(self, value: list[str]) -> list[bytes]:
            try:
                return [bytes.fromhex(item) for item in value]
            except ValueError as error:
                raise serializers.ValidationError("payloads are hex strings") from error

    class Output(serializers.Serializer):
        submitted = serializers.IntegerField()
        new = serializers.IntegerField(
            help_text="not submitted before (the same kind and payload is voted once)"
        )

    @extend_schema(
        summary="Submit observations; the validator votes for them at its next step",
        request=Input,
        responses={
            202: Output,
            400: OpenApiResponse(ErrorOutput, description="invalid, bad_kind, payload_too_large"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        new = consensus_vote_many(payloads=data["payloads"], kind=data["kind"])
        return Response({"submitted": len(data["payloads"]), "new": new}, status=202)


class AnchorListApi(ConsensusApiView):
    class Filter(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)

    @extend_schema(
        summary="Block-log roots anchored on Ethereum (each covers blocks 0..height), newest first",
        parameters=[Filter],
        responses=AnchorOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        query = self.Filter(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            AnchorOutput(selectors.anchor_list()[: query.validated_data["limit"]], many=True).data
        )


class NdjsonRenderer(JSONRenderer):
    """Lets a client ask for ``application/x-ndjson``; refusals are still one JSON object."""

    media_type = "application/x-ndjson"


class FirehoseApi(ConsensusApiView):
    """Every agreed block and its observations as NDJSON, from ``from`` on, then live."""

    read_roles = FIREHOSE_ROLES
    renderer_classes = [JSONRenderer, NdjsonRenderer]

    @extend_schema(
        summary="Firehose: agreed blocks and observations as NDJSON, resumable from a height",
        description=(
            "One JSON message a line: `block` (header, observations, `complete`, `next_height`), "
            "`observations` (more of a large block), `heartbeat` while idle, `end` when the "
            "response's byte budget is spent. Resume from the last `next_height`. See docs/firehose.md."
        ),
        parameters=[
            OpenApiParameter(
                "from", int, description="first block height (default 0); at most the next height"
            )
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(description="the stream"),
            400: OpenApiResponse(ErrorOutput, description="bad_height"),
            404: OpenApiResponse(ErrorOutput, description="height_not_reached"),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse | Response:
        try:
            start = firehose.firehose_start(request.query_params.getlist("from"))
        except FirehoseRequestError as error:
            status = 404 if error.code == HEIGHT_NOT_REACHED else 400
            return Response(error_body(error.code, error.message, {"from": [error.message]}), status=status)
        # The stream can last hours, and Django hands this request's database connection back
        # only when it ends: with the web process's pool (settlement/settings.py) every open
        # stream would hold a pooled connection, and a few dozen would starve the pages. The
        # stream's reads take one each when they need it (database_sync_to_async).
        connection.close()
        response = StreamingHttpResponse(firehose.firehose_ndjson(start), content_type="application/x-ndjson")
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # a proxy in front must not hold lines back
        return response
