"""The receiver refuses unknown keys, bad signatures, skew over 30 s, wrong digests and bad headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from settlement.protocol import signing
from settlement.protocol.http_signature import (
    HEADER_AUDIENCE,
    HEADER_CREATED,
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    BadDigest,
    BadSignature,
    ClockSkew,
    MalformedHeaders,
    RequestSignatureError,
    UnknownKey,
    VerifiedRequest,
    WrongAudience,
    sign_request,
    verify_request,
)
from settlement.protocol.signing import SigningKey

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
NOW = 1_763_700_000
BODY = b'{"amount":"100"}'
PATH = "/n2n/payments?x=1"


def _headers(**overrides: str) -> dict[str, str]:
    headers = sign_request(
        KEY,
        key_id="bank-a#1",
        method="POST",
        path=PATH,
        body=BODY,
        created=NOW,
        nonce="ab" * 16,
        audience="bank-b",
    )
    headers.update(overrides)
    return headers


def _verify(
    headers: dict[str, str],
    *,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now: int = NOW,
    lookup: Callable[[str], bytes | None] | None = None,
    audience: str = "bank-b",
) -> VerifiedRequest:
    return verify_request(
        method=method,
        path=path,
        headers=headers,
        body=body,
        now=now,
        lookup_key=lookup or {"bank-a#1": KEY.public_key}.get,
        audience=audience,
    )


def test_unknown_key_id_is_refused() -> None:
    with pytest.raises(UnknownKey):
        _verify(_headers(), lookup=lambda key_id: None)


def test_signature_by_another_key_is_refused() -> None:
    with pytest.raises(BadSignature):
        _verify(_headers(), lookup=lambda key_id: OTHER.public_key)


@pytest.mark.parametrize(
    ("change", "value"),
    [("method", "PUT"), ("path", "/n2n/payments?x=2"), ("path", "/n2n/payments")],
)
def test_changing_method_or_path_breaks_the_signature(change: str, value: str) -> None:
    with pytest.raises(BadSignature):
        _verify(_headers(), **{change: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "value"),
    [(HEADER_NONCE, "cd" * 16), (HEADER_CREATED, str(NOW + 1)), (HEADER_KEY_ID, "bank-a#2")],
)
def test_changing_a_signed_header_breaks_the_signature(header: str, value: str) -> None:
    with pytest.raises(BadSignature):
        _verify(_headers(**{header: value}), lookup=lambda key_id: KEY.public_key)


def test_request_signed_for_another_node_is_refused() -> None:
    with pytest.raises(WrongAudience):
        _verify(_headers(), audience="bank-c")
    # Rewriting the audience header to match the receiver breaks the signature instead.
    with pytest.raises(BadSignature):
        _verify(_headers(**{HEADER_AUDIENCE: "bank-c"}), audience="bank-c")


@pytest.mark.parametrize("offset", [31, -31, 3600, -(10**6)])
def test_clock_skew_over_30_seconds_is_refused(offset: int) -> None:
    with pytest.raises(ClockSkew):
        _verify(_headers(), now=NOW + offset)


@pytest.mark.parametrize("offset", [30, -30, 0])
def test_clock_skew_of_30_seconds_is_accepted(offset: int) -> None:
    assert _verify(_headers(), now=NOW + offset).created == NOW


def test_body_that_does_not_match_the_digest_is_refused() -> None:
    with pytest.raises(BadDigest):
        _verify(_headers(), body=BODY + b" ")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_SIGNATURE, "not base64"),
        (HEADER_SIGNATURE, "AAAA"),
        (HEADER_CREATED, "-5"),
        (HEADER_CREATED, "1.5"),
        (HEADER_CREATED, ""),
        (HEADER_NONCE, "short"),
        (HEADER_NONCE, "AB" * 16),
        (HEADER_KEY_ID, "has space"),
        ("Content-Digest", "sha-512=:AAAA:"),
    ],
)
def test_malformed_headers_are_refused(header: str, value: str) -> None:
    with pytest.raises(MalformedHeaders):
        _verify(_headers(**{header: value}))


@pytest.mark.parametrize(
    "missing", [HEADER_SIGNATURE, HEADER_CREATED, HEADER_NONCE, HEADER_KEY_ID, HEADER_AUDIENCE]
)
def test_missing_headers_are_refused(missing: str) -> None:
    headers = _headers()
    del headers[missing]
    with pytest.raises(MalformedHeaders, match=missing):
        _verify(headers)


def test_every_refusal_is_a_request_signature_error_with_a_code() -> None:
    for error in (MalformedHeaders, UnknownKey, BadSignature, WrongAudience, ClockSkew, BadDigest):
        assert issubclass(error, RequestSignatureError)
        assert error.code
    assert issubclass(BadSignature, signing.BadSignature)


def test_sign_request_refuses_malformed_fields() -> None:
    with pytest.raises(MalformedHeaders):
        sign_request(
            KEY,
            key_id="k",
            method="POST",
            path="no-slash",
            body=b"",
            created=NOW,
            nonce="ab" * 16,
            audience="b",
        )
    with pytest.raises(MalformedHeaders):
        sign_request(
            KEY, key_id="k", method="POST", path="/", body=b"", created=-1, nonce="ab" * 16, audience="b"
        )
