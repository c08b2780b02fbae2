"""Signed answers: an answer verifies only as the asked peer's answer to the request with that
nonce, and any change to its status, body, nonce or headers makes it fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.protocol.http_signature import (
    HEADER_CONTENT_DIGEST,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    ResponseSignatureError,
    new_nonce,
    sign_response,
    verify_response,
)
from settlement.protocol.signing import SigningKey

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
KEY_ID = "bank-b.test#node-1"
NONCE = "0123456789abcdef0123456789abcdef"
BODY = b'{"co_signature":"aa"}'


def _signed(
    status: int = 200, body: bytes = BODY, nonce: str = NONCE, key: SigningKey = KEY
) -> dict[str, str]:
    return sign_response(key, key_id=KEY_ID, request_nonce=nonce, status=status, body=body)


def _verify(headers, *, status=200, body=BODY, nonce=NONCE, keys=None):
    known = {KEY_ID: KEY.public_key} if keys is None else keys
    return verify_response(
        headers=headers, status=status, body=body, request_nonce=nonce, lookup_key=known.get
    )


def test_an_answer_signed_for_the_request_verifies():
    assert _verify(_signed()) == KEY_ID


def test_header_names_are_matched_without_regard_to_case():
    assert _verify({name.lower(): value for name, value in _signed().items()}) == KEY_ID


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("unsigned", lambda: _verify({})),
        ("another status", lambda: _verify(_signed(), status=201)),
        ("a refusal turned into a success", lambda: _verify(_signed(status=401), status=200)),
        ("another body", lambda: _verify(_signed(), body=BODY + b" ")),
        ("the answer to another request", lambda: _verify(_signed(nonce=new_nonce()))),
        ("signed by a key that is not the asked peer's", lambda: _verify(_signed(), keys={})),
        ("signed by another key under the peer's key id", lambda: _verify(_signed(key=OTHER))),
        ("no signature header", lambda: _verify({**_signed(), HEADER_SIGNATURE: ""})),
        ("a malformed signature header", lambda: _verify({**_signed(), HEADER_SIGNATURE: "not base64"})),
        ("a malformed key id", lambda: _verify({**_signed(), HEADER_KEY_ID: "has space"})),
        ("a body digest of another body", lambda: _verify({**_signed(body=b"{}")})),
    ],
)
def test_an_answer_that_is_not_the_peers_answer_to_this_request_is_refused(case, change):
    with pytest.raises(ResponseSignatureError):
        change()


@settings(max_examples=200, derandomize=True)
@given(
    header=st.sampled_from([HEADER_KEY_ID, HEADER_CONTENT_DIGEST, HEADER_SIGNATURE]),
    position=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
)
def test_changing_any_character_of_a_signed_header_is_refused(header, position, replacement):
    headers = _signed()
    value = headers[header]
    index = position % len(value)
    if value[index] == replacement:
        return
    headers[header] = value[:index] + replacement + value[index + 1 :]
    # A changed key id names an unknown key; keep the look-up answering for it, so the
    # signature itself must fail rather than the look-up.
    keys = {KEY_ID: KEY.public_key, headers[HEADER_KEY_ID]: KEY.public_key}
    with pytest.raises(ResponseSignatureError):
        _verify(headers, keys=keys)


@settings(max_examples=100, derandomize=True)
@given(body=st.binary(max_size=64), flip=st.integers(min_value=0))
def test_changing_any_byte_of_the_body_is_refused(body, flip):
    headers = _signed(body=body)
    if not body:
        changed = b"x"
    else:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(ResponseSignatureError):
        _verify(headers, body=changed)


@pytest.mark.parametrize("nonce", ["", "short", "0123456789ABCDEF0123456789ABCDEF"])
def test_an_answer_is_only_signed_for_a_well_formed_request_nonce(nonce):
    with pytest.raises(ResponseSignatureError):
        _signed(nonce=nonce)


def test_a_signature_spelled_another_way_is_refused():
    # The character before "==" carries two bits of the signature and four unused ones.
    headers = _signed()
    signature = headers[HEADER_SIGNATURE]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(signature[-3])
    respelled = signature[:-3] + alphabet[last ^ 0b0001] + "=="
    with pytest.raises(ResponseSignatureError):
        _verify({**headers, HEADER_SIGNATURE: respelled})
