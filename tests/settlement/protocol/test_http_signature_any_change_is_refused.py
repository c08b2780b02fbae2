"""Property: changing any signed header value or any byte of the body makes verification fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.http_signature import (
    HEADER_AUDIENCE,
    HEADER_CONTENT_DIGEST,
    HEADER_CREATED,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    RequestSignatureError,
    sign_request,
    verify_request,
)
from settlement.protocol.signing import SigningKey

KEY = SigningKey(bytes(range(32)))
NOW = 1_763_700_000
SIGNED_HEADERS = [
    HEADER_KEY_ID,
    HEADER_CREATED,
    HEADER_NONCE,
    HEADER_AUDIENCE,
    HEADER_CONTENT_DIGEST,
    HEADER_SIGNATURE,
    HEADER_IDEMPOTENCY_KEY,
]


def _verify(headers: dict[str, str], body: bytes, path: str) -> None:
    verify_request(
        method="POST",
        path=path,
        headers=headers,
        body=body,
        now=NOW,
        lookup_key=lambda key_id: KEY.public_key,
        audience="bank-b",
    )


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=64),
    path=st.from_regex(r"/[a-z0-9/?=&]{0,20}", fullmatch=True),
    header=st.sampled_from(SIGNED_HEADERS),
    position=st.integers(0, 200),
    replacement=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
)
def test_any_changed_header_character_is_refused(
    body: bytes, path: str, header: str, position: int, replacement: str
) -> None:
    headers = sign_request(
        KEY,
        key_id="bank-a#1",
        method="POST",
        path=path,
        body=body,
        created=NOW,
        nonce="ab" * 16,
        audience="bank-b",
        idempotency_key="pay-42",
    )
    _verify(dict(headers), body, path)
    value = headers[header]
    position %= len(value)
    if value[position] == replacement:
        return
    changed = dict(headers)
    changed[header] = value[:position] + replacement + value[position + 1 :]
    if header == HEADER_SIGNATURE and position == len(value) - 3 and value[position] != "=":
        # The last base64 digit before "==" carries 4 unused bits: some changes decode to the
        # same 64 bytes. The signature bytes, not their spelling, are what is checked.
        return
    with pytest.raises(RequestSignatureError):
        _verify(changed, body, path)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=64), position=st.integers(0, 63), bit=st.integers(0, 7))
def test_any_changed_body_bit_is_refused(body: bytes, position: int, bit: int) -> None:
    headers = sign_request(
        KEY,
        key_id="bank-a#1",
        method="POST",
        path="/p",
        body=body,
        created=NOW,
        nonce="ab" * 16,
        audience="bank-b",
    )
    changed = bytearray(body)
    changed[position % len(body)] ^= 1 << bit
    with pytest.raises(RequestSignatureError):
        _verify(headers, bytes(changed), "/p")


@pytest.mark.parametrize("signed_key", [None, "pay-42"])
def test_adding_or_removing_the_idempotency_key_is_refused(signed_key: str | None) -> None:
    headers = sign_request(
        KEY,
        key_id="bank-a#1",
        method="POST",
        path="/p",
        body=b"{}",
        created=NOW,
        nonce="ab" * 16,
        audience="bank-b",
        idempotency_key=signed_key,
    )
    changed = dict(headers)
    if signed_key is None:
        changed[HEADER_IDEMPOTENCY_KEY] = "pay-43"
    else:
        del changed[HEADER_IDEMPOTENCY_KEY]
    with pytest.raises(RequestSignatureError):
        _verify(changed, b"{}", "/p")
