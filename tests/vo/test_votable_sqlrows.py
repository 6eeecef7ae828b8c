"""TABLEDATA cells rendered by PostgreSQL (``vo.votable.sqlrows``, SIA's fast path) against the
column-batch writer on the same rows: the two documents must read back as the same table, both
clean for votlint and astropy, in VOTable 1.4 and in 1.1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from votable_support import (
    FIELDS,
    POLYGON,
    ROWS,
    astropy_table,
    astropy_validates,
    same_float,
    votlint,
)

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import copy_batches, write_votable
from skyvault.vo.votable.sqlrows import row_sql

UTC = dt.UTC
PG_TYPES = ["bigint", "double precision", "real", "integer", "smallint", "boolean", "text",
            "text", "char(2)", "timestamptz", "double precision[]", "smallint[]"]
COLUMNS = [f.name for f in FIELDS]
# Beyond votable_support's rows: what the rendering must clean or cut, and pgsphere geometry.
EXTRA_ROWS = [
    (7, 1.0, 2.0, 1, 1, True, "caf\u00e9 \x01 bell", "emoji \U0001F600 ok", "zg",
     dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), [1.0, 2.0], [1]),
    (8, float("nan"), float("nan"), 2, 2, None, "x" * 40, "\ufffe", "zi",
     "infinity", [float("nan"), float("nan")], [0]),
]
POLYGONS = ["{(10d,10d),(10.2d,10d),(10.2d,10.2d),(10d,10.2d)}", None,
            "{(359.5d,-1d),(0.5d,-1d),(0d,1d)}", None, None, None, None]
ALL_FIELDS = [*FIELDS, FieldSpec("cut", "char", arraysize="5"), POLYGON]


@pytest.fixture(scope="module")
def rows_table(database):
    """A temporary table of every kind of value, in one admin transaction."""
    with database.admin() as connection:
        columns = ", ".join(f"{name} {pg}" for name, pg in zip(COLUMNS, PG_TYPES, strict=True))
        connection.execute(f"CREATE TEMP TABLE cells (n serial, {columns}, cut text,"
                           " s_region spoly)")
        for row, polygon in zip([*ROWS, *EXTRA_ROWS], POLYGONS, strict=True):
            values = [float(v) if isinstance(v, np.floating) else v for v in row]
            connection.execute(
                f"INSERT INTO cells ({', '.join(COLUMNS)}, cut, s_region) VALUES"
                f" ({', '.join(['%s'] * len(COLUMNS))}, %s, %s::spoly)",
                (*values, None if row[6] is None else row[6] + "-tail", polygon))
        yield connection


def _documents(connection, version: str) -> tuple[bytes, bytes]:
    expressions = [*COLUMNS, "cut", "s_region"]
    types = [*PG_TYPES, "text", "spoly"]
    rows = row_sql(ALL_FIELDS, expressions, types, version=version)
    fetched = connection.execute(f"SELECT {rows.select_list} FROM cells ORDER BY n").fetchall()
    by_postgres = b"".join(write_votable(ALL_FIELDS, [rows.rendered(fetched)],
                                         serialization="TABLEDATA", version=version))
    selected = [*COLUMNS, "cut",
                "(SELECT array_agg(CASE WHEN right(v, 1) = 'd' THEN rtrim(v, 'd')::float8"
                " ELSE degrees(v::float8) END ORDER BY o) FROM unnest(string_to_array("
                "translate(s_region::text, '{}() ', ''), ',')) WITH ORDINALITY AS _v(v, o))"]
    with connection.cursor() as cursor:
        batches = list(copy_batches(cursor, f"SELECT {', '.join(selected)} FROM cells ORDER BY n",
                                    [*PG_TYPES, "text", "double precision[]"]))
    by_columns = b"".join(write_votable(ALL_FIELDS, batches, serialization="TABLEDATA",
                                        version=version))
    return by_postgres, by_columns


def _same_cell(a, b) -> bool:
    if np.ma.is_masked(a) or np.ma.is_masked(b):
        return bool(np.all(np.ma.getmaskarray(a)) and np.all(np.ma.getmaskarray(b)))
    if isinstance(a, np.ndarray):
        return len(a) == len(b) and all(same_float(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (float, np.floating)):
        return same_float(a, b)
    return a == b


@pytest.mark.parametrize("version", ["1.4", "1.1"])
def test_postgresql_renders_what_the_column_writer_writes(rows_table, version,
                                                          tmp_path: Path) -> None:
    by_postgres, by_columns = _documents(rows_table, version)
    for name, body in (("postgres", by_postgres), ("columns", by_columns)):
        path = tmp_path / f"{name}.vot"
        path.write_bytes(body)
        assert votlint(path) == "", name
        assert astropy_validates(body), name
    ours, theirs = astropy_table(by_postgres).array, astropy_table(by_columns).array
    assert len(ours) == len(theirs) == len(ROWS) + len(EXTRA_ROWS)
    for field in ALL_FIELDS:
        for index in range(len(ours)):
            a, b = ours[field.name][index], theirs[field.name][index]
            if field.xtype == "timestamp" and str(a):
                # Second decimals differ in form (each value's own / the batch's), not value.
                assert np.datetime64(str(a), "us") == np.datetime64(str(b), "us"), index
            else:
                assert _same_cell(a, b), (field.name, index, a, b)


def test_the_rendering_follows_the_cell_rules(rows_table) -> None:
    """NULLs (VOTable 1.4 5.1: empty; a DALI polygon: NaNs), infinities, escaping, ASCII for
    char, U+FFFD for what XML or BMP-only unicodeChar cannot carry, 'infinity' as no time."""
    text = _documents(rows_table, "1.4")[0].decode("utf-8")
    rows = text.split("<TR>")[1:]
    assert "<TD>NaN NaN NaN NaN NaN NaN</TD>" in rows[1] and "<TD></TD>" in rows[1]
    assert "<TD>+Inf</TD>" in rows[2] and "<TD>-Inf</TD>" in rows[3]
    assert "<TD>a&lt;b &amp; c&gt;\"d\"&#13;\nnext" in text
    assert "<TD>1969-12-31T23:59:59.123456</TD>" in rows[2]
    assert "<TD>2000-01-01T00:00:00</TD>" in rows[3]
    assert "<TD>caf? ? bell</TD>" in rows[5]
    assert "<TD>emoji \ufffd ok</TD>" in rows[5] and "<TD>caf? </TD>" in rows[5]
    assert "<TD>xxxxx</TD>" in rows[6]
    assert "<TD>NaN NaN</TD>" in rows[6] and "<TD>\ufffd</TD>" in rows[6]
    assert rows[6].count("<TD></TD>") == 2  # the boolean and the time that is 'infinity'
    assert "<TD>2026-12-31T23:59:59.999999</TD>" in rows[5]
    assert "<TD>T</TD>" in rows[0] and "<TD>F</TD>" in rows[2]
    eleven = _documents(rows_table, "1.1")[0].decode("utf-8")
    null_row = eleven.split("<TR>")[2]
    assert "<TD>-9223372036854775808</TD><TD></TD><TD></TD><TD>-2147483648</TD>" in null_row
