"""An entry's signed bytes are written out around its body's canonical JSON
(``entries._written_out``) when its other fields need no escaping: they must be exactly
``domain_bytes("ledger-entry", entry.to_json())`` for every entry, and an entry the general path
refuses is refused the same way (``bad_entry``), whatever the fields hold: text to escape or
beyond ASCII, ints out of range or of the wrong type, a prev of another length."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgers.protocol.entries import ENTRY_KIND, Entry, _written_out, encode_entry
from ledgers.protocol.errors import BadEntry
from settlement.protocol.encoding import MAX_SAFE_INTEGER, CanonicalEncodingError, domain_bytes

TRAPS = ['"', "\\", "\x7f", "\x00", "\n", "é", "\U0001f600", "\ud800", "ubi:bank-a.test:alice", "transfer"]
text = st.one_of(st.sampled_from(TRAPS), st.text(max_size=10), st.text(alphabet="abc:.-_ ", max_size=10))
numbers = st.one_of(
    st.integers(0, MAX_SAFE_INTEGER),
    st.integers(-(2**60), 2**60),
    st.sampled_from([MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, -1, True, False]),
    st.floats(allow_nan=False),
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**54), 2**54), text)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


def _general(entry: Entry) -> bytes | type[BadEntry]:
    try:
        return domain_bytes(ENTRY_KIND, entry.to_json())
    except CanonicalEncodingError:
        return BadEntry


def _encoded(entry: Entry) -> bytes | type[BadEntry]:
    try:
        return encode_entry(entry).message
    except BadEntry:
        return BadEntry


@settings(max_examples=600, deadline=None)
@given(
    body=st.dictionaries(text, values, max_size=5),
    kind=text,
    ledger=text,
    height=numbers,
    time=numbers,
    prev=st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40)),
)
def test_the_written_out_bytes_are_the_canonical_bytes_of_any_entry(body, kind, ledger, height, time, prev):
    entry = Entry(ledger=ledger, height=height, prev=prev, kind=kind, body=body, time=time)
    assert _encoded(entry) == _general(entry)


def test_a_payment_entry_takes_the_written_out_path():
    entry = Entry(
        ledger="ubi:bank-a.test:alice",
        height=3,
        prev=bytes(range(32)),
        kind="transfer",
        body={
            "transfer": "k-1",
            "side": "debit",
            "asset": "bank-a.test/EUR",
            "amount": "150",
            "counterparty": "ubi:bank-a.test:bob",
        },
        time=1_700_000_000_000,
    )
    assert _written_out(entry) == domain_bytes(ENTRY_KIND, entry.to_json())


@pytest.mark.parametrize(
    "change",
    [
        {"kind": 'tr"ansfer'},
        {"ledger": "ubi:bank-a.test:zoë"},
        {"height": True},
        {"time": 2**53},
        {"prev": bytes(31)},
    ],
)
def test_fields_that_need_the_general_path_are_left_to_it(change):
    fields = {
        "ledger": "ubi:bank-a.test:alice",
        "height": 3,
        "prev": bytes(32),
        "kind": "transfer",
        "body": {"a": "1"},
        "time": 5,
    } | change
    assert _written_out(Entry(**fields)) is None
