"""Demo counterparties for this node, ACCEPTED, made through the services (so the audit log
and KYC history tell how they got there). Safe to run again: existing names are left alone."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from settlement.counterparties import services
from settlement.counterparties.kyc_rules import KycDecision
from settlement.counterparties.models import Counterparty, CounterpartyKind, Custody
from settlement.protocol.identifiers import lei_check_digits

ACTOR = "demo-seed"
# A minimal, well-formed one-page PDF: the KYC document every demo counterparty submits.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def demo_lei(name: str) -> str:
    """A checksum-valid LEI: 4-character prefix, 14 characters of the name, 2 check digits."""
    prefix = ("5299" + "".join(char for char in name.upper() if char.isalnum())).ljust(18, "0")[:18]
    return prefix + lei_check_digits(prefix)


def demo_counterparties() -> list[dict[str, str]]:
    node = str(settings.NODE_NAME)
    country = "DE"
    return [
        {
            "kind": CounterpartyKind.PERSON,
            "legal_name": "Alice Example",
            "country": country,
            "contact_email": "alice@example.org",
            "federation_name": "alice",
        },
        {
            "kind": CounterpartyKind.PERSON,
            "legal_name": "Bob Example",
            "country": "FR",
            "contact_phone": "+33 1 23 45 67 89",
            "federation_name": "bob",
        },
        {
            "kind": CounterpartyKind.COMPANY,
            "legal_name": "Acme Trading GmbH",
            "country": country,
            "lei": demo_lei(f"ACME{node}"),
            "contact_email": "treasury@acme.example",
            "federation_name": "acme",
        },
    ]


class Command(BaseCommand):
    help = "Create a few ACCEPTED demo counterparties (custodial keys) with federation addresses."

    def handle(self, *args: Any, **options: Any) -> None:
        for spec in demo_counterparties():
            created = self._seed(spec)
            state = "created" if created else "exists"
            self.stdout.write(
                f"{settings.NODE_NAME}: {spec['federation_name']}*{settings.NODE_DOMAIN} {state}"
            )

    @transaction.atomic
    def _seed(self, spec: dict[str, str]) -> bool:
        if Counterparty.objects.filter(
            federation_name=spec["federation_name"], federation_domain=settings.NODE_DOMAIN
        ).exists():
            return False
        counterparty = services.counterparty_create(actor=ACTOR, custody=Custody.CUSTODIAL, **spec)
        services.kyc_document_upload(
            counterparty=counterparty,
            actor=ACTOR,
            file=io.BytesIO(DEMO_PDF),
            filename=f"{spec['federation_name']}-identity.pdf",
            content_type="application/pdf",
        )
        services.kyc_submit(counterparty=counterparty, actor=ACTOR)
        services.kyc_decide(
            counterparty=counterparty, actor=ACTOR, decision=KycDecision.ACCEPT, reason="demo data"
        )
        return True
