"""`python manage.py ledgers_demo_seed`: make this node ready to pay and be paid in the demo.

This bank's EUR (``<domain>/EUR``, 2 decimals) and each peer's, the bank's own books, a ledger for
every ACCEPTED counterparty, a deposit of 1,000.00 EUR issued to each custodial one, and a credit
limit of 100,000.00 EUR for every peer. Through the services, so the audit log says how. Safe to
run again (run it after the peers are added, and again when one is added).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from ledgers import services
from ledgers.models import Ledger, LedgerEntry
from settlement.counterparties.models import Counterparty, Custody, KycStatus
from settlement.models import Peer, PeerCreditLimit

ACTOR = "demo-seed"
DEPOSIT = "1000.00"
PEER_LIMIT_MINOR = 100_000_00


class Command(BaseCommand):
    help = "Demo assets, ledgers, deposits and peer credit limits for this node (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        eur = services.asset_create(code="EUR", decimals=2, actor=ACTOR)
        for peer in Peer.objects.all():
            services.asset_create(code="EUR", decimals=2, issuer=peer.domain, actor=ACTOR)
            PeerCreditLimit.objects.get_or_create(
                peer=peer, asset=eur.uai, defaults={"limit": PEER_LIMIT_MINOR}
            )
        if not Ledger.objects.filter(ubi=f"ubi:{settings.NODE_DOMAIN}:bank").exists():
            services.ledger_open(name="bank", actor=ACTOR)
        opened = 0
        for counterparty in Counterparty.objects.filter(
            kyc_status=KycStatus.ACCEPTED, federation_domain=settings.NODE_DOMAIN
        ):
            ledger = Ledger.objects.filter(counterparty=counterparty).first()
            if ledger is None:
                ledger = services.ledger_open(
                    name=counterparty.federation_name, counterparty=counterparty, actor=ACTOR
                )
                opened += 1
            if (
                counterparty.custody == Custody.CUSTODIAL
                and not LedgerEntry.objects.filter(ledger=ledger, kind="issue").exists()
            ):
                services.asset_issue(
                    ledger=ledger, asset=eur, amount=DEPOSIT, reference="demo deposit", actor=ACTOR
                )
        self.stdout.write(
            f"{settings.NODE_NAME}: {eur.uai}, {opened} ledgers opened, {Peer.objects.count()} peers limited"
        )
