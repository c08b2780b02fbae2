"""The block signatures' verdicts are remembered (consensus.protocol.receipt): a receipt of the
same block does not verify the same signatures again. A remembered verdict is for exactly those
bytes, so it never lets through a signature, a header or a key that differs in any bit, whatever
was verified before."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.protocol.receipt import b64, read_b64
from ledgers.protocol.receipt import RECEIPT_KIND, Trust, _unsigned, receipt_verify
from settlement.protocol.signing import sign
from tests.ledgers.protocol.receipt_world import BANK, build_world

WORLD = build_world()


def _resigned(document: dict[str, object]) -> dict[str, object]:
    """The issuer signs again: only the proofs can refuse it now."""
    signed = copy.deepcopy(document)
    signed["issuer"]["signature"] = b64(sign(BANK, RECEIPT_KIND, _unsigned(signed)))  # type: ignore[index]
    return signed


def _first_failure(document: dict[str, object]) -> str | None:
    trust = Trust(validators=WORLD.validators, issuer=WORLD.issuer)
    failed = receipt_verify(document, trust=trust).first_failure
    return None if failed is None else failed.name


@settings(max_examples=60, deadline=None)
@given(
    slot=st.integers(min_value=0, max_value=2),
    byte=st.integers(min_value=0, max_value=63),
    bit=st.integers(0, 7),
)
def test_a_changed_signature_fails_after_the_valid_one_was_verified(slot: int, byte: int, bit: int) -> None:
    assert _first_failure(WORLD.document) is None  # its verdicts are remembered now
    changed = copy.deepcopy(WORLD.document)
    signature = bytearray(read_b64(changed["block"]["signatures"][slot], what="signature"))
    signature[byte] ^= 1 << bit
    changed["block"]["signatures"][slot] = b64(bytes(signature))

    assert _first_failure(_resigned(changed)) == "block-signatures"
    assert _first_failure(WORLD.document) is None


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(["epoch", "round", "height"]), delta=st.integers(min_value=1, max_value=5))
def test_a_changed_header_fails_with_signatures_that_were_valid_on_the_original(
    field: str, delta: int
) -> None:
    assert _first_failure(WORLD.document) is None
    changed = copy.deepcopy(WORLD.document)
    changed["block"][field] += delta

    assert _first_failure(_resigned(changed)) == "block-signatures"
    assert _first_failure(WORLD.document) is None


def test_a_signature_moved_to_another_validator_fails() -> None:
    assert _first_failure(WORLD.document) is None
    changed = copy.deepcopy(WORLD.document)
    signatures = changed["block"]["signatures"]
    signatures[0], signatures[1] = signatures[1], signatures[0]

    assert _first_failure(_resigned(changed)) == "block-signatures"
