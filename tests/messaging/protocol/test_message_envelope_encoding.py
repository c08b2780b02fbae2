"""The envelope's canonical bytes written out for its fixed shape (``encode_message``) are exactly
RFC 8785 of the envelope (``domain_bytes("message", envelope.to_json())``, the definition the
committed test vector and every verifier use), whatever the text, addresses, boxes, attachments,
links and time; text that is not Unicode is refused the same way."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.protocol.envelope import (
    ATTACHMENT_MEDIA_TYPES,
    MESSAGE_OBJECT_KIND,
    Attachment,
    Envelope,
    MessageId,
    encode_message,
)
from messaging.protocol.errors import BadEnvelope
from settlement.protocol.encoding import domain_bytes
from settlement.protocol.signing import PublicKey

_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="<*,>"),
    min_size=1,
    max_size=12,
)
_ADDRESS = st.builds(
    lambda name, domain: f"{name}*{domain}.test", _NAME, st.sampled_from(["bank-a", "b", "x-1"])
)
_HEX_ID = st.binary(min_size=16, max_size=16).map(lambda raw: MessageId(raw.hex()))


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    recipients = tuple(draw(st.lists(_ADDRESS, min_size=1, max_size=4, unique=True)))
    if draw(st.booleans()):
        body: dict[str, object] = {"encoding": "plain", "text": draw(st.text(max_size=60))}
    else:
        body = {
            "encoding": "box",
            "sender_box_key": draw(st.binary(min_size=32, max_size=32)).hex(),
            "boxes": {
                address: base64.b64encode(draw(st.binary(min_size=40, max_size=60))).decode()
                for address in recipients
            },
        }
    attachments = tuple(
        Attachment(sha256=raw.hex(), size=size, media_type=media)
        for raw, size, media in draw(
            st.lists(
                st.tuples(
                    st.binary(min_size=32, max_size=32),
                    st.integers(1, 10 * 1024 * 1024),
                    st.sampled_from(ATTACHMENT_MEDIA_TYPES),
                ),
                max_size=3,
            )
        )
    )
    return Envelope(
        id=draw(_HEX_ID),
        kind=draw(st.sampled_from(["note", "document", "agreement", "otc-trade", "settlement-instruction"])),
        sender=draw(_ADDRESS),
        sender_key=PublicKey(draw(st.binary(min_size=32, max_size=32))),
        recipients=recipients,
        time=draw(st.integers(0, 2**53 - 1)),
        reply_to=draw(st.none() | _HEX_ID),
        agreement=draw(st.sampled_from([None, "offer", "acceptance"])),
        attachments=attachments,
        body=body,
    )


@settings(max_examples=400, deadline=None)
@given(envelopes())
def test_the_envelope_written_out_is_rfc8785_of_the_envelope(envelope: Envelope) -> None:
    assert encode_message(envelope).signed_bytes == domain_bytes(MESSAGE_OBJECT_KIND, envelope.to_json())


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", '"\\\x00\x1f\x7f\u2028\U0001f600'])
def test_control_characters_escape_as_rfc8785_says_and_a_lone_surrogate_is_refused(text: str) -> None:
    envelope = Envelope(
        id=MessageId("ab" * 16),
        kind="note",
        sender="alice*bank-a.test",
        sender_key=PublicKey(bytes(32)),
        recipients=("bob*bank-b.test",),
        time=1,
        reply_to=None,
        agreement=None,
        attachments=(),
        body={"encoding": "plain", "text": text},
    )
    if any("\ud800" <= char <= "\udfff" for char in text):
        with pytest.raises(BadEnvelope, match="lone surrogate"):
            encode_message(envelope)
    else:
        assert encode_message(envelope).signed_bytes == domain_bytes(MESSAGE_OBJECT_KIND, envelope.to_json())
