"""Dashboard forms: shape only. The services check the rules and answer with field errors,
which the views put back on these forms."""

from __future__ import annotations

from django import forms

from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.kyc_rules import KycDecision
from settlement.counterparties.models import CounterpartyKind, Custody


class CounterpartyCreateForm(forms.Form):
    kind = forms.ChoiceField(choices=CounterpartyKind.choices)
    legal_name = forms.CharField(max_length=200, label="Legal name")
    country = forms.CharField(max_length=2, label="Country (ISO 3166 alpha-2)")
    lei = forms.CharField(max_length=20, required=False, label="LEI (companies)")
    contact_email = forms.CharField(max_length=254, required=False, label="Contact e-mail")
    contact_phone = forms.CharField(max_length=32, required=False, label="Contact phone")
    federation_name = forms.CharField(max_length=64, label="Federation name")
    custody = forms.ChoiceField(choices=Custody.choices, initial=Custody.CUSTODIAL)
    ed25519_public_key = forms.CharField(required=False, label="Ed25519 public key (hex, self custody)")
    x25519_public_key = forms.CharField(required=False, label="X25519 public key (hex, self custody)")
    ethereum_address = forms.CharField(required=False, label="Ethereum address (self custody)")


class KycDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(decision.value, decision.value) for decision in KycDecision])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class KycDocumentForm(forms.Form):
    file = forms.FileField()


def form_add_service_errors(form: forms.Form, error: CounterpartyError) -> None:
    """Put a service's field errors on the form; fields it does not show go to the top."""
    if not error.fields:
        form.add_error(None, error.message)
    for field, messages in error.fields.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
