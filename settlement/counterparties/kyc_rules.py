"""The KYC state machine (SEP-12 statuses), pure: no Django, no I/O.

Allowed steps, and who takes them::

    NEEDS_INFO -> PROCESSING            submit: documents were provided
    REJECTED   -> PROCESSING            submit: a resubmission after a rejection
    PROCESSING -> ACCEPTED              review: accept
    PROCESSING -> REJECTED              review: reject            (reason required)
    PROCESSING -> NEEDS_INFO            review: ask for more info (reason required)
    ACCEPTED   -> NEEDS_INFO            review: periodic review   (reason required)

Anything else (ACCEPTED -> REJECTED, REJECTED -> ACCEPTED, a step to the same status, ...) is
:class:`KycTransitionNotAllowed`. A reason is required wherever the counterparty has to be told
what to fix: the rejection and the request for information.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from settlement.counterparties.errors import KycReasonRequired, KycTransitionNotAllowed


class KycState(StrEnum):
    NEEDS_INFO = "NEEDS_INFO"
    PROCESSING = "PROCESSING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class KycEvent(StrEnum):
    SUBMIT = "submit"
    REVIEW = "review"


class KycDecision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    NEEDS_INFO = "needs_info"


DECISION_TARGET: dict[KycDecision, KycState] = {
    KycDecision.ACCEPT: KycState.ACCEPTED,
    KycDecision.REJECT: KycState.REJECTED,
    KycDecision.NEEDS_INFO: KycState.NEEDS_INFO,
}


@dataclass(frozen=True)
class Rule:
    event: KycEvent
    reason_required: bool


TRANSITIONS: dict[tuple[KycState, KycState], Rule] = {
    (KycState.NEEDS_INFO, KycState.PROCESSING): Rule(KycEvent.SUBMIT, reason_required=False),
    (KycState.REJECTED, KycState.PROCESSING): Rule(KycEvent.SUBMIT, reason_required=False),
    (KycState.PROCESSING, KycState.ACCEPTED): Rule(KycEvent.REVIEW, reason_required=False),
    (KycState.PROCESSING, KycState.REJECTED): Rule(KycEvent.REVIEW, reason_required=True),
    (KycState.PROCESSING, KycState.NEEDS_INFO): Rule(KycEvent.REVIEW, reason_required=True),
    (KycState.ACCEPTED, KycState.NEEDS_INFO): Rule(KycEvent.REVIEW, reason_required=True),
}

INITIAL_STATE = KycState.NEEDS_INFO


def kyc_transition(*, current: str, target: str, event: KycEvent, reason: str = "") -> KycState:
    """Check one step; return the new state or raise a typed error saying why not."""
    try:
        source, destination = KycState(current), KycState(target)
    except ValueError as error:
        raise KycTransitionNotAllowed(
            f"{target!r} is not a KYC status", fields={"status": ["unknown KYC status"]}
        ) from error
    rule = TRANSITIONS.get((source, destination))
    if rule is None or rule.event != event:
        allowed = sorted(
            to for (frm, to), step in TRANSITIONS.items() if frm == source and step.event == event
        )
        hint = (
            f"from {source} it can go to {', '.join(allowed)}"
            if allowed
            else f"nothing can be done by {event} from {source}"
        )
        raise KycTransitionNotAllowed(
            f"KYC cannot go from {source} to {destination} by {event}; {hint}.",
            fields={"decision" if event == KycEvent.REVIEW else "status": [f"not allowed from {source}"]},
        )
    if rule.reason_required and not reason.strip():
        raise KycReasonRequired(
            f"Say why when moving KYC from {source} to {destination}: the counterparty is told.",
            fields={"reason": ["a reason is required for this decision"]},
        )
    return destination


def kyc_submit_target(current: str) -> KycState:
    return kyc_transition(current=current, target=KycState.PROCESSING, event=KycEvent.SUBMIT)


def kyc_decision_target(*, current: str, decision: str, reason: str) -> KycState:
    try:
        target = DECISION_TARGET[KycDecision(decision)]
    except ValueError as error:
        raise KycTransitionNotAllowed(
            f"{decision!r} is not a KYC decision; use accept, reject or needs_info.",
            fields={"decision": ["one of accept, reject, needs_info"]},
        ) from error
    return kyc_transition(current=current, target=target, event=KycEvent.REVIEW, reason=reason)


def can_hold_funds(state: str) -> bool:
    """Only an ACCEPTED counterparty may hold funds or open channels."""
    return state == KycState.ACCEPTED
