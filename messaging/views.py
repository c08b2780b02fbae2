"""Dashboard pages of messaging: per counterparty an inbox and an outbox with each delivery's
state (live over /ws/messages/<id>/), the undeliverable list, and a compose form with a
confirmation step. Thin: selectors read, services write, templates render."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from messaging import selectors, services
from messaging.protocol.envelope import AGREEMENT_ROLES, KINDS, MAX_BODY_BYTES
from messaging.protocol.errors import MessageError
from settlement.counterparties.models import Counterparty, Custody, KycStatus
from settlement.permissions import read_roles_required, request_roles, write_roles_required
from settlement.roles import WRITE_ROLES


def mailbox_context(counterparty: Counterparty) -> dict[str, Any]:
    return {
        "counterparty": counterparty,
        "inbox": list(selectors.inbox(counterparty=counterparty, limit=50)),
        "outbox": list(selectors.outbox(counterparty=counterparty, limit=50)),
    }


def mailbox_html(counterparty_id: int) -> str:
    counterparty = Counterparty.objects.filter(pk=counterparty_id).first()
    if counterparty is None:
        return '<section id="mailbox" class="panel"><p class="empty">No such counterparty.</p></section>'
    return render_to_string("messaging/partials/mailbox.html", mailbox_context(counterparty))


@require_GET
@read_roles_required
def messages_page(request: HttpRequest) -> HttpResponse:
    counterparties = Counterparty.objects.filter(kyc_status=KycStatus.ACCEPTED).order_by("federation_name")
    chosen = None
    if request.GET.get("counterparty", "").isdigit():
        chosen = get_object_or_404(Counterparty, pk=int(request.GET["counterparty"]))
    elif counterparties:
        chosen = counterparties[0]
    return render(
        request,
        "messaging/messages.html",
        {
            "section": "messages",
            "title": "Messages",
            "counterparties": counterparties,
            "undeliverable": selectors.undeliverable(limit=50),
            "can_write": bool(request_roles(request) & WRITE_ROLES),
            **(mailbox_context(chosen) if chosen is not None else {"counterparty": None}),
        },
    )


class ComposeForm(forms.Form):
    sender = forms.ModelChoiceField(
        queryset=Counterparty.objects.filter(kyc_status=KycStatus.ACCEPTED, custody=Custody.CUSTODIAL),
        help_text="a custodial counterparty: this node signs (and encrypts) with its sealed keys",
    )
    recipients = forms.CharField(
        max_length=2000, help_text="federation addresses, separated by commas: carol*bank-c.test"
    )
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in KINDS], initial="note")
    agreement = forms.ChoiceField(
        choices=[("", "—"), *[(role, role) for role in AGREEMENT_ROLES]],
        required=False,
        help_text="for an agreement: an offer, or the acceptance of one (name it in reply to)",
    )
    reply_to = forms.CharField(max_length=32, required=False, help_text="the id of the message this answers")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=MAX_BODY_BYTES, strip=False)
    encrypt = forms.BooleanField(
        required=False, initial=True, help_text="box the text to each recipient's key (end to end)"
    )
    message_id = forms.CharField(widget=forms.HiddenInput, max_length=32)

    def clean_recipients(self) -> list[str]:
        value = self.cleaned_data["recipients"]
        recipients = [item.strip().lower() for item in value.split(",") if item.strip()]
        if not recipients:
            raise forms.ValidationError("name at least one recipient")
        return recipients


@require_http_methods(["GET", "POST"])
@write_roles_required
def compose_page(request: HttpRequest) -> HttpResponse:
    """The form, then a confirmation showing exactly what will be signed and to whom; only the
    confirmed POST sends. The message id is fixed when the form is first shown, so a double
    click or a resent form is a replay, not a second message."""
    context: dict[str, Any] = {"section": "messages", "title": "Compose"}
    if request.method == "GET":
        initial = {"message_id": uuid.uuid4().hex, "encrypt": True, **request.GET.dict()}
        return render(request, "messaging/compose.html", {**context, "form": ComposeForm(initial=initial)})
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return render(request, "messaging/compose.html", {**context, "form": form}, status=400)
    data = form.cleaned_data
    if request.POST.get("step") != "confirm":
        return render(request, "messaging/compose_confirm.html", {**context, "form": form, "data": data})
    try:
        result = services.message_send(
            request=services.ComposeRequest(
                sender=data["sender"].federation_address,
                kind=data["kind"],
                recipients=data["recipients"],
                text=data["text"],
                encrypt=data["encrypt"],
                reply_to=data["reply_to"] or None,
                agreement=data["agreement"] or None,
                message_id=data["message_id"],
            ),
            actor=request.user,
        )
    except MessageError as error:
        return render(
            request,
            "messaging/compose.html",
            {**context, "form": form, "error": error},
            status=error.http_status,
        )
    return render(
        request,
        "messaging/compose_done.html",
        {
            **context,
            "message": selectors.message_get(message_id=result.message.message_id),
            "replayed": result.replayed,
        },
    )
