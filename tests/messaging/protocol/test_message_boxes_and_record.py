"""Encrypted bodies (a NaCl Box per recipient) and the ledger record of a message, with the check
a receipt verifier runs on a message section."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgers.protocol.catalogue import KindContext
from ledgers.protocol.errors import BadBody
from ledgers.protocol.kinds import DEFAULT_CATALOGUE
from messaging.protocol import (
    check_message_section,
    encode_message,
    make_envelope,
    message_entry_body,
    open_body,
    seal_body,
    sign_message,
)
from messaging.protocol.errors import (
    BadEnvelope,
    BadMessageSignature,
    CiphertextDoesNotOpen,
    MessageError,
    SectionMismatch,
)
from messaging.protocol.record import envelope_from_receipt, message_section_of
from settlement.protocol.keys import X25519KeyPair
from settlement.protocol.signing import SigningKey

ALICE = SigningKey(bytes(range(32)))
ALICE_BOX = X25519KeyPair(bytes(range(2, 34)))
CAROL_BOX = X25519KeyPair(bytes(range(3, 35)))
DAVE_BOX = X25519KeyPair(bytes(range(4, 36)))


def boxed(text: str, **overrides: Any) -> Any:
    recipients = {"carol*bank-c.test": CAROL_BOX.public_key, "dave*bank-c.test": DAVE_BOX.public_key}
    parts: dict[str, Any] = {
        "message_id": "c" * 32,
        "kind": "otc-trade",
        "sender": "alice*bank-a.test",
        "sender_key": ALICE.public_key,
        "recipients": list(recipients),
        "time": 1_700_000_000_000,
        "body": seal_body(text=text, sender_box=ALICE_BOX, recipient_keys=recipients),
    }
    parts.update(overrides)
    return make_envelope(**parts)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_each_recipient_opens_its_own_box_and_nobody_else_can(text):
    made = boxed(text)
    assert open_body(made, recipient="carol*bank-c.test", recipient_box=CAROL_BOX) == text
    assert open_body(made, recipient="dave*bank-c.test", recipient_box=DAVE_BOX) == text
    assert "text" not in made.body  # the plaintext is not in the envelope, only boxes
    with pytest.raises(CiphertextDoesNotOpen):
        open_body(made, recipient="carol*bank-c.test", recipient_box=DAVE_BOX)


def test_a_box_that_was_altered_or_comes_from_another_sender_key_does_not_open():
    made = boxed("buy 100 MEGA at 12.50").to_json()
    ciphertext = bytearray(base64.b64decode(made["body"]["boxes"]["carol*bank-c.test"]))
    ciphertext[-1] ^= 1
    made["body"]["boxes"]["carol*bank-c.test"] = base64.b64encode(bytes(ciphertext)).decode()
    altered = make_envelope(
        message_id=made["id"],
        kind=made["kind"],
        sender=made["sender"],
        sender_key=ALICE.public_key,
        recipients=made["recipients"],
        time=made["time"],
        body=made["body"],
    )
    with pytest.raises(CiphertextDoesNotOpen):
        open_body(altered, recipient="carol*bank-c.test", recipient_box=CAROL_BOX)
    # Another sender key in the envelope: the box authenticates its sender, so it does not open.
    body = dict(boxed("x").body, sender_box_key=X25519KeyPair(bytes(range(9, 41))).public_key.hex())
    with pytest.raises(CiphertextDoesNotOpen):
        open_body(boxed("x", body=body), recipient="carol*bank-c.test", recipient_box=CAROL_BOX)


def section_and_entry(made: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    signed = sign_message(encode_message(made), key=ALICE)
    section = message_section_of(signed)
    entry = {
        "ledger": "ubi:bank-a.test:alice",
        "height": 3,
        "prev": "00" * 32,
        "kind": "message",
        "body": message_entry_body(signed.encoded),
        "time": 1_700_000_000_100,
    }
    return section, entry


def test_the_ledger_record_carries_the_digest_never_the_body_and_is_a_kind_the_catalogue_knows():
    made = boxed("secret terms")
    _section, entry = section_and_entry(made)
    assert set(entry["body"]) == {"message", "id", "message_kind", "recipients"}
    assert "secret" not in str(entry["body"])
    assert made.body["boxes"]["carol*bank-c.test"] not in str(entry["body"])
    rule = DEFAULT_CATALOGUE.get("message")
    context = KindContext(ledger="ubi:bank-a.test:alice", assets={})  # type: ignore[arg-type]
    rule.validate(entry["body"], context)
    effects = rule.effects(entry["body"], context)
    assert not effects.changes
    assert not effects.places_holds
    assert not effects.party_must_sign
    with pytest.raises(BadBody):
        rule.validate({**entry["body"], "text": "leak"}, context)
    with pytest.raises(BadBody):
        rule.validate({**entry["body"], "message": "zz"}, context)


def test_check_message_section_accepts_the_matching_entry_and_names_each_mismatch():
    section, entry = section_and_entry(boxed("terms"))
    assert check_message_section(section, entry).digest.hex() == entry["body"]["message"]
    assert (
        check_message_section(section, {"entry": entry, "validator_signature": "00"}).envelope.id == "c" * 32
    )

    cases = [
        ({**section, "signature": base64.b64encode(bytes(64)).decode()}, entry, BadMessageSignature),
        ({**section, "signature": section["signature"].rstrip("=")}, entry, BadMessageSignature),
        ({**section, "digest": entry["body"]["message"]}, entry, SectionMismatch),
        # The envelope in another form than the receipt's: empty fields written out, a key in hex.
        ({**section, "envelope": {**section["envelope"], "reply_to": None}}, entry, SectionMismatch),
        ({**section, "envelope": {**section["envelope"], "attachments": []}}, entry, SectionMismatch),
        (
            {**section, "envelope": {**section["envelope"], "sender_key": ALICE.public_key.hex()}},
            entry,
            BadEnvelope,
        ),
        ({**section, "envelope": envelope_from_receipt(section["envelope"]).to_json()}, entry, BadEnvelope),
        (section, {**entry, "kind": "transfer"}, SectionMismatch),
        (section, {**entry, "ledger": "ubi:bank-b.test:alice"}, SectionMismatch),
        (section, {**entry, "body": {**entry["body"], "message": "11" * 32}}, SectionMismatch),
        (section, {**entry, "body": {**entry["body"], "recipients": ["carol*bank-c.test"]}}, SectionMismatch),
        ({"envelope": section["envelope"]}, entry, SectionMismatch),
    ]
    for bad_section, bad_entry, error in cases:
        with pytest.raises(error):
            check_message_section(bad_section, bad_entry)


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(["id", "kind", "time", "sender", "recipients", "body"]), data=st.data())
def test_any_tampered_envelope_field_fails_the_section_check(path, data):
    section, entry = section_and_entry(boxed("terms"))
    tampered = {**section, "envelope": dict(section["envelope"])}
    replacements = {
        "id": "d" * 32,
        "kind": "note",
        "time": section["envelope"]["time"] + data.draw(st.integers(1, 10**6)),
        "sender": "mallory*bank-a.test",
        "recipients": ["carol*bank-c.test"],
        "body": {"encoding": "plain", "text": data.draw(st.text(max_size=20))},
    }
    tampered["envelope"][path] = replacements[path]
    with pytest.raises(MessageError):
        check_message_section(tampered, entry)
