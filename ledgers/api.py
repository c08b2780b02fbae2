"""REST API of ledgers: assets, ledgers and their balances, chain exports, payments (single and
batch), fraud proofs. Thin views in the HackSoft style: an Input serializer checks the shape, one
service or selector does the work, an Output serializer answers.

Every refusal by the rules is a :class:`~ledgers.protocol.errors.LedgerError`; it becomes
``{"error": {"code", "message"}}`` with 400, 404 or 409 (``ledgers.errors.http_status``), and
the service raised before saving anything, so nothing was appended and no hold is left.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consensus.services import ConsensusShellError
from ledgers import receipts, selectors, services
from ledgers.errors import http_status
from ledgers.protocol.amounts import format_amount
from ledgers.protocol.entries import Millis, SignedEntry
from ledgers.protocol.errors import BadEntry, LedgerError
from ledgers.protocol.fraud import verify_fraud_proof
from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.selectors import counterparty_get
from settlement.errors import error_body
from settlement.protocol.signing import Signature


class ErrorOutput(serializers.Serializer):
    class Body(serializers.Serializer):
        code = serializers.CharField(help_text="machine-readable, e.g. insufficient_funds, wrong_prev")
        message = serializers.CharField(help_text="a sentence for people")

    error = Body()


ERRORS = {
    400: OpenApiResponse(
        ErrorOutput, description="Bad input (bad_amount, bad_signature, ...): nothing appended"
    ),
    404: OpenApiResponse(ErrorOutput, description="unknown_ledger"),
    409: OpenApiResponse(
        ErrorOutput,
        description="The state forbids it (insufficient_funds, not_accepted, wrong_prev, ...): nothing appended",
    ),
}


class LedgerApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, LedgerError):
            return Response(error_body(exc.code, str(exc)), status=http_status(exc))
        if isinstance(exc, CounterpartyError):
            return Response(error_body(exc.code, exc.message, exc.fields or None), status=exc.http_status)
        return super().handle_exception(exc)


def _signed_entry(value: Any) -> SignedEntry:
    signed = SignedEntry.from_json(value)
    if signed.party_signature is None:
        raise BadEntry("the signed entry carries no party_signature")
    return signed


# --- assets ---------------------------------------------------------------------------------


class AssetOutput(serializers.Serializer):
    id = serializers.IntegerField()
    uai = serializers.CharField(help_text="Unified Asset Identifier: issuer/CODE")
    issuer = serializers.CharField()
    code = serializers.CharField()
    decimals = serializers.IntegerField()
    issued = serializers.CharField(help_text="minor units ever issued")
    redeemed = serializers.CharField(help_text="minor units ever redeemed")


class AssetListCreateApi(LedgerApiView):
    class Input(serializers.Serializer):
        code = serializers.CharField(max_length=32, help_text="upper case, e.g. EUR")
        decimals = serializers.IntegerField(min_value=0, max_value=18)
        issuer = serializers.CharField(
            max_length=253, required=False, help_text="a peer's namespace; omitted: this bank's own IOU"
        )

    @extend_schema(summary="Assets this node knows", responses=AssetOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(AssetOutput(selectors.asset_list(), many=True).data)

    @extend_schema(summary="Register an asset", request=Input, responses={201: AssetOutput, **ERRORS})
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        asset = services.asset_create(actor=request.user, **serializer.validated_data)
        return Response(AssetOutput(asset).data, status=status.HTTP_201_CREATED)


# --- ledgers --------------------------------------------------------------------------------


class BalanceOutput(serializers.Serializer):
    asset = serializers.CharField(source="asset.uai")
    amount = serializers.CharField(help_text="minor units")
    display = serializers.SerializerMethodField(help_text="with the asset's decimals")
    credit_line = serializers.CharField()

    def get_display(self, balance: Any) -> str:
        return format_amount(balance.amount, decimals=balance.asset.decimals)


class LedgerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ubi = serializers.CharField(help_text="Unified Blockchain Identifier: ubi:<bank>:<name>")
    owner = serializers.CharField()
    counterparty = serializers.IntegerField(source="counterparty_id", allow_null=True)
    party_key = serializers.CharField(help_text="the owner's Ed25519 key; the bank's key co-signs")
    next_height = serializers.IntegerField()
    last_hash = serializers.CharField(help_text="prev of the next entry")
    last_time = serializers.IntegerField(help_text="an entry's time may not be earlier")
    balances = BalanceOutput(many=True)


class LedgerListCreateApi(LedgerApiView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=64, help_text="the <name> in ubi:<bank>:<name>")
        counterparty = serializers.IntegerField(
            required=False, help_text="an ACCEPTED counterparty; omitted: the bank's own"
        )

    @extend_schema(
        summary="Ledgers kept by this bank, with balances per asset", responses=LedgerOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        return Response(LedgerOutput(selectors.ledger_list(), many=True).data)

    @extend_schema(summary="Open a ledger", request=Input, responses={201: LedgerOutput, **ERRORS})
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        counterparty = (
            counterparty_get(counterparty_id=data["counterparty"]) if "counterparty" in data else None
        )
        ledger = services.ledger_open(name=data["name"], counterparty=counterparty, actor=request.user)
        return Response(
            LedgerOutput(selectors.ledger_get(ledger=ledger.pk)).data, status=status.HTTP_201_CREATED
        )


class LedgerDetailApi(LedgerApiView):
    @extend_schema(
        summary="A ledger: head and balances per asset", responses={200: LedgerOutput, 404: ERRORS[404]}
    )
    def get(self, request: Request, ledger: str) -> Response:
        return Response(LedgerOutput(selectors.ledger_get(ledger=ledger)).data)


class SignedEntryOutput(serializers.Serializer):
    class EntryOutput(serializers.Serializer):
        ledger = serializers.CharField()
        height = serializers.IntegerField()
        prev = serializers.CharField()
        kind = serializers.CharField()
        body = serializers.JSONField()
        time = serializers.IntegerField()

    entry = EntryOutput()
    hash = serializers.CharField()
    party_signature = serializers.CharField(allow_null=True)
    validator_signature = serializers.CharField()


def _entry_json(row: Any, ubi: str) -> dict[str, Any]:
    signed = services.signed_entry_of(row, ubi).to_json()
    return {**signed, "hash": row.hash}


class LedgerEntriesApi(LedgerApiView):
    @extend_schema(
        summary="Export a chain from height `from` (the party's copy, to verify against the bank's)",
        parameters=[
            OpenApiParameter("from", int, description="first height (default 0)"),
            OpenApiParameter("limit", int, description="at most this many (default 1000, at most 10000)"),
        ],
        responses={200: SignedEntryOutput(many=True), 400: ERRORS[400], 404: ERRORS[404]},
    )
    def get(self, request: Request, ledger: str) -> Response:
        found = selectors.ledger_get(ledger=ledger)
        try:
            start = int(request.query_params.get("from", "0"))
            limit = min(int(request.query_params.get("limit", "1000")), 10000)
        except ValueError as error:
            raise BadEntry("from and limit must be integers") from error
        if start < 0 or limit < 1:
            raise BadEntry("from must be at least 0 and limit at least 1")
        rows = selectors.entries_from(ledger=found, from_height=start, limit=limit)
        return Response([_entry_json(row, found.ubi) for row in rows])


class ReceiptOutput(serializers.Serializer):
    """docs/receipt.md describes every field and check; `python -m settlement.verify` checks it."""

    type = serializers.CharField(help_text='"parsec-receipt"')
    version = serializers.IntegerField()
    entry = serializers.JSONField(
        help_text="the entry exactly as signed, party key and signature, bank signature"
    )
    block = serializers.JSONField(help_text="header fields, the leaf's audit path, validators and signatures")
    log = serializers.JSONField(
        allow_null=True, help_text="block-log inclusion and consistency paths; null until anchored"
    )
    anchor = serializers.JSONField(
        allow_null=True, help_text="the Ethereum anchor of the block log; null until anchored"
    )
    issuer = serializers.JSONField(help_text="the issuing node, its key, the time, its signature on the rest")


class LedgerEntryReceiptApi(LedgerApiView):
    @extend_schema(
        summary="The offline-verifiable receipt of one entry (docs/receipt.md)",
        description=(
            "One JSON document: the entry and its signatures, the Merkle path of its head commitment "
            "into its block, the validators' signatures, the block's place in the block log, a "
            "consistency proof to the newest anchor covering it, and that anchor on Ethereum; signed "
            "by this node. Check it with `python -m settlement.verify receipt.json [--rpc URL]`. "
            "`log` and `anchor` are null while the block is not anchored yet."
        ),
        responses={
            200: ReceiptOutput,
            404: OpenApiResponse(ErrorOutput, description="unknown_ledger, unknown_entry"),
            409: OpenApiResponse(
                ErrorOutput, description="receipt_not_ready: the entry is not in an agreed block yet"
            ),
        },
    )
    def get(self, request: Request, ledger: str, height: int) -> Response:
        found = selectors.ledger_get(ledger=ledger)
        return Response(receipts.entry_receipt(ledger=found, height=height))

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ConsensusShellError):
            return Response(error_body(exc.code, exc.message), status=exc.http_status)
        return super().handle_exception(exc)


class LedgerVerifyApi(LedgerApiView):
    class Output(serializers.Serializer):
        ok = serializers.BooleanField()
        verified = serializers.IntegerField(help_text="entries that verify, from height 0")
        height = serializers.IntegerField(allow_null=True, help_text="first height with a problem")
        code = serializers.CharField(allow_null=True)
        message = serializers.CharField(allow_null=True)

    @extend_schema(
        summary="Replay the bank's copy of a chain with the rules", responses={200: Output, 404: ERRORS[404]}
    )
    def get(self, request: Request, ledger: str) -> Response:
        report = selectors.ledger_verify(ledger=selectors.ledger_get(ledger=ledger))
        problem = report.problem
        return Response(
            {
                "ok": report.ok,
                "verified": report.verified,
                "height": problem.height if problem else None,
                "code": problem.code if problem else None,
                "message": problem.message if problem else None,
            }
        )


class SupplyInput(serializers.Serializer):
    asset = serializers.CharField(help_text="UAI, e.g. bank-a.test/EUR")
    amount = serializers.JSONField(
        help_text='a decimal string with at most the asset\'s decimals, e.g. "10.50"'
    )
    reference = serializers.CharField(max_length=200, help_text="the deposit or payout it records")


class EntryOutput(serializers.Serializer):
    ledger = serializers.CharField(source="ledger.ubi")
    height = serializers.IntegerField()
    hash = serializers.CharField()
    kind = serializers.CharField()
    body = serializers.JSONField()
    time = serializers.IntegerField()


class LedgerIssueApi(LedgerApiView):
    @extend_schema(
        summary="Issue this bank's IOU against a deposit (an issue entry)",
        request=SupplyInput,
        responses={201: EntryOutput, **ERRORS},
    )
    def post(self, request: Request, ledger: str) -> Response:
        found = selectors.ledger_get(ledger=ledger)
        serializer = SupplyInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = services.asset_issue(
            ledger=found,
            asset=selectors.asset_get(uai=data["asset"]),
            amount=data["amount"],
            reference=data["reference"],
            actor=request.user,
        )
        return Response(EntryOutput(entry).data, status=status.HTTP_201_CREATED)


class LedgerRedeemApi(LedgerApiView):
    class Input(SupplyInput):
        party_signature = serializers.CharField(
            required=False, help_text="self custody: the owner's signature (hex) on the redeem entry"
        )
        time = serializers.IntegerField(
            required=False, help_text="self custody: the signed entry's time (ms)"
        )

    @extend_schema(
        summary="Pay a deposit out (a redeem entry, signed by the owner)",
        request=Input,
        responses={201: EntryOutput, **ERRORS},
    )
    def post(self, request: Request, ledger: str) -> Response:
        found = selectors.ledger_get(ledger=ledger)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        signature = None
        if "party_signature" in data:
            try:
                signature = Signature(bytes.fromhex(data["party_signature"]))
            except ValueError as error:
                raise BadEntry("party_signature must be hex") from error
        entry = services.asset_redeem(
            ledger=found,
            asset=selectors.asset_get(uai=data["asset"]),
            amount=data["amount"],
            reference=data["reference"],
            actor=request.user,
            party_signature=signature,
            entry_time=Millis(data["time"]) if "time" in data else None,
        )
        return Response(EntryOutput(entry).data, status=status.HTTP_201_CREATED)


# --- payments -------------------------------------------------------------------------------


class PaymentInput(serializers.Serializer):
    idempotency_key = serializers.CharField(max_length=200, help_text="a replay returns the first result")
    sender = serializers.CharField(help_text="the sender's UBI")
    recipient = serializers.CharField(help_text="the recipient's UBI (same bank)")
    asset = serializers.CharField(help_text="UAI")
    amount = serializers.JSONField(help_text='a decimal string, e.g. "10.50"; never a float')
    signed_debit = serializers.JSONField(
        required=False,
        help_text="self custody: {entry, party_signature, validator_signature: null}, the debit the sender signed",
    )


class PaymentOutput(serializers.Serializer):
    id = serializers.IntegerField(source="transfer.pk")
    idempotency_key = serializers.CharField(source="transfer.idempotency_key")
    sender = serializers.CharField(source="transfer.debit.ledger.ubi")
    recipient = serializers.CharField(source="transfer.credit.ledger.ubi")
    asset = serializers.CharField(source="transfer.asset.uai")
    amount = serializers.CharField(source="transfer.amount", help_text="minor units")
    debit = EntryOutput(source="transfer.debit")
    credit = EntryOutput(source="transfer.credit")
    replayed = serializers.BooleanField(help_text="true: this key was seen before; nothing new was appended")


def _payment_request(data: dict[str, Any]) -> services.PaymentRequest:
    return services.PaymentRequest(
        idempotency_key=data["idempotency_key"],
        sender=data["sender"],
        recipient=data["recipient"],
        asset=data["asset"],
        amount=data["amount"],
        signed_debit=_signed_entry(data["signed_debit"]) if "signed_debit" in data else None,
    )


def _with_rows(results: list[services.PaymentResult]) -> list[services.PaymentResult]:
    """Load the related rows the output names, in a few queries."""
    from ledgers.models import Transfer

    ids = [result.transfer_id for result in results]
    rows = Transfer.objects.select_related("asset", "debit__ledger", "credit__ledger").in_bulk(ids)
    return [
        services.PaymentResult(transfer=rows[result.transfer_id], replayed=result.replayed)
        for result in results
    ]


class PaymentCreateApi(LedgerApiView):
    @extend_schema(
        summary="Pay within this bank: a co-signed debit and credit, both or neither",
        request=PaymentInput,
        responses={201: PaymentOutput, 200: PaymentOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = PaymentInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.payment_intrabank(
            request=_payment_request(serializer.validated_data), actor=request.user
        )
        (result,) = _with_rows([result])
        return Response(PaymentOutput(result).data, status=200 if result.replayed else 201)


class PaymentBatchApi(LedgerApiView):
    class Input(serializers.Serializer):
        payments = PaymentInput(many=True, help_text="at most 5000; all settle in one transaction, or none")

        def validate_payments(self, value: list[Any]) -> list[Any]:
            if not 0 < len(value) <= 5000:
                raise serializers.ValidationError("send 1 to 5000 payments")
            return value

    @extend_schema(
        summary="Many payments in one transaction and one round trip; all or none",
        request=Input,
        responses={201: PaymentOutput(many=True), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = services.payment_intrabank_batch(
            requests=[_payment_request(item) for item in serializer.validated_data["payments"]],
            actor=request.user,
        )
        return Response(PaymentOutput(_with_rows(results), many=True).data, status=status.HTTP_201_CREATED)


# --- fraud proofs ---------------------------------------------------------------------------


class FraudProofOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    accused_key = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    document = serializers.JSONField(help_text="the proof itself: `python -m settlement.verify proof.json`")


class FraudProofListCreateApi(LedgerApiView):
    class Input(serializers.Serializer):
        document = serializers.JSONField(help_text="a fraud proof (type ledger-equivocation, ...)")

    @extend_schema(summary="Fraud proofs kept for export", responses=FraudProofOutput(many=True))
    def get(self, request: Request) -> Response:
        from ledgers.models import FraudProof

        return Response(FraudProofOutput(FraudProof.objects.all()[:200], many=True).data)

    @extend_schema(
        summary="Check a fraud proof and keep it (refused unless it proves fraud)",
        request=Input,
        responses={201: FraudProofOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        proof = services.fraud_proof_record(
            document=serializer.validated_data["document"], actor=request.user
        )
        return Response(FraudProofOutput(proof).data, status=status.HTTP_201_CREATED)


class FraudProofVerifyApi(LedgerApiView):
    class Input(serializers.Serializer):
        document = serializers.JSONField()

    class Output(serializers.Serializer):
        proven = serializers.BooleanField()
        kind = serializers.CharField()
        accused_key = serializers.CharField()
        code = serializers.CharField()
        reason = serializers.CharField()

    @extend_schema(summary="Check a fraud proof without keeping it", request=Input, responses={200: Output})
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(verify_fraud_proof(serializer.validated_data["document"]).to_json())


# --- payments between banks -----------------------------------------------------------------


class InterbankPaymentOutput(serializers.Serializer):
    payment_id = serializers.CharField(help_text="hash of the signed instruction")
    reference = serializers.CharField()
    role = serializers.CharField()
    phase = serializers.CharField(help_text="held, final or voided")
    amount = serializers.CharField(help_text="minor units")
    proof = serializers.JSONField(
        help_text="the instruction and its signatures; `python -m settlement.verify`"
    )
    void_reason = serializers.CharField()


class InterbankPaymentApi(LedgerApiView):
    class Input(serializers.Serializer):
        idempotency_key = serializers.CharField(max_length=200, help_text="the instruction's reference")
        sender = serializers.CharField(help_text="the sender's UBI here")
        recipient = serializers.CharField(help_text="the recipient's UBI at the other bank")
        asset = serializers.CharField(help_text="our IOU, e.g. bank-a.test/EUR")
        recipient_asset = serializers.CharField(help_text="the other bank's IOU, e.g. bank-b.test/EUR")
        amount = serializers.JSONField(help_text='a decimal string, e.g. "10.50"')
        expires_in_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)
        via = serializers.CharField(
            max_length=253,
            required=False,
            help_text="a correspondent bank (a peer's domain) to pay through (seed 003 Pic. 5/6). "
            "Without it: directly when the recipient's bank is our peer, else through the peer that "
            "reaches it with the most credit to spare (no_route when none does)",
        )

    @extend_schema(
        summary="Payments between banks, newest first", responses=InterbankPaymentOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        from ledgers.models import InterbankPayment

        return Response(InterbankPaymentOutput(InterbankPayment.objects.all()[:200], many=True).data)

    @extend_schema(
        summary="Pay a party of another bank, directly or through a correspondent: hold, the banks "
        "on the route co-sign, we finalise; every bank appends its leg",
        request=Input,
        responses={201: InterbankPaymentOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        from ledgers import correspondent_services, interbank_services

        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = correspondent_services.payment_send(
            via=data.get("via") or None,
            request=interbank_services.InterbankRequest(
                reference=data["idempotency_key"],
                sender=data["sender"],
                recipient=data["recipient"],
                asset=data["asset"],
                recipient_asset=data["recipient_asset"],
                amount=data["amount"],
                expires_in_ms=1000 * data.get("expires_in_seconds", 30),
            ),
            actor=request.user,
        )
        return Response(InterbankPaymentOutput(payment).data, status=status.HTTP_201_CREATED)


# --- exchange offers ------------------------------------------------------------------------


class OfferOutput(serializers.Serializer):
    offer_id = serializers.CharField()
    maker_bank = serializers.CharField()
    local = serializers.BooleanField(help_text="made by a party of this bank")
    phase = serializers.CharField(help_text="open, taken or cancelled")
    expires_at = serializers.IntegerField()
    signed_offer = serializers.JSONField(help_text="the offer with the maker's and its bank's signatures")
    accepted = serializers.JSONField(
        allow_null=True, help_text="the one accepted take, signed by the maker's bank"
    )


class OfferListCreateApi(LedgerApiView):
    class Input(serializers.Serializer):
        maker = serializers.CharField(help_text="the maker's UBI here (custodial)")
        give_asset = serializers.CharField()
        give_amount = serializers.JSONField(help_text='a decimal string, e.g. "100.00"')
        want_asset = serializers.CharField()
        want_amount = serializers.JSONField(help_text='a decimal string, e.g. "110.00"')
        reference = serializers.CharField(max_length=200)
        expires_in_seconds = serializers.IntegerField(min_value=1, max_value=30 * 86400, required=False)

    @extend_schema(
        summary="The offer board: open offers here and from peers", responses=OfferOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        return Response(OfferOutput(selectors.offer_board(), many=True).data)

    @extend_schema(
        summary="Make an offer (holds what the maker gives)",
        request=Input,
        responses={201: OfferOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        from ledgers import exchange_services

        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        offer = exchange_services.offer_create(
            maker=selectors.ledger_get(ledger=data["maker"]),
            give_asset=data["give_asset"],
            give_amount=data["give_amount"],
            want_asset=data["want_asset"],
            want_amount=data["want_amount"],
            reference=data["reference"],
            expires_in_ms=1000 * data.get("expires_in_seconds", 3600),
            actor=request.user,
        )
        return Response(OfferOutput(offer).data, status=status.HTTP_201_CREATED)


class OfferTakeApi(LedgerApiView):
    class Input(serializers.Serializer):
        taker = serializers.CharField(help_text="the taker's UBI here (custodial)")
        reference = serializers.CharField(max_length=200)

    class Output(serializers.Serializer):
        take_id = serializers.CharField()
        status = serializers.CharField()
        accepted = serializers.JSONField(help_text="the maker's bank's signed acceptance")

    @extend_schema(
        summary="Take an offer: both legs settle or neither; only one take is ever accepted",
        request=Input,
        responses={201: Output, **ERRORS},
    )
    def post(self, request: Request, offer_id: str) -> Response:
        from ledgers import exchange_services

        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        take = exchange_services.offer_take(
            offer_id=offer_id,
            taker=selectors.ledger_get(ledger=serializer.validated_data["taker"]),
            reference=serializer.validated_data["reference"],
            actor=request.user,
        )
        return Response(self.Output(take).data, status=status.HTTP_201_CREATED)


class OfferCancelApi(LedgerApiView):
    @extend_schema(
        summary="Cancel an open offer (releases the maker's hold)",
        request=None,
        responses={200: OfferOutput, **ERRORS},
    )
    def post(self, request: Request, offer_id: str) -> Response:
        from ledgers import exchange_services

        return Response(
            OfferOutput(exchange_services.offer_cancel(offer_id=offer_id, actor=request.user)).data
        )


class InterbankPaymentBatchApi(LedgerApiView):
    class Input(serializers.Serializer):
        payments = InterbankPaymentApi.Input(
            many=True, help_text="1 to 5000 payments to parties of one other bank"
        )

    @extend_schema(
        summary="Many payments to one other bank in two round trips; each ends final or voided",
        request=Input,
        responses={201: InterbankPaymentOutput(many=True), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        from ledgers import interbank_services

        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data["payments"]
        if not 0 < len(items) <= 5000:
            raise BadEntry("send 1 to 5000 payments")
        payments = interbank_services.payment_interbank_send_batch(
            requests=[
                interbank_services.InterbankRequest(
                    reference=data["idempotency_key"],
                    sender=data["sender"],
                    recipient=data["recipient"],
                    asset=data["asset"],
                    recipient_asset=data["recipient_asset"],
                    amount=data["amount"],
                    expires_in_ms=1000 * data.get("expires_in_seconds", 30),
                )
                for data in items
            ],
            actor=request.user,
        )
        return Response(InterbankPaymentOutput(payments, many=True).data, status=status.HTTP_201_CREATED)
