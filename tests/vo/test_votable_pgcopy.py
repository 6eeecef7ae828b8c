"""The binary COPY decoder against a real PostgreSQL: what COPY carries equals what a plain
SELECT returns, whatever the NULLs, the types and the way the stream is cut into chunks."""

from __future__ import annotations

import datetime as dt
import io
import math
import random

import numpy as np
import pytest
from votable_support import astropy_table

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import (
    UnsupportedPgType,
    WriteStats,
    copy_batches,
    decode_copy_stream,
    describe_pg_types,
    geometry_sql,
    pgsphere_degrees,
    write_votable,
)

# Ten columns, so a row starts with the 16-bit count 10 and every integer value 10 in the data
# looks like a row start: the decoder must tell the true rows from these.
MIXED = """
SELECT i::smallint AS s,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 20)::integer END AS n,
       i::bigint * 1000003 - 9223372036854 AS l,
       CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 3.0)::real END AS r,
       CASE WHEN i % 11 = 0 THEN 'NaN'::float8 WHEN i % 13 = 0 THEN '-Infinity'::float8
            ELSE i * 1e-3 END AS d,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
       CASE WHEN i % 9 = 0 THEN NULL WHEN i % 4 = 0 THEN '' ELSE 'src-' || i || repeat('Ω', i % 3)
       END AS t,
       ('g' || (i % 3))::char(4) AS c,
       CASE WHEN i % 6 = 0 THEN NULL
            ELSE timestamptz '2019-03-01 00:00:00+00' + i * interval '1.25 second' END AS ts,
       CASE WHEN i % 8 = 0 THEN NULL WHEN i % 8 = 1 THEN ARRAY[]::float8[]
            ELSE ARRAY[i, i + 0.5, -i]::float8[] END AS a
FROM generate_series(1, {rows}) AS i
"""


def _fetch(connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _raw_copy(connection, sql: str) -> bytes:
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.copy(
            f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            buffer += chunk
    return bytes(buffer)


def _same(decoded, fetched) -> bool:
    if fetched is None or decoded is None:
        return fetched is None and decoded is None
    if isinstance(fetched, float):
        return (math.isnan(fetched) and math.isnan(decoded)) or float(decoded) == fetched
    if isinstance(fetched, list):
        return [float(v) for v in decoded] == fetched
    if isinstance(fetched, str):
        return decoded == fetched.rstrip(" ")  # char(n) pads; PostgreSQL ignores the blanks
    return decoded == fetched


def _rows(batches) -> list[tuple]:
    return [row for batch in batches for row in batch.rows()]


@pytest.fixture(scope="module")
def connection(database):
    with database.admin() as connection:
        yield connection


def test_decoded_rows_equal_a_plain_select(connection) -> None:
    """Every type of the schema, NULLs in every column, false row starts everywhere."""
    sql = MIXED.format(rows=3000)
    with connection.cursor() as cursor:
        types = describe_pg_types(cursor, sql)
    assert types == ["smallint", "integer", "bigint", "real", "double precision", "boolean",
                     "text", "character", "timestamp with time zone", "double precision[]"]
    expected = _fetch(connection, sql)
    with connection.cursor() as cursor:
        decoded = _rows(copy_batches(cursor, sql, types, batch_bytes=20_000))
    assert len(decoded) == len(expected)
    for got, want in zip(decoded, expected, strict=True):
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            if index == 3 and b is not None:  # real: compare in single precision
                assert np.float32(a) == np.float32(b)
            else:
                assert _same(a, b), (index, a, b)


def test_any_chunking_gives_the_same_rows(connection) -> None:
    """The stream may be cut anywhere: inside the header, a length word or a value."""
    sql = MIXED.format(rows=300)
    with connection.cursor() as cursor:
        types = describe_pg_types(cursor, sql)
    raw = _raw_copy(connection, sql)
    reference = _rows(decode_copy_stream([raw], types))
    generator = random.Random(7)
    for batch_bytes in (1, 333, 4096):
        cuts = sorted(generator.sample(range(1, len(raw)), 200))
        chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        rows = _rows(decode_copy_stream(chunks, types, batch_bytes=batch_bytes))
        assert len(rows) == len(reference) == 300
        for got, want in zip(rows, reference, strict=True):
            assert all(_same(a, b) if not isinstance(b, np.ndarray) else
                       np.array_equal(a, b, equal_nan=True) for a, b in zip(got, want, strict=True))


def test_fixed_width_columns_take_the_fast_path_and_back(connection) -> None:
    """All-numeric rows without NULLs, then NULLs, then none again, across batches."""
    sql = ("SELECT i AS id, i * 0.5 AS x, CASE WHEN i BETWEEN 400 AND 420 THEN NULL "
           "ELSE i::real END AS y, timestamptz '2020-01-01Z' + i * interval '1 ms' AS t "
           "FROM generate_series(1, 2000) i")
    types = ["integer", "numeric", "real", "timestamptz"]
    with pytest.raises(UnsupportedPgType):  # refused before the query runs
        copy_batches(connection.cursor(), sql, types)
    sql = sql.replace("i * 0.5", "(i * 0.5)::float8")
    types[1] = "double precision"
    with connection.cursor() as cursor:
        batches = list(copy_batches(cursor, sql, types, batch_bytes=8192))
    assert len(batches) > 5
    rows = _rows(batches)
    assert [r[0] for r in rows] == list(range(1, 2001))
    assert [i for i, r in enumerate(rows, start=1) if r[2] is None] == list(range(400, 421))
    assert rows[999][3] == dt.datetime(2020, 1, 1, 0, 0, 1, tzinfo=dt.UTC)


def test_pgsphere_geometry_as_dali_arrays(connection) -> None:
    """DALI point, circle and polygon (degrees) through geometry_sql; pgsphere types refused."""
    with pytest.raises(UnsupportedPgType):
        decode_copy_stream([], ["spoly"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_sphere_output('RAD')")
        sql = (
            "SELECT " + geometry_sql("spoint '(10.5d, -20.25d)'", "spoint") + " AS p, "
            + geometry_sql("scircle '<(350d, 89d), 0.5d>'", "scircle") + " AS c, "
            + geometry_sql("g", "spoly") + " AS poly "
            "FROM (VALUES (spoly '{(10d,10d),(10.2d,10d),(10.2d,10.2d),(10d,10.2d)}'),"
            " (NULL::spoly)) AS v(g)"
        )
        rows = _rows(copy_batches(cursor, sql, ["double precision[]"] * 3))
        cursor.execute("SELECT set_sphere_output('DEG')")
        degrees = _rows(copy_batches(cursor, sql, ["double precision[]"] * 3))
    point, circle, polygon = rows[0]
    assert np.allclose(point, [10.5, -20.25], atol=1e-12)
    assert np.allclose(circle, [350.0, 89.0, 0.5], atol=1e-12)
    assert np.allclose(polygon, [10, 10, 10.2, 10, 10.2, 10.2, 10, 10.2], atol=1e-11)
    assert rows[1][2] is None
    assert np.allclose(degrees[0][2], polygon, atol=1e-11)


def test_pgsphere_text_read_in_python_as_geometry_sql_reads_it(connection) -> None:
    """pgsphere_degrees (SIA's and SCS's footprints, the image pages) against geometry_sql in
    both of pgsphere's output modes, across RA 0 and near a pole."""
    values = ("spoint '(10.5d, -20.25d)'", "scircle '<(359.9d, 89d), 0.5d>'",
              "spoly '{(359.9d,-10d),(0.2d,-10d),(0.2d,-9.8d),(359.9d,-9.8d)}'")
    kinds = ("spoint", "scircle", "spoly")
    sql_arrays = "SELECT " + ", ".join(geometry_sql(v, k) for v, k in zip(values, kinds,
                                                                           strict=True))
    sql_texts = "SELECT " + ", ".join(f"({v})::text" for v in values) + ", NULL::spoly::text"
    try:
        for mode in ("RAD", "DEG"):
            connection.execute(f"SELECT set_sphere_output('{mode}')")
            arrays = connection.execute(sql_arrays).fetchone()
            texts = connection.execute(sql_texts).fetchone()
            for array, text, kind in zip(arrays, texts[:3], kinds, strict=True):
                found = pgsphere_degrees(text, kind)
                expected = [v % 360.0 if i == 0 or (i % 2 == 0 and kind != "scircle") else v
                            for i, v in enumerate(array)]
                assert np.allclose(found, expected, rtol=0, atol=1e-9), (mode, kind, text)
            assert pgsphere_degrees(texts[3]) is None
        assert np.allclose(pgsphere_degrees(texts[2]), [359.9, -10, 0.2, -10, 0.2, -9.8,
                                                         359.9, -9.8], atol=1e-9)
    finally:
        connection.execute("SELECT set_sphere_output('RAD')")


def test_database_to_votable_with_maxrec(connection) -> None:
    """The TAP path: MAXREC+1 rows through COPY, MAXREC written, the COPY left early."""
    sql = MIXED.format(rows=5000)
    with connection.cursor() as cursor:
        types = describe_pg_types(cursor, sql)
    fields = [FieldSpec("s", "short"), FieldSpec("n", "int"), FieldSpec("l", "long"),
              FieldSpec("r", "float"), FieldSpec("d", "double"), FieldSpec("b", "boolean"),
              FieldSpec("t", "unicodeChar", arraysize="*"), FieldSpec("c", "char", arraysize="4"),
              FieldSpec("ts", "char", arraysize="*", xtype="timestamp"),
              FieldSpec("a", "double", arraysize="*")]
    stats = WriteStats()
    with connection.cursor() as cursor:
        body = b"".join(write_votable(
            fields, copy_batches(cursor, sql + " LIMIT 1001", types, batch_bytes=30_000),
            limit=1000, stats=stats))
    assert stats.rows == 1000 and stats.overflow
    table = astropy_table(body).array
    expected = _fetch(connection, sql + " LIMIT 1000")
    assert len(table) == 1000
    for index in (0, 3, 8, 9, 10, 11, 999):
        want = expected[index]
        assert (np.ma.is_masked(table["n"][index]) if want[1] is None
                else table["n"][index] == want[1])
        assert table["t"][index] == (want[6] or "")
        if want[8] is not None:
            assert table["ts"][index].startswith(want[8].strftime("%Y-%m-%dT%H:%M:%S"))
    # The connection is usable after the COPY was abandoned at the limit.
    assert _fetch(connection, "SELECT 1") == [(1,)]
    assert io.BytesIO(body).getvalue().count(b'value="OVERFLOW"') == 1
