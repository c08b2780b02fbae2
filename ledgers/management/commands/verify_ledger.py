"""`python manage.py verify_ledger ID [--against copy.json]`: replay a chain with the rules.

ID is the ledger's id or UBI. Without ``--against`` it checks the bank's own copy from height 0
(heights, links, hashes, both signatures, bodies, recomputed balances against the projection).
With ``--against`` it also compares a party's exported copy (the JSON list that
``GET /api/ledgers/{id}/entries`` returns) with the bank's, entry by entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledgers import selectors
from ledgers.models import Balance
from ledgers.protocol.chain import compare_chains
from ledgers.protocol.entries import SignedEntry
from ledgers.protocol.errors import LedgerError


class Command(BaseCommand):
    help = "Verify a ledger's chain (and optionally a party's copy of it)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ledger", help="the ledger's id or UBI")
        parser.add_argument(
            "--against", type=Path, help="a party's exported copy (JSON list of signed entries)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ledger = selectors.ledger_get(ledger=options["ledger"])
        except LedgerError as error:
            raise CommandError(str(error)) from error
        report = selectors.ledger_verify(ledger=ledger)
        if not report.ok:
            assert report.problem is not None
            raise CommandError(
                f"{ledger.ubi}: {report.verified} entries verify; height {report.problem.height}: "
                f"{report.problem.code}: {report.problem.message}"
            )
        projected = {
            balance.asset.uai: balance.amount
            for balance in Balance.objects.filter(ledger=ledger).select_related("asset")
        }
        replayed = {
            asset: amount for asset, amount in report.balances.items() if amount or asset in projected
        }
        if {asset: amount for asset, amount in projected.items() if amount or asset in replayed} != replayed:
            raise CommandError(
                f"{ledger.ubi}: the balance projection {projected} differs from the chain's {replayed}"
            )
        if report.head.next_height != ledger.next_height or report.head.last_hash.hex() != ledger.last_hash:
            raise CommandError(f"{ledger.ubi}: the stored head does not match the chain's last entry")
        self.stdout.write(f"{ledger.ubi}: {report.verified} entries verify; balances {replayed}")
        if options["against"]:
            self._compare(ledger, options["against"])

    def _compare(self, ledger: Any, path: Path) -> None:
        try:
            items = json.loads(path.read_text())
            copy = [SignedEntry.from_json(item) for item in items]
        except (OSError, ValueError, LedgerError) as error:
            raise CommandError(f"cannot read the copy {path}: {error}") from error
        start = copy[0].entry.height if copy else 0
        ours = selectors.signed_entries(ledger=ledger, from_height=start)
        divergence = compare_chains(copy, ours)
        if divergence is not None:
            raise CommandError(
                f"the copy differs from the bank's at height {divergence.height}: {divergence.reason}"
            )
        self.stdout.write(f"the copy ({len(copy)} entries from height {start}) matches the bank's")
