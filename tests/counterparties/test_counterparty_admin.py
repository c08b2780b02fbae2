"""The admin console's KYC review: approve, reject or ask for information on selected
counterparties, with a reason from an intermediate form, through the same service."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers

from settlement.counterparties.models import KycReview

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/counterparties/counterparty/"


@pytest.fixture
def staff_reviewer(make_user):
    user = make_user("staff-reviewer", "kyc_reviewer")
    user.is_staff = True
    user.save()
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_counterparty"))
    return user


def test_rejecting_asks_for_a_reason_then_records_it(client, staff_reviewer, make_counterparty):
    bob = make_counterparty("bob", status="PROCESSING")
    client.force_login(staff_reviewer)
    selected = {"action": "kyc_reject", helpers.ACTION_CHECKBOX_NAME: [bob.pk]}

    form = client.post(CHANGELIST, selected)
    applied = client.post(CHANGELIST, {**selected, "apply": "1", "reason": "sanctions list match"})

    assert form.status_code == 200
    assert b'name="reason"' in form.content
    assert applied.status_code == 302
    bob.refresh_from_db()
    assert bob.kyc_status == "REJECTED"
    review = KycReview.objects.get(counterparty=bob, to_status="REJECTED")
    assert (review.reviewer, review.reason) == ("staff-reviewer", "sanctions list match")


def test_a_reject_without_reason_changes_nothing(client, staff_reviewer, make_counterparty):
    bob = make_counterparty("bob", status="PROCESSING")
    client.force_login(staff_reviewer)

    client.post(
        CHANGELIST,
        {"action": "kyc_reject", helpers.ACTION_CHECKBOX_NAME: [bob.pk], "apply": "1", "reason": ""},
    )

    bob.refresh_from_db()
    assert bob.kyc_status == "PROCESSING"


def test_approve_accepts(client, staff_reviewer, make_counterparty):
    bob = make_counterparty("bob", status="PROCESSING")
    client.force_login(staff_reviewer)

    client.post(CHANGELIST, {"action": "kyc_accept", helpers.ACTION_CHECKBOX_NAME: [bob.pk], "apply": "1"})

    bob.refresh_from_db()
    assert bob.kyc_status == "ACCEPTED"


def test_staff_without_a_review_role_cannot_decide(client, make_user, make_counterparty):
    from django.contrib.auth.models import Permission

    clerk = make_user("staff-operator", "operator")
    clerk.is_staff = True
    clerk.save()
    clerk.user_permissions.add(Permission.objects.get(codename="view_counterparty"))
    bob = make_counterparty("bob", status="PROCESSING")
    client.force_login(clerk)

    client.post(CHANGELIST, {"action": "kyc_accept", helpers.ACTION_CHECKBOX_NAME: [bob.pk], "apply": "1"})

    bob.refresh_from_db()
    assert bob.kyc_status == "PROCESSING"
