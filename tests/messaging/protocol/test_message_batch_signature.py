"""Batch signatures (amortised signing): a sender signs the RFC 9162 root of its messages' digests
once; each message verifies alone with its audit path; the batch signature lives in a domain of
its own; any change to a message, its place or the batch head is refused with a typed error."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import nacl.signing
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from messaging.protocol import (
    encode_message,
    make_envelope,
    parse_signed_message,
    plain_body,
    sign_batch,
    sign_message,
)
from messaging.protocol.envelope import (
    BATCH_OBJECT_KIND,
    MAX_BATCH_SIZE,
    MESSAGE_OBJECT_KIND,
    BatchHeads,
    EncodedMessage,
    batch_paths_proven,
    batch_signed_bytes,
    parse_unverified,
    verify_batch_message,
    verify_unverified,
)
from messaging.protocol.errors import BadBatchProof, BadMessageSignature, MessageError
from messaging.protocol.record import check_message_section, message_batch_entry_body, message_section_of
from settlement.protocol.merkle import MerkleTree, verify_inclusion
from settlement.protocol.signing import SigningKey, is_valid

ALICE = SigningKey(bytes(range(32)))
MALLORY = SigningKey(bytes(range(2, 34)))


def encoded(
    count: int, *, sender: str = "alice*bank-a.test", key: SigningKey = ALICE, start: int = 0
) -> list[EncodedMessage]:
    return [
        encode_message(
            make_envelope(
                message_id=f"{start + index:032x}",
                kind="note",
                sender=sender,
                sender_key=key.public_key,
                recipients=["carol*bank-c.test"],
                time=1_700_000_000_000 + index,
                body=plain_body(f"note {index}"),
            )
        )
        for index in range(count)
    ]


BATCH = sign_batch(encoded(11), key=ALICE)
WIRE = [item.to_json() for item in BATCH]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 11, 64])
def test_every_message_of_a_batch_verifies_alone_with_its_path_and_the_one_signature(size: int) -> None:
    signed = sign_batch(encoded(size), key=ALICE)
    assert len({item.signature for item in signed}) == 1
    for index, item in enumerate(signed):
        assert item.batch is not None
        assert (item.batch.index, item.batch.size) == (index, size)
        again = parse_signed_message(json.loads(json.dumps(item.to_json())))
        assert again == item
        # The root is the standard RFC 9162 root of the digests, the path a standard audit path.
        tree = MerkleTree.from_entries(entry.digest for entry in encoded(size))
        assert item.batch.root == tree.root
        verify_inclusion(tree.leaf(index), index, size, item.batch.path, tree.root)


def test_the_batch_signature_is_domain_separated_from_a_message_signature() -> None:
    head = BATCH[0]
    assert head.batch is not None
    signed_bytes = batch_signed_bytes("alice*bank-a.test", head.batch.root, head.batch.size)
    assert signed_bytes.startswith(f"parsec/v1/{BATCH_OBJECT_KIND}\x00".encode())
    assert is_valid(
        ALICE.public_key,
        BATCH_OBJECT_KIND,
        {"sender": "alice*bank-a.test", "root": head.batch.root.hex(), "size": 11},
        head.signature,
    )
    # A single message's signature is no batch signature, and a batch signature no message signature.
    single = sign_message(encoded(1)[0], key=ALICE)
    assert not is_valid(ALICE.public_key, MESSAGE_OBJECT_KIND, single.envelope.to_json(), head.signature)
    one_batch = sign_batch(encoded(1), key=ALICE)[0]
    with pytest.raises(BadMessageSignature):
        parse_signed_message(
            {"envelope": one_batch.envelope.to_json(), "signature": one_batch.signature.hex()}
        )
    as_batch = {**one_batch.to_json()["batch"], "signature": single.signature.hex()}
    with pytest.raises(BadMessageSignature):
        parse_signed_message({"envelope": single.envelope.to_json(), "batch": as_batch})


def test_the_signature_of_a_batch_is_verified_once_per_caller_and_only_for_that_exact_head() -> None:
    verified: set[Any] = set()
    for item in WIRE:
        parse_signed_message(item, verified=verified)
    assert len(verified) == 1
    # A remembered head does not vouch for another signature over the same root.
    forged = copy.deepcopy(WIRE[4])
    head = BATCH[4].batch
    assert head is not None
    other_key = nacl.signing.SigningKey(MALLORY.seed)
    forged["batch"]["signature"] = other_key.sign(
        batch_signed_bytes("alice*bank-a.test", head.root, head.size)
    ).signature.hex()
    with pytest.raises(BadMessageSignature):
        parse_signed_message(forged, verified=verified)


def _mutated(index: int, change: Any) -> dict[str, Any]:
    wire = copy.deepcopy(WIRE[index])
    change(wire)
    return wire


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda w: w["batch"].update(index=w["batch"]["index"] + 1), BadBatchProof),
        (lambda w: w["batch"]["path"].__setitem__(0, "00" * 32), BadBatchProof),
        (lambda w: w["batch"]["path"].pop(), BadBatchProof),
        (lambda w: w["batch"]["path"].append("00" * 32), BadBatchProof),
        (lambda w: w["batch"].update(root="00" * 32), BadBatchProof),
        # A neighbouring size can fold the same path to the same root (RFC 9162 paths do not
        # bind the size); the signed head does, so the signature refuses it then.
        (lambda w: w["batch"].update(size=12), BadMessageSignature),
        (lambda w: w["batch"].update(size=MAX_BATCH_SIZE + 1), BadBatchProof),
        (lambda w: w["batch"].update(index=11), BadBatchProof),
        (lambda w: w["batch"].update(signature="00" * 64), BadMessageSignature),
        (lambda w: w["batch"].update(signature="zz"), BadMessageSignature),
        (lambda w: w["envelope"].update(time=1), BadBatchProof),
        (lambda w: w["envelope"].update(sender="mallory*bank-a.test"), BadBatchProof),
        (lambda w: w.update(envelope=WIRE[3]["envelope"]), BadBatchProof),
        (lambda w: w["batch"].pop("path"), BadBatchProof),
        (lambda w: w["batch"].update(extra=1), BadBatchProof),
        (lambda w: w["batch"].update(index=True), BadBatchProof),
        (lambda w: w.update(signature="00" * 64), MessageError),
    ],
    ids=[
        "index",
        "path element",
        "path shortened",
        "path longer",
        "root",
        "size",
        "size beyond the limit",
        "index beyond the size",
        "signature",
        "signature not hex",
        "envelope",
        "sender",
        "another message of the batch",
        "no path",
        "unknown field",
        "index a boolean",
        "both forms",
    ],
)
def test_a_changed_message_place_or_head_is_refused_with_its_typed_error(change: Any, error: type) -> None:
    with pytest.raises(error) as raised:
        parse_signed_message(_mutated(5, change))
    assert raised.value.code in ("bad_batch_proof", "bad_signature", "bad_envelope")


def test_a_batch_holds_one_senders_messages_signed_by_its_key() -> None:
    with pytest.raises(BadBatchProof):
        sign_batch([*encoded(2), *encoded(1, sender="bob*bank-a.test", start=9)], key=ALICE)
    with pytest.raises(BadMessageSignature):
        sign_batch(encoded(2), key=MALLORY)
    with pytest.raises(BadBatchProof):
        sign_batch([], key=ALICE)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_change_to_a_batch_signed_message_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(WIRE) - 1))
    wire = copy.deepcopy(WIRE[index])
    field = data.draw(st.sampled_from(["root", "size", "index", "path", "signature", "envelope"]))
    if field in ("size", "index"):
        wire["batch"][field] += data.draw(st.integers(-3, 3).filter(bool))
    elif field == "envelope":
        wire["envelope"]["time"] += data.draw(st.integers(1, 10))
    elif field == "path":
        path = wire["batch"]["path"]
        position = data.draw(st.integers(0, len(path) - 1))
        path[position] = (
            path[position][:10] + data.draw(st.sampled_from("0123456789abcdef")) + path[position][11:]
        )
    else:
        text = wire["batch"][field]
        position = data.draw(st.integers(0, len(text) - 1))
        wire["batch"][field] = (
            text[:position] + data.draw(st.sampled_from("0123456789abcdef")) + text[position + 1 :]
        )
    assume(wire != WIRE[index])
    with pytest.raises(MessageError):
        parse_signed_message(wire)


def test_a_receipt_section_and_a_batch_entry_prove_the_message_and_nothing_else() -> None:
    item = BATCH[7]
    entry = {
        "ledger": "ubi:bank-a.test:alice",
        "kind": "message-batch",
        "body": message_batch_entry_body(item),
    }
    section = message_section_of(item)
    assert set(section) == {"envelope", "index", "path"}
    assert check_message_section(section, entry) == item
    with pytest.raises(MessageError) as raised:
        check_message_section(section, {**entry, "ledger": "ubi:bank-b.test:alice"})
    assert raised.value.code == "message_section_mismatch"
    with pytest.raises(MessageError) as raised:
        check_message_section(
            section,
            {**entry, "body": message_batch_entry_body(sign_batch(encoded(11, start=50), key=ALICE)[0])},
        )
    assert raised.value.code == "bad_batch_proof"
    with pytest.raises(MessageError) as raised:
        check_message_section(section, {**entry, "kind": "message"})
    assert raised.value.code == "message_section_mismatch"
    with pytest.raises(BadBatchProof):
        verify_batch_message(item.encoded, BATCH[6].batch, item.signature)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        [1, 2],
        ["cd" * 32, 5],
        ["c" * 63, "d" * 65],
        ["CD" * 32],
        [""],
        [None],
        [["cd" * 32]],
        ["cd" * 32] * 17,
    ],
    ids=["numbers", "a number", "63 and 65 digits", "upper case", "empty", "null", "nested", "17 hashes"],
)
def test_a_malformed_path_is_refused_before_anything_is_hashed(path: list[Any]) -> None:
    wire = copy.deepcopy(WIRE[2])
    wire["batch"]["path"] = path
    with pytest.raises(BadBatchProof):
        parse_signed_message(wire)


def test_a_whole_batch_is_proven_by_one_tree_and_a_wrong_path_is_left_to_the_fold() -> None:
    items = [(item.encoded, item.batch) for item in BATCH]
    assert batch_paths_proven(items) == frozenset(range(len(BATCH)))
    assert batch_paths_proven(items[:-1]) == frozenset()  # not the whole batch: each path is folded
    wrong = list(items)
    proof = BATCH[3].batch
    assert proof is not None
    wrong[3] = (BATCH[3].encoded, dataclasses.replace(proof, path=(proof.path[1], *proof.path[1:])))
    assert batch_paths_proven(wrong) == frozenset(range(len(BATCH))) - {3}
    with pytest.raises(BadBatchProof):
        verify_batch_message(wrong[3][0], wrong[3][1], BATCH[3].signature)
    # Two messages' places swapped: the tree has another root, nothing is proven by it.
    swapped = [(items[0][0], items[1][1]), (items[1][0], items[0][1]), *items[2:]]
    assert batch_paths_proven(swapped) == frozenset()
    # Where they stand in the request does not matter, only the index each claims.
    assert batch_paths_proven([items[1], items[0], *items[2:]]) == frozenset(range(len(BATCH)))


def test_a_head_parsed_once_per_request_still_checks_every_messages_own_place_and_form() -> None:
    heads: BatchHeads = {}
    parsed = [parse_unverified(wire, heads=heads) for wire in WIRE]
    assert len(heads) == 1  # one root, size and signature for the eleven messages
    assert [item.batch for item in parsed] == [item.batch for item in BATCH]
    assert [item.signature for item in parsed] == [bytes(item.signature) for item in BATCH]
    for item in parsed:
        assert item.batch is not None
        assert item.batch.path_bytes == b"".join(item.batch.path)
    # The head known, each message's own index and path are still checked for form ...
    for change, error in [
        (lambda batch: batch.update(index=len(BATCH)), BadBatchProof),
        (lambda batch: batch.update(index=True), BadBatchProof),
        (lambda batch: batch["path"].__setitem__(0, "CD" * 32), BadBatchProof),
        (lambda batch: batch["path"].__setitem__(0, "cd" * 31 + " c"), BadBatchProof),
        (lambda batch: batch.update(size=True), BadBatchProof),
        (lambda batch: batch.update(size=MAX_BATCH_SIZE + 1), BadBatchProof),
        (lambda batch: batch.update(root=batch["root"].upper()), BadBatchProof),
        (lambda batch: batch.update(signature=batch["signature"][:-2]), BadMessageSignature),
    ]:
        wire = copy.deepcopy(WIRE[4])
        change(wire["batch"])
        with pytest.raises(error):
            parse_unverified(wire, heads=heads)
    # ... and a message whose path is not its place in the tree is not proven by it: the fold
    # then names it.
    wrong = copy.deepcopy(WIRE[5])
    wrong["batch"]["path"][0] = "ab" * 32
    items = [parse_unverified(wire, heads=heads) for wire in [*WIRE[:5], wrong, *WIRE[6:]]]
    proven = batch_paths_proven([(item.encoded, item.batch) for item in items if item.batch is not None])
    assert proven == frozenset(range(len(BATCH))) - {5}
    with pytest.raises(BadBatchProof):
        verify_unverified(items[5], path_proven=5 in proven)
