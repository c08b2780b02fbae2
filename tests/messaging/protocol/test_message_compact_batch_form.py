"""The compact batch form: one head and the envelopes without what they share stand for exactly
the messages :func:`sign_batch` signed (same envelopes, digests, root, and paths read from the one
tree), and any change to an envelope, their order or the head is refused with its typed error."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from messaging.protocol import encode_message, make_envelope, plain_body, sign_batch
from messaging.protocol.envelope import (
    compact_batch_json,
    compact_batch_verify,
    parse_batch_head,
    parse_compact_envelope,
)
from messaging.protocol.errors import BadBatchProof, BadEnvelope, BadMessageSignature, MessageError
from settlement.protocol.signing import SigningKey

ALICE = SigningKey(bytes(range(32)))


def _signed(count: int) -> list[Any]:
    return sign_batch(
        [
            encode_message(
                make_envelope(
                    message_id=f"{index:032x}",
                    kind="agreement" if index == 1 else "note",
                    agreement="offer" if index == 1 else None,
                    sender="alice*bank-a.test",
                    sender_key=ALICE.public_key,
                    recipients=["carol*bank-c.test", "dave*bank-d.test"][: 1 + index % 2],
                    time=1_700_000_000_000 + index,
                    body=plain_body(f"note {index} ü \U0001f600"),
                )
            )
            for index in range(count)
        ],
        key=ALICE,
    )


def _parsed(body: dict[str, Any]) -> tuple[Any, list[Any]]:
    head = parse_batch_head(body["batch"])
    encoded = [parse_compact_envelope(item, head) for item in body["envelopes"]]
    return head, encoded


def test_a_compact_batch_is_the_signed_batch_and_its_tree_gives_each_path() -> None:
    signed = _signed(7)
    body = compact_batch_json(signed)
    assert all({"v", "sender", "sender_key"}.isdisjoint(item) for item in body["envelopes"])
    assert "reply_to" not in body["envelopes"][0]
    assert body["envelopes"][1]["agreement"] == "offer"
    head, encoded = _parsed(body)
    assert [item.signed_bytes for item in encoded] == [item.encoded.signed_bytes for item in signed]
    tree = compact_batch_verify(head, encoded)
    assert head.signature == signed[0].signature
    for index, item in enumerate(signed):
        assert tree.inclusion_proof(index).audit_path == item.batch.path


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda b: b["envelopes"].reverse(), BadBatchProof),
        (lambda b: b["envelopes"][0].update(time=5), BadBatchProof),
        (lambda b: b["envelopes"].pop(), BadBatchProof),
        (lambda b: b["batch"].update(size=8), BadBatchProof),
        (lambda b: b["batch"].update(root="00" * 32), BadBatchProof),
        (lambda b: b["batch"].update(sender="bob*bank-a.test"), BadBatchProof),
        (lambda b: b["batch"].update(signature="00" * 64), BadMessageSignature),
        (lambda b: b["batch"].update(sender_key=SigningKey(bytes(32)).public_key.hex()), BadBatchProof),
        (lambda b: b["batch"].update(extra=1), BadBatchProof),
        (lambda b: b["envelopes"][2].update(v=1), BadEnvelope),
        (lambda b: b["envelopes"][2].pop("body"), BadEnvelope),
        (lambda b: b["envelopes"][2].update(body={"encoding": "plain"}), BadEnvelope),
    ],
)
def test_any_change_to_a_compact_batch_is_refused(change: Any, error: type[MessageError]) -> None:
    body = copy.deepcopy(compact_batch_json(_signed(7)))
    change(body)

    def check() -> None:
        head, encoded = _parsed(body)
        compact_batch_verify(head, encoded)

    with pytest.raises(error):
        check()
