"""The committed signed-request vectors still hold: same signed bytes, same headers, and they verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settlement.protocol.encoding import domain_bytes
from settlement.protocol.http_signature import (
    HEADER_CONTENT_DIGEST,
    REQUEST_KIND,
    sign_request,
    signed_fields,
    verify_request,
)
from settlement.protocol.signing import SigningKey

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "http_signature.json").read_text())
# RFC 8032 §7.1 TEST 1, the key the vectors were made with.
KEY = SigningKey(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))


@pytest.mark.parametrize("request_vector", VECTORS["requests"], ids=lambda r: f"{r['method']} {r['path']}")
def test_request_vectors_sign_and_verify_as_committed(request_vector: dict[str, Any]) -> None:
    body = bytes.fromhex(request_vector["body_hex"])
    headers = sign_request(
        KEY,
        key_id=request_vector["key_id"],
        method=request_vector["method"],
        path=request_vector["path"],
        body=body,
        created=request_vector["created"],
        nonce=request_vector["nonce"],
        audience=request_vector["audience"],
    )
    assert headers == request_vector["headers"]
    fields = signed_fields(
        method=request_vector["method"],
        path=request_vector["path"],
        key_id=request_vector["key_id"],
        created=request_vector["created"],
        nonce=request_vector["nonce"],
        content_digest=headers[HEADER_CONTENT_DIGEST],
        audience=request_vector["audience"],
    )
    assert domain_bytes(REQUEST_KIND, fields).hex() == request_vector["signed_bytes_hex"]
    result = verify_request(
        method=request_vector["method"],
        path=request_vector["path"],
        headers=request_vector["headers"],
        body=body,
        now=request_vector["created"],
        lookup_key=lambda key_id: bytes.fromhex(VECTORS["public_key_hex"]),
        audience=request_vector["audience"],
    )
    assert result.nonce == request_vector["nonce"]
