from hypothesis import given
from hypothesis import strategies as st

from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.identifiers import LedgerId
from settlement.protocol.encoding import CanonicalEncodingError, canonical


def test_commitment_is_the_canonical_json_of_ledger_height_and_hash() -> None:
    payload = entry_commitment(LedgerId("ubi:bank-a.test/alice/main"), 7, bytes(range(32)))
    assert payload == (
        b'{"hash":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
        b'"height":7,"ledger":"ubi:bank-a.test/alice/main"}'
    )
    assert ENTRY_OBSERVATION_KIND == "ledger-entry"


@given(
    ledger=st.one_of(
        st.from_regex(r"ubi:[a-z0-9.-]{1,20}:[a-z0-9._-]{1,20}", fullmatch=True), st.text(max_size=30)
    ),
    height=st.one_of(st.integers(min_value=-(2**60), max_value=2**60), st.booleans()),
    entry_hash=st.binary(min_size=32, max_size=32),
)
def test_the_commitment_written_out_is_the_canonical_encoding_for_any_input(
    ledger, height, entry_hash
) -> None:
    """Valid UBIs take a written-out path; whatever the input, the bytes (or the refusal) are
    canonical()'s."""
    try:
        expected: object = canonical({"ledger": ledger, "height": int(height), "hash": entry_hash.hex()})
    except CanonicalEncodingError as error:
        expected = str(error)
    try:
        got: object = entry_commitment(LedgerId(ledger), height, entry_hash)
    except CanonicalEncodingError as error:
        got = str(error)
    assert got == expected
