"""The KYC state machine, pure: exactly the six allowed steps, reasons where the counterparty
must be told why, and a typed error for everything else."""

from __future__ import annotations

import itertools

import pytest

from settlement.counterparties import kyc_rules
from settlement.counterparties.errors import KycReasonRequired, KycTransitionNotAllowed
from settlement.counterparties.kyc_rules import KycEvent, KycState

ALLOWED = {
    (KycState.NEEDS_INFO, KycState.PROCESSING, KycEvent.SUBMIT): False,
    (KycState.REJECTED, KycState.PROCESSING, KycEvent.SUBMIT): False,
    (KycState.PROCESSING, KycState.ACCEPTED, KycEvent.REVIEW): False,
    (KycState.PROCESSING, KycState.REJECTED, KycEvent.REVIEW): True,
    (KycState.PROCESSING, KycState.NEEDS_INFO, KycEvent.REVIEW): True,
    (KycState.ACCEPTED, KycState.NEEDS_INFO, KycEvent.REVIEW): True,
}
EVERY_STEP = list(itertools.product(KycState, KycState, KycEvent))


@pytest.mark.parametrize(("source", "target", "event"), list(ALLOWED))
def test_each_allowed_step_moves_to_its_target(source, target, event):
    assert kyc_rules.kyc_transition(current=source, target=target, event=event, reason="why") == target


@pytest.mark.parametrize(("source", "target", "event"), [step for step in EVERY_STEP if step not in ALLOWED])
def test_every_other_step_is_not_allowed(source, target, event):
    with pytest.raises(KycTransitionNotAllowed) as raised:
        kyc_rules.kyc_transition(current=source, target=target, event=event, reason="why")

    assert raised.value.code == "kyc_transition_not_allowed"


@pytest.mark.parametrize(("source", "target", "event"), [step for step, needs in ALLOWED.items() if needs])
@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_and_ask_for_information_need_a_reason(source, target, event, reason):
    with pytest.raises(KycReasonRequired) as raised:
        kyc_rules.kyc_transition(current=source, target=target, event=event, reason=reason)

    assert raised.value.fields == {"reason": ["a reason is required for this decision"]}


def test_decisions_map_to_their_statuses():
    assert kyc_rules.kyc_decision_target(current="PROCESSING", decision="accept", reason="") == "ACCEPTED"
    assert kyc_rules.kyc_decision_target(current="PROCESSING", decision="reject", reason="x") == "REJECTED"
    assert (
        kyc_rules.kyc_decision_target(current="ACCEPTED", decision="needs_info", reason="x") == "NEEDS_INFO"
    )


def test_an_unknown_decision_is_not_allowed():
    with pytest.raises(KycTransitionNotAllowed):
        kyc_rules.kyc_decision_target(current="PROCESSING", decision="maybe", reason="")


def test_only_accepted_can_hold_funds():
    assert [state for state in KycState if kyc_rules.can_hold_funds(state)] == [KycState.ACCEPTED]
