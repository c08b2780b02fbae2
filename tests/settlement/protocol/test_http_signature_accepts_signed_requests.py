"""A request signed with sign_request verifies, and the receiver learns key, time and nonce."""

from __future__ import annotations

import base64

import nacl.signing

from settlement.protocol.encoding import domain_bytes
from settlement.protocol.http_signature import (
    HEADER_CONTENT_DIGEST,
    HEADER_SIGNATURE,
    REQUEST_KIND,
    VerifiedRequest,
    new_nonce,
    sign_request,
    signed_fields,
    verify_request,
)
from settlement.protocol.signing import SigningKey

KEY = SigningKey(bytes(range(32)))
NOW = 1_763_700_000


def _sign(
    body: bytes = b'{"amount":"100"}', path: str = "/n2n/payments?x=1", method: str = "POST"
) -> dict[str, str]:
    return sign_request(
        KEY,
        key_id="bank-a#1",
        method=method,
        path=path,
        body=body,
        created=NOW,
        nonce="ab" * 16,
        audience="bank-b",
    )


def test_signed_request_verifies_and_returns_the_nonce() -> None:
    result = verify_request(
        method="POST",
        path="/n2n/payments?x=1",
        headers=_sign(),
        body=b'{"amount":"100"}',
        now=NOW + 30,
        lookup_key={"bank-a#1": KEY.public_key}.get,
        audience="bank-b",
    )
    assert result == VerifiedRequest(
        key_id="bank-a#1", public_key=KEY.public_key, created=NOW, nonce="ab" * 16, audience="bank-b"
    )


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {name.lower(): value for name, value in _sign(method="GET", body=b"").items()}
    verify_request(
        method="get",
        path="/n2n/payments?x=1",
        headers=headers,
        body=b"",
        now=NOW - 30,
        lookup_key=lambda key_id: KEY.public_key,
        audience="bank-b",
    )


def test_signature_checks_with_plain_pynacl_over_the_documented_bytes() -> None:
    # Independent of our verify(): anyone with PyNaCl and the spec can check a request.
    headers = _sign()
    fields = signed_fields(
        method="POST",
        path="/n2n/payments?x=1",
        key_id="bank-a#1",
        created=NOW,
        nonce="ab" * 16,
        content_digest=headers[HEADER_CONTENT_DIGEST],
        audience="bank-b",
    )
    signed = domain_bytes(REQUEST_KIND, fields)
    assert signed.startswith(b"parsec/v1/node-request\x00{")
    nacl.signing.VerifyKey(KEY.public_key).verify(signed, base64.b64decode(headers[HEADER_SIGNATURE]))


def test_content_digest_is_rfc9530_sha256_of_the_body() -> None:
    # SHA-256 of the empty string, base64: the value RFC 9530 examples use for an empty body.
    assert _sign(body=b"")[HEADER_CONTENT_DIGEST] == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


def test_new_nonces_are_32_hex_digits_and_distinct() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(nonce) == 32 and int(nonce, 16) >= 0 for nonce in nonces)
