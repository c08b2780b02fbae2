"""Write the committed receipt vectors: ``python -m tests.vectors.generate_receipts`` from the
repository root (docs/receipt.md, "Test vectors").

``tests/vectors/receipts/`` holds valid receipts and invalid ones; ``index.json`` names, for each
file, the exit status ``python -m settlement.verify`` must give and the first check that must
fail. The invalid ones (except the first) are re-signed by the issuer's key after the change, as
a malicious issuer would: the issuer's signature verifies and an inner proof must catch them.
The world is deterministic (fixed keys, Ed25519 is deterministic), so regenerating gives the same
bytes; tests/ledgers/protocol/test_receipt_vectors.py checks both the files and that.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "receipts"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledgers" / "protocol"))

from receipt_world import build_world, resign  # noqa: E402


def _changed(
    document: dict[str, Any], change: Callable[[dict[str, Any]], None], *, re_sign: bool = True
) -> dict[str, Any]:
    forged = copy.deepcopy(document)
    change(forged)
    return resign(forged) if re_sign else forged


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value

    return change


def vectors() -> list[tuple[str, dict[str, Any], int, str | None, str]]:
    """(file name, document, exit status, first failed check, what was done)."""
    valid = build_world().document
    entry_body = valid["entry"]["entry"]["body"]
    block = valid["block"]
    log = valid["log"]
    message = build_world(message=True).document
    batched = build_world(message=True, batch_size=13, batch_index=6, party_signs=False).document
    path = base64.b64decode(batched["message"]["path"])
    # The path with its first two hashes swapped: still 32-byte hashes, leading elsewhere.
    swapped_path = base64.b64encode(path[32:64] + path[:32] + path[64:]).decode()
    return [
        ("valid-anchored.json", valid, 0, None, "a receipt of an anchored entry"),
        (
            "valid-not-anchored-yet.json",
            build_world(anchor_height=None).document,
            0,
            None,
            "issued before the block was anchored: log and anchor are null",
        ),
        (
            "valid-credit-without-party-signature.json",
            build_world(party_signs=False).document,
            0,
            None,
            "an entry the bank's signature alone makes",
        ),
        (
            "invalid-amount-changed-not-re-signed.json",
            _changed(valid, _set("entry.entry.body", {**entry_body, "amount": "925050"}), re_sign=False),
            1,
            "issuer-signature",
            "the amount changed, the issuer's signature left as it was",
        ),
        (
            "invalid-amount-changed-re-signed.json",
            _changed(valid, _set("entry.entry.body", {**entry_body, "amount": "925050"})),
            1,
            "entry-bank-signature",
            "the amount changed and the receipt re-signed by the issuer",
        ),
        (
            "invalid-party-signature-swapped.json",
            _changed(valid, _set("entry.party_signature", valid["entry"]["bank_signature"])),
            1,
            "entry-party-signature",
            "the party's signature replaced by the bank's",
        ),
        (
            "invalid-block-path-shortened.json",
            _changed(valid, _set("block.inclusion_path", block["inclusion_path"][:-1])),
            1,
            "block-inclusion",
            "the last hash of the leaf's audit path removed",
        ),
        (
            "invalid-block-path-element-changed.json",
            _changed(valid, _set("block.inclusion_path.0", block["inclusion_path"][1])),
            1,
            "block-signatures",
            "an audit path hash replaced: the root it leads to was never signed",
        ),
        (
            "invalid-two-of-four-signatures.json",
            _changed(valid, _set("block.signatures.2", None)),
            1,
            "block-signatures",
            "one of three validator signatures removed: 2 of 4 is not more than 2/3",
        ),
        (
            "invalid-log-path-shortened.json",
            _changed(valid, _set("log.inclusion_path", log["inclusion_path"][:-1])),
            1,
            "log-inclusion",
            "the block hash's path in the block log shortened",
        ),
        (
            "invalid-anchored-root-changed.json",
            _changed(valid, _set("anchor.root", "0x" + "ab" * 32)),
            1,
            "log-consistency",
            "the anchored root is not where the consistency path leads",
        ),
        (
            "valid-message-anchored.json",
            message,
            0,
            None,
            "a message's receipt: its sender's message entry, and the signed envelope (body boxed to the recipient)",
        ),
        (
            "invalid-message-envelope-changed-re-signed.json",
            _changed(message, _set("message.envelope.time", message["message"]["envelope"]["time"] + 1)),
            1,
            "message",
            "the envelope's time changed and the receipt re-signed: the sender's signature breaks",
        ),
        (
            "invalid-message-signature-changed-re-signed.json",
            _changed(message, _set("message.signature", base64.b64encode(bytes(64)).decode())),
            1,
            "message",
            "the sender's signature replaced and the receipt re-signed: it does not verify on the envelope",
        ),
        (
            "valid-message-batch-anchored.json",
            batched,
            0,
            None,
            "a receipt of message 6 of a batch of 13 its sender signed once: the message-batch entry "
            "holds the root, size and batch signature, the section the message's audit path",
        ),
        (
            "invalid-message-batch-path-changed-re-signed.json",
            _changed(batched, _set("message.path", swapped_path)),
            1,
            "message",
            "the first two hashes of the message's path to the batch root swapped and the receipt re-signed",
        ),
        (
            "invalid-message-batch-index-changed-re-signed.json",
            _changed(batched, _set("message.index", batched["message"]["index"] + 1)),
            1,
            "message",
            "the message's index in its batch changed and the receipt re-signed",
        ),
        (
            "invalid-message-batch-size-changed-re-signed.json",
            _changed(batched, _set("entry.entry.body.size", 14)),
            1,
            "entry-bank-signature",
            "the batch size in the message-batch entry changed and the receipt re-signed",
        ),
        (
            "invalid-unknown-section.json",
            _changed(valid, _set("note", "trust me")),
            1,
            "format",
            "an unknown top-level key",
        ),
    ]


def write() -> None:
    HERE.mkdir(exist_ok=True)
    index = []
    for name, document, status, failed, what in vectors():
        (HERE / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        index.append({"file": name, "exit_status": status, "first_failed_check": failed, "what": what})
    (HERE / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    write()
