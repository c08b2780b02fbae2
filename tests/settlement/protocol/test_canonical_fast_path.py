"""canonical() gives rfc8785.dumps's bytes on every value of our domain, and refuses what the
reference (the domain check, then rfc8785) refuses, with the same message.

The fast path is the C ``json`` encoder with code-point key order; RFC 8785 orders keys by UTF-16
code units. The strategies aim at where the two could part: keys beyond the BMP next to keys in
U+E000-U+FFFF, keys that are prefixes of each other, every control character, the characters
JSON encoders disagree on (U+007F, U+2028, U+2029, "/"), lone surrogates, the 2**53 boundary,
tuples, empty and deeply nested containers, subclasses of the built-in types.
"""

from __future__ import annotations

import collections
import enum
from typing import Any, NamedTuple

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.protocol.encoding import MAX_SAFE_INTEGER, CanonicalEncodingError, canonical

M = MAX_SAFE_INTEGER


def _reference_check(value: Any, path: str) -> None:
    """encoding._check as it was before the fast path, verbatim: the domain's definition."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalEncodingError(f"{path}: integer {value} is beyond 2**53-1; send it as a string")
        return
    if isinstance(value, float):
        raise CanonicalEncodingError(f"{path}: floats are not allowed; use integers in minor units")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _reference_check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalEncodingError(f"{path}: object keys must be strings, got {key!r}")
            _reference_check(item, f"{path}.{key}")
        return
    raise CanonicalEncodingError(f"{path}: {type(value).__name__} is not a JSON value")


def assert_same_as_reference(value: Any) -> None:
    """canonical(value) against the old implementation: _check, then rfc8785.dumps."""
    expected: str | None = None
    try:
        _reference_check(value, "$")
    except CanonicalEncodingError as error:
        expected = str(error)
    if expected is not None:
        with pytest.raises(CanonicalEncodingError) as refused:
            canonical(value)
        assert str(refused.value) == expected
        return
    try:
        reference = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        # rfc8785 refuses text that is not Unicode; so do we, as our own error.
        with pytest.raises(CanonicalEncodingError, match="lone surrogate"):
            canonical(value)
        return
    assert canonical(value) == reference


# Characters where encoders, or UTF-16 and code-point order, can differ.
CONTROLS = [chr(code) for code in range(0x20)]
TRICKY = [
    *CONTROLS,
    '"',
    "\\",
    "/",
    "\x7f",
    "\x80",
    "\x9f",
    "\xa0",
    "é",
    "\u0301",
    "\u2028",
    "\u2029",
    "\ud7ff",
    "\ue000",
    "\uf8ff",
    "\ufeff",
    "\ufffd",
    "\uffff",
    "\U00010000",
    "\U0001f600",
    "\U0001f1fa",
    "\U0010ffff",
]
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
characters = st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8"), st.sampled_from("ab1"))
texts = st.text(characters, max_size=12)
# Keys from a small alphabet collide on prefixes and put astral keys beside U+E000-U+FFFF ones.
keys = st.one_of(
    st.text(
        st.sampled_from(["a", "b", "é", "\ue000", "\uffff", "\U00010000", "\U0001f600", "\x00", '"']),
        max_size=4,
    ),
    texts,
)
integers = st.one_of(
    st.integers(-M, M),
    st.sampled_from([0, 1, -1, M, -M, M - 1, -(M - 1), 2**31, -(2**31), 2**32, 10**15]),
)
scalars = st.one_of(st.none(), st.booleans(), integers, texts)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=6),
    )


values = st.recursive(scalars, containers, max_leaves=20)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_canonical_equals_rfc8785_on_the_domain(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, integers, min_size=2, max_size=40))
def test_many_keys_sort_by_utf16_code_units(value: dict[str, int]) -> None:
    assert canonical(value) == rfc8785.dumps(value)


# Out of the domain or not plain built-in types: the fast path must hand these to the reference.
class Colour(enum.IntEnum):
    RED = 1


class Asset(enum.StrEnum):
    EUR = "EUR"


class Point(NamedTuple):
    x: int
    y: str


class Items(list):  # type: ignore[type-arg]
    pass


class Backwards(list):  # type: ignore[type-arg]
    """Iterates backwards: rfc8785 (list(value)) sees this order, json's C encoder the storage."""

    def __iter__(self) -> Any:
        return iter(list.__getitem__(self, slice(None, None, -1)))


class Masked(dict):  # type: ignore[type-arg]
    """items() hides a key: json's C encoder calls items(), rfc8785 (dict(value)) does not."""

    def items(self) -> Any:
        return [(key, value) for key, value in dict.items(self) if key != "hidden"]


class Key(str):
    """Equal text, distinct dict keys: the only way a dict holds duplicate JSON names."""

    __hash__ = object.__hash__


odd_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([M + 1, -(M + 1), 2**53, -(2**53), 2**64, -(2**100)]),
    st.integers(),
    st.sampled_from([Colour.RED, Asset.EUR, b"bytes", {1, 2}, object(), 1j]),
)
odd_keys = st.one_of(
    keys, st.integers(-3, 3), st.none(), st.booleans(), st.sampled_from([(1,), 1.5, Asset.EUR])
)


def odd_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        containers(children),
        st.dictionaries(odd_keys, children, max_size=4),
        st.dictionaries(keys, children, max_size=4).map(collections.OrderedDict),
        st.lists(children, max_size=4).map(Items),
        st.lists(children, max_size=4).map(Backwards),
        st.dictionaries(keys, children, max_size=3).map(lambda items: Masked(items, hidden=1)),
        st.tuples(integers, texts).map(lambda pair: Point(*pair)),
        st.lists(texts, max_size=3).map(
            lambda texts: {Key(text): -index for index, text in enumerate(texts)}
        ),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.one_of(scalars, odd_scalars), odd_containers, max_leaves=12))
def test_anything_else_encodes_or_is_refused_as_before(value: Any) -> None:
    assert_same_as_reference(value)


BOUNDARY = [M, -M, M + 1, -(M + 1), 2**63, -(2**64)]


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.one_of(scalars, st.sampled_from(BOUNDARY)), containers, max_leaves=10))
def test_integers_beyond_2_53_are_refused_wherever_they_are(value: Any) -> None:
    assert_same_as_reference(value)


@settings(max_examples=300, deadline=None)
@given(
    values,
    st.tuples(texts, SURROGATES, st.text(st.one_of(characters, SURROGATES), max_size=4)).map("".join),
    st.booleans(),
)
def test_lone_surrogates_are_refused_like_rfc8785_does(value: Any, bad: str, as_key: bool) -> None:
    wrapped = [value, {bad: 1}] if as_key else {"a": value, "z": [bad]}
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
        rfc8785.dumps(wrapped)
    with pytest.raises(CanonicalEncodingError, match="lone surrogate"):
        canonical(wrapped)
    assert_same_as_reference(wrapped)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), values, st.lists(st.booleans(), min_size=1))
def test_deep_nesting(depth: int, leaf: Any, shape: list[bool]) -> None:
    value = leaf
    for level in range(depth):
        value = [value] if shape[level % len(shape)] else {"\U0001f600" if level % 7 == 0 else "k": value}
    assert canonical(value) == rfc8785.dumps(value)


# The edge cases, one by one.


def test_astral_keys_sort_before_the_top_of_the_bmp() -> None:
    value = {"\uffff": 3, "\U0001f600": 1, "\ue000": 2, "a": 0}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).decode() == '{"a":0,"\U0001f600":1,"\ue000":2,"\uffff":3}'
    # Nested, and a value beyond the BMP beside plain keys.
    nested = {"x": [{"\uffff": 1, "\U00010000": 2}], "y": "\U0010ffff"}
    assert canonical(nested) == rfc8785.dumps(nested)


def test_string_escapes_are_rfc8785s() -> None:
    text = "".join(CONTROLS) + '"\\/\x7f\u2028\u2029é\U0001f600'
    assert canonical(text) == rfc8785.dumps(text)
    assert canonical(text) == (
        b'"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f'
        b"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
        b'\\u001d\\u001e\\u001f\\"\\\\/' + "\x7f\u2028\u2029é\U0001f600".encode() + b'"'
    )


def test_literals_integers_and_containers() -> None:
    value = {
        "t": True,
        "f": False,
        "n": None,
        "max": M,
        "min": -M,
        "zero": 0,
        "e": [],
        "o": {},
        "p": (1, "2"),
    }
    assert (
        canonical(value)
        == b'{"e":[],"f":false,"max":9007199254740991,"min":-9007199254740991,"n":null,"o":{},"p":[1,"2"],"t":true,"zero":0}'
    )
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical((1, [2, ()])) == canonical([1, [2, []]]) == b"[1,[2,[]]]"
    for top in (None, True, False, 0, M, -M, "", [], {}, ()):
        assert canonical(top) == rfc8785.dumps(top)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**53, "$: integer 9007199254740992 is beyond 2**53-1; send it as a string"),
        ({"a": [1, -(2**53)]}, "$.a[1]: integer -9007199254740992 is beyond 2**53-1; send it as a string"),
        ({"a": 2**53}, "$.a: integer 9007199254740992 is beyond 2**53-1; send it as a string"),
        ([[M, -M], (M + 1,)], "$[1][0]: integer 9007199254740992 is beyond 2**53-1; send it as a string"),
        ({"a": [1, 1.5]}, "$.a[1]: floats are not allowed; use integers in minor units"),
        ({"a": {1: "x"}}, "$.a: object keys must be strings, got 1"),
        ({True: "x"}, "$: object keys must be strings, got True"),
        ([b"x"], "$[0]: bytes is not a JSON value"),
        # The domain is checked before the text: the float is reported, not the surrogate.
        (["\ud800", 1.5], "$[1]: floats are not allowed; use integers in minor units"),
        (["ok", "a\ud800"], "$[1]: text holds a lone surrogate U+D800, which is not Unicode"),
        ({"a": {"\udc00": 1}}, "$.a key '\\udc00': text holds a lone surrogate U+DC00, which is not Unicode"),
        # A high and a low surrogate side by side are still two code points, not one character.
        ({"k": "\ud83d\ude00"}, "$.k: text holds a lone surrogate U+D83D, which is not Unicode"),
    ],
)
def test_refusals_name_the_path(value: Any, message: str) -> None:
    with pytest.raises(CanonicalEncodingError) as refused:
        canonical(value)
    assert str(refused.value) == message


def test_duplicate_equivalent_keys() -> None:
    # Canonically equivalent (NFC vs NFD) keys are different keys: both kept, no normalisation.
    value = {"e\u0301": 1, "é": 2}
    assert canonical(value) == rfc8785.dumps(value) == '{"e\u0301":1,"é":2}'.encode()
    # Equal text in two distinct keys (a str subclass): rfc8785's stable order, both kept.
    # (json's sort would order such twins by their values, or fail comparing a dict to a list.)
    twins = {Key("a"): 2, "b": 3, Key("a"): 1}
    assert canonical(twins) == rfc8785.dumps(twins) == b'{"a":2,"a":1,"b":3}'
    mixed = {Key("a"): {}, Key("a"): []}
    assert canonical(mixed) == rfc8785.dumps(mixed) == b'{"a":{},"a":[]}'
    # Subclasses of the built-in types take the reference path and keep its bytes, even where
    # json's C encoder would read them differently.
    assert canonical(Backwards([1, [2, 3]])) == rfc8785.dumps(Backwards([1, [2, 3]])) == b"[[2,3],1]"
    assert canonical({"m": Masked(a=1, hidden=2)}) == rfc8785.dumps({"m": Masked(a=1, hidden=2)})
    assert canonical({"m": Masked(a=1, hidden=2)}) == b'{"m":{"a":1,"hidden":2}}'
    odd = {"c": Colour.RED, "a": Asset.EUR, "p": Point(1, "y"), Asset.EUR: [Items([True])]}
    assert canonical(odd) == rfc8785.dumps(odd)
