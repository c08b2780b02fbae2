import pytest

from ledgers.protocol.chain import ChainHead, next_entry, sign_entry
from ledgers.protocol.entries import (
    ENTRY_KIND,
    GENESIS_PREV,
    Entry,
    SignedEntry,
    encode_entry,
    entry_hash,
    sign_encoded,
    verify_encoded,
)
from ledgers.protocol.errors import BadEntry, BadEntrySignature
from ledgers.protocol.identifiers import make_ledger_id
from settlement.protocol.encoding import domain_bytes, object_hash
from settlement.protocol.signing import BadSignature, SigningKey, is_valid, sign

LEDGER = make_ledger_id(namespace="bank-a.test", name="alice")
BODY = {"asset": "bank-a.test/EUR", "amount": "1050", "reference": "dep-1"}


def first_entry() -> Entry:
    return next_entry(head=ChainHead.genesis(LEDGER), kind="issue", body=BODY, time=1_700_000_000_000)


def test_genesis_entry_links_to_32_zero_bytes_at_height_zero():
    entry = first_entry()
    assert entry.prev == GENESIS_PREV == bytes(32)
    assert entry.height == 0


def test_entry_hash_is_the_shared_object_hash_of_the_entry_json():
    entry = first_entry()
    assert entry_hash(entry) == object_hash(ENTRY_KIND, entry.to_json())


def test_encoded_message_is_exactly_what_the_shared_signer_signs():
    entry = first_entry()
    assert encode_entry(entry).message == domain_bytes(ENTRY_KIND, entry.to_json())


def test_fast_signature_equals_the_shared_sign_function():
    key = SigningKey(bytes(range(32)))
    entry = first_entry()
    assert sign_encoded(key, encode_entry(entry)) == sign(key, ENTRY_KIND, entry.to_json())
    assert sign_entry(entry, key=key) == sign(key, ENTRY_KIND, entry.to_json())


def test_fast_verify_accepts_what_shared_verify_accepts_and_refuses_the_rest():
    key, other = SigningKey(bytes(range(32))), SigningKey(bytes(32))
    entry = first_entry()
    signature = sign(key, ENTRY_KIND, entry.to_json())
    verify_encoded(key.public_key, encode_entry(entry), signature, role="party")
    assert is_valid(key.public_key, ENTRY_KIND, entry.to_json(), signature)
    with pytest.raises(BadEntrySignature):
        verify_encoded(other.public_key, encode_entry(entry), signature, role="party")
    assert not is_valid(other.public_key, ENTRY_KIND, entry.to_json(), signature)


def test_bad_entry_signature_is_also_the_shared_bad_signature():
    with pytest.raises(BadSignature):
        verify_encoded(bytes(32), encode_entry(first_entry()), bytes(64), role="party")


def test_any_field_change_changes_the_hash():
    entry = first_entry()
    variants = [
        Entry(**{**entry.__dict__, "height": 1}),
        Entry(**{**entry.__dict__, "time": entry.time + 1}),
        Entry(**{**entry.__dict__, "kind": "redeem"}),
        Entry(**{**entry.__dict__, "body": {**BODY, "amount": "1051"}}),
        Entry(**{**entry.__dict__, "prev": bytes([1]) + bytes(31)}),
        Entry(**{**entry.__dict__, "ledger": make_ledger_id(namespace="bank-a.test", name="bob")}),
    ]
    hashes = {entry_hash(variant) for variant in variants} | {entry_hash(entry)}
    assert len(hashes) == len(variants) + 1


def test_signed_entry_json_round_trips():
    key = SigningKey(bytes(range(32)))
    entry = first_entry()
    signed = SignedEntry(entry=entry, party_signature=sign_entry(entry, key=key), validator_signature=None)
    assert SignedEntry.from_json(signed.to_json()) == signed


@pytest.mark.parametrize(
    "change",
    [
        {"height": -1},
        {"height": "0"},
        {"time": 1.5},
        {"prev": "00"},
        {"prev": "AA" * 32},
        {"ledger": "alice"},
        {"kind": ""},
        {"body": []},
        {"extra": 1},
    ],
)
def test_malformed_entry_json_is_refused(change):
    with pytest.raises(BadEntry) as caught:
        Entry.from_json({**first_entry().to_json(), **change})
    assert caught.value.code == "bad_entry"


def test_floats_in_a_body_cannot_be_encoded():
    entry = Entry(**{**first_entry().__dict__, "body": {"amount": 10.5}})
    with pytest.raises(BadEntry):
        encode_entry(entry)
