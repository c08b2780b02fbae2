"""The audit log is append-only in PostgreSQL itself: no UPDATE, no DELETE, not even raw SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from settlement.audit import audit_record
from settlement.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return audit_record(
        actor="alice", action="thing.change", target=("thing", "1"), before={"a": 1}, after={"a": 2}
    )


def test_an_event_records_who_what_and_before_after(event):
    stored = AuditEvent.objects.get(pk=event.pk)

    assert (stored.actor, stored.action, stored.target_type, stored.target_id) == (
        "alice",
        "thing.change",
        "thing",
        "1",
    )
    assert (stored.before, stored.after) == ({"a": 1}, {"a": 2})


@pytest.mark.parametrize(
    "statement",
    ["UPDATE settlement_auditevent SET actor = 'mallory'", "DELETE FROM settlement_auditevent"],
)
def test_rewriting_the_log_is_refused_by_the_database(event, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert AuditEvent.objects.get(pk=event.pk).actor == "alice"


def test_the_orm_cannot_delete_an_event_either(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
