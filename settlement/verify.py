"""`python -m settlement.verify proof.json`: check a signed document offline.

Dispatches on the JSON's ``"type"``: the ledger fraud proofs (``ledger-equivocation``,
``ledger-unapplied-take``, ``ledger-payment-voided-and-final``) and the final proof of a payment
between banks (``ledger-payment-proof``). Receipts (ARCHITECTURE.md §7) are to be added here.
Exit status 0 when the document proves what it claims, 1 when it does not, 2 when unreadable.
Pure: no Django, no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledgers.protocol.errors import LedgerError
from ledgers.protocol.fraud import EQUIVOCATION, UNAPPLIED_TAKE, VOIDED_AND_FINAL, verify_fraud_proof
from ledgers.protocol.interbank import PaymentProof, verify_payment_proof

FRAUD_TYPES = {EQUIVOCATION, UNAPPLIED_TAKE, VOIDED_AND_FINAL}


def verify_document(document: Any) -> tuple[bool, str]:
    kind = document.get("type") if isinstance(document, dict) else None
    if kind in FRAUD_TYPES:
        verdict = verify_fraud_proof(document)
        return verdict.proven, f"{kind}: {verdict.reason} (accused key {verdict.accused_key})"
    if kind == "ledger-payment-proof":
        try:
            proof = PaymentProof.from_json(document)
            verify_payment_proof(proof)
        except LedgerError as error:
            return False, f"{kind}: {error.code}: {error}"
        return (
            True,
            f"{kind}: payment {proof.instruction.id} is final, signed by the sender and {', '.join(proof.instruction.banks)}",
        )
    return False, f"unknown document type {kind!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settlement.verify", description=__doc__.splitlines()[0])
    parser.add_argument("document", type=Path, help="a JSON file (fraud proof, payment proof)")
    arguments = parser.parse_args(argv)
    try:
        document = json.loads(arguments.document.read_text())
    except (OSError, ValueError) as error:
        print(f"cannot read {arguments.document}: {error}", file=sys.stderr)
        return 2
    ok, message = verify_document(document)
    print(("VALID " if ok else "NOT VALID ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
