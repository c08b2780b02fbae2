"""Writing many rows at once with PostgreSQL ``COPY``: one writer for every app's bulk rows.

``bulk_create`` compiles an INSERT with a placeholder per value in Python, which costs more than
the rules and signatures of a payment batch or an agreed block of thousands of observations;
COPY streams the same rows several times faster.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import connection, models
from django.db.models.base import ModelState
from psycopg.types.json import Jsonb

ModelType = TypeVar("ModelType", bound=models.Model)


class JsonText(str):
    """A JSON field's value already encoded (say, the canonical bytes a signature covers):
    written as it is instead of being encoded again."""


class JsonTextField(models.TextField):
    """A JSON value kept as its text: loaded as Python values, written as JSON text (a
    :class:`JsonText` as it is). For columns written thousands of times a second and never
    queried inside: PostgreSQL stores the text without parsing it into ``jsonb`` (about a third
    of the CPU a message row cost, docs/messaging.md "Speed"), and a signed object's column can
    hold the exact canonical text that was signed."""

    # What django-stubs reads for the values set and got (as for JSONField): any JSON value.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        # Values are Python already (forms and fixtures would hand JSON text: decode it).
        if isinstance(value, str) and type(value) is not JsonText:
            return json.loads(value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or type(value) is JsonText:
            return value
        return json.dumps(value)


# From this many rows on, COPY (two statements) beats one INSERT.
COPY_FROM_ROWS = 20


def model_columns(model: type[models.Model]) -> list[str]:
    """The model's columns after ``id``, in the order its positional constructor takes them."""
    names = [field.attname for field in model._meta.concrete_fields]
    if names[0] != "id":
        raise TypeError(f"{model.__name__}: the id must be the first column")
    return names[1:]


@functools.cache
def _layout(model: type[models.Model]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The model's columns after ``id`` and the positions among them of its JSON columns, worked
    out once per process (every batch's COPY asks; a model's fields do not change)."""
    fields = model._meta.concrete_fields[1:]
    json_positions = tuple(
        index for index, field in enumerate(fields) if isinstance(field, (models.JSONField, JsonTextField))
    )
    return tuple(model_columns(model)), json_positions


def row_of(model: type[models.Model], **values: Any) -> tuple[Any, ...]:
    """A row of ``model`` for :func:`copy_rows` and :func:`append_rows`: the values in its column
    order (:func:`model_columns`), every column named (a ``KeyError`` names the one missing)."""
    return tuple(values[name] for name in _layout(model)[0])


_id_sequences: dict[tuple[str, str], str] = {}


def id_sequence(table: str) -> str:
    """The name of the sequence ``table``'s id is drawn from, asked once per database and table.

    Named once instead of ``nextval(pg_get_serial_sequence(...))`` per row: that function is not
    immutable, so PostgreSQL runs it (catalog look-ups, text to regclass) for every id drawn,
    about 8 µs a row against 0.5 µs for ``nextval`` of a named sequence."""
    key = (str(connection.settings_dict["NAME"]), table)
    name = _id_sequences.get(key)
    if name is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (name,) = cursor.fetchone()
        if name is None:
            raise TypeError(f"{table}.id is not drawn from a sequence")
        _id_sequences[key] = name
    return name


def copy_rows(
    model: type[models.Model], values: Sequence[tuple[Any, ...]], *, binary: bool = False
) -> list[int]:
    """Insert rows given as tuples in the model's column order (after ``id``) with PostgreSQL's
    COPY: ids drawn from the table's sequence in one query, then one stream of rows (JSON
    fields encoded here, everything else adapted by psycopg). Returns the ids, in order.

    ``binary``: COPY's binary format (:func:`binary_types`): integers, timestamps and text go
    as they are, not written out as text by psycopg and parsed back by the server (ledger
    entries and transfers: about a third less CPU for their COPY in Python, a fifth less in
    PostgreSQL; docs/ledgers.md, seventh round). For models whose every column has a type
    :func:`binary_types` knows."""
    if not values:
        return []
    sequence = id_sequence(model._meta.db_table)
    with connection.cursor() as cursor:
        # The cast of the one parameter is worked out once per statement, not once per row.
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, len(values)])
        ids = [pk for (pk,) in cursor.fetchall()]
    if binary:
        _copy_binary(model, ids, values)
    else:
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
    columns, json_positions = _layout(model)
    names = ", ".join(columns if ids is None else ["id", *columns])
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for index, row in enumerate(values):
            # A row is copied only when a JSON value in it still needs encoding (most callers
            # hand JsonText, encoded once already): two list copies a row cost more than the test.
            for position in json_positions:
                if type(row[position]) is not JsonText:
                    row = _with_json_encoded(row, json_positions)
                    break
            copy.write_row(row if ids is None else (ids[index], *row))


# The type names psycopg's binary dumpers go by, for the column types Django declares
# (varchar(n) is sent as text: the same binary form, the length still checked by the server).
_BINARY_TYPE_NAMES = {
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "text": "text",
    "varchar": "text",
    "bytea": "bytea",
    "jsonb": "jsonb",
    "timestamp with time zone": "timestamptz",
}


@functools.cache
def binary_types(model: type[models.Model]) -> tuple[str, ...]:
    """The binary COPY type of each of ``model``'s columns (``id`` first), worked out once; a
    ``TypeError`` names a column of a type not in the table above."""
    types = []
    for item in model._meta.concrete_fields:
        declared = item.db_type(connection) or ""
        name = _BINARY_TYPE_NAMES.get(declared.split("(")[0])
        if name is None:
            raise TypeError(f"{model.__name__}.{item.name} ({declared}) cannot be copied in binary")
        types.append(name)
    return tuple(types)


def _as_is(text: str) -> str:
    return text


def _copy_binary(model: type[models.Model], ids: list[int], values: Sequence[tuple[Any, ...]]) -> None:
    """:func:`_copy` in COPY's binary format, with the ids given. A JSON value goes as its text
    (a :class:`JsonText` as it is, anything else through ``json.dumps``)."""
    columns, json_positions = _layout(model)
    types = binary_types(model)

    def lines() -> Iterator[list[Any]]:
        for pk, row in zip(ids, values, strict=True):
            line = [pk, *row]
            for position in json_positions:
                value = line[position + 1]
                if types[position + 1] == "jsonb":
                    line[position + 1] = Jsonb(value, dumps=_as_is if type(value) is JsonText else None)
                elif type(value) is not JsonText:  # a JsonTextField: its text
                    line[position + 1] = json.dumps(value)
            yield line

    copy_binary(model._meta.db_table, ("id", *columns), types, lines())


def _with_json_encoded(row: tuple[Any, ...], json_positions: tuple[int, ...]) -> tuple[Any, ...]:
    line = list(row)
    for position in json_positions:
        value = line[position]
        if type(value) is not JsonText:
            line[position] = json.dumps(value)
    return tuple(line)


def copy_binary(
    table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """One ``COPY … (FORMAT BINARY)`` of ``rows`` into ``table``'s ``columns`` (PostgreSQL type
    names in ``types``): bytes travel as they are, not escaped as text for the server to parse
    back. For rows whose ids nobody reads and whose columns need no default computed by the
    server. A refused row (a unique violation, say) refuses the whole COPY, raised as Django's
    exception (``IntegrityError``), so a caller can catch it as it would an ORM write's."""
    connection.ensure_connection()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
        cursor.copy(statement) as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def execute_binary(sql: str, params: Sequence[Any]) -> int:
    """Run one statement in the current transaction with its parameters bound by the server,
    ``%b`` ones sent in binary; returns the rows it affected.

    For arrays of ``bytea`` (many rows' digests and bytes in one statement): Django's cursor
    binds on the client, which writes every byte of them out as escaped text for PostgreSQL to
    parse back, or the caller hex-encodes them for ``decode()``; in binary they travel as they
    are (an observation row's insert: 12.6 -> 8.7 µs of PostgreSQL CPU). The statement bypasses
    Django's execute wrappers, as COPY does."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), params)
        return cursor.rowcount


def append_rows_binary(model: type[models.Model], values: Sequence[tuple[Any, ...]]) -> None:
    """:func:`append_rows` through a binary COPY (:func:`copy_binary`, each column's type from
    :func:`binary_types`), for rows of bytes and fixed-width values written thousands of times a
    second (a channel's both-signed states): the text COPY writes every byte out as hex, and
    PostgreSQL parses it back, with the numbers and timestamps, in its input functions. No JSON
    columns: the caller's values are the column values as they are."""
    if not values:
        return
    columns, json_positions = _layout(model)
    if json_positions:
        raise TypeError(f"{model.__name__}: append_rows_binary takes no JSON column")
    copy_binary(model._meta.db_table, columns, binary_types(model)[1:], values)


def fetch_bound(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """:func:`execute_binary` for a statement that returns rows: bound on the server, ``%b``
    parameters in binary, the rows returned in binary (bytea as bytes, numbers unparsed), and
    prepared once per connection (``sql`` must be a fixed text whose values are all parameters):
    a statement the batch path runs for every batch is parsed and planned once."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), params, prepare=True, binary=True)
        return cursor.fetchall() if cursor.description is not None else []


def copy_in(model: type[ModelType], values: Sequence[tuple[Any, ...]]) -> list[ModelType]:
    """:func:`copy_rows`, returning the saved objects (as a query would have loaded them)."""
    columns = ("id", *_layout(model)[0])
    ids = copy_rows(model, values)
    alias = connection.alias
    return [loaded(model, columns, (pk, *row), alias=alias) for pk, row in zip(ids, values, strict=True)]


def loaded(
    model: type[ModelType], attnames: Sequence[str], values: Sequence[Any], *, alias: str | None = None
) -> ModelType:
    """A model object for a row just written (or read by written-out SQL whose columns need no
    converting), as a query would have loaded it. Built without
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
