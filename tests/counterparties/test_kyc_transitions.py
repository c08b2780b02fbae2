"""Every KYC step through the API: the new status, a KycReview row and an audit record with
before/after; steps the state machine does not have are 400 kyc_transition_not_allowed and
change nothing."""

from __future__ import annotations

import pytest

from settlement.counterparties.models import KycReview
from settlement.models import AuditEvent

pytestmark = pytest.mark.django_db


def _decide(client, counterparty, decision, reason=""):
    return client.post(
        f"/api/counterparties/{counterparty.pk}/kyc/decision/",
        {"decision": decision, "reason": reason},
        content_type="application/json",
    )


def _assert_step(counterparty, *, source, target, action, actor, reason=""):
    counterparty.refresh_from_db()
    assert counterparty.kyc_status == target
    review = KycReview.objects.filter(counterparty=counterparty).first()
    assert review is not None
    assert (review.from_status, review.to_status, review.reviewer, review.reason) == (
        source,
        target,
        actor,
        reason,
    )
    event = AuditEvent.objects.filter(target_id=str(counterparty.pk), action=action).first()
    assert event is not None
    assert event.before == {"kyc_status": source}
    assert event.after == {"kyc_status": target}
    assert event.actor == actor
    assert event.reason == reason
    assert event.target_type == "counterparties.counterparty"


def test_submit_moves_needs_info_to_processing(client, operator, make_counterparty, upload):
    counterparty = make_counterparty("alice", status="NEEDS_INFO")
    client.force_login(operator)
    client.post(f"/api/counterparties/{counterparty.pk}/kyc/documents/", {"file": upload()})

    response = client.post(f"/api/counterparties/{counterparty.pk}/kyc/submit/")

    assert response.status_code == 200, response.json()
    assert response.json()["kyc_status"] == "PROCESSING"
    _assert_step(
        counterparty, source="NEEDS_INFO", target="PROCESSING", action="kyc.submit", actor=operator.username
    )


def test_resubmission_moves_rejected_to_processing(client, operator, make_counterparty):
    counterparty = make_counterparty("alice", status="REJECTED")
    client.force_login(operator)

    response = client.post(f"/api/counterparties/{counterparty.pk}/kyc/submit/")

    assert response.status_code == 200
    _assert_step(
        counterparty, source="REJECTED", target="PROCESSING", action="kyc.submit", actor=operator.username
    )


def test_accept_moves_processing_to_accepted(client, reviewer, make_counterparty):
    counterparty = make_counterparty("alice", status="PROCESSING")
    client.force_login(reviewer)

    response = _decide(client, counterparty, "accept")

    assert response.status_code == 200
    assert response.json()["can_hold_funds"] is True
    _assert_step(
        counterparty, source="PROCESSING", target="ACCEPTED", action="kyc.accept", actor=reviewer.username
    )


def test_reject_moves_processing_to_rejected_with_its_reason(client, reviewer, make_counterparty):
    counterparty = make_counterparty("alice", status="PROCESSING")
    client.force_login(reviewer)

    response = _decide(client, counterparty, "reject", "passport expired")

    assert response.status_code == 200
    _assert_step(
        counterparty,
        source="PROCESSING",
        target="REJECTED",
        action="kyc.reject",
        actor=reviewer.username,
        reason="passport expired",
    )


def test_asking_for_information_moves_processing_to_needs_info(client, reviewer, make_counterparty):
    counterparty = make_counterparty("alice", status="PROCESSING")
    client.force_login(reviewer)

    response = _decide(client, counterparty, "needs_info", "proof of address, please")

    assert response.status_code == 200
    _assert_step(
        counterparty,
        source="PROCESSING",
        target="NEEDS_INFO",
        action="kyc.needs_info",
        actor=reviewer.username,
        reason="proof of address, please",
    )


def test_periodic_review_moves_accepted_to_needs_info(client, admin_user, make_counterparty):
    counterparty = make_counterparty("alice", status="ACCEPTED")
    client.force_login(admin_user)

    response = _decide(client, counterparty, "needs_info", "yearly review")

    assert response.status_code == 200
    assert response.json()["can_hold_funds"] is False
    _assert_step(
        counterparty,
        source="ACCEPTED",
        target="NEEDS_INFO",
        action="kyc.needs_info",
        actor=admin_user.username,
        reason="yearly review",
    )


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        ("NEEDS_INFO", "accept"),
        ("NEEDS_INFO", "reject"),
        ("NEEDS_INFO", "needs_info"),
        ("ACCEPTED", "accept"),
        ("ACCEPTED", "reject"),
        ("REJECTED", "accept"),
        ("REJECTED", "needs_info"),
    ],
)
def test_a_decision_the_state_machine_lacks_is_refused_and_changes_nothing(
    client, reviewer, make_counterparty, status, decision
):
    counterparty = make_counterparty("alice", status=status)
    client.force_login(reviewer)
    reviews, events = KycReview.objects.count(), AuditEvent.objects.count()

    response = _decide(client, counterparty, decision, "some reason")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "kyc_transition_not_allowed"
    assert error["fields"]["decision"]
    counterparty.refresh_from_db()
    assert counterparty.kyc_status == status
    assert (KycReview.objects.count(), AuditEvent.objects.count()) == (reviews, events)


@pytest.mark.parametrize("status", ["PROCESSING", "ACCEPTED"])
def test_submitting_from_a_status_that_cannot_be_submitted_is_refused(
    client, operator, make_counterparty, status
):
    counterparty = make_counterparty("alice", status=status)
    client.force_login(operator)

    response = client.post(f"/api/counterparties/{counterparty.pk}/kyc/submit/")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "kyc_transition_not_allowed"
    counterparty.refresh_from_db()
    assert counterparty.kyc_status == status


@pytest.mark.parametrize("decision", ["reject", "needs_info"])
def test_rejecting_or_asking_without_a_reason_is_a_field_error(client, reviewer, make_counterparty, decision):
    counterparty = make_counterparty("alice", status="PROCESSING")
    client.force_login(reviewer)

    response = _decide(client, counterparty, decision, "  ")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "reason" in response.json()["error"]["fields"]
    counterparty.refresh_from_db()
    assert counterparty.kyc_status == "PROCESSING"


def test_submitting_without_documents_is_refused(client, operator, make_counterparty):
    counterparty = make_counterparty("alice")
    client.force_login(operator)

    response = client.post(f"/api/counterparties/{counterparty.pk}/kyc/submit/")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "kyc_documents_missing"
    assert not KycReview.objects.exists()


def test_history_lists_every_step_newest_first(client, auditor, make_counterparty):
    counterparty = make_counterparty("alice", status="REJECTED")
    client.force_login(auditor)

    response = client.get(f"/api/counterparties/{counterparty.pk}/kyc/history/")

    assert response.status_code == 200
    assert [(step["from_status"], step["to_status"]) for step in response.json()] == [
        ("PROCESSING", "REJECTED"),
        ("NEEDS_INFO", "PROCESSING"),
    ]
    assert response.json()[0]["reason"] == "documents unreadable"
