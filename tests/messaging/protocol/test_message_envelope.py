"""The message envelope: canonical encoding, digest and Ed25519 signature; strict parsing with
typed errors for every malformed field; the agreement linking rules."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.protocol import (
    encode_message,
    make_envelope,
    message_digest,
    parse_envelope,
    parse_signed_message,
    plain_body,
    sign_message,
    verify_message,
)
from messaging.protocol.envelope import (
    MAX_ATTACHMENT_BYTES,
    MAX_BODY_BYTES,
    MAX_RECIPIENTS,
    check_acceptance,
)
from messaging.protocol.errors import (
    BadAddress,
    BadEnvelope,
    BadLink,
    BadMessageKind,
    BadMessageSignature,
    MessageError,
    MessageTooLarge,
)
from settlement.protocol.encoding import object_hash
from settlement.protocol.signing import SigningKey, sign, verify

ALICE = SigningKey(bytes(range(32)))
CAROL = SigningKey(bytes(range(1, 33)))


def envelope(**overrides: Any) -> Any:
    parts: dict[str, Any] = {
        "message_id": "0" * 31 + "1",
        "kind": "note",
        "sender": "alice*bank-a.test",
        "sender_key": ALICE.public_key,
        "recipients": ["carol*bank-c.test"],
        "time": 1_700_000_000_000,
        "body": plain_body("hello"),
    }
    parts.update(overrides)
    return make_envelope(**parts)


def wire(**changes: Any) -> dict[str, Any]:
    value = envelope().to_json()
    value.update(changes)
    return value


def test_signature_and_digest_are_the_shared_signing_functions_over_the_canonical_envelope():
    encoded = encode_message(envelope())
    signed = sign_message(encoded, key=ALICE)
    # The same bytes settlement.protocol.signing signs under the kind "message": one way to sign.
    assert signed.signature == sign(ALICE, "message", encoded.envelope.to_json())
    verify(ALICE.public_key, "message", encoded.envelope.to_json(), signed.signature)
    assert signed.digest == object_hash("message", encoded.envelope.to_json())
    assert parse_signed_message(signed.to_json()).digest == signed.digest


def test_a_test_vector_fixes_the_digest_of_a_known_envelope():
    # A change to the encoding or the field set changes these: receipts made before would not verify.
    made = envelope()
    assert message_digest(made).hex() == "7e9281c17a7da03253832ef2d9f65cc952b68ec0d5955559fcb4d6ce15a17782"
    assert sign_message(encode_message(made), key=ALICE).signature.hex() == (
        "8ffd6e0f59c7dfa38f789a5f1490f72756247acf83b96afbda9e403dd4d273e7"
        "7a9cc37960bd269e794f3544b3429c1680bb91ec1555e6c6524b67b24d231f02"
    )


def test_a_signature_by_another_key_or_over_another_envelope_is_refused():
    encoded = encode_message(envelope())
    with pytest.raises(BadMessageSignature):
        sign_message(encoded, key=CAROL)  # the envelope names alice's key
    forged = encode_message(envelope(sender_key=CAROL.public_key))
    stolen = sign_message(encode_message(envelope()), key=ALICE).signature
    with pytest.raises(BadMessageSignature):
        verify_message(forged, stolen)
    tampered = sign_message(encoded, key=ALICE).to_json()
    tampered["envelope"]["body"]["text"] = "hullo"
    with pytest.raises(BadMessageSignature):
        parse_signed_message(tampered)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"v": 2}, BadEnvelope),
        ({"id": "xyz"}, BadEnvelope),
        ({"kind": "gossip"}, BadMessageKind),
        ({"sender": "alice"}, BadAddress),
        ({"sender": "Alice*bank-a.test"}, BadAddress),
        ({"sender_key": "00"}, BadEnvelope),
        ({"recipients": []}, BadEnvelope),
        ({"recipients": ["carol*bank-c.test", "carol*bank-c.test"]}, BadEnvelope),
        ({"recipients": ["alice*bank-a.test"]}, BadEnvelope),
        ({"recipients": [f"r{i}*bank-c.test" for i in range(MAX_RECIPIENTS + 1)]}, MessageTooLarge),
        ({"time": -1}, BadEnvelope),
        ({"time": 1.5}, BadEnvelope),
        ({"time": True}, BadEnvelope),
        ({"reply_to": "0" * 31 + "1"}, BadLink),
        ({"agreement": "offer"}, BadLink),
        ({"body": {"encoding": "plain"}}, BadEnvelope),
        ({"body": {"encoding": "rot13", "text": "x"}}, BadEnvelope),
        ({"body": {"encoding": "plain", "text": "x" * (MAX_BODY_BYTES + 1)}}, MessageTooLarge),
        ({"body": {"encoding": "plain", "text": "é" * (MAX_BODY_BYTES // 2 + 1)}}, MessageTooLarge),
        ({"body": {"encoding": "box", "sender_box_key": "00" * 32, "boxes": {}}}, BadEnvelope),
        (
            {"body": {"encoding": "box", "sender_box_key": "00" * 32, "boxes": {"carol*bank-c.test": "%%%"}}},
            BadEnvelope,
        ),
        ({"attachments": [{"sha256": "0" * 64, "size": 1}]}, BadEnvelope),
        ({"attachments": [{"sha256": "0" * 64, "size": 10, "media_type": "text/html"}]}, BadEnvelope),
        (
            {
                "attachments": [
                    {"sha256": "0" * 64, "size": MAX_ATTACHMENT_BYTES + 1, "media_type": "image/png"}
                ]
            },
            MessageTooLarge,
        ),
        ({"kind": "document"}, BadEnvelope),
        ({"extra": 1}, BadEnvelope),
    ],
)
def test_every_malformed_field_is_refused_with_its_typed_error(changes, error):
    with pytest.raises(error) as raised:
        parse_envelope(wire(**changes))
    assert raised.value.code
    assert str(raised.value)


def test_agreement_roles_and_links():
    offer = envelope(kind="agreement", agreement="offer", message_id="a" * 32)
    with pytest.raises(BadLink, match="names the offer"):
        envelope(kind="agreement", agreement="acceptance")
    with pytest.raises(BadLink):
        envelope(kind="agreement")
    acceptance = envelope(
        kind="agreement",
        agreement="acceptance",
        reply_to=offer.id,
        sender="carol*bank-c.test",
        sender_key=CAROL.public_key,
        recipients=["alice*bank-a.test"],
        message_id="b" * 32,
        time=offer.time + 1,
    )
    check_acceptance(acceptance, offer)
    # Accepting something that is not an offer, or an offer made to someone else, or to the wrong party.
    with pytest.raises(BadLink, match="not an agreement offer"):
        check_acceptance(acceptance, envelope(message_id="a" * 32))
    with pytest.raises(BadLink, match="was not offered"):
        check_acceptance(
            acceptance,
            envelope(
                kind="agreement", agreement="offer", message_id="a" * 32, recipients=["dave*bank-c.test"]
            ),
        )
    wrong_way = envelope(
        kind="agreement",
        agreement="acceptance",
        reply_to=offer.id,
        sender="carol*bank-c.test",
        sender_key=CAROL.public_key,
        recipients=["dave*bank-c.test"],
        message_id="b" * 32,
        time=offer.time + 1,
    )
    with pytest.raises(BadLink, match="goes back"):
        check_acceptance(wrong_way, offer)


def test_the_whole_envelope_has_a_size_limit():
    recipients = [f"r{i}*bank-c.test" for i in range(MAX_RECIPIENTS)]
    big = "QUFB" * ((MAX_BODY_BYTES + 40) // 3)
    body = {"encoding": "box", "sender_box_key": "11" * 32, "boxes": dict.fromkeys(recipients, big)}
    with pytest.raises(MessageTooLarge):
        encode_message(envelope(recipients=recipients, body=body))


texts = st.text(max_size=200)
kinds = st.sampled_from(["note", "otc-trade", "settlement-instruction"])
names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    text=texts,
    kind=kinds,
    recipients=st.lists(names, min_size=1, max_size=5, unique=True),
    time=st.integers(0, 2**53 - 1),
)
def test_any_valid_envelope_round_trips_and_verifies_and_any_change_breaks_the_signature(
    text, kind, recipients, time
):
    made = envelope(
        message_id=uuid.uuid4().hex,
        kind=kind,
        recipients=[f"{name}*bank-c.test" for name in recipients],
        time=time,
        body=plain_body(text),
    )
    signed = sign_message(encode_message(made), key=ALICE)
    again = parse_signed_message(copy.deepcopy(signed.to_json()))
    assert again.envelope == made
    assert again.digest == signed.digest
    changed = signed.to_json()
    changed["envelope"]["time"] = time + 1 if time < 2**53 - 1 else time - 1
    with pytest.raises(MessageError):
        parse_signed_message(changed)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_refused_with_a_message_error_never_a_crash(value):
    with pytest.raises(MessageError):
        parse_envelope(value)
    with pytest.raises(MessageError):
        parse_signed_message({"envelope": value, "signature": "00" * 64})
