"""REST API of channels: thin views (an Input serializer, one service, an Output serializer).

Amounts are strings of decimal digits in the asset's minor units (a uint256 does not fit a
JSON number); assets are ``ETH``, ``PUSD`` (the demo stable-coin) or a 0x address. A refused
request answers 4xx with ``{"error": {"code", "message"}}`` and stores nothing: every service
runs in one database transaction that a refusal rolls back.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app import codec, selectors, services, virtual
from channels_app.models import Channel, VirtualChannel
from channels_app.protocol import eip712
from channels_app.protocol import errors as protocol_errors
from channels_app.protocol.channel_state import Allocation, ChannelState, SubAllocation
from channels_app.protocol.state import StreamPayment
from channels_app.protocol.types import ETH, ChannelId, Version, Wei, address
from settlement import ethereum
from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.models import Counterparty
from settlement.errors import error_body
from settlement.models import Peer
from settlement.transport import PeerUnreachable

# Refusals that are about the channel's state rather than the request's content.
_CONFLICT = {"channel_closed", "not_funded", "update_pending", "wrong_phase", "no_pending_update"}


class ChannelErrorOutput(serializers.Serializer):
    class ChannelErrorBody(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()

    error = ChannelErrorBody()


ERRORS = {
    400: OpenApiResponse(
        ChannelErrorOutput, description="Bad input (wrong version, bad signature, ...): nothing stored"
    ),
    403: OpenApiResponse(ChannelErrorOutput, description="Your role does not allow this"),
    404: OpenApiResponse(ChannelErrorOutput, description="No such channel (unknown_channel)"),
    409: OpenApiResponse(ChannelErrorOutput, description="The channel's phase does not allow this"),
}


class AmountField(serializers.CharField):
    """An integer amount in minor units, given as a string of digits (or a JSON integer)."""

    def to_internal_value(self, data: Any) -> int:  # type: ignore[override]
        text = str(data).strip()
        if not re.fullmatch(r"\d{1,78}", text) or int(text) >= 2**256:
            raise serializers.ValidationError("an integer amount in minor units, as a string of digits")
        return int(text)


class AssetField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        text = str(data).strip()
        if text.upper() == "ETH":
            return ETH
        if text.upper() == "PUSD":
            return services.demo_coin_address()
        try:
            return address(text)
        except ValueError:
            raise serializers.ValidationError("ETH, PUSD or a 0x address of 40 hex digits") from None


class SignatureField(serializers.CharField):
    def to_internal_value(self, data: Any) -> bytes:  # type: ignore[override]
        text = str(data).strip().lower().removeprefix("0x")
        if not re.fullmatch(r"[0-9a-f]{130}", text):
            raise serializers.ValidationError("a 65-byte signature (r, s, v) as 0x + 130 hex digits")
        return bytes.fromhex(text)


class ChannelStateInput(serializers.Serializer):
    class ChannelAllocationInput(serializers.Serializer):
        asset = AssetField()
        balance_a = AmountField()
        balance_b = AmountField()

    class ChannelSubAllocationInput(serializers.Serializer):
        channel_id = serializers.RegexField(r"^0x[0-9a-fA-F]{64}$")
        asset = AssetField()
        amount = AmountField()

    version = serializers.IntegerField(min_value=0, max_value=2**64 - 1)
    allocations = ChannelAllocationInput(many=True)
    sub_allocations = ChannelSubAllocationInput(many=True, required=False, default=list)
    is_final = serializers.BooleanField(default=False)


def state_from_input(channel: Channel, data: dict[str, Any]) -> ChannelState:
    return ChannelState(
        channel_id=channel.id_bytes,
        version=Version(data["version"]),
        allocations=tuple(
            Allocation(a["asset"], Wei(a["balance_a"]), Wei(a["balance_b"])) for a in data["allocations"]
        ),
        sub_allocations=tuple(
            SubAllocation(ChannelId(bytes.fromhex(s["channel_id"][2:])), s["asset"], Wei(s["amount"]))
            for s in data["sub_allocations"]
        ),
        is_final=data["is_final"],
    )


def state_output(state: ChannelState) -> dict[str, Any]:
    return {
        "channel_id": "0x" + state.channel_id.hex(),
        "version": state.version,
        "allocations": [
            {"asset": a.asset, "balance_a": str(a.balance_a), "balance_b": str(a.balance_b)}
            for a in state.allocations
        ],
        "sub_allocations": [
            {"channel_id": "0x" + s.channel_id.hex(), "asset": s.asset, "amount": str(s.amount)}
            for s in state.sub_allocations
        ],
        "is_final": state.is_final,
    }


class ChannelOutput(serializers.Serializer):
    channel_id = serializers.CharField()
    kind = serializers.CharField()
    phase = serializers.CharField()
    version = serializers.IntegerField()
    our_address = serializers.CharField()
    their_address = serializers.CharField()
    our_index = serializers.IntegerField()
    counterparty_id = serializers.IntegerField(allow_null=True)
    peer = serializers.CharField(source="peer.name", allow_null=True, default=None)
    balances = serializers.JSONField()
    challenge_duration = serializers.SerializerMethodField()
    opening = serializers.SerializerMethodField()
    pending = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_challenge_duration(self, channel: Channel) -> int:
        return int(channel.protocol_params.challenge_duration)

    def get_opening(self, channel: Channel) -> dict[str, Any] | None:
        """While PROPOSED: the opening state to sign, and the node's signature."""
        if channel.opening is None or channel.machine is not None:
            return None
        return {
            "state": state_output(codec.decode(channel.opening["state"])),
            "node_signature": channel.opening["signature"],
        }

    def get_pending(self, channel: Channel) -> dict[str, Any] | None:
        """Our proposal awaiting the counterparty's countersignature."""
        if channel.machine is None:
            return None
        pending = channel.protocol_channel.pending
        if pending is None:
            return None
        return {"state": state_output(pending.state), "node_signature": "0x" + pending.signature.hex()}


class ChannelTransactionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    purpose = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.CharField()
    tx_hash = serializers.CharField()
    previous_hashes = serializers.JSONField()
    block_number = serializers.IntegerField(allow_null=True)
    confirmations = serializers.IntegerField()
    confirmations_needed = serializers.IntegerField()
    gas_used = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()


class ChannelApiView(APIView):
    """Turns typed refusals into the node's error shape."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, protocol_errors.ChannelError):
            code = exc.code
            http = 404 if code == "unknown_channel" else 409 if code in _CONFLICT else 400
            return Response(error_body(code, exc.message), status=http)
        if isinstance(exc, CounterpartyError):
            return Response(error_body(exc.code, exc.message), status=exc.http_status)
        if isinstance(exc, ethereum.EthereumError):
            return Response(error_body("ethereum_unavailable", str(exc)), status=502)
        return super().handle_exception(exc)

    def channel(self, channel_id: str) -> Channel:
        return selectors.channel_get(channel_id=channel_id)

    def answer(self, channel: Channel, code: int = 200, **extra: Any) -> Response:
        channel = selectors.channel_get(channel_id=channel.channel_id)
        return Response({**ChannelOutput(channel).data, **extra}, status=code)


class ChannelListApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelChannelListInput")
    class Input(serializers.Serializer):
        class ChannelDepositSplit(serializers.Serializer):
            asset = AssetField()
            ours = AmountField(help_text="what the node deposits")
            theirs = AmountField(help_text="what the counterparty deposits")

        counterparty_id = serializers.IntegerField(required=False, help_text="a counterparty of ours, or...")
        peer = serializers.CharField(required=False, help_text="...a peer node, by name")
        deposits = ChannelDepositSplit(many=True, allow_empty=False)
        challenge_seconds = serializers.IntegerField(min_value=1, max_value=2**32 - 1, required=False)

    @extend_schema(summary="Channels", responses=ChannelOutput(many=True))
    def get(self, request: Request) -> Response:
        channels = selectors.channel_list(phase=request.query_params.get("phase", ""))
        return Response(ChannelOutput(channels, many=True).data)

    @extend_schema(
        summary=(
            "Open a ledger channel with a counterparty (self custody: sign the opening state next) "
            "or a peer node (it countersigns over the transport)"
        ),
        request=Input,
        responses={201: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if ("counterparty_id" in data) == ("peer" in data):
            raise protocol_errors.BadState("name either a counterparty_id or a peer")
        deposits: dict[str, tuple[int, int]] = {}
        for item in data["deposits"]:
            if item["asset"] in deposits:
                raise protocol_errors.BadState("each asset appears once in the deposits")
            deposits[item["asset"]] = (item["ours"], item["theirs"])
        if "peer" in data:
            peer = Peer.objects.filter(name=data["peer"]).first()
            if peer is None:
                return Response(error_body("not_found", "No such peer node."), status=404)
            try:
                channel = services.peer_channel_open(
                    peer=peer,
                    deposits=deposits,
                    actor=request.user,
                    challenge_duration=data.get("challenge_seconds"),
                )
            except PeerUnreachable as error:
                return Response(error_body("peer_unreachable", str(error)), status=502)
            return self.answer(channel, status.HTTP_201_CREATED)
        counterparty = Counterparty.objects.filter(pk=data["counterparty_id"]).first()
        if counterparty is None:
            return Response(error_body("not_found", "No such counterparty."), status=404)
        channel = services.channel_open(
            counterparty=counterparty,
            deposits=deposits,
            actor=request.user,
            challenge_duration=data.get("challenge_seconds"),
        )
        return self.answer(channel, status.HTTP_201_CREATED)


class ChannelDetailApi(ChannelApiView):
    @extend_schema(summary="A channel", responses={200: ChannelOutput, 404: ERRORS[404]})
    def get(self, request: Request, channel_id: str) -> Response:
        return self.answer(self.channel(channel_id))


class ChannelSignatureInput(serializers.Serializer):
    signature = SignatureField()


class OpeningSignatureApi(ChannelApiView):
    @extend_schema(
        summary="A self-custody counterparty signs the opening state",
        request=ChannelSignatureInput,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = ChannelSignatureInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_open_countersign(
            channel=self.channel(channel_id),
            signature=serializer.validated_data["signature"],
            actor=request.user,
        )
        return self.answer(channel)


class DepositApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelDepositInput")
    class Input(serializers.Serializer):
        asset = AssetField()
        amount = AmountField()
        by = serializers.ChoiceField(choices=["node", "counterparty"], default="node")

    @extend_schema(
        summary="Deposit the agreed share on-chain (the node's, or a custodial counterparty's)",
        request=Input,
        responses={202: ChannelTransactionOutput(many=True), **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sent = services.channel_deposit(
            channel=self.channel(channel_id),
            asset=data["asset"],
            amount=data["amount"],
            actor=request.user,
            by_counterparty=data["by"] == "counterparty",
        )
        return Response(ChannelTransactionOutput(sent, many=True).data, status=202)


class PaymentApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelPaymentInput")
    class Input(serializers.Serializer):
        asset = AssetField()
        amount = AmountField()
        direction = serializers.ChoiceField(
            choices=["to_counterparty", "from_counterparty"], default="to_counterparty"
        )

    @extend_schema(
        summary="An off-chain payment (from a custodial counterparty: on its instruction)",
        request=Input,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["amount"] <= 0:
            raise protocol_errors.BadState("a payment moves a positive amount")
        result = services.channel_pay(
            channel=self.channel(channel_id),
            asset=data["asset"],
            amount=data["amount"],
            actor=request.user,
            from_counterparty=data["direction"] == "from_counterparty",
        )
        return self.answer(result.channel)


class ProposalApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelProposalInput")
    class Input(serializers.Serializer):
        state = ChannelStateInput()
        signature = SignatureField()

    @extend_schema(
        summary="A self-custody counterparty proposes the next state; the node checks and countersigns",
        request=Input,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = self.channel(channel_id)
        state = state_from_input(channel, serializer.validated_data["state"])
        result = services.channel_proposal_receive(
            channel=channel, state=state, signature=serializer.validated_data["signature"], actor=request.user
        )
        return self.answer(result.channel, countersignature="0x" + (result.countersignature or b"").hex())


class CountersignatureApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelCountersignatureInput")
    class Input(serializers.Serializer):
        version = serializers.IntegerField(min_value=0)
        signature = SignatureField()

    @extend_schema(
        summary="A self-custody counterparty countersigns the node's pending proposal",
        request=Input,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_countersignature_receive(
            channel=self.channel(channel_id),
            version=serializer.validated_data["version"],
            signature=serializer.validated_data["signature"],
            actor=request.user,
        )
        return self.answer(channel)


class SettleApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelSettleInput")
    class Input(serializers.Serializer):
        mode = serializers.ChoiceField(choices=["cooperative", "dispute"])

    @extend_schema(
        summary="Settle: cooperatively (final state, conclude at once) or by dispute (register, conclude after the period)",
        request=Input,
        responses={202: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = self.channel(channel_id)
        if serializer.validated_data["mode"] == "cooperative":
            channel = virtual.channel_settle_cooperatively(channel=channel, actor=request.user)
        else:
            channel = virtual.channel_settle_by_dispute(channel=channel, actor=request.user)
        return self.answer(channel, 202)


class CheckpointApi(ChannelApiView):
    @extend_schema(
        summary="Record the latest both-signed state on-chain",
        request=None,
        responses={202: ChannelTransactionOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        tx = services.channel_checkpoint(channel=self.channel(channel_id), actor=request.user)
        return Response(ChannelTransactionOutput(tx).data, status=202)


class WithdrawApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelWithdrawInput")
    class Input(serializers.Serializer):
        asset = AssetField()
        receiver = serializers.RegexField(r"^0x[0-9a-fA-F]{40}$")

    @extend_schema(
        summary="Take out the node's credit in the channel",
        request=Input,
        responses={202: ChannelTransactionOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        tx = services.channel_withdraw(
            channel=self.channel(channel_id),
            asset=serializer.validated_data["asset"],
            receiver=serializer.validated_data["receiver"],
            actor=request.user,
        )
        return Response(ChannelTransactionOutput(tx).data, status=202)


class StatesApi(ChannelApiView):
    @extend_schema(
        summary="The channel's both-signed states, newest first", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request, channel_id: str) -> Response:
        channel = self.channel(channel_id)
        return Response(
            [
                {
                    "state": state_output(row.protocol_state),
                    "signatures": row.signatures,
                    "digest": row.digest,
                }
                for row in selectors.state_history(channel, limit=500)
            ]
        )


class TransactionsApi(ChannelApiView):
    @extend_schema(
        summary="The channel's on-chain transactions and their progress",
        responses=ChannelTransactionOutput(many=True),
    )
    def get(self, request: Request, channel_id: str) -> Response:
        return Response(
            ChannelTransactionOutput(selectors.channel_transactions(self.channel(channel_id)), many=True).data
        )


class DisputeApi(ChannelApiView):
    @extend_schema(
        summary="The dispute view: phase, time left, who acts next, on-chain beside ours, gas, watcher",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, channel_id: str) -> Response:
        view = selectors.dispute_view(self.channel(channel_id))
        on_chain = view.on_chain
        return Response(
            {
                "phase": view.phase,
                "on_chain": None
                if on_chain is None
                else {
                    "version": on_chain.version,
                    "finalizes_at": on_chain.finalizes_at,
                    "paid": on_chain.paid,
                },
                "our_version": view.our_version,
                "registered_is_our_latest": view.registered_is_ours_latest,
                "chain_time": view.chain_time,
                "seconds_left": view.seconds_left,
                "blocks_left": view.blocks_left,
                "next_actor": view.next_actor,
                "gas_spent": view.gas_spent,
                "watcher": [
                    {
                        "action": r.action,
                        "registered_version": r.registered_version,
                        "our_version": r.our_version,
                        "detail": r.detail,
                        "tx_hash": r.transaction.tx_hash if r.transaction else None,
                        "at": r.at.isoformat(),
                    }
                    for r in view.records
                ],
            }
        )


class StreamApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelStreamInput")
    class Input(serializers.Serializer):
        asset = AssetField()
        window = serializers.IntegerField(min_value=1, default=16)
        checkpoint_every = serializers.IntegerField(min_value=1, default=100)
        checkpoint_timeout = serializers.IntegerField(min_value=1, default=30)

    @extend_schema(
        summary="Open a micro-payment stream from the counterparty to the node",
        request=Input,
        responses={201: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        stream = services.stream_open(
            channel=self.channel(channel_id), actor=request.user, **serializer.validated_data
        )
        return Response({"stream_id": stream.pk, "status": stream.status}, status=201)


class StreamPaymentApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelStreamPaymentInput")
    class Input(serializers.Serializer):
        amount = AmountField()
        sequence = serializers.IntegerField(
            min_value=1, required=False, help_text="self custody: the payment"
        )
        previous_hash = serializers.RegexField(r"^0x[0-9a-fA-F]{64}$", required=False)
        asset = AssetField(required=False)
        state = ChannelStateInput(required=False)
        signature = SignatureField(required=False)

    @extend_schema(
        summary=(
            "The next micro-payment of a stream to the node: a custodial counterparty's by amount "
            "(the node signs for it), a self-custody one's as its signed payment (any order within the window)"
        ),
        request=Input,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = self.channel(channel_id)
        if "signature" not in data:
            applied = services.stream_pay_custodial(
                channel=channel, amount=data["amount"], actor=request.user
            )
            return self.answer(applied.channel)
        missing = [name for name in ("sequence", "previous_hash", "asset", "state") if name not in data]
        if missing:
            raise protocol_errors.BadState(f"a signed payment also needs {', '.join(missing)}")
        payment = StreamPayment(
            channel_id=channel.id_bytes,
            sequence=data["sequence"],
            previous_hash=bytes.fromhex(data["previous_hash"][2:]),
            asset=data["asset"],
            amount=Wei(data["amount"]),
            state=state_from_input(channel, data["state"]),
            signature=eip712.Signature(data["signature"]),
        )
        applied = services.stream_payment_receive(channel=channel, payment=payment, actor=request.user)
        dropped = any(type(event).__name__ == "PaymentDuplicateDropped" for event in applied.events)
        return self.answer(applied.channel, duplicate=dropped)


class NanocontractApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelNanocontractInput")
    class Input(serializers.Serializer):
        asset = AssetField()
        ours = AmountField(help_text="what the node locks")
        theirs = AmountField(help_text="what the counterparty locks")

    @extend_schema(
        summary="Open a nanocontract funded by a lock in this ledger channel (custodial counterparty)",
        request=Input,
        responses={201: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        sub = services.nanocontract_open(
            channel=self.channel(channel_id), actor=request.user, **serializer.validated_data
        )
        return self.answer(sub, status.HTTP_201_CREATED)


class ReleaseApi(ChannelApiView):
    @extend_schema(
        summary="Release a final nanocontract into its ledger channel",
        request=None,
        responses={200: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        result = services.nanocontract_release(channel=self.channel(channel_id), actor=request.user)
        return self.answer(result.channel)


class VirtualChannelOutput(serializers.Serializer):
    channel_id = serializers.CharField()
    role = serializers.CharField()
    version = serializers.IntegerField()
    participants = serializers.SerializerMethodField()

    def get_participants(self, virtual: Any) -> list[str]:
        return list(codec.decode(virtual.params).participants)


class VirtualChannelListApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelVirtualOpenInput")
    class Input(serializers.Serializer):
        first_channel_id = serializers.CharField(help_text="our ledger channel with the first end (Alice)")
        second_channel_id = serializers.CharField(help_text="our ledger channel with the second end (Bob)")
        asset = AssetField()
        first_amount = AmountField()
        second_amount = AmountField()

    @extend_schema(
        summary="Open a virtual channel between two custodial counterparties through this node",
        request=Input,
        responses={201: VirtualChannelOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        virtual = services.virtual_channel_open(
            first=self.channel(data["first_channel_id"]),
            second=self.channel(data["second_channel_id"]),
            asset=data["asset"],
            first_amount=data["first_amount"],
            second_amount=data["second_amount"],
            actor=request.user,
        )
        return Response(VirtualChannelOutput(virtual).data, status=201)


class VirtualChannelSettleApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelVirtualSettleInput")
    class Input(serializers.Serializer):
        first_balance = AmountField()
        second_balance = AmountField()

    @extend_schema(
        summary="Settle a virtual channel: its final state releases both locks, neutral for this node",
        request=Input,
        responses={200: VirtualChannelOutput, **ERRORS},
    )
    def post(self, request: Request, channel_id: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        virtual = VirtualChannel.objects.filter(channel_id=channel_id.lower()).first()
        if virtual is None:
            raise protocol_errors.UnknownChannel(f"no virtual channel {channel_id} is known here")
        virtual = services.virtual_channel_settle(
            virtual=virtual, actor=request.user, **serializer.validated_data
        )
        return Response(VirtualChannelOutput(virtual).data)


class VirtualChannelThroughPeerApi(ChannelApiView):
    @extend_schema_serializer(component_name="ChannelVirtualThroughPeerInput")
    class Input(serializers.Serializer):
        intermediary = serializers.CharField(help_text="the peer node in the middle (Ingrid), by name")
        peer = serializers.CharField(help_text="the peer node at the other end (Bob), by name")
        asset = AssetField()
        ours = AmountField(help_text="what this node puts in the virtual channel")
        theirs = AmountField(help_text="what the other end puts in")

    @extend_schema(
        summary=(
            "Open a virtual channel with a peer node through another peer node (no on-chain "
            "transaction); it updates and settles like any channel"
        ),
        request=Input,
        responses={201: ChannelOutput, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        peers = {
            peer.name: peer for peer in Peer.objects.filter(name__in=[data["intermediary"], data["peer"]])
        }
        missing = [name for name in (data["intermediary"], data["peer"]) if name not in peers]
        if missing:
            return Response(error_body("not_found", f"No peer node named {missing[0]}."), status=404)
        try:
            channel = virtual.virtual_channel_open_through(
                intermediary=peers[data["intermediary"]],
                peer=peers[data["peer"]],
                asset=data["asset"],
                ours=data["ours"],
                theirs=data["theirs"],
                actor=request.user,
            )
        except PeerUnreachable as error:
            return Response(error_body("peer_unreachable", str(error)), status=502)
        return self.answer(channel, status.HTTP_201_CREATED)
