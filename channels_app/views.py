"""Dashboard pages of channels. Thin: read through selectors, write through services.

Buttons that move funds on-chain (settle, dispute, withdraw, checkpoint) post a form that
asks for confirmation in the browser and carries ``confirm=yes``; a post without it changes
nothing. Only operators and admins may post.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from channels_app import selectors, services, virtual
from channels_app.models import DisputeRecord, SubAllocation, VirtualChannel
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.types import ETH, address
from settlement import ethereum
from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.models import Counterparty, KycStatus
from settlement.models import Peer, Role
from settlement.permissions import read_roles_required, request_roles, write_roles_required
from settlement.transport import PeerUnreachable


def channel_rows() -> list[dict[str, Any]]:
    """The list's rows; the watcher's latest action on each channel is the alert people see."""
    latest = DisputeRecord.objects.filter(channel=OuterRef("pk")).order_by("-at", "-id")
    channels = selectors.channel_list().annotate(
        watcher_action=Subquery(latest.values("action")[:1]),
        watcher_detail=Subquery(latest.values("detail")[:1]),
    )[:200]
    return [{"channel": channel, "balances": selectors.balance_rows(channel)} for channel in channels]


def channel_context(channel_id: str) -> dict[str, Any]:
    channel = selectors.channel_get(channel_id=channel_id)
    sub_ids = list(channel.sub_allocations.values_list("sub_channel_id", flat=True))
    return {
        "channel": channel,
        "balances": selectors.balance_rows(channel),
        "states": selectors.state_history(channel),
        "sub_allocations": list(channel.sub_allocations.all()),
        "virtual_channels": list(VirtualChannel.objects.filter(channel_id__in=sub_ids)),
        "transactions": list(selectors.channel_transactions(channel)[:30]),
        "dispute": selectors.dispute_view(channel),
        "streams": list(channel.streams.all()),
        # A virtual channel's page links the ledger channel(s) of ours whose locks fund it.
        "funded_by": list(
            SubAllocation.objects.filter(sub_channel_id=channel.channel_id).select_related("channel")
        ),
    }


def _can_write(request: HttpRequest) -> bool:
    return bool(request_roles(request) & {Role.OPERATOR, Role.ADMIN})


@never_cache
@require_safe
@read_roles_required
def channel_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "channels_app/list.html",
        {
            "section": "channels",
            "rows": channel_rows(),
            "can_write": _can_write(request),
            "counterparties": Counterparty.objects.filter(kyc_status=KycStatus.ACCEPTED),
            "peers": Peer.objects.exclude(ethereum_address=""),
        },
    )


@never_cache
@require_safe
@read_roles_required
def channel_detail(request: HttpRequest, channel_id: str) -> HttpResponse:
    try:
        context = channel_context(channel_id)
    except ChannelError as error:
        return render(request, "404.html", {"path": request.path, "message": error.message}, status=404)
    return render(
        request,
        "channels_app/detail.html",
        {**context, "section": "channels", "can_write": _can_write(request)},
    )


@never_cache
@require_safe
@read_roles_required
def channel_dispute(request: HttpRequest, channel_id: str) -> HttpResponse:
    try:
        context = channel_context(channel_id)
    except ChannelError as error:
        return render(request, "404.html", {"path": request.path, "message": error.message}, status=404)
    return render(request, "channels_app/dispute.html", {**context, "section": "channels"})


def _amount(text: str) -> int:
    value = (text or "").strip()
    if not value.isdigit():
        raise ValueError("amounts are whole numbers in minor units (wei, or micro-PUSD)")
    return int(value)


def _asset(text: str) -> str:
    if text == "PUSD":
        return services.demo_coin_address()
    return ETH if text in ("", "ETH") else address(text)


@require_POST
@write_roles_required
def channel_open(request: HttpRequest) -> HttpResponse:
    try:
        asset = _asset(request.POST.get("asset", "ETH"))
        deposits = {asset: (_amount(request.POST.get("ours", "")), _amount(request.POST.get("theirs", "")))}
        party = request.POST.get("counterparty", "")
        if party.startswith("peer:"):
            peer = Peer.objects.filter(pk=int(party[5:])).first()
            if peer is None:
                raise ValueError("choose a peer node")
            channel = services.peer_channel_open(peer=peer, deposits=deposits, actor=request.user)
        else:
            counterparty = Counterparty.objects.get(pk=int(party or "0"))
            channel = services.channel_open(counterparty=counterparty, deposits=deposits, actor=request.user)
    except (ChannelError, CounterpartyError) as error:
        messages.error(request, error.message)
        return redirect("channels")
    except (ValueError, Counterparty.DoesNotExist, PeerUnreachable) as error:
        messages.error(request, str(error) or "choose a counterparty")
        return redirect("channels")
    return redirect("channel-detail", channel_id=channel.channel_id)


ACTIONS = (
    "deposit",
    "deposit_counterparty",
    "pay",
    "receive",
    "checkpoint",
    "settle",
    "dispute",
    "withdraw",
    "nanocontract",
    "release",
)


@require_POST
@write_roles_required
def channel_action(request: HttpRequest, channel_id: str, action: str) -> HttpResponse:
    """One button of the channel page; on-chain ones need ``confirm=yes``."""
    if action not in ACTIONS:
        messages.error(request, f"no such action: {action}")
        return redirect("channel-detail", channel_id=channel_id)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm the action: it moves funds.")
        return redirect("channel-detail", channel_id=channel_id)
    try:
        channel = selectors.channel_get(channel_id=channel_id)
        asset = _asset(request.POST.get("asset", "ETH"))
        if action in ("deposit", "deposit_counterparty"):
            services.channel_deposit(
                channel=channel,
                asset=asset,
                amount=_amount(request.POST.get("amount", "")),
                actor=request.user,
                by_counterparty=action == "deposit_counterparty",
            )
        elif action in ("pay", "receive"):
            services.channel_pay(
                channel=channel,
                asset=asset,
                amount=_amount(request.POST.get("amount", "")),
                actor=request.user,
                from_counterparty=action == "receive",
            )
        elif action == "nanocontract":
            services.nanocontract_open(
                channel=channel,
                asset=asset,
                ours=_amount(request.POST.get("ours", "")),
                theirs=_amount(request.POST.get("theirs", "")),
                actor=request.user,
            )
        elif action == "release":
            services.nanocontract_release(channel=channel, actor=request.user)
        elif action == "checkpoint":
            services.channel_checkpoint(channel=channel, actor=request.user)
        elif action == "settle":
            virtual.channel_settle_cooperatively(channel=channel, actor=request.user)
        elif action == "dispute":
            virtual.channel_settle_by_dispute(channel=channel, actor=request.user)
        else:
            services.channel_withdraw(
                channel=channel,
                asset=asset,
                receiver=request.POST.get("receiver") or channel.our_address,
                actor=request.user,
            )
    except (ChannelError, CounterpartyError) as error:
        messages.error(request, f"{error.message} ({error.code})")
    except (ValueError, ethereum.EthereumError, PeerUnreachable) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{action.replace('_', ' ')}: done")
    return redirect("channel-detail", channel_id=channel_id)


@require_POST
@write_roles_required
def virtual_channel_open(request: HttpRequest) -> HttpResponse:
    """Open a virtual channel with a peer node through another peer node (no on-chain step)."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm the action: it locks funds in a ledger channel.")
        return redirect("channels")
    try:
        intermediary = Peer.objects.filter(pk=int(request.POST.get("intermediary") or "0")).first()
        peer = Peer.objects.filter(pk=int(request.POST.get("peer") or "0")).first()
        if intermediary is None or peer is None:
            raise ValueError("choose the intermediary and the other end among the peer nodes")
        channel = virtual.virtual_channel_open_through(
            intermediary=intermediary,
            peer=peer,
            asset=_asset(request.POST.get("asset", "ETH")),
            ours=_amount(request.POST.get("ours", "")),
            theirs=_amount(request.POST.get("theirs", "")),
            actor=request.user,
        )
    except ChannelError as error:
        messages.error(request, f"{error.message} ({error.code})")
        return redirect("channels")
    except (ValueError, PeerUnreachable) as error:
        messages.error(request, str(error))
        return redirect("channels")
    messages.success(request, "virtual channel open")
    return redirect("channel-detail", channel_id=channel.channel_id)
