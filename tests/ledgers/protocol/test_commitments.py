from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.identifiers import LedgerId


def test_commitment_is_the_canonical_json_of_ledger_height_and_hash() -> None:
    payload = entry_commitment(LedgerId("ubi:bank-a.test/alice/main"), 7, bytes(range(32)))
    assert payload == (
        b'{"hash":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
        b'"height":7,"ledger":"ubi:bank-a.test/alice/main"}'
    )
    assert ENTRY_OBSERVATION_KIND == "ledger-entry"
