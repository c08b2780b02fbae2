"""Dashboard pages of ledgers: the ledgers with balances (live), a chain view that checks every
link, a payment form with a confirmation step, the offer board. Thin: selectors read, services
write, templates render."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from ledgers import correspondent_services, interbank_services, selectors, services
from ledgers.errors import http_status
from ledgers.models import Asset, Ledger
from ledgers.protocol.amounts import format_amount
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.identifiers import ledger_namespace, parse_ledger_id
from settlement.permissions import read_roles_required, request_roles, write_roles_required
from settlement.roles import WRITE_ROLES


def ledger_rows() -> list[dict[str, Any]]:
    """The ledgers table: each ledger with its balances per asset, formatted with decimals."""
    return [
        {
            "ledger": ledger,
            "balances": [
                {
                    "asset": balance.asset.uai,
                    "amount": format_amount(balance.amount, decimals=balance.asset.decimals),
                    "credit_line": balance.credit_line,
                }
                for balance in ledger.balances.all()
            ],
        }
        for ledger in selectors.ledger_list()[:500]
    ]


def ledgers_table_context() -> dict[str, Any]:
    return {
        "rows": ledger_rows(),
        "transfers": selectors.transfer_list(limit=20),
        "node_name": settings.NODE_NAME,
    }


def ledgers_table_html() -> str:
    return render_to_string("ledgers/partials/ledgers_table.html", ledgers_table_context())


@require_GET
@read_roles_required
def ledger_list_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ledgers/list.html",
        {
            "section": "ledgers",
            "title": "Ledgers",
            **ledgers_table_context(),
            "offers": selectors.offer_board(),
            "can_write": bool(request_roles(request) & WRITE_ROLES),
        },
    )


@require_GET
@read_roles_required
def ledger_chain_page(request: HttpRequest, ledger_id: int) -> HttpResponse:
    try:
        ledger = selectors.ledger_get(ledger=ledger_id)
    except LedgerError as error:
        raise Http404(str(error)) from error
    try:
        start = max(0, int(request.GET.get("from", max(0, ledger.next_height - 50))))
    except ValueError:
        start = 0
    links = selectors.chain_links(ledger=ledger, from_height=start, limit=100)
    return render(
        request,
        "ledgers/chain.html",
        {"section": "ledgers", "title": ledger.ubi, "ledger": ledger, "links": links, "start": start},
    )


class PaymentForm(forms.Form):
    sender = forms.ModelChoiceField(queryset=Ledger.objects.all(), to_field_name="ubi")
    recipient = forms.CharField(
        max_length=330, help_text="a UBI: ubi:<bank>:<name>; at another bank, the payment goes through it"
    )
    asset = forms.ModelChoiceField(queryset=Asset.objects.all(), to_field_name="uai")
    amount = forms.CharField(max_length=40, help_text='a decimal amount, e.g. "10.50"')
    via = forms.ChoiceField(
        required=False,
        label="Route",
        help_text="to another bank: directly when it is our peer, else through a correspondent we find; "
        "or through the correspondent you pick",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from settlement.models import Peer

        via = self.fields["via"]
        assert isinstance(via, forms.ChoiceField)
        via.choices = [("", "automatic")] + [
            (domain, f"through {domain}") for domain in Peer.objects.values_list("domain", flat=True)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        recipient = data.get("recipient")
        if recipient:
            try:
                namespace = ledger_namespace(parse_ledger_id(recipient))
            except LedgerError as error:
                self.add_error("recipient", str(error))
            else:
                data["other_bank"] = namespace if namespace != settings.NODE_DOMAIN else ""
                if not data["other_bank"] and not Ledger.objects.filter(ubi=recipient).exists():
                    self.add_error("recipient", f"{recipient} is not a ledger kept by this bank")
        if data.get("sender") and data["sender"].ubi == recipient:
            self.add_error("recipient", "pay another ledger")
        if data.get("via") and (not data.get("other_bank") or data["via"] == data["other_bank"]):
            self.add_error("via", "a correspondent is a third bank, for a recipient at another bank")
        asset, amount = data.get("asset"), data.get("amount")
        if asset is not None and amount:
            try:
                data["minor"] = services.minor_units(amount, decimals=asset.decimals)
            except LedgerError as error:
                self.add_error("amount", str(error))
        return data


@require_http_methods(["GET", "POST"])
@write_roles_required
def payment_page(request: HttpRequest) -> HttpResponse:
    """Two steps: the form, then a confirmation that shows exactly what will move; only the
    confirmed POST calls the service. The idempotency key is fixed when the form is first shown,
    so a double click or a resent form is a replay, not a second payment."""
    context: dict[str, Any] = {"section": "ledgers", "title": "Pay"}
    if request.method == "GET":
        form = PaymentForm(initial={"idempotency_key": f"web-{uuid.uuid4()}", **request.GET.dict()})
        return render(request, "ledgers/pay.html", {**context, "form": form})
    form = PaymentForm(request.POST)
    if not form.is_valid():
        return render(request, "ledgers/pay.html", {**context, "form": form}, status=400)
    data = form.cleaned_data
    if request.POST.get("step") != "confirm":
        shown = format_amount(data["minor"], decimals=data["asset"].decimals)
        return render(
            request, "ledgers/pay_confirm.html", {**context, "form": form, "data": data, "shown": shown}
        )
    try:
        if data["other_bank"]:
            payment = correspondent_services.payment_send(
                request=interbank_services.InterbankRequest(
                    reference=data["idempotency_key"],
                    sender=data["sender"].ubi,
                    recipient=data["recipient"],
                    asset=data["asset"].uai,
                    recipient_asset=f"{data['other_bank']}/{data['asset'].code}",
                    amount=data["amount"],
                ),
                via=data.get("via") or None,
                actor=request.user,
            )
            return render(request, "ledgers/pay_done.html", {**context, "payment": payment, "data": data})
        result = services.payment_intrabank(
            request=services.PaymentRequest(
                idempotency_key=data["idempotency_key"],
                sender=data["sender"].ubi,
                recipient=data["recipient"],
                asset=data["asset"].uai,
                amount=data["amount"],
            ),
            actor=request.user,
        )
    except LedgerError as error:
        return render(
            request,
            "ledgers/pay.html",
            {**context, "form": form, "error": error},
            status=http_status(error),
        )
    return render(request, "ledgers/pay_done.html", {**context, "result": result, "data": data})
