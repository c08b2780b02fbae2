"""REST API of messaging (under /api/): send (one or a batch; composed here for a custodial sender,
or signed and possibly encrypted by the client), look up (by id, party, time range, block),
inbox and outbox per counterparty, the undeliverable list, reject, attachments.

Thin views: an Input serializer checks the shape, one service or selector does the work, an
Output serializer answers. Every refusal is a :class:`MessageError`: ``{"error": {"code",
"message", "fields"}}`` with its status, and nothing was stored.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consensus.services import ConsensusShellError
from messaging import receipts, selectors, services
from messaging.errors import UnknownAttachment, error_fields
from messaging.models import Delivery, Message, MessageAttachment
from messaging.protocol.envelope import AGREEMENT_ROLES, KINDS, MAX_BODY_BYTES
from messaging.protocol.errors import MessageError
from settlement.counterparties import storage
from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.selectors import counterparty_get
from settlement.errors import error_body

MAX_BATCH = 1_000


class MessageErrorOutput(serializers.Serializer):
    class MessageErrorBody(serializers.Serializer):
        code = serializers.CharField(help_text="machine-readable, e.g. unknown_recipient, bad_signature")
        message = serializers.CharField(help_text="a sentence for people")
        fields = serializers.DictField(required=False)  # type: ignore[assignment]

    error = MessageErrorBody()


ERRORS = {
    400: OpenApiResponse(
        MessageErrorOutput, description="Bad input (bad_envelope, bad_kind, bad_link, bad_signature, ...)"
    ),
    404: OpenApiResponse(
        MessageErrorOutput, description="unknown_recipient, unknown_sender, unknown_message"
    ),
    409: OpenApiResponse(
        MessageErrorOutput,
        description="recipient_not_accepted, sender_not_accepted, message_id_reused: nothing stored",
    ),
    413: OpenApiResponse(
        MessageErrorOutput, description="message_too_large: body, file or envelope over its limit"
    ),
}


class MessagingApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, MessageError):
            return Response(error_body(exc.code, exc.message, error_fields(exc)), status=exc.http_status)
        if isinstance(exc, CounterpartyError):
            return Response(error_body(exc.code, exc.message, exc.fields or None), status=exc.http_status)
        if isinstance(exc, ConsensusShellError):  # receipt_not_ready
            return Response(error_body(exc.code, exc.message), status=exc.http_status)
        return super().handle_exception(exc)


# --- output ---------------------------------------------------------------------------------


class DeliveryOutput(serializers.Serializer):
    recipient = serializers.CharField(source="recipient_address")
    state = serializers.CharField(help_text="accepted, delivered, in block, anchored, rejected or timed out")
    status = serializers.CharField(help_text="the router's part: accepted, delivered, rejected, timed_out")
    node = serializers.SerializerMethodField(help_text="the recipient's node; empty when it is this node")
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    rejection_code = serializers.CharField()
    rejection_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_node(self, delivery: Delivery) -> str:
        return delivery.peer.name if delivery.peer is not None else ""


class MessageOutput(serializers.Serializer):
    id = serializers.CharField(source="message_id")
    kind = serializers.CharField()
    sender = serializers.CharField(source="sender_address")
    recipients = serializers.ListField(child=serializers.CharField())
    reply_to = serializers.CharField()
    encrypted = serializers.BooleanField()
    size = serializers.IntegerField(help_text="bytes of the canonical signed envelope")
    digest = serializers.CharField(help_text="SHA-256 of b'parsec/v1/message\\x00' + canonical envelope")
    signature = serializers.CharField(
        help_text="the sender's Ed25519 signature (hex): on the envelope, or on its batch's head"
    )
    batch = serializers.SerializerMethodField(
        help_text="signed as one of a batch: {root, size, index, path} (hex); null if alone"
    )
    envelope = serializers.JSONField()
    accepted_at = serializers.DateTimeField()
    received_from = serializers.SerializerMethodField(
        help_text="the node that delivered it; empty if sent here"
    )
    record = serializers.JSONField(help_text="the sender's ledger entry: {ledger, height, hash}")
    block_height = serializers.IntegerField(allow_null=True, help_text="the block its record is in")
    anchored = serializers.SerializerMethodField()
    deliveries = DeliveryOutput(many=True, help_text="the recipients this node is responsible for")

    def get_batch(self, message: Message) -> dict[str, Any] | None:
        return services.message_batch_json(message)

    def get_received_from(self, message: Message) -> str:
        return message.received_from.name if message.received_from is not None else ""

    def get_anchored(self, message: Message) -> bool:
        return message.anchored_at is not None


class SendOutput(MessageOutput):
    replayed = serializers.BooleanField(help_text="true: this id was sent before; this is the first result")


def _send_output(result: services.SendResult) -> dict[str, Any]:
    message = selectors.message_get(message_id=result.message.message_id)
    data = dict(MessageOutput(message).data)
    data["replayed"] = result.replayed
    return data


# --- send -----------------------------------------------------------------------------------


class SendInput(serializers.Serializer):
    """Either ``envelope`` + ``signature`` (the client signed, and maybe encrypted), ``envelope``
    + ``batch`` (the client signed a batch of its messages once), or the parts for a custodial
    sender (``sender``, ``kind``, ``recipients``, ``text``, ...)."""

    envelope = serializers.JSONField(required=False, help_text="a signed envelope (docs/messaging.md)")
    signature = serializers.CharField(required=False, help_text="the sender's Ed25519 signature, hex")
    batch = serializers.JSONField(
        required=False,
        help_text="signed as one of a batch: {root, size, index, path, signature} (hex; docs/messaging.md)",
    )
    sender = serializers.CharField(
        required=False, max_length=320, help_text="a custodial counterparty's address"
    )
    kind = serializers.ChoiceField(choices=KINDS, required=False)
    recipients = serializers.ListField(child=serializers.CharField(max_length=320), required=False)
    text = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_BODY_BYTES * 2
    )
    encrypt = serializers.BooleanField(default=True, help_text="box the text to each recipient's X25519 key")
    reply_to = serializers.CharField(required=False, allow_blank=True, max_length=32)
    agreement = serializers.ChoiceField(choices=AGREEMENT_ROLES, required=False)
    attachments = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, help_text="SHA-256 of uploaded files"
    )
    id = serializers.CharField(
        required=False, max_length=32, help_text="32 hex; a resend with it is a replay"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        signed = bool({"envelope", "signature", "batch"} & set(data))
        composed = {"sender", "kind", "recipients", "text"} & set(data)
        if signed and composed:
            raise serializers.ValidationError(
                "send either envelope and signature (or batch), or sender, kind, recipients, text"
            )
        if "signature" in data and "batch" in data:
            raise serializers.ValidationError(
                "a message is signed alone (signature) or as one of a batch (batch), not both"
            )
        if signed:
            missing = [
                name for name in ("envelope", "batch" if "batch" in data else "signature") if name not in data
            ]
        else:
            missing = [name for name in ("sender", "kind", "recipients", "text") if name not in data]
        if missing:
            raise serializers.ValidationError({name: ["This field is required."] for name in missing})
        return data


def _send_request(data: dict[str, Any]) -> services.SendRequest:
    if "envelope" in data and "batch" in data:
        return services.SignedRequest(message={"envelope": data["envelope"], "batch": data["batch"]})
    if "envelope" in data:
        return services.SignedRequest(message={"envelope": data["envelope"], "signature": data["signature"]})
    return services.ComposeRequest(
        sender=data["sender"],
        kind=data["kind"],
        recipients=data["recipients"],
        text=data["text"],
        encrypt=data["encrypt"],
        reply_to=data.get("reply_to") or None,
        agreement=data.get("agreement"),
        attachments=data.get("attachments", []),
        message_id=data.get("id"),
    )


class MessageListSendApi(MessagingApiView):
    @extend_schema(
        summary="Look messages up by party, time range, block height or kind",
        parameters=[
            OpenApiParameter("party", str, description="a federation address: sent by it or to it"),
            OpenApiParameter("since", str, description="ISO 8601: accepted at or after"),
            OpenApiParameter("until", str, description="ISO 8601: accepted before"),
            OpenApiParameter("block", int, description="the block height its record is in"),
            OpenApiParameter("kind", str),
            OpenApiParameter("limit", int, description="at most 500 (default 100)"),
        ],
        responses={200: MessageOutput(many=True), 400: ERRORS[400]},
    )
    def get(self, request: Request) -> Response:
        params = LookupInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(MessageOutput(selectors.message_search(**params.validated_data), many=True).data)

    @extend_schema(
        summary="Send a message", request=SendInput, responses={201: SendOutput, 200: SendOutput, **ERRORS}
    )
    def post(self, request: Request) -> Response:
        serializer = SendInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.message_send(request=_send_request(serializer.validated_data), actor=request.user)
        return Response(
            _send_output(result), status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
        )


class LookupInput(serializers.Serializer):
    party = serializers.CharField(required=False, max_length=320)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    block = serializers.IntegerField(required=False, min_value=0)
    kind = serializers.ChoiceField(choices=KINDS, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_PAGE)


class MessageBatchInput(serializers.Serializer):
    messages = SendInput(many=True, help_text=f"1 to {MAX_BATCH}; all are accepted, or none")

    def validate_messages(self, value: list[Any]) -> list[Any]:
        if not 0 < len(value) <= MAX_BATCH:
            raise serializers.ValidationError(f"send 1 to {MAX_BATCH} messages")
        return value


class MessageBatchOutput(serializers.Serializer):
    id = serializers.CharField()
    digest = serializers.CharField()
    replayed = serializers.BooleanField()
    record = serializers.JSONField()


class MessageBatchApi(MessagingApiView):
    @extend_schema(
        summary="Many messages in one transaction and one ledger write; all or none",
        request=MessageBatchInput,
        responses={201: MessageBatchOutput(many=True), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = MessageBatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = services.message_send_batch(
            requests=[_send_request(item) for item in serializer.validated_data["messages"]],
            actor=request.user,
        )
        return Response(
            [
                {
                    "id": result.message.message_id,
                    "digest": result.message.digest,
                    "replayed": result.replayed,
                    "record": result.message.record,
                }
                for result in results
            ],
            status=status.HTTP_201_CREATED,
        )


class CompactBatchInput(serializers.Serializer):
    batch = serializers.JSONField(
        help_text="the head its sender signed once: {sender, sender_key, root, size, signature} (hex)"
    )
    envelopes = serializers.JSONField(
        help_text=(
            f"1 to {MAX_BATCH} envelopes, the whole batch in the order signed, each without v, sender and "
            "sender_key (the head's) and without empty reply_to, agreement, attachments (docs/messaging.md)"
        )
    )

    def validate_envelopes(self, value: Any) -> Any:
        # Only the count here: each envelope is checked by the protocol (one pass, its own errors).
        if not isinstance(value, list) or not 0 < len(value) <= MAX_BATCH:
            raise serializers.ValidationError(f"send a list of 1 to {MAX_BATCH} envelopes")
        return value


class CompactBatchApi(MessagingApiView):
    @extend_schema(
        summary="A batch its sender signed once, sent whole in the compact form; all or none",
        description=(
            "One signed head and the envelopes without what they share: the node rebuilds the batch's "
            "Merkle tree from the envelopes' digests, checks it has the signed root and verifies the "
            "signature once. The messages are stored, recorded (one `message-batch` entry), voted and "
            "routed as those of `POST /api/messages/batch/`; each keeps its id, deliveries and receipt."
        ),
        request=CompactBatchInput,
        responses={201: MessageBatchOutput(many=True), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = CompactBatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = services.message_send_compact(batch=serializer.validated_data, actor=request.user)
        return Response(
            [
                {
                    "id": result.message.message_id,
                    "digest": result.message.digest,
                    "replayed": result.replayed,
                    "record": result.message.record,
                }
                for result in results
            ],
            status=status.HTTP_201_CREATED,
        )


class MessageDetailApi(MessagingApiView):
    @extend_schema(
        summary="One message with its deliveries and record", responses={200: MessageOutput, 404: ERRORS[404]}
    )
    def get(self, request: Request, message_id: str) -> Response:
        return Response(MessageOutput(selectors.message_get(message_id=message_id)).data)


class MessageReceiptOutput(serializers.Serializer):
    """docs/receipt.md describes every field and check; `python -m settlement.verify` checks it."""

    type = serializers.CharField(help_text='"parsec-receipt"')
    version = serializers.IntegerField()
    entry = serializers.JSONField(
        help_text="the sender's message entry exactly as signed, and its signatures"
    )
    message = serializers.JSONField(
        help_text="the signed envelope as the sender signed it: {envelope, signature, digest} (hex)"
    )
    block = serializers.JSONField(help_text="the block header, the leaf's audit path, validator signatures")
    log = serializers.JSONField(allow_null=True, help_text="block-log paths; null until anchored")
    anchor = serializers.JSONField(allow_null=True, help_text="the Ethereum anchor; null until anchored")
    issuer = serializers.JSONField(help_text="the issuing node, its key, the time and its signature")


class MessageReceiptApi(MessagingApiView):
    @extend_schema(
        summary="The offline-verifiable receipt of a message (docs/receipt.md)",
        description=(
            "The receipt of the sender's message entry (its signatures, its commitment in an agreed "
            "block, the block log and the Ethereum anchor) with the signed envelope in a `message` "
            "section, signed by this node (the sender's bank). An encrypted body stays the boxes of the "
            "envelope. Check it with `python -m settlement.verify receipt.json [--rpc URL]`."
        ),
        responses={
            200: MessageReceiptOutput,
            404: OpenApiResponse(
                MessageErrorOutput,
                description="unknown_message; receipt_at_sender_bank: delivered here from another node, "
                "whose bank issues its receipt",
            ),
            409: OpenApiResponse(
                MessageErrorOutput,
                description="receipt_not_ready: its record entry is not in an agreed block yet",
            ),
        },
    )
    def get(self, request: Request, message_id: str) -> Response:
        return Response(receipts.message_receipt(message_id=message_id))


class MessageRejectInput(serializers.Serializer):
    recipient = serializers.CharField(max_length=320, help_text="the recipient of this node who rejects it")
    reason = serializers.CharField(
        max_length=500, help_text='a sentence; "ciphertext_does_not_open" when its box did not open'
    )


class MessageRejectApi(MessagingApiView):
    @extend_schema(
        summary="A recipient here rejects a message delivered to it; its sender's node is told",
        request=MessageRejectInput,
        responses={200: DeliveryOutput, **ERRORS},
    )
    def post(self, request: Request, message_id: str) -> Response:
        serializer = MessageRejectInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.delivery_reject(message_id=message_id, actor=request.user, **serializer.validated_data)
        return Response(DeliveryOutput(row).data)


class InboxEntryOutput(serializers.Serializer):
    delivery = DeliveryOutput(source="*")
    message = MessageOutput()


class CounterpartyInboxApi(MessagingApiView):
    @extend_schema(
        summary="Messages delivered to a counterparty of this node", responses=InboxEntryOutput(many=True)
    )
    def get(self, request: Request, counterparty_id: int) -> Response:
        counterparty = counterparty_get(counterparty_id=counterparty_id)
        rows = selectors.inbox(counterparty=counterparty)
        return Response(
            [
                {"delivery": DeliveryOutput(row).data, "message": MessageOutput(row.message).data}
                for row in rows
            ]
        )


class CounterpartyOutboxApi(MessagingApiView):
    @extend_schema(
        summary="Messages a counterparty of this node sent, with each delivery's state",
        responses=MessageOutput(many=True),
    )
    def get(self, request: Request, counterparty_id: int) -> Response:
        counterparty = counterparty_get(counterparty_id=counterparty_id)
        return Response(MessageOutput(selectors.outbox(counterparty=counterparty), many=True).data)


class UndeliverableOutput(DeliveryOutput):
    id = serializers.CharField(source="message.message_id")
    sender = serializers.CharField(source="message.sender_address")
    kind = serializers.CharField(source="message.kind")


class UndeliverableApi(MessagingApiView):
    @extend_schema(
        summary="Deliveries that timed out or were rejected (kept, never dropped)",
        responses=UndeliverableOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(UndeliverableOutput(selectors.undeliverable(), many=True).data)


class AttachmentOutput(serializers.Serializer):
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    media_type = serializers.CharField()


class AttachmentUploadApi(MessagingApiView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Upload a file a message will name (PDF, PNG, JPEG; at most 10 MiB)",
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={201: AttachmentOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            return Response(
                error_body("invalid", "Send the file in the field 'file'.", {"file": ["required"]}),
                status=400,
            )
        if upload.size is not None and upload.size > services.MAX_ATTACHMENT_BYTES:
            from messaging.protocol.errors import MessageTooLarge

            raise MessageTooLarge(
                f"a file is at most {services.MAX_ATTACHMENT_BYTES} bytes (10 MiB)", field="file"
            )
        row = services.attachment_upload(
            content=upload.read(), declared_type=upload.content_type, actor=request.user
        )
        return Response(AttachmentOutput(row).data, status=status.HTTP_201_CREATED)


class AttachmentDownloadApi(MessagingApiView):
    @extend_schema(
        summary="Download an attachment by its SHA-256",
        responses={200: OpenApiResponse(description="the file")},
    )
    def get(self, request: Request, sha256: str) -> Any:
        row = MessageAttachment.objects.filter(sha256=sha256).first()
        if row is None:
            raise UnknownAttachment(f"no attachment {sha256} here")
        return FileResponse(storage.document_open(sha256).open("rb"), content_type=row.media_type)
