"""Every change to a valid receipt is refused: a character, a number, a deleted or added key, two
list items swapped; as it is (the issuer's signature breaks) and re-signed by the issuer's own
key (a malicious issuer), where the inner proofs must catch it on their own.

The only fields a re-signing issuer can change unseen offline are its statements about the chain
and itself (``STATEMENTS``): those are what ``--rpc`` checks against Ethereum
(tests/ledgers/test_ledger_receipt_end_to_end.py tampers with them there)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from receipt_world import SECTIONS, World, build_world, resign

from ledgers.protocol.receipt import BankKey, Trust
from ledgers.protocol.receipt import receipt_verify as _receipt_verify_with_sections
from settlement.protocol.handover import key_handover_sign

WORLDS = {
    "anchored": build_world(),
    "not anchored yet": build_world(anchor_height=None),
    "credit, no party signature": build_world(party_signs=False, block_height=4, leaf_index=12),
    "anchored at its own block": build_world(block_height=8, anchor_height=8, leaf_index=0),
    "message, anchored": build_world(message=True),
    "message, not anchored yet": build_world(message=True, anchor_height=None),
    "message of a batch, anchored": build_world(
        message=True, batch_size=13, batch_index=6, party_signs=False
    ),
    "message of a batch, not anchored yet": build_world(
        message=True, batch_size=5, batch_index=4, party_signs=False, anchor_height=None
    ),
    # Receipt version 3: co-signed with a key the bank has since rotated (entry.bank_keys).
    "co-signed before a rotation": build_world(rotations=1),
    "co-signed two rotations ago, not anchored yet": build_world(rotations=2, anchor_height=None),
    "message of a batch, co-signed before a rotation": build_world(
        message=True, batch_size=13, batch_index=6, party_signs=False, rotations=1
    ),
    # Two rotations later, one direct hand-over from the co-signing key to the issuer's.
    "co-signed two rotations ago, handed over directly": build_world(rotations=2, direct_handover=True),
    "message of a batch, co-signed two rotations ago, handed over directly, not anchored yet": build_world(
        message=True,
        batch_size=13,
        batch_index=6,
        party_signs=False,
        rotations=2,
        direct_handover=True,
        anchor_height=None,
    ),
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
    ("anchor", "log_index"),
    ("anchor", "confirmations"),
    ("issuer", "node"),
    ("issuer", "issued_at"),
}

Path = tuple[str | int, ...]


def receipt_verify(document: object, *, trust: Trust | None = None) -> Any:
    """The verifier with the optional sections the command knows (a message section)."""
    return _receipt_verify_with_sections(document, trust=trust, sections=SECTIONS)


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


def _without(document: Any, *keys: str) -> Any:
    if not isinstance(document, dict):
        return document
    return {key: value for key, value in document.items() if key not in keys}


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
    if (
        path == ()
        and "message" in world.document
        and isinstance(forged, dict)
        and "message" not in forged
        and _without(forged, "message", "issuer") == _without(world.document, "message", "issuer")
    ):
        # The message section dropped: what is left is the receipt of the message's ledger entry,
        # which is true (the entry is agreed and anchored) and proves nothing about a message.
        assert report.ok
        return
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
    assert "nested more than" in report.checks[0].detail


# --- the message section ----------------------------------------------------------------------


def test_a_message_receipt_checks_the_message_after_the_entry_links_and_carries_no_plaintext() -> None:
    document = WORLDS["message, anchored"].document
    report = receipt_verify(document)
    names = [check.name for check in report.checks]
    assert names.index("message") == names.index("entry-links") + 1
    assert report.ok
    assert "Signed contract attached" not in json.dumps(document)  # the box, never the text
    assert document["message"]["envelope"]["body"]["encoding"] == "box"


def test_a_verifier_that_does_not_know_the_message_section_refuses_it() -> None:
    """Fail closed: a receipt with a section the verifier cannot check is not valid."""
    report = _receipt_verify_with_sections(WORLDS["message, anchored"].document)
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
    assert "unknown message" in report.checks[0].detail


def _message_forgery(change: Any) -> dict[str, Any]:
    forged = copy.deepcopy(WORLDS["message, anchored"].document)
    change(forged["message"])
    return resign(forged)


def test_another_message_signed_by_the_same_sender_does_not_match_the_entry() -> None:
    """The sender and the issuer both sign again: a genuine signature on another envelope (with
    its own digest) still fails, because the agreed entry records the original digest."""
    from receipt_world import PARTY

    from messaging.protocol.envelope import encode_message, sign_message
    from messaging.protocol.record import envelope_from_receipt, message_section_of

    def other_message(section: dict[str, Any]) -> None:
        section["envelope"]["time"] += 1
        signed = sign_message(encode_message(envelope_from_receipt(section["envelope"])), key=PARTY)
        section.update(message_section_of(signed))

    report = receipt_verify(_message_forgery(other_message))
    assert report.first_failure is not None
    assert report.first_failure.name == "message"
    assert "message_section_mismatch" in report.first_failure.detail


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda section: section.update(signature="A" * 86 + "=="), "bad_signature"),
        (lambda section: section["envelope"].update(recipients=["dave*bank-c.test"]), "bad_signature"),
    ],
    ids=["signature", "recipients"],
)
def test_a_re_signed_message_section_fails_the_message_check_with_its_reason(change: Any, code: str) -> None:
    forged = _message_forgery(change)
    if forged["message"]["envelope"]["recipients"] == ["dave*bank-c.test"]:
        # A box per recipient: moving the box to the new recipient keeps the form valid.
        boxes = forged["message"]["envelope"]["body"]["boxes"]
        forged["message"]["envelope"]["body"]["boxes"] = {"dave*bank-c.test": next(iter(boxes.values()))}
        forged = resign(forged)
    report = receipt_verify(forged, trust=_pinned(WORLDS["message, anchored"]))
    assert report.first_failure is not None
    assert report.first_failure.name == "message"
    assert code in report.first_failure.detail
    assert report.first_failure.detail.split(":")[0] == code


@pytest.mark.parametrize(
    "change",
    [
        lambda section: section.update(digest="00" * 32),
        lambda section: section["envelope"].update(reply_to=None),
        lambda section: section["envelope"].update(attachments=[]),
        lambda section: section["envelope"].update(
            sender_key=bytes(base64.b64decode(section["envelope"]["sender_key"])).hex()
        ),
        lambda section: section.update(signature=section["signature"].rstrip("=")),
    ],
    ids=[
        "a digest added",
        "reply_to written out",
        "attachments written out",
        "a key in hex",
        "base64 unpadded",
    ],
)
def test_a_message_section_in_any_other_form_than_the_receipts_fails_format(change: Any) -> None:
    """Re-signed by the issuer, an envelope or signature that stands for the same message in
    another form is still refused: the receipt has one form for each message."""
    report = receipt_verify(_message_forgery(change), trust=_pinned(WORLDS["message, anchored"]))
    assert report.first_failure is not None
    assert report.first_failure.name == "format"
    assert "message" in report.first_failure.detail


# --- a message signed as one of a batch ---------------------------------------------------------


def _path_changed(document: dict[str, Any], change: Any) -> str:
    """The section's path (base64 of its hashes) with its list of hashes changed."""
    raw = base64.b64decode(document["message"]["path"])
    return base64.b64encode(b"".join(change([raw[at : at + 32] for at in range(0, len(raw), 32)]))).decode()


def _batch_forgery(change: Any) -> dict[str, Any]:
    forged = copy.deepcopy(WORLDS["message of a batch, anchored"].document)
    change(forged)
    return resign(forged)


@pytest.mark.parametrize(
    "change",
    [
        lambda document: document["message"].update(index=7),
        lambda document: document["message"].update(path=_path_changed(document, lambda path: path[::-1])),
        lambda document: document["message"].update(path=_path_changed(document, lambda path: path[:-1])),
        lambda document: document["message"].update(
            path=_path_changed(document, lambda path: [path[0], bytes(32), *path[2:]])
        ),
        lambda document: document["message"]["envelope"].update(time=1),
    ],
    ids=["index", "path order", "path shortened", "path element", "envelope"],
)
def test_a_re_signed_change_to_a_batch_messages_place_fails_the_message_check(change: Any) -> None:
    report = receipt_verify(_batch_forgery(change), trust=_pinned(WORLDS["message of a batch, anchored"]))
    assert report.first_failure is not None
    assert report.first_failure.name == "message"
    assert report.first_failure.detail.startswith("bad_batch_proof:")


def test_a_batch_message_receipt_says_where_the_message_is_and_carries_the_batch_signature_once() -> None:
    document = WORLDS["message of a batch, anchored"].document
    report = receipt_verify(document)
    assert report.ok
    detail = next(check.detail for check in report.checks if check.name == "message")
    assert "signed as message 6 of a batch of 13" in detail
    assert set(document["message"]) == {"envelope", "index", "path"}
    assert document["entry"]["entry"]["kind"] == "message-batch"
    assert set(document["entry"]["entry"]["body"]) == {"root", "size", "signature"}


def test_another_batch_of_the_same_sender_does_not_match_the_entry() -> None:
    """The sender signs another batch holding the same message (a genuine batch signature, its
    own root) and the issuer signs again: the agreed entry records the original batch."""
    from receipt_world import world_message

    other = world_message(batch_size=13, batch_index=6 - 1)

    def swap(document: dict[str, Any]) -> None:
        assert other.batch is not None
        document["message"].update(
            index=other.batch.index, path=base64.b64encode(b"".join(other.batch.path)).decode()
        )

    report = receipt_verify(_batch_forgery(swap))
    assert report.first_failure is not None
    assert report.first_failure.name == "message"
    assert report.first_failure.detail.startswith("bad_batch_proof:")


# --- receipt version 3: the key that co-signed, and its hand-overs to the issuer's key --------


def test_a_receipt_of_an_entry_co_signed_before_a_rotation_names_the_key_and_its_hand_over() -> None:
    from receipt_world import retired_bank_keys

    world = WORLDS["co-signed two rotations ago, not anchored yet"]
    document = world.document
    assert document["version"] == 3
    assert len(document["entry"]["bank_keys"]) == 2
    report = receipt_verify(document, trust=_pinned(world))
    assert report.ok
    detail = next(check.detail for check in report.checks if check.name == "bank-key")
    oldest = retired_bank_keys(2)[0].public_key
    assert f"co-signed with the bank's earlier key {base64.b64encode(oldest).decode()}" in detail
    assert "2 hand-overs" in detail


def test_a_receipt_co_signed_with_the_issuers_key_carries_no_bank_keys() -> None:
    document = WORLDS["anchored"].document
    assert document["version"] == 3
    assert "bank_keys" not in document["entry"]
    detail = next(check.detail for check in receipt_verify(document).checks if check.name == "bank-key")
    assert detail == "the entry was co-signed with the issuer's key"


def test_a_pinned_earlier_key_of_the_bank_is_trusted_through_its_hand_over() -> None:
    """A relying party that pinned the bank's key before the rotation still recognises the bank:
    the pinned key signed the hand-over to the key that issued the receipt."""
    from receipt_world import retired_bank_keys

    world = WORLDS["co-signed before a rotation"]
    retired = retired_bank_keys(1)[0].public_key
    report = receipt_verify(world.document, trust=Trust(validators=world.validators, issuer=retired))
    assert report.ok
    assert "pinned through the bank's earlier key" in report.checks[1].detail


def _rotated_forgery(change: Any, world: str = "co-signed two rotations ago, not anchored yet") -> Any:
    forged = copy.deepcopy(WORLDS[world].document)
    change(forged["entry"])
    return resign(forged)


def _link(key: Any, successor: bytes) -> str:
    return BankKey(key.public_key, key_handover_sign(key, successor)).to_json()


def test_a_key_that_handed_over_to_someone_else_does_not_lead_to_the_issuer() -> None:
    """A genuine hand-over, but to another key: the chain must end at the issuer's key."""
    from receipt_world import key_for, retired_bank_keys

    retired = retired_bank_keys(1)[0]
    forged = _rotated_forgery(
        lambda entry: entry.update(bank_keys=[_link(retired, key_for("stranger").public_key)]),
        world="co-signed before a rotation",
    )
    report = receipt_verify(forged, trust=_pinned(WORLDS["co-signed before a rotation"]))
    assert report.first_failure is not None
    assert report.first_failure.name == "bank-key"
    assert "did not sign a hand-over" in report.first_failure.detail


def test_an_issuer_cannot_claim_a_key_that_never_handed_over_to_it() -> None:
    """Another bank's key co-signed the entry: an issuer re-signing a receipt that names that key
    as one of its own has no hand-over signature from it."""
    from receipt_world import BANK, key_for

    stranger = key_for("bank-b")
    forged = _rotated_forgery(
        lambda entry: entry.update(
            bank_keys=[
                base64.b64encode(
                    stranger.public_key + base64.b64decode(_link(BANK, stranger.public_key))[32:]
                ).decode()
            ]
        ),
        world="co-signed before a rotation",
    )
    report = receipt_verify(forged)
    assert report.first_failure is not None
    assert report.first_failure.name == "bank-key"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda entry: entry.update(bank_keys=[]), "lists 1 to 16"),
        (lambda entry: entry.update(bank_keys=entry["bank_keys"][0]), "lists 1 to 16"),
        (lambda entry: entry.update(bank_keys=[*entry["bank_keys"]] * 9), "lists 1 to 16"),
        (lambda entry: entry.update(bank_keys=[entry["bank_keys"][0][:-4]]), "96 bytes"),
    ],
    ids=["empty list", "a string, not a list", "17 links", "a link cut short"],
)
def test_bank_keys_in_another_form_fail_format(change: Any, reason: str) -> None:
    report = receipt_verify(_rotated_forgery(change))
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
    assert reason in report.checks[0].detail


def test_the_issuers_own_key_in_the_chain_is_refused() -> None:
    from receipt_world import BANK, retired_bank_keys

    retired = retired_bank_keys(1)[0]
    forged = _rotated_forgery(
        lambda entry: entry.update(bank_keys=[_link(retired, BANK.public_key), _link(BANK, BANK.public_key)]),
        world="co-signed before a rotation",
    )
    report = receipt_verify(forged)
    assert report.first_failure is not None
    assert report.first_failure.name == "bank-key"
    assert "names a key twice, or the issuer's own key" in report.first_failure.detail


def test_a_version_2_receipt_cannot_carry_bank_keys() -> None:
    from receipt_world import as_version_2_paths

    forged = as_version_2_paths(copy.deepcopy(WORLDS["co-signed before a rotation"].document))
    report = receipt_verify(resign(forged))
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
    assert "unknown bank_keys" in report.checks[0].detail


def test_a_receipt_without_bank_keys_in_version_2_form_still_verifies() -> None:
    """What version 2 receipts are: the same proofs, the paths as lists (re-signed here as the
    issuer of a version 2 receipt signed it)."""
    from receipt_world import as_version_2_paths

    world = WORLDS["message of a batch, anchored"]
    report = receipt_verify(resign(as_version_2_paths(world.document)), trust=_pinned(world))
    assert report.ok
    assert report.checks[0].detail.endswith("version 2")


def test_a_version_3_receipt_relabelled_version_2_is_refused_because_its_paths_are_packed() -> None:
    """One form per receipt: version 3 writes each path as one base64 string, version 2 as a list,
    so an issuer cannot pass one version off as the other."""
    forged = copy.deepcopy(WORLDS["anchored"].document)
    forged["version"] = 2
    report = receipt_verify(resign(forged))
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
    assert "must be a list" in report.checks[0].detail


@pytest.mark.parametrize("cut", [1, 31, 33])
def test_a_packed_path_that_is_not_whole_hashes_fails_format(cut: int) -> None:
    forged = copy.deepcopy(WORLDS["anchored"].document)
    raw = base64.b64decode(forged["block"]["inclusion_path"])
    forged["block"]["inclusion_path"] = base64.b64encode(raw[:-cut]).decode()
    report = receipt_verify(resign(forged))
    assert [(check.name, check.status) for check in report.checks] == [("format", "fail")]
    assert "hashes of 32 bytes each" in report.checks[0].detail


# --- direct hand-overs: an earlier key's one hand-over straight to the issuer's key --------------

DIRECT = "co-signed two rotations ago, handed over directly"


def test_two_rotations_later_a_direct_hand_over_is_one_link_and_verifies_as_the_chain_does() -> None:
    from receipt_world import retired_bank_keys

    chained = build_world(rotations=2)
    direct = WORLDS[DIRECT]
    oldest = retired_bank_keys(2)[0].public_key
    assert [BankKey.from_json(link).key for link in direct.document["entry"]["bank_keys"]] == [oldest]
    report = receipt_verify(direct.document, trust=_pinned(direct))
    assert report.ok
    detail = next(check.detail for check in report.checks if check.name == "bank-key")
    assert f"co-signed with the bank's earlier key {base64.b64encode(oldest).decode()}" in detail
    assert "(1 hand-over," in detail
    # Pinned by the co-signing key itself: it signed the hand-over to the issuer.
    assert receipt_verify(direct.document, trust=Trust(validators=direct.validators, issuer=oldest)).ok
    # The key between them is not in a direct receipt, so pinning it is no proof of this bank.
    middle = retired_bank_keys(2)[1].public_key
    pinned_middle = receipt_verify(direct.document, trust=Trust(validators=direct.validators, issuer=middle))
    assert not pinned_middle.ok
    assert pinned_middle.first_failure is not None
    assert pinned_middle.first_failure.name == "issuer-signature"
    # The same receipt but for one link of 96 bytes: 128 base64 characters, quotes and a comma.
    assert len(json.dumps(chained.document)) - len(json.dumps(direct.document)) == 128 + 2 + 2


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(bit=st.integers(0, 96 * 8 - 1))
def test_any_bit_of_a_direct_hand_over_flipped_and_re_signed_is_refused(bit: int) -> None:
    """Every bit of the link, its key (32 bytes) and its hand-over signature (64), changed by a
    malicious issuer that re-signs the receipt: ``format`` (not a valid key), ``bank-key`` (the
    signature no longer holds) or ``entry-bank-signature`` (another key did not co-sign)."""
    raw = bytearray(base64.b64decode(WORLDS[DIRECT].document["entry"]["bank_keys"][0]))
    raw[bit // 8] ^= 1 << (bit % 8)
    forged = _rotated_forgery(
        lambda entry: entry.update(bank_keys=[base64.b64encode(bytes(raw)).decode()]), DIRECT
    )
    report = receipt_verify(forged, trust=_pinned(WORLDS[DIRECT]))
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.name in {"format", "bank-key", "entry-bank-signature"}
    if bit >= 32 * 8:  # in the signature: the key is the co-signing key, its hand-over no longer holds
        assert report.first_failure.name == "bank-key"


@pytest.mark.parametrize(
    ("links", "failed"),
    [
        # The oldest key's hand-over to the key after it, and that key's straight to the issuer:
        # a genuine path too (what a node without the oldest key's direct hand-over would give).
        ("oldest->middle, middle->issuer", None),
        ("oldest->issuer, middle->issuer", "bank-key"),  # the first link does not name the second
        ("middle->issuer", "entry-bank-signature"),  # the middle key did not co-sign
        ("oldest->middle", "bank-key"),  # does not reach the issuer
        ("oldest->issuer, oldest->issuer", "bank-key"),  # a key twice
    ],
)
def test_mixed_and_partial_direct_hand_overs(links: str, failed: str | None) -> None:
    from receipt_world import BANK, retired_bank_keys

    oldest, middle = retired_bank_keys(2)
    named = {"oldest": oldest, "middle": middle, "issuer": BANK}
    chain = []
    for link in links.split(", "):
        key, successor = (named[name] for name in link.split("->"))
        chain.append(_link(key, successor.public_key))
    report = receipt_verify(
        _rotated_forgery(lambda entry: entry.update(bank_keys=chain), DIRECT), trust=_pinned(WORLDS[DIRECT])
    )
    assert (report.first_failure.name if report.first_failure else None) == failed
