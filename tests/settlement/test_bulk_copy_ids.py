"""``settlement.bulk.copy_rows`` draws ids from the table's own sequence (named once per
database and table), so rows it writes and rows the ORM inserts never collide, and every COPY
returns the ids its rows got, in order."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from settlement import bulk
from settlement.audit import audit_record
from settlement.models import AuditEvent


def _audit_values(template: AuditEvent, count: int, prefix: str) -> list[tuple[Any, ...]]:
    """Rows for AuditEvent in its column order, copied from an event the ORM wrote."""
    columns = bulk.model_columns(AuditEvent)
    rows = []
    for index in range(count):
        values = {name: getattr(template, name) for name in columns}
        values["action"] = f"{prefix}.{index}"
        rows.append(tuple(values[name] for name in columns))
    return rows


@pytest.mark.django_db
def test_copied_rows_and_orm_rows_draw_distinct_ids_from_the_one_sequence():
    first = audit_record(actor="test", action="bulk.first", target=("bulk", "1"))
    copied = bulk.copy_rows(AuditEvent, _audit_values(first, 25, "copied"))
    after = audit_record(actor="test", action="bulk.after", target=("bulk", "1"))
    assert copied == sorted(copied)
    assert len(set(copied)) == 25
    assert first.pk < copied[0]
    assert copied[-1] < after.pk
    stored = dict(AuditEvent.objects.filter(pk__in=copied).values_list("pk", "action"))
    assert stored == {pk: f"copied.{index}" for index, pk in enumerate(copied)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [AuditEvent._meta.db_table])
        assert bulk.id_sequence(AuditEvent._meta.db_table) == cursor.fetchone()[0]
