"""REST API of peers: list and inspect them, add one from its published identity, set the
credit limits this node grants it."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from settlement.audit import audit_record
from settlement.identity import PeerDocumentError, fetch_identity_document, peer_add
from settlement.models import Peer, PeerCreditLimit
from settlement.protocol.identifiers import AmountError, check_amount

# PeerCreditLimit.limit is NUMERIC(30, 0).
MAX_LIMIT_DIGITS = 30


class PeerKeyOutput(serializers.Serializer):
    key_id = serializers.CharField()
    public = serializers.CharField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)


class CreditLimitOutput(serializers.Serializer):
    asset = serializers.CharField()
    limit = serializers.CharField(help_text="minor units, as a decimal string")


class PeerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    domain = serializers.CharField()
    base_url = serializers.URLField()
    x25519_public = serializers.CharField()
    ethereum_address = serializers.CharField()
    status = serializers.CharField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    round_trip_ms = serializers.FloatField(allow_null=True)
    last_error = serializers.CharField()
    keys = PeerKeyOutput(many=True, source="keys.all")
    credit_limits = CreditLimitOutput(many=True, source="credit_limits.all")


def _peers() -> QuerySet[Peer]:
    return Peer.objects.prefetch_related("keys", "credit_limits")


class PeerListApi(APIView):
    class Input(serializers.Serializer):
        base_url = serializers.URLField(help_text="the peer's base URL; its /.well-known/parsec.json is read")

    @extend_schema(
        responses=PeerOutput(many=True), summary="Peers, with their keys, status and credit limits"
    )
    def get(self, request: Request) -> Response:
        return Response(PeerOutput(_peers(), many=True).data)

    @extend_schema(
        request=Input, responses={201: PeerOutput}, summary="Add a peer from its published identity"
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        base_url = data.validated_data["base_url"]
        try:
            peer = peer_add(base_url=base_url, document=fetch_identity_document(base_url), actor=request.user)
        except PeerDocumentError as error:
            raise serializers.ValidationError({"base_url": [str(error)]}) from error
        return Response(PeerOutput(_peers().get(pk=peer.pk)).data, status=status.HTTP_201_CREATED)


class PeerDetailApi(APIView):
    @extend_schema(responses=PeerOutput, summary="One peer")
    def get(self, request: Request, peer_id: int) -> Response:
        return Response(PeerOutput(get_object_or_404(_peers(), pk=peer_id)).data)


class PeerCreditLimitApi(APIView):
    class Input(serializers.Serializer):
        asset = serializers.RegexField(r"^[a-z0-9.-]+/[A-Z0-9]{1,12}$", help_text="e.g. bank-a.test/EUR")
        limit = serializers.CharField(help_text="minor units, a whole number as a decimal string")

        def validate_limit(self, value: str) -> int:
            if not value.isdigit():
                raise serializers.ValidationError('A limit is a whole number of minor units, e.g. "150000".')
            if len(value) > MAX_LIMIT_DIGITS:
                raise serializers.ValidationError(f"A limit has at most {MAX_LIMIT_DIGITS} digits.")
            try:
                return check_amount(int(value))
            except AmountError as error:
                raise serializers.ValidationError(str(error)) from error

    @extend_schema(
        request=Input, responses=CreditLimitOutput, summary="Set how much of an asset the peer may owe us"
    )
    def put(self, request: Request, peer_id: int) -> Response:
        peer = get_object_or_404(Peer, pk=peer_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        asset, limit = data.validated_data["asset"], data.validated_data["limit"]
        with transaction.atomic():
            existing = PeerCreditLimit.objects.select_for_update().filter(peer=peer, asset=asset).first()
            before = {"asset": asset, "limit": str(existing.limit)} if existing else None
            record, _ = PeerCreditLimit.objects.update_or_create(
                peer=peer, asset=asset, defaults={"limit": limit}
            )
            audit_record(
                actor=request.user,
                action="peer.credit_limit",
                target=peer,
                before=before,
                after={"asset": asset, "limit": str(limit)},
            )
        return Response(CreditLimitOutput({"asset": record.asset, "limit": str(limit)}).data)
