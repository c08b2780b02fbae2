"""Canonical encoding and hashing: one way each (ARCHITECTURE.md §3).

Every signed off-chain object is reduced to bytes the same way on every node:
RFC 8785 JSON Canonicalization of a JSON value. Amounts are integers in minor units, so
floats are refused outright: RFC 8785 would encode them, but two implementations that round
differently must never disagree on what was signed.

On our domain (None, bool, str, int within 2**53-1, list/tuple, dict with str keys) RFC 8785 is
the C-accelerated ``json`` encoder with ``ensure_ascii=False``, no whitespace and sorted keys,
except in one place: RFC 8785 sorts keys by UTF-16 code units and Python by code points, which
disagree only on characters above U+FFFF (their surrogates, U+D800-U+DFFF, sort before
U+E000-U+FFFF). :func:`canonical` therefore takes three paths, all giving ``rfc8785.dumps``'s
bytes (tests/settlement/protocol/test_canonical_fast_path.py compares them on arbitrary values):

1. one Python walk checks the domain for plain built-in types, then ``json`` encodes with
   code-point order; if no key has a character above U+FFFF the two orders agree;
2. otherwise the dicts are copied in UTF-16 order and encoded without re-sorting;
3. anything else (a value out of the domain, a subclass of a built-in type, a lone surrogate)
   goes through the reference path, ``_check`` and then ``rfc8785.dumps``, for the error with its
   path or the reference bytes.
"""

from __future__ import annotations

import hashlib
from _json import encode_basestring, make_encoder  # CPython's C JSON encoder, as json uses it
from typing import Any, NewType

import rfc8785

Digest = NewType("Digest", bytes)
"""A 32-byte SHA-256 digest."""

# JSON integers beyond this lose precision in JavaScript and in I-JSON (RFC 7493), which
# RFC 8785 assumes. Larger amounts travel as decimal strings.
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalEncodingError(ValueError):
    """The value cannot be encoded canonically (a float, a huge integer, a non-string key, text
    with a lone surrogate)."""


def _check(value: Any, path: str) -> None:
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
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalEncodingError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise CanonicalEncodingError(f"{path}: {type(value).__name__} is not a JSON value")


class _NotPlainError(Exception):
    """Internal: the value needs the reference path (out of the domain, or not a plain type)."""


_LEAF_TYPES = frozenset({str, bool, type(None)})
_CONTAINER_TYPES = frozenset({dict, list, tuple})


def _walk(value: Any) -> None:
    """Raise :class:`_NotPlainError` unless ``value`` is in the domain and built only of exact
    built-in types. One frame per level, like ``_check``: a cycle ends in RecursionError."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlainError
            kind = type(item)
            if kind in _LEAF_TYPES:
                continue
            if kind is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                raise _NotPlainError
            _walk(item)
    elif kind is list or kind is tuple:
        for item in value:
            kind = type(item)
            if kind in _LEAF_TYPES:
                continue
            if kind is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                raise _NotPlainError
            _walk(item)
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _NotPlainError
    elif kind not in _LEAF_TYPES:
        raise _NotPlainError


def _never_called(value: Any) -> Any:
    raise _NotPlainError  # _walk admits only types the C encoder knows


# Made once here (json.dumps builds a new encoder on every call).
# ensure_ascii=False (encode_basestring): \" \\ \b \f \n \r \t, other controls as lowercase
# \u00xx, everything else literal (U+007F, U+2028, U+2029 too), exactly RFC 8785 §3.2.2.2.
# No circular check (the walk would have recursed forever first), no NaN (no floats).
_encode_sorted = make_encoder(None, _never_called, encode_basestring, None, ":", ",", True, False, False)
_encode_in_order = make_encoder(None, _never_called, encode_basestring, None, ":", ",", False, False, False)


def _utf16_key(key: str) -> bytes:
    # "surrogatepass" so a lone surrogate still sorts; encoding the result to UTF-8 refuses it.
    return key.encode("utf-16-be", "surrogatepass")


def _has_astral_key(value: Any) -> bool:
    """Whether a walked value has a key with a character beyond U+FFFF, at any depth."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if not key.isascii() and max(key) > "\uffff":
                return True
            if type(item) in _CONTAINER_TYPES and _has_astral_key(item):
                return True
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) in _CONTAINER_TYPES and _has_astral_key(item):
                return True
    return False


def _in_utf16_order(value: Any) -> Any:
    """A copy of a walked value whose dicts iterate in RFC 8785 key order (§3.2.3)."""
    kind = type(value)
    if kind is dict:
        return {key: _in_utf16_order(value[key]) for key in sorted(value, key=_utf16_key)}
    if kind is list or kind is tuple:
        return [_in_utf16_order(item) for item in value]
    return value


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The error message for the first string or key holding a lone surrogate, if any."""
    if isinstance(value, str):
        for char in value:
            if "\ud800" <= char <= "\udfff":
                return f"{path}: text holds a lone surrogate U+{ord(char):04X}, which is not Unicode"
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{index}]")
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, f"{path} key {key!r}") or _lone_surrogate(item, f"{path}.{key}")
            if found:
                return found
    return None


def _reference(value: Any) -> bytes:
    """The definition: refuse what is out of the domain, then ``rfc8785.dumps``."""
    _check(value, "$")
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as error:
        # In the domain, rfc8785 refuses only text that is not Unicode: a lone surrogate in a
        # string (CanonicalizationError) or in a key (UnicodeEncodeError from its UTF-16 sort).
        raise CanonicalEncodingError(_lone_surrogate(value, "$") or f"$: {error}") from error


def canonical(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value``."""
    try:
        _walk(value)
        text = "".join(_encode_sorted(value, 0))
        # A character beyond U+FFFF is two UTF-16 code units (isascii is O(1); the UTF-16
        # encoder is the fastest such test in CPython, and it refuses lone surrogates too).
        # Only in a key does it change the order: then sort by UTF-16 code units instead.
        if not text.isascii() and len(text.encode("utf-16-le")) != 2 * len(text) and _has_astral_key(value):
            text = "".join(_encode_in_order(_in_utf16_order(value), 0))
        return text.encode("utf-8")
    except (_NotPlainError, UnicodeEncodeError):
        return _reference(value)


def sha256(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).digest())


def domain_bytes(kind: str, value: Any) -> bytes:
    """The bytes that are signed and hashed for an object of ``kind``.

    ``b"parsec/v1/<kind>\\x00" + canonical(value)``: the domain prefix keeps a signature on
    one kind of object from ever being replayed as a signature on another.
    """
    if not kind or "\x00" in kind or not kind.isascii():
        raise CanonicalEncodingError(f"bad object kind {kind!r}")
    return b"parsec/v1/" + kind.encode("ascii") + b"\x00" + canonical(value)


def object_hash(kind: str, value: Any) -> Digest:
    """SHA-256 of the domain-separated canonical bytes: the identity of a signed object."""
    return sha256(domain_bytes(kind, value))
