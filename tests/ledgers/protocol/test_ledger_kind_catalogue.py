"""A new kind of entry is added by registering it; the chain code does not change."""

import pytest
from ledger_protocol_world import ASSETS, World, eur

from ledgers.protocol.catalogue import (
    BalanceChange,
    Effects,
    EntryKind,
    body_amount,
    body_asset,
    require_keys,
)
from ledgers.protocol.chain import check_append, sign_entry
from ledgers.protocol.errors import UnknownKind
from ledgers.protocol.kinds import DEFAULT_CATALOGUE

A = "bank-a.test"


def _validate_fee(body, context):
    require_keys(body, required={"asset", "amount"}, kind="fee")
    body_asset(body, "asset", context)
    body_amount(body, "amount")


FEE = EntryKind(
    name="fee",
    validate=_validate_fee,
    effects=lambda body, context: Effects(changes=(BalanceChange(body["asset"], -int(body["amount"])),)),
)


def test_the_default_catalogue_has_the_issue_4_kinds_and_the_message_records():
    assert set(DEFAULT_CATALOGUE.kinds) == {
        "message",
        "message-batch",
        "issue",
        "redeem",
        "transfer",
        "payment",
        "offer",
        "take",
        "cancel",
    }


def test_a_registered_kind_is_validated_and_applied_by_the_unchanged_chain_code():
    world = World()
    alice = world.open_ledger(A, "alice")
    world.issue(alice, eur(A), 100)
    row = world.ledgers[alice]
    entry = world.entry(alice, "fee", {"asset": eur(A), "amount": "30"})
    appended = check_append(
        head=row.head,
        entry=entry,
        party_key=row.owner.public_key,
        party_signature=sign_entry(entry, key=row.owner),
        balances=row.balances,
        assets=ASSETS,
        catalogue=DEFAULT_CATALOGUE.with_kind(FEE),
    )
    assert appended.balances == {eur(A): 70}


def test_registering_a_kind_leaves_the_default_catalogue_alone():
    DEFAULT_CATALOGUE.with_kind(FEE)
    with pytest.raises(UnknownKind):
        DEFAULT_CATALOGUE.get("fee")


def test_the_catalogue_cannot_be_mutated_in_place():
    with pytest.raises(TypeError):
        DEFAULT_CATALOGUE.kinds["fee"] = FEE
