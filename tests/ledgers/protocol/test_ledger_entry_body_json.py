"""The body a ledger entry row stores is cut out of the entry's signed bytes
(``entries.encoded_body_json``): it must be exactly ``canonical(body)`` for any entry the encoder
accepts, whatever the body nests and whatever text kind and ledger hold (quotes, commas, a
``"height"`` key inside the body, text that spells ``,"height":``)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ledgers.protocol.entries import Entry, encode_entry, encoded_body_json
from settlement.protocol.encoding import MAX_SAFE_INTEGER, canonical

# Pieces that could fool a search for where the body ends.
TRAPS = [',"height":', '"height"', "height", ",", '"', "\\", "}", "{", ":", '\\"', "\U0001f600", "\ue000"]

text = st.one_of(st.sampled_from(TRAPS), st.text(max_size=12)).filter(
    lambda value: not any("\ud800" <= char <= "\udfff" for char in value)
)
keys = st.one_of(st.sampled_from(["height", "kind", "ledger", "prev", "time", "body", *TRAPS]), text)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER), text)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
bodies = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=400, deadline=None)
@given(
    body=bodies,
    kind=text.filter(bool),
    ledger=text.filter(bool),
    height=st.integers(0, MAX_SAFE_INTEGER),
    time=st.integers(0, MAX_SAFE_INTEGER),
    prev=st.binary(min_size=32, max_size=32),
)
def test_the_body_cut_from_the_signed_bytes_is_the_canonical_body(body, kind, ledger, height, time, prev):
    entry = Entry(ledger=ledger, height=height, prev=prev, kind=kind, body=body, time=time)
    cut = encoded_body_json(encode_entry(entry))
    assert cut == canonical(body).decode("utf-8")
    assert json.loads(cut) == body


def test_a_height_key_inside_the_body_does_not_end_it_early():
    body = {"z": {"a": 1, "height": 2}, "x": ',"height":', "height": "3"}
    entry = Entry(ledger="ubi:bank-a.test:alice", height=7, prev=bytes(32), kind="t", body=body, time=1)
    assert json.loads(encoded_body_json(encode_entry(entry))) == body
