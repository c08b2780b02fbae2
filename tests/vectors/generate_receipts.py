"""Write the committed receipt vectors: ``python -m tests.vectors.generate_receipts`` from the
repository root (docs/receipt.md, "Test vectors").

``tests/vectors/receipts/`` holds valid receipts and invalid ones, in the format the node issues
(version 3); ``index.json`` names, for each file, the exit status ``python -m settlement.verify``
must give and the first check that must fail. The invalid ones (except the first) are re-signed
by the issuer's key after the change, as a malicious issuer would: the issuer's signature
verifies and an inner proof must catch them. The world is deterministic (fixed keys, Ed25519 is
deterministic), so regenerating gives the same bytes; tests/ledgers/protocol/test_receipt_vectors.py
checks both the files and that.

``tests/vectors/receipts/v2/`` holds the version 2 vectors this script wrote before version 3,
kept as they were: a verifier must still give their verdicts. This script no longer writes them.
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

from receipt_world import (  # noqa: E402
    BANK,
    as_version_2_paths,
    build_world,
    key_for,
    resign,
    retired_bank_keys,
)

from ledgers.protocol.receipt import BankKey  # noqa: E402
from settlement.protocol.handover import key_handover_sign  # noqa: E402


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


def _hashes(path: str) -> list[bytes]:
    """The hashes of a path as receipts write it (one base64 string, 32 bytes each)."""
    raw = base64.b64decode(path)
    return [raw[at : at + 32] for at in range(0, len(raw), 32)]


def _packed(hashes: list[bytes]) -> str:
    return base64.b64encode(b"".join(hashes)).decode()


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
    rotated = build_world(rotations=1).document
    rotated_twice = build_world(rotations=2).document
    # bank-a's retired key signs a hand-over to a key that is not the issuer's.
    retired = retired_bank_keys(1)[0]
    handed_elsewhere = BankKey(
        retired.public_key, key_handover_sign(retired, key_for("stranger").public_key)
    ).to_json()
    # Two rotations later, the co-signing key's direct hand-over to the issuer's key (one link).
    direct = build_world(rotations=2, direct_handover=True).document
    oldest, middle = retired_bank_keys(2)
    middle_direct = BankKey(middle.public_key, key_handover_sign(middle, BANK.public_key)).to_json()
    oldest_to_middle = BankKey(oldest.public_key, key_handover_sign(oldest, middle.public_key)).to_json()
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
            _changed(valid, _set("block.inclusion_path", _packed(_hashes(block["inclusion_path"])[:-1]))),
            1,
            "block-inclusion",
            "the last hash of the leaf's audit path removed",
        ),
        (
            "invalid-block-path-element-changed.json",
            _changed(
                valid,
                _set(
                    "block.inclusion_path",
                    _packed([_hashes(block["inclusion_path"])[1], *_hashes(block["inclusion_path"])[1:]]),
                ),
            ),
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
            _changed(valid, _set("log.inclusion_path", _packed(_hashes(log["inclusion_path"])[:-1]))),
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
            "valid-co-signed-before-a-rotation.json",
            rotated,
            0,
            None,
            "co-signed with a key bank-a has since rotated: entry.bank_keys names it, with its "
            "hand-over to the issuer's key",
        ),
        (
            "valid-co-signed-two-rotations-ago.json",
            rotated_twice,
            0,
            None,
            "co-signed two rotations ago: two hand-overs lead from the co-signing key to the issuer's",
        ),
        (
            "valid-message-batch-co-signed-before-a-rotation.json",
            build_world(message=True, batch_size=13, batch_index=6, party_signs=False, rotations=1).document,
            0,
            None,
            "message 6 of a batch of 13, its message-batch entry co-signed before a rotation",
        ),
        (
            "valid-co-signed-two-rotations-ago-handed-over-directly.json",
            direct,
            0,
            None,
            "co-signed two rotations ago: the co-signing key's one hand-over straight to the issuer's "
            "key, signed at the second rotation",
        ),
        (
            "valid-message-batch-co-signed-two-rotations-ago-handed-over-directly.json",
            build_world(
                message=True,
                batch_size=13,
                batch_index=6,
                party_signs=False,
                rotations=2,
                direct_handover=True,
            ).document,
            0,
            None,
            "message 6 of a batch of 13, its entry co-signed two rotations ago, one direct hand-over",
        ),
        (
            "invalid-direct-hand-over-of-another-earlier-key-re-signed.json",
            _changed(direct, _set("entry.bank_keys.0", middle_direct)),
            1,
            "entry-bank-signature",
            "another earlier key's genuine direct hand-over to the issuer, re-signed: that key did not co-sign",
        ),
        (
            "invalid-direct-hand-over-to-the-next-key-only-re-signed.json",
            _changed(direct, _set("entry.bank_keys.0", oldest_to_middle)),
            1,
            "bank-key",
            "the co-signing key's hand-over to the key after it, the link from there left out, re-signed",
        ),
        (
            "invalid-bank-keys-removed-re-signed.json",
            _changed(rotated, lambda document: document["entry"].pop("bank_keys")),
            1,
            "entry-bank-signature",
            "the hand-over chain left out and the receipt re-signed: the issuer's key did not co-sign",
        ),
        (
            "invalid-bank-key-handed-over-elsewhere-re-signed.json",
            _changed(rotated, _set("entry.bank_keys.0", handed_elsewhere)),
            1,
            "bank-key",
            "the co-signing key's genuine hand-over to another key, re-signed: it does not lead to the issuer",
        ),
        (
            "invalid-bank-keys-order-swapped-re-signed.json",
            _changed(rotated_twice, _set("entry.bank_keys", rotated_twice["entry"]["bank_keys"][::-1])),
            1,
            "bank-key",
            "the two hand-overs in the wrong order, re-signed",
        ),
        (
            "invalid-bank-key-swapped-for-the-issuers-re-signed.json",
            _changed(rotated, _set("entry.bank_keys.0", BankKey(BANK.public_key, bytes(64)).to_json())),
            1,
            "bank-key",
            "the issuer's own key named as an earlier key, re-signed",
        ),
        (
            "invalid-version-2-with-bank-keys-re-signed.json",
            _changed(rotated, lambda document: document.update(as_version_2_paths(document))),
            1,
            "format",
            "a version 2 receipt (paths as lists) carrying bank_keys, re-signed: version 2 has none",
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
