"""Write the committed test vectors: ``python -m tests.vectors.generate`` from the repository root.

The JSON files next to this script are the contract between Parsec nodes (and any other
implementation): canonical bytes, domain-separated bytes, hashes, signatures, Merkle proofs,
signed request headers. Tests in tests/settlement/protocol/ check the code against the
committed files, so a change in encoding fails a test instead of silently forking the network.
Regenerate only on purpose, and say why in the commit.

Where a published source exists, the expected values are written here from that source, not
from our code, and the generator refuses to write if the code disagrees: RFC 8785 (JSON
canonicalization), RFC 8032 §7.1 (Ed25519 test 1 key), RFC 6962/9162 reference trees (the
certificate-transparency test data, also in transparency-dev/merkle testonly).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from settlement.protocol import http_signature
from settlement.protocol.encoding import canonical, domain_bytes, object_hash
from settlement.protocol.identifiers import lei_check_digits, validate_lei
from settlement.protocol.merkle import MerkleTree, leaf_hash
from settlement.protocol.signing import SigningKey, sign

HERE = Path(__file__).resolve().parent

# RFC 8032 §7.1, TEST 1: the secret key (seed) and its public key.
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
# A second fixed key for vectors: seed = 32 bytes 0x01..0x20.
SECOND_SEED = bytes(range(1, 33)).hex()

# RFC 8785 examples that apply to Parsec's JSON (strings, integers, literals; no floats).
# Expected bytes are transcribed from the RFC, not produced by the library.
RFC8785_CASES: list[dict[str, Any]] = [
    {
        "name": "rfc8785 §3.2.3 property sorting by UTF-16 code units",
        "input": {
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\U0001f600": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        },
        "expected_utf8": (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        ),
    },
    {
        "name": "rfc8785 §3.2.2.2 string serialization",
        "input": {"string": '\u20ac$\u000f\nA\'B"\\\\"/'},
        "expected_utf8": '{"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    },
    {
        "name": "rfc8785 §3.2.2 literals and integers, no whitespace",
        "input": {"literals": [None, True, False], "numbers": [0, -1, 333333333, 9007199254740991]},
        "expected_utf8": '{"literals":[null,true,false],"numbers":[0,-1,333333333,9007199254740991]}',
    },
    {
        "name": "nested objects are sorted at every level, arrays keep their order",
        "input": {"b": [3, 1, 2], "a": {"z": 1, "y": {"d": 4, "c": 3}}},
        "expected_utf8": '{"a":{"y":{"c":3,"d":4},"z":1},"b":[3,1,2]}',
    },
]

# Parsec objects as they are signed: the kinds other modules use.
PARSEC_OBJECTS: list[dict[str, Any]] = [
    {
        "kind": "ledger-entry",
        "value": {
            "ledger": "ubi:bank-a:alice",
            "height": 7,
            "prev": "00" * 32,
            "kind": "payment",
            "body": {"asset": "EUR", "amount": "125000", "to": "bob*bank-b.test"},
            "time": 1763700000,
        },
    },
    {"kind": "federation-answer", "value": {"stellar_address": "alice*bank-a.test", "account_id": "ab" * 32}},
    {"kind": "gossip-event", "value": {"creator": "bank-c", "self_parent": None, "other_parent": None}},
    {"kind": "empty", "value": {}},
    {"kind": "unicode", "value": {"name": "Zoë Ærøskøbing 東京", "memo": "\u2028line separator"}},
]

# Certificate Transparency reference tree (RFC 6962 test data; RFC 9162 hashes the same way).
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

LEI_VALID = [
    "5493001KJTIIGC8Y1R12",
    "7LTWFZYICNSX8D621K86",
    "HWUPKR0MPOU8FGXBT394",
    "529900T8BM49AURSDO55",
    "B4TYDEB6GKMZO031MB27",
]
LEI_INVALID = [
    {"lei": "5493001KJTIIGC8Y1R13", "why": "check digits off by one"},
    {"lei": "5493001KJTIIGC8Y1R1", "why": "19 characters"},
    {"lei": "5493001KJTIIGC8Y1R123", "why": "21 characters"},
    {"lei": "5493001kjtiigc8y1r12", "why": "lower case"},
    {"lei": "5493001KJTIIGC8Y1RA2", "why": "a letter among the check digits"},
    {"lei": "5493001KJTIIGC8Y1-12", "why": "punctuation"},
    {"lei": "7LTWFZYICNSX8D621K68", "why": "check digits swapped"},
    {"lei": "HWUPKR0MPOU8FGXBT349", "why": "check digits swapped"},
]


def encoding_vectors() -> dict[str, Any]:
    first = SigningKey(bytes.fromhex(RFC8032_SEED))
    if first.public_key.hex() != RFC8032_PUBLIC:
        raise SystemExit("Ed25519 key derivation disagrees with RFC 8032 §7.1 TEST 1")
    second = SigningKey(bytes.fromhex(SECOND_SEED))
    rfc8785 = []
    for case in RFC8785_CASES:
        encoded = canonical(case["input"])
        if encoded != case["expected_utf8"].encode("utf-8"):
            raise SystemExit(f"canonical() disagrees with RFC 8785 on {case['name']!r}")
        rfc8785.append({"name": case["name"], "input": case["input"], "canonical_hex": encoded.hex()})
    objects = []
    for item in PARSEC_OBJECTS:
        kind, value = item["kind"], item["value"]
        objects.append(
            {
                "kind": kind,
                "value": value,
                "canonical_hex": canonical(value).hex(),
                "domain_bytes_hex": domain_bytes(kind, value).hex(),
                "object_hash_hex": object_hash(kind, value).hex(),
                "signatures": [
                    {"public_key_hex": key.public_key.hex(), "signature_hex": sign(key, kind, value).hex()}
                    for key in (first, second)
                ],
            }
        )
    return {
        "description": "RFC 8785 canonical JSON, parsec/v1 domain bytes, SHA-256 object hashes, Ed25519",
        "keys": [
            {"seed_hex": RFC8032_SEED, "public_key_hex": RFC8032_PUBLIC, "source": "RFC 8032 §7.1 TEST 1"},
            {
                "seed_hex": SECOND_SEED,
                "public_key_hex": second.public_key.hex(),
                "source": "bytes 0x01..0x20",
            },
        ],
        "rfc8785": rfc8785,
        "objects": objects,
    }


def merkle_vectors() -> dict[str, Any]:
    entries = [bytes.fromhex(leaf) for leaf in CT_LEAVES]
    tree = MerkleTree.from_entries(entries)
    roots = [tree.root_at(size).hex() for size in range(len(entries) + 1)]
    if roots != CT_ROOTS:
        raise SystemExit("Merkle roots disagree with the RFC 6962 reference tree")
    inclusion = [
        tree.inclusion_proof(index, size).to_json()
        for size in range(1, len(entries) + 1)
        for index in range(size)
    ]
    consistency = [
        tree.consistency_proof(first, second).to_json()
        for second in range(1, len(entries) + 1)
        for first in range(1, second + 1)
    ]
    return {
        "description": "RFC 9162 §2.1 SHA-256 Merkle trees over the RFC 6962 reference leaves",
        "leaves_hex": CT_LEAVES,
        "leaf_hashes_hex": [leaf_hash(entry).hex() for entry in entries],
        "roots_hex": roots,
        "inclusion_proofs": inclusion,
        "consistency_proofs": consistency,
    }


def http_signature_vectors() -> dict[str, Any]:
    key = SigningKey(bytes.fromhex(RFC8032_SEED))
    requests: list[dict[str, Any]] = [
        {
            "key_id": "bank-a.test#node-2026-01",
            "method": "POST",
            "path": "/n2n/payments?idempotency=7f3a",
            "body_hex": canonical({"amount": "125000", "asset": "EUR"}).hex(),
            "created": 1763700000,
            "nonce": "000102030405060708090a0b0c0d0e0f",
            "audience": "bank-b",
        },
        {
            "key_id": "bank-c.test#node-2026-01",
            "method": "GET",
            "path": "/n2n/status",
            "body_hex": "",
            "created": 1763700001,
            "nonce": "ffeeddccbbaa99887766554433221100",
            "audience": "bank-a",
        },
    ]
    vectors = []
    for request in requests:
        headers = http_signature.sign_request(
            key,
            key_id=request["key_id"],
            method=request["method"],
            path=request["path"],
            body=bytes.fromhex(request["body_hex"]),
            created=request["created"],
            nonce=request["nonce"],
            audience=request["audience"],
        )
        fields = http_signature.signed_fields(
            method=request["method"],
            path=request["path"],
            key_id=request["key_id"],
            created=request["created"],
            nonce=request["nonce"],
            content_digest=headers[http_signature.HEADER_CONTENT_DIGEST],
            audience=request["audience"],
        )
        signed = domain_bytes(http_signature.REQUEST_KIND, fields)
        vectors.append({**request, "signed_bytes_hex": signed.hex(), "headers": headers})
    return {
        "description": "signed node-to-node requests (kind node-request), RFC 8032 TEST 1 key",
        "public_key_hex": RFC8032_PUBLIC,
        "requests": vectors,
    }


def lei_vectors() -> dict[str, Any]:
    for lei in LEI_VALID:
        validate_lei(lei)
        if lei_check_digits(lei[:18]) != lei[18:]:
            raise SystemExit(f"check digits of {lei} disagree")
    return {"description": "ISO 17442 LEIs, ISO 7064 MOD 97-10", "valid": LEI_VALID, "invalid": LEI_INVALID}


def write(name: str, document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=True, sort_keys=True) + "\n"
    (HERE / f"{name}.json").write_text(text)


def main() -> None:
    write("encoding", encoding_vectors())
    write("merkle", merkle_vectors())
    write("http_signature", http_signature_vectors())
    write("lei", lei_vectors())


if __name__ == "__main__":
    main()
