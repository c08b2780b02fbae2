"""`manage.py counterparties_demo_seed`: accepted demo counterparties with federation
addresses and a valid LEI, made through the services (audited), and safe to run twice."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from settlement.counterparties.models import Counterparty, CustodialKeySet, KycReview
from settlement.models import AuditEvent
from settlement.protocol.identifiers import is_valid_lei

pytestmark = pytest.mark.django_db


def test_the_seed_makes_accepted_custodial_counterparties_once(settings):
    call_command("counterparties_demo_seed")
    first = list(Counterparty.objects.values_list("pk", "federation_name", "kyc_status"))
    events = AuditEvent.objects.count()

    call_command("counterparties_demo_seed")

    assert list(Counterparty.objects.values_list("pk", "federation_name", "kyc_status")) == first
    assert AuditEvent.objects.count() == events
    assert {name for _, name, _ in first} >= {"alice", "acme"}
    assert {status for _, _, status in first} == {"ACCEPTED"}
    acme = Counterparty.objects.get(federation_name="acme")
    assert acme.kind == "company"
    assert is_valid_lei(acme.lei)
    assert acme.federation_address == f"acme*{settings.NODE_DOMAIN}"
    assert CustodialKeySet.objects.count() == len(first)
    assert KycReview.objects.filter(to_status="ACCEPTED").count() == len(first)
    assert AuditEvent.objects.filter(action="counterparty.create", actor="demo-seed").count() == len(first)
