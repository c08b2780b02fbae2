"""Writing many rows at once with PostgreSQL ``COPY``: one writer for every app's bulk rows.

``bulk_create`` compiles an INSERT with a placeholder per value in Python, which costs more than
the rules and signatures of a payment batch or an agreed block of thousands of observations;
COPY streams the same rows several times faster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models.base import ModelState

ModelType = TypeVar("ModelType", bound=models.Model)


class JsonText(str):
    """A JSON field's value already encoded (say, the canonical bytes a signature covers):
    written as it is instead of being encoded again."""


# From this many rows on, COPY (two statements) beats one INSERT.
COPY_FROM_ROWS = 20


def model_columns(model: type[models.Model]) -> list[str]:
    """The model's columns after ``id``, in the order its positional constructor takes them."""
    names = [field.attname for field in model._meta.concrete_fields]
    if names[0] != "id":
        raise TypeError(f"{model.__name__}: the id must be the first column")
    return names[1:]


def copy_rows(model: type[models.Model], values: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert rows given as tuples in the model's column order (after ``id``) with PostgreSQL's
    COPY: ids drawn from the table's sequence in one query, then one stream of rows (JSON
    fields encoded here, everything else adapted by psycopg). Returns the ids, in order."""
    if not values:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, len(values)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    _copy(model, ids, values)
    return ids


def append_rows(model: type[models.Model], values: Sequence[tuple[Any, ...]]) -> None:
    """:func:`copy_rows` for rows nobody needs the ids of: the table's default numbers them,
    so the batch takes one statement (the COPY) instead of two."""
    if values:
        _copy(model, None, values)


def _copy(model: type[models.Model], ids: list[int] | None, values: Sequence[tuple[Any, ...]]) -> None:
    """One COPY of ``values`` (with ``ids`` first, or the ids left to the column's default)."""
    table = model._meta.db_table
    columns = model_columns(model)
    json_positions = [
        index
        for index, field in enumerate(model._meta.concrete_fields[1:])
        if isinstance(field, models.JSONField)
    ]
    names = ", ".join(columns if ids is None else ["id", *columns])
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for index, row in enumerate(values):
            line = list(row)
            for position in json_positions:
                value = line[position]
                if type(value) is not JsonText:
                    line[position] = json.dumps(value)
            copy.write_row(line if ids is None else [ids[index], *line])


def copy_in(model: type[ModelType], values: Sequence[tuple[Any, ...]]) -> list[ModelType]:
    """:func:`copy_rows`, returning the saved objects (as a query would have loaded them)."""
    columns = ("id", *model_columns(model))
    ids = copy_rows(model, values)
    alias = connection.alias
    return [loaded(model, columns, (pk, *row), alias=alias) for pk, row in zip(ids, values, strict=True)]


def loaded(
    model: type[ModelType], attnames: Sequence[str], values: Sequence[Any], *, alias: str | None = None
) -> ModelType:
    """A model object for a row just written, as a query would have loaded it. Built without
    ``Model.__init__`` (its per-field work and signals cost more than the row's COPY; the models
    written this way have no init signal receivers): Django keeps field values in the instance dict.
    ``alias``: the connection's, looked up once by a caller building many (each look-up of
    ``connection`` goes through a thread-local)."""
    item = model.__new__(model)
    item.__dict__.update(zip(attnames, values, strict=True))
    item._state = ModelState()
    item._state.adding, item._state.db = False, alias or connection.alias
    return item


def copy_objects(objects: Sequence[models.Model]) -> None:
    """``bulk_create`` through COPY for objects of one model (defaults already applied when
    they were built); each gets its id. A few rows take one INSERT (COPY takes two statements)."""
    if not objects:
        return
    if len(objects) < COPY_FROM_ROWS:
        type(objects[0])._default_manager.bulk_create(objects)
        return
    columns = model_columns(type(objects[0]))
    ids = copy_rows(type(objects[0]), [tuple(getattr(item, name) for name in columns) for item in objects])
    for item, pk in zip(objects, ids, strict=True):
        item.pk = pk
        item._state.adding, item._state.db = False, connection.alias
