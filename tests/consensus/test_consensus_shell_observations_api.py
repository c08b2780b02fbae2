"""Submitting observations over the API: operators only, idempotent, bad input refused with a
code and nothing queued."""

from __future__ import annotations

from consensus_shell_support import dispatched, single_validator

from consensus.models import PendingObservation
from consensus.services import MAX_PAYLOAD_BYTES

__all__ = ["dispatched", "single_validator"]

URL = "/api/consensus/observations/"


def test_an_operator_submits_and_the_same_payload_is_queued_once(
    single_validator, dispatched, client, make_user
):
    client.force_login(make_user("op", "operator"))
    body = {"kind": "ledger.head", "payloads": [b"head 1".hex(), b"head 2".hex(), b"head 1".hex()]}
    first = client.post(URL, body, content_type="application/json")
    assert first.status_code == 202
    assert first.json() == {"submitted": 3, "new": 2}
    again = client.post(URL, body, content_type="application/json")
    assert again.json() == {"submitted": 3, "new": 0}
    assert PendingObservation.objects.count() == 2
    assert ("votes_apply",) in dispatched


def test_bad_submissions_are_refused_and_queue_nothing(single_validator, dispatched, client, make_user):
    client.force_login(make_user("op", "operator"))
    cases = [
        ({"kind": "Bad Kind", "payloads": ["00"]}, 400, "bad_kind"),
        ({"kind": "ok", "payloads": ["not hex"]}, 400, "invalid"),
        ({"kind": "ok", "payloads": []}, 400, "invalid"),
        ({"kind": "ok"}, 400, "invalid"),
        ({"kind": "ok", "payloads": ["00" * (MAX_PAYLOAD_BYTES + 1)]}, 400, "invalid"),
        ({"kind": "ok", "payloads": ["00" * MAX_PAYLOAD_BYTES, "zz"]}, 400, "invalid"),
    ]
    for body, status, code in cases:
        answer = client.post(URL, body, content_type="application/json")
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body
    assert not PendingObservation.objects.exists()


def test_an_auditor_may_not_submit(single_validator, client, make_user):
    client.force_login(make_user("aud", "auditor"))
    answer = client.post(URL, {"kind": "ok", "payloads": ["00"]}, content_type="application/json")
    assert answer.status_code == 403
    assert not PendingObservation.objects.exists()
