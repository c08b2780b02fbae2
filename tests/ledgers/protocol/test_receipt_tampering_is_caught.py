"""Every change to a valid receipt is refused: a character, a number, a deleted or added key, two
list items swapped; as it is (the issuer's signature breaks) and re-signed by the issuer's own
key (a malicious issuer), where the inner proofs must catch it on their own.

The only fields a re-signing issuer can change unseen offline are its statements about the chain
and itself (``STATEMENTS``): those are what ``--rpc`` checks against Ethereum
(tests/ledgers/test_ledger_receipt_end_to_end.py tampers with them there)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from receipt_world import World, build_world, resign

from ledgers.protocol.receipt import Trust, receipt_verify

WORLDS = {
    "anchored": build_world(),
    "not anchored yet": build_world(anchor_height=None),
    "credit, no party signature": build_world(party_signs=False, block_height=4, leaf_index=12),
    "anchored at its own block": build_world(block_height=8, anchor_height=8, leaf_index=0),
}

STATEMENTS = {
    # An RFC 9162 path does not bind the tree size, only the root does (docs/crypto.md): a
    # neighbouring anchored size can fold the same path to the same root. The chain's event
    # binds height and root together, which is what --rpc compares.
    ("anchor", "height"),
    ("anchor", "chain_id"),
    ("anchor", "contract"),
    ("anchor", "account"),
    ("anchor", "tx"),
    ("anchor", "block_number"),
    ("anchor", "block_hash"),
    ("anchor", "log_index"),
    ("anchor", "confirmations"),
    ("issuer", "node"),
    ("issuer", "issued_at"),
}

Path = tuple[str | int, ...]


def _paths(value: Any, path: Path = ()) -> list[Path]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _get(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(document: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    parent = _get(document, path[:-1])
    parent[path[-1]] = new
    return document


_CHARACTERS = '0123456789abcdefABCDEF+/=x-:. "\\é'


@st.composite
def mutations(draw: st.DrawFn, document: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """One change somewhere in ``document`` (a deep copy; the original is untouched)."""
    mutated = copy.deepcopy(document)
    path = draw(st.sampled_from(_paths(document)))
    value = _get(mutated, path)
    if isinstance(value, bool):
        new: Any = draw(st.sampled_from([not value, 1, None]))
    elif isinstance(value, int):
        new = draw(
            st.one_of(
                st.integers(-3, 3).filter(bool).map(lambda delta: value + delta),
                st.sampled_from([str(value), float(value), True, None, -1, 2**60]),
            )
        )
    elif isinstance(value, str):
        if value:
            position = draw(st.integers(0, len(value) - 1))
            operation = draw(st.sampled_from(["replace", "delete", "insert"]))
        else:
            position, operation = 0, "insert"
        character = draw(st.sampled_from(_CHARACTERS))
        if operation == "replace":
            new = value[:position] + character + value[position + 1 :]
        elif operation == "delete":
            new = value[:position] + value[position + 1 :]
        else:
            new = value[:position] + character + value[position:]
    elif value is None:
        new = draw(st.sampled_from(["", 0, {}, [], "AAAA"]))
    elif isinstance(value, dict):
        operation = draw(st.sampled_from(["delete", "add", "null"] if value else ["add", "null"]))
        new = dict(value)
        if operation == "delete":
            del new[draw(st.sampled_from(sorted(value)))]
        elif operation == "add":
            key = draw(st.sampled_from(["message", "extra", "root", "x", "height", "signature_2"]))
            assume(key not in value)
            new[key] = draw(st.sampled_from([None, 0, "", "AAAA", {}]))
        else:
            new = None
    else:  # a list
        operation = draw(
            st.sampled_from(["swap", "delete", "duplicate", "null"] if value else ["add", "null"])
        )
        new = list(value)
        if operation == "swap":
            assume(len(value) >= 2)
            first = draw(st.integers(0, len(value) - 1))
            second = draw(st.integers(0, len(value) - 1))
            new[first], new[second] = new[second], new[first]
        elif operation == "delete":
            del new[draw(st.integers(0, len(value) - 1))]
        elif operation == "duplicate":
            new.append(new[draw(st.integers(0, len(value) - 1))])
        elif operation == "add":
            new.append("AAAA")
        else:
            new = None
    mutated = _set(mutated, path, new)
    assume(json.dumps(mutated, sort_keys=True) != json.dumps(document, sort_keys=True))
    return path, mutated


def _pinned(world: World) -> Trust:
    return Trust(validators=world.validators, issuer=world.issuer)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_the_untampered_receipts_verify(name: str) -> None:
    world = WORLDS[name]
    assert receipt_verify(world.document).ok
    assert receipt_verify(world.document, trust=_pinned(world)).ok


@pytest.mark.parametrize("name", sorted(WORLDS))
@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_change_without_re_signing_is_refused(name: str, data: st.DataObject) -> None:
    world = WORLDS[name]
    path, mutated = data.draw(mutations(world.document))
    report = receipt_verify(mutated)
    assert not report.ok, f"accepted a receipt changed at {path}"


@pytest.mark.parametrize("name", sorted(WORLDS))
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_change_re_signed_by_the_issuer_is_refused_by_the_inner_proofs(
    name: str, data: st.DataObject
) -> None:
    world = WORLDS[name]
    path, mutated = data.draw(mutations(world.document))
    forged = resign(mutated)
    # Deleting the issuer's signature and signing again gives back the genuine receipt.
    assume(json.dumps(forged, sort_keys=True) != json.dumps(world.document, sort_keys=True))
    report = receipt_verify(forged, trust=_pinned(world))
    if path[:2] in STATEMENTS and len(path) == 2:
        return  # the issuer's statements: checked on the chain with --rpc, not offline
    assert not report.ok, f"a re-signed change at {path} passed: {[c.status for c in report.checks]}"


def test_an_issuer_that_re_signs_a_statement_is_still_attributable() -> None:
    """A re-signed statement passes offline, but only under the issuer's own signature: the
    forgery is provably the issuer's (and --rpc refutes a false anchor)."""
    world = WORLDS["anchored"]
    forged = copy.deepcopy(world.document)
    forged["anchor"]["confirmations"] = 99
    assert not receipt_verify(forged).ok
    assert receipt_verify(resign(forged)).checks[1].detail.startswith("signed by node 'bank-a'")


def test_validators_or_issuer_other_than_the_pinned_ones_are_refused() -> None:
    world = WORLDS["anchored"]
    stranger = bytes(32)
    report = receipt_verify(
        world.document, trust=Trust(validators=frozenset({*list(world.validators)[:3], stranger}))
    )
    assert report.first_failure is not None
    assert report.first_failure.name == "block-signatures"
    report = receipt_verify(world.document, trust=Trust(issuer=stranger))
    assert report.first_failure is not None
    assert report.first_failure.name == "issuer-signature"


def test_too_few_validator_signatures_are_refused() -> None:
    report = receipt_verify(_two_of_four())
    assert report.first_failure is not None
    assert report.first_failure.name == "block-signatures"
    assert "2 of 4 validators signed" in report.first_failure.detail


def _two_of_four() -> dict[str, Any]:
    world = WORLDS["anchored"]
    forged = copy.deepcopy(world.document)
    forged["block"]["signatures"][2] = None
    return resign(forged)


def test_a_body_nested_beyond_reason_is_a_format_failure_not_a_crash() -> None:
    forged = copy.deepcopy(WORLDS["anchored"].document)
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(5_000):
        inner["x"] = {}
        inner = inner["x"]
    forged["entry"]["entry"]["body"] = nested
    report = receipt_verify(forged)
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
