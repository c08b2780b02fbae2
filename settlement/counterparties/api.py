"""REST API of counterparties, KYC, federation and the node's public keys.

Thin views in the HackSoft style: an Input serializer checks the shape, one service or
selector does the work, an Output serializer answers. The rules (and their field errors) live
in the services, so the dashboard, the admin console and the API refuse the same things.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from settlement.counterparties import federation, selectors, services, storage
from settlement.counterparties.errors import CounterpartyError, CounterpartyInvalid, CounterpartyNotFound
from settlement.counterparties.kyc_rules import KycDecision
from settlement.counterparties.models import Counterparty, CounterpartyKind, Custody, KycStatus
from settlement.errors import error_body
from settlement.models import Role


class ErrorOutput(serializers.Serializer):
    class Body(serializers.Serializer):
        # The body also carries "fields" (field name -> sentences) for bad input; a serializer
        # cannot declare a field of that name, so the schema describes it in words.
        code = serializers.CharField()
        message = serializers.CharField(
            help_text="a sentence; with bad input, `fields` maps each field to its errors"
        )

    error = Body()


ERRORS = {
    400: OpenApiResponse(ErrorOutput, description="Bad input: field errors, nothing saved"),
    403: OpenApiResponse(ErrorOutput, description="Your role does not allow this"),
    404: OpenApiResponse(ErrorOutput, description="No such counterparty"),
}


class CounterpartyApiView(APIView):
    """Turns the app's typed errors into the node's error shape, with their field errors."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, CounterpartyError):
            return Response(error_body(exc.code, exc.message, exc.fields or None), status=exc.http_status)
        return super().handle_exception(exc)

    def counterparty(self, counterparty_id: int) -> Counterparty:
        return selectors.counterparty_get(counterparty_id=counterparty_id)

    @staticmethod
    def refuse_unknown_fields(data: Any, serializer: serializers.Serializer) -> None:
        """A field the endpoint does not take (say ``kyc_status``) is an error, not ignored:
        a client that believes it changed something must hear that it did not."""
        unknown = sorted(set(data) - set(serializer.fields))
        if unknown:
            raise CounterpartyInvalid(
                "The request has fields this endpoint does not take.",
                fields={name: ["not accepted here"] for name in unknown},
            )


class CounterpartyOutput(serializers.Serializer):
    class Keys(serializers.Serializer):
        ed25519 = serializers.CharField()
        x25519 = serializers.CharField()
        ethereum = serializers.CharField()

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CounterpartyKind.choices)
    legal_name = serializers.CharField()
    country = serializers.CharField()
    lei = serializers.CharField()
    contact_email = serializers.CharField()
    contact_phone = serializers.CharField()
    federation_address = serializers.CharField()
    keys = Keys(source="public_keys")
    custody = serializers.ChoiceField(choices=Custody.choices)
    kyc_status = serializers.ChoiceField(choices=KycStatus.choices)
    can_hold_funds = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CounterpartyListCreateApi(CounterpartyApiView):
    class Input(serializers.Serializer):
        kind = serializers.ChoiceField(choices=CounterpartyKind.choices)
        legal_name = serializers.CharField(max_length=200)
        country = serializers.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
        lei = serializers.CharField(
            max_length=20, required=False, allow_blank=True, help_text="required for companies"
        )
        contact_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
        contact_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
        federation_name = serializers.CharField(max_length=64, help_text="the name in name*<node domain>")
        custody = serializers.ChoiceField(choices=Custody.choices)
        ed25519_public_key = serializers.CharField(
            required=False, allow_blank=True, help_text="64 hex digits; self custody only"
        )
        x25519_public_key = serializers.CharField(
            required=False, allow_blank=True, help_text="64 hex digits; self custody only"
        )
        ethereum_address = serializers.CharField(
            required=False, allow_blank=True, help_text="0x + 40 hex; self custody only"
        )

    @extend_schema(
        summary="List counterparties",
        parameters=[
            OpenApiParameter(
                "search", str, description="legal name, federation name or address, LEI, or a KYC status"
            ),
            OpenApiParameter("kyc_status", str, enum=KycStatus.values),
        ],
        responses=CounterpartyOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        counterparties = selectors.counterparty_list(
            search=request.query_params.get("search", ""),
            kyc_status=request.query_params.get("kyc_status", ""),
        )
        return Response(CounterpartyOutput(counterparties, many=True).data)

    @extend_schema(
        summary="Create a counterparty (KYC starts in NEEDS_INFO)",
        request=Input,
        responses={201: CounterpartyOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        self.refuse_unknown_fields(request.data, serializer)
        serializer.is_valid(raise_exception=True)
        counterparty = services.counterparty_create(actor=request.user, **serializer.validated_data)
        return Response(CounterpartyOutput(counterparty).data, status=status.HTTP_201_CREATED)


class CounterpartyDetailApi(CounterpartyApiView):
    class Input(serializers.Serializer):
        kind = serializers.ChoiceField(choices=CounterpartyKind.choices, required=False)
        legal_name = serializers.CharField(max_length=200, required=False)
        country = serializers.CharField(max_length=2, required=False)
        lei = serializers.CharField(max_length=20, required=False, allow_blank=True)
        contact_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
        contact_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
        federation_name = serializers.CharField(max_length=64, required=False)
        ed25519_public_key = serializers.CharField(required=False)
        x25519_public_key = serializers.CharField(required=False)
        ethereum_address = serializers.CharField(required=False)

    @extend_schema(summary="A counterparty", responses={200: CounterpartyOutput, 404: ERRORS[404]})
    def get(self, request: Request, counterparty_id: int) -> Response:
        return Response(CounterpartyOutput(self.counterparty(counterparty_id)).data)

    @extend_schema(
        summary="Change a counterparty's details or (self custody) keys",
        request=Input,
        responses={200: CounterpartyOutput, **ERRORS},
    )
    def patch(self, request: Request, counterparty_id: int) -> Response:
        counterparty = self.counterparty(counterparty_id)
        serializer = self.Input(data=request.data, partial=True)
        self.refuse_unknown_fields(request.data, serializer)
        serializer.is_valid(raise_exception=True)
        counterparty = services.counterparty_update(
            counterparty=counterparty, actor=request.user, data=serializer.validated_data
        )
        return Response(CounterpartyOutput(counterparty).data)


class KycDocumentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sha256 = serializers.CharField()
    original_filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    uploaded_by = serializers.CharField()
    uploaded_at = serializers.DateTimeField()


class KycDocumentsApi(CounterpartyApiView):
    parser_classes = [MultiPartParser, FormParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(help_text="PDF, PNG or JPEG, at most 10 MiB")

    @extend_schema(
        summary="A counterparty's KYC documents",
        responses={200: KycDocumentOutput(many=True), 404: ERRORS[404]},
    )
    def get(self, request: Request, counterparty_id: int) -> Response:
        documents = selectors.kyc_document_list(counterparty=self.counterparty(counterparty_id))
        return Response(KycDocumentOutput(documents, many=True).data)

    @extend_schema(
        summary="Upload a KYC document (multipart, field `file`)",
        request={"multipart/form-data": Input},
        responses={201: KycDocumentOutput, **ERRORS},
    )
    def post(self, request: Request, counterparty_id: int) -> Response:
        counterparty = self.counterparty(counterparty_id)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        document = services.kyc_document_upload(
            counterparty=counterparty,
            actor=request.user,
            file=upload,
            filename=upload.name or "",
            content_type=upload.content_type or "",
        )
        return Response(KycDocumentOutput(document).data, status=status.HTTP_201_CREATED)


class KycDocumentContentApi(CounterpartyApiView):
    @extend_schema(
        summary="The bytes of a KYC document, as uploaded",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: ERRORS[404]},
    )
    def get(self, request: Request, counterparty_id: int, document_id: int) -> FileResponse:
        document = selectors.kyc_document_get(
            counterparty=self.counterparty(counterparty_id), document_id=document_id
        )
        try:
            path = storage.document_open(document.sha256)
        except FileNotFoundError as error:
            raise CounterpartyNotFound(
                f"The bytes of document {document.pk} are missing from storage."
            ) from error
        response = FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=document.original_filename,
            content_type=document.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response


class KycSubmitApi(CounterpartyApiView):
    @extend_schema(
        summary="Submit for KYC review (NEEDS_INFO or REJECTED -> PROCESSING)",
        request=None,
        responses={200: CounterpartyOutput, **ERRORS},
    )
    def post(self, request: Request, counterparty_id: int) -> Response:
        counterparty = services.kyc_submit(
            counterparty=self.counterparty(counterparty_id), actor=request.user
        )
        return Response(CounterpartyOutput(counterparty).data)


class KycDecisionApi(CounterpartyApiView):
    write_roles = {Role.KYC_REVIEWER, Role.ADMIN}

    class Input(serializers.Serializer):
        decision = serializers.ChoiceField(choices=[decision.value for decision in KycDecision])
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="required to reject or ask for information",
        )

    @extend_schema(
        summary="Decide a KYC review: accept, reject or ask for information",
        request=Input,
        responses={200: CounterpartyOutput, **ERRORS},
    )
    def post(self, request: Request, counterparty_id: int) -> Response:
        counterparty = self.counterparty(counterparty_id)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        counterparty = services.kyc_decide(
            counterparty=counterparty, actor=request.user, **serializer.validated_data
        )
        return Response(CounterpartyOutput(counterparty).data)


class KycHistoryApi(CounterpartyApiView):
    class Output(serializers.Serializer):
        from_status = serializers.CharField()
        to_status = serializers.CharField()
        reviewer = serializers.CharField()
        reason = serializers.CharField()
        at = serializers.DateTimeField()

    @extend_schema(
        summary="A counterparty's KYC steps, newest first",
        responses={200: Output(many=True), 404: ERRORS[404]},
    )
    def get(self, request: Request, counterparty_id: int) -> Response:
        reviews = selectors.kyc_history(counterparty=self.counterparty(counterparty_id))
        return Response(self.Output(reviews, many=True).data)


class FederationKeySetsApi(CounterpartyApiView):
    class Output(serializers.Serializer):
        keys = serializers.DictField(child=serializers.CharField())
        first_served_at = serializers.DateTimeField()
        last_served_at = serializers.DateTimeField()
        times_served = serializers.IntegerField()

    @extend_schema(
        summary="The key sets federation served for a counterparty",
        responses={200: Output(many=True), 404: ERRORS[404]},
    )
    def get(self, request: Request, counterparty_id: int) -> Response:
        key_sets = selectors.federation_key_set_list(counterparty=self.counterparty(counterparty_id))
        return Response(self.Output(key_sets, many=True).data)


class NodeKeyOutput(serializers.Serializer):
    key_id = serializers.CharField()
    purpose = serializers.CharField()
    public = serializers.CharField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)
    current = serializers.BooleanField(source="is_current")


class NodeKeysApi(CounterpartyApiView):
    @extend_schema(
        summary="The node's public keys, current and retired, with validity",
        responses=NodeKeyOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(NodeKeyOutput(selectors.node_key_list(), many=True).data)


# --- public, by nature: federation and the node's identity ---------------------------------


class PublicApiView(CounterpartyApiView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return login_not_required(super().as_view(**initkwargs))

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        # SEP-0002: federation answers are read by wallets on other origins.
        response["Access-Control-Allow-Origin"] = "*"
        return response


class FederationApi(PublicApiView):
    @extend_schema(
        summary="Federation (SEP-0002, signed by the node)",
        parameters=[
            OpenApiParameter(
                "q", str, required=True, description="name*domain, or an Ed25519 public key (hex) for type=id"
            ),
            OpenApiParameter("type", str, required=True, enum=list(federation.QUERY_TYPES)),
        ],
        responses={
            200: inline_serializer(
                "FederationAnswer",
                {
                    "stellar_address": serializers.CharField(),
                    "account_id": serializers.CharField(),
                    "parsec": serializers.DictField(),
                    "signature": serializers.DictField(),
                },
            ),
            400: ERRORS[400],
            404: ERRORS[404],
        },
        auth=[],
    )
    def get(self, request: Request) -> Response:
        answer = federation.federation_answer(
            q=request.query_params.get("q", ""), query_type=request.query_params.get("type", "")
        )
        return Response(answer)
