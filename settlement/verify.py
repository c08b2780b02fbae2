"""`python -m settlement.verify document.json [--rpc URL]`: check a signed document offline.

Dispatches on the JSON's ``"type"``: receipts of ledger entries and messages (``parsec-receipt``,
docs/receipt.md), the ledger fraud proofs (``ledger-equivocation``, ``ledger-unapplied-take``,
``ledger-payment-voided-and-final``) and the final proof of a payment between banks
(``ledger-payment-proof``). A receipt's every check is printed with its result; with ``--rpc``
its anchor is also checked against an Ethereum node with plain JSON-RPC (urllib, no web3).
Exit status 0 when the document proves what it claims, 1 when it does not (naming the first
failed check), 2 when it cannot be read. No Django; the network only with ``--rpc``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from consensus.protocol.receipt import ANCHORED_TOPIC, AnchorSection
from ledgers.protocol.errors import LedgerError
from ledgers.protocol.fraud import EQUIVOCATION, UNAPPLIED_TAKE, VOIDED_AND_FINAL, verify_fraud_proof
from ledgers.protocol.interbank import PaymentProof, verify_payment_proof
from ledgers.protocol.receipt import (
    RECEIPT_TYPE,
    CheckResult,
    ReceiptReport,
    ReceiptSection,
    Trust,
    receipt_verify,
)
from messaging.protocol.receipt import MESSAGE_SECTION

FRAUD_TYPES = {EQUIVOCATION, UNAPPLIED_TAKE, VOIDED_AND_FINAL}
RECEIPT_SECTIONS: tuple[ReceiptSection, ...] = (MESSAGE_SECTION,)
"""The optional receipt sections this verifier knows (docs/receipt.md, "Adding a section"): the
pure verifier in ledgers.protocol cannot import the packages that define them, so they meet here."""
RPC_TIMEOUT_SECONDS = 10


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
    if kind == RECEIPT_TYPE:
        report = receipt_verify(document, sections=RECEIPT_SECTIONS)
        failed = report.first_failure
        return report.ok, f"{kind}: " + (
            "every check passed" if failed is None else f"{failed.name}: {failed.detail}"
        )
    return False, f"unknown document type {kind!r}"


# ----------------------------------------------------------------- the anchor on the chain


class RpcError(Exception):
    """The Ethereum node could not be asked, or answered with an error."""


def _rpc(url: str, method: str, *params: Any) -> Any:
    if not url.startswith(("http://", "https://")):
        raise RpcError(f"{url} is not an http(s) JSON-RPC URL")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_SECONDS) as response:  # noqa: S310 - the user's URL
            answer = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as error:
        raise RpcError(f"{method} at {url} failed: {error}") from error
    if not isinstance(answer, dict) or answer.get("error"):
        raise RpcError(
            f"{method} at {url} answered {answer.get('error') if isinstance(answer, dict) else answer!r}"
        )
    return answer.get("result")


def _quantity(value: Any) -> int:
    return int(str(value), 16)


def _word(value: int | str) -> str:
    """A 32-byte topic of an address or integer, lower-case 0x-hex (how the event indexes it)."""
    number = int(value, 16) if isinstance(value, str) else value
    return "0x" + number.to_bytes(32, "big").hex()


def check_anchor_on_chain(anchor: AnchorSection, url: str) -> str:
    """Raise :class:`ValueError` (with a sentence) unless the chain at ``url`` holds the anchor the
    receipt claims: the transaction's log at that index comes from the contract, is an
    ``Anchored`` event from the anchoring account with this height and root, and its block is
    still the canonical one at that number. Returns what was found, with current confirmations."""
    chain_id = _quantity(_rpc(url, "eth_chainId"))
    if chain_id != anchor.chain_id:
        raise ValueError(f"the node is on chain {chain_id}, the anchor on chain {anchor.chain_id}")
    receipt = _rpc(url, "eth_getTransactionReceipt", anchor.tx)
    if receipt is None:
        raise ValueError(f"transaction {anchor.tx} is not on this chain (dropped by a reorganisation?)")
    if _quantity(receipt.get("status", "0x0")) != 1:
        raise ValueError(f"transaction {anchor.tx} failed (status 0)")
    if _quantity(receipt["blockNumber"]) != anchor.block_number:
        raise ValueError(f"transaction {anchor.tx} is in block number {_quantity(receipt['blockNumber'])}")
    logs = [
        log for log in receipt.get("logs", []) if _quantity(log.get("logIndex", "0x0")) == anchor.log_index
    ]
    if not logs:
        raise ValueError(f"transaction {anchor.tx} has no log at index {anchor.log_index}")
    log = logs[0]
    topics = [str(topic).lower() for topic in log.get("topics", [])]
    if str(log.get("address", "")).lower() != anchor.contract:
        raise ValueError(
            f"log {anchor.log_index} comes from {log.get('address')}, not the contract {anchor.contract}"
        )
    if len(topics) != 3 or topics[0] != ANCHORED_TOPIC:
        raise ValueError(f"log {anchor.log_index} is not an Anchored event")
    if topics[1] != _word(anchor.account):
        raise ValueError(f"the anchor was sent by {'0x' + topics[1][-40:]}, not {anchor.account}")
    if topics[2] != _word(anchor.height):
        raise ValueError(f"the event anchors height {int(topics[2], 16)}, not {anchor.height}")
    if str(log.get("data", "")).lower() != anchor.root:
        raise ValueError(f"the event anchors root {log.get('data')}, not {anchor.root}")
    # The receipt names the block by number only: the claim is "this log, in the canonical block
    # at that number". The transaction's own block must still be the canonical one there (a node
    # can answer for a block a reorganisation has since replaced).
    tx_block_hash = str(receipt.get("blockHash", "")).lower()
    block = _rpc(url, "eth_getBlockByNumber", hex(anchor.block_number), False)
    if block is None or str(block.get("hash", "")).lower() != tx_block_hash:
        raise ValueError(
            f"block {anchor.block_number} is no longer {tx_block_hash}: the anchor was reorganised away"
        )
    latest = _quantity(_rpc(url, "eth_blockNumber"))
    confirmations = latest - anchor.block_number + 1
    if confirmations < anchor.confirmations:
        raise ValueError(
            f"the receipt claims {anchor.confirmations} confirmations when issued, the chain has {confirmations} now"
        )
    try:
        finalized = _rpc(url, "eth_getBlockByNumber", "finalized", False)
    except RpcError:
        finalized = None
    final = finalized is not None and _quantity(finalized["number"]) >= anchor.block_number
    return (
        f"Anchored(height={anchor.height}, root={anchor.root}) by {anchor.account} is in canonical block "
        f"{anchor.block_number}, log {anchor.log_index}; {confirmations} confirmations now"
        + ("; finalized" if final else "")
    )


def _anchor_on_chain(report: ReceiptReport, url: str) -> CheckResult:
    receipt = report.receipt
    if receipt is None or not report.ok:
        return CheckResult("anchor-on-chain", "skip", "needs a receipt whose offline checks passed")
    if receipt.anchor is None:
        return CheckResult(
            "anchor-on-chain", "fail", "the receipt carries no anchor yet: ask the node for a newer receipt"
        )
    try:
        return CheckResult("anchor-on-chain", "pass", check_anchor_on_chain(receipt.anchor, url))
    except RpcError as error:
        return CheckResult("anchor-on-chain", "fail", f"could not ask the chain: {error}")
    except (ValueError, KeyError, TypeError) as error:
        return CheckResult("anchor-on-chain", "fail", str(error))


# ----------------------------------------------------------------- the command


def _key(text: str) -> bytes:
    """A public key given as 64 hex digits or base64 (as receipts print them)."""
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a key (64 hex digits or base64)") from error
    if len(key) != 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a 32-byte Ed25519 key")
    return key


def _print_checks(checks: tuple[CheckResult, ...] | list[CheckResult]) -> None:
    labels = {"pass": "ok", "fail": "FAILED", "skip": "skipped", "not yet": "not yet"}
    for check in checks:
        print(f"{check.name:<22} {labels[check.status]:<8} {check.detail}")


def verify_receipt(document: Any, *, rpc: str | None, trust: Trust) -> int:
    report = receipt_verify(document, trust=trust, sections=RECEIPT_SECTIONS)
    checks = list(report.checks)
    if rpc is not None:
        checks.append(_anchor_on_chain(report, rpc))
    _print_checks(checks)
    failed = next((check for check in checks if check.status == "fail"), None)
    if failed is None and any(check.status == "skip" for check in checks):
        failed = next(check for check in checks if check.status == "skip")
    if failed is not None:
        print(f"NOT VALID: check {failed.name} failed: {failed.detail}")
        return 1
    anchored = report.anchored
    if rpc is not None:
        print("VALID: every check passed, the anchor too, on the chain")
    elif anchored:
        print("VALID: every offline check passed (check the anchor on the chain with --rpc URL)")
    else:
        print("VALID: every offline check passed; the block is not anchored yet")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settlement.verify", description=__doc__.splitlines()[0])
    parser.add_argument("document", type=Path, help="a JSON file (receipt, fraud proof, payment proof)")
    parser.add_argument(
        "--rpc", metavar="URL", help="an Ethereum JSON-RPC URL: check a receipt's anchor there"
    )
    parser.add_argument(
        "--validator",
        action="append",
        type=_key,
        metavar="KEY",
        help="a validator key you trust (repeat for each): the receipt's validator set must be exactly these",
    )
    parser.add_argument(
        "--issuer", type=_key, metavar="KEY", help="the bank's key you trust: the receipt must be its"
    )
    arguments = parser.parse_args(argv)
    try:
        document = json.loads(arguments.document.read_text())
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: nested beyond reason
        print(f"cannot read {arguments.document}: {error}", file=sys.stderr)
        return 2
    if isinstance(document, dict) and document.get("type") == RECEIPT_TYPE:
        trust = Trust(
            validators=frozenset(arguments.validator) if arguments.validator else None,
            issuer=arguments.issuer,
        )
        return verify_receipt(document, rpc=arguments.rpc, trust=trust)
    ok, message = verify_document(document)
    print(("VALID " if ok else "NOT VALID ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
