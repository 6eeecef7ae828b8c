"""The release export's binary COPY reader: every value and every NULL of every column comes
back as psycopg reads the same rows (an independent decoder), including the edges of each
type; a row that breaks the fixed layout is an error, not shifted columns."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from skyvault.db import Database
from skyvault.releases import binary_rows
from skyvault.releases.hats_writer import _arrow_type
from skyvault.schema.tables import PSF_SOURCES

SCHEMA = pa.schema([pa.field(c.name, _arrow_type(c)) for c in PSF_SOURCES.columns])
NULLABLE = [c.name for c in PSF_SOURCES.columns if c.nullable]


def _fill(connection, rows: int) -> None:
    connection.execute(f"CREATE TEMP TABLE rows_under_test ON COMMIT DROP AS SELECT"
                       f" {', '.join(PSF_SOURCES.column_names)} FROM survey.psf_sources LIMIT 0")
    # Row k leaves the k-th nullable column NULL (each NULL bit alone), the last rows leave
    # all of them NULL or none; the values reach the edges of their types.
    connection.execute("""
        INSERT INTO rows_under_test (sourceid, pid, expid, nid, field, rcid, fid, filtercode,
            ra, dec, x, y, mag, magerr, flux, fluxerr, sharpness, chi, oid, flags, snr,
            obsjd, programid)
        SELECT k, 9223372036854775807 - k, -k, 2147483647 - k, k * 7, (k %% 64)::smallint,
               (-32768 + k)::smallint, CASE WHEN k %% 2 = 0 THEN 'zg' ELSE 'zr' END,
               k * 0.1 + 1e-300, -89.99999999999 + k, 'NaN', 'Infinity', '-Infinity',
               -0.0, 3.4e38, 1.17549435e-38, k / 3.0, 0.1, 4611686018427387904 + k, -k,
               1e-45, 2460000.123456789 + k, (k %% 3 + 1)::smallint
          FROM generate_series(1, %s) k""", (rows,))
    for k, name in enumerate(NULLABLE, start=1):
        connection.execute(f"UPDATE rows_under_test SET {name} = NULL WHERE sourceid = %s",
                           (k,))
    nulls = ", ".join(f"{name} = NULL" for name in NULLABLE)
    connection.execute(f"UPDATE rows_under_test SET {nulls} WHERE sourceid = %s", (rows,))


def test_every_value_and_null_survives_the_binary_copy(database: Database,
                                                        monkeypatch) -> None:
    # Small chunks: rows straddle the chunk boundaries.
    monkeypatch.setattr(binary_rows, "CHUNK_BYTES", 1000)
    rows = len(NULLABLE) + 40
    assert binary_rows.fits(PSF_SOURCES)
    with database.admin() as connection:
        _fill(connection, rows)
        query = f"SELECT {binary_rows.select_list(PSF_SOURCES, 't')} FROM rows_under_test t"
        table = pa.Table.from_batches(
            list(binary_rows.stream(connection, PSF_SOURCES, query, {}, SCHEMA)), SCHEMA)
        expected = connection.execute(
            f"SELECT {', '.join(PSF_SOURCES.column_names)} FROM rows_under_test").fetchall()
    assert table.num_rows == rows == len(expected)
    got = {row["sourceid"]: row for row in table.to_pylist()}
    for values in expected:
        row = got[values[0]]
        for column, value in zip(PSF_SOURCES.columns, values, strict=True):
            actual = row[column.name]
            if value is None:
                assert actual is None, (values[0], column.name)
            elif column.type.pg_type == "real":
                # float4 decoded by psycopg to a double; Arrow keeps the float32 bits.
                assert actual == pytest.approx(value, rel=1e-7, nan_ok=True) or (
                    math.isnan(actual) and math.isnan(value)), (column.name, actual, value)
                assert math.copysign(1, actual) == math.copysign(1, value)
            elif isinstance(value, float) and math.isnan(value):
                assert math.isnan(actual)
            else:
                assert actual == value, (values[0], column.name, actual, value)
                assert type(actual) is type(value)
    # Each NULL is in its own row: nothing shifted onto a neighbour.
    for k, name in enumerate(NULLABLE, start=1):
        assert [c for c in NULLABLE if got[k][c] is None] == [name]
    assert all(got[rows][c] is None for c in NULLABLE)


def test_an_empty_result_gives_no_batch(database: Database) -> None:
    with database.admin() as connection:
        _fill(connection, 3)
        query = (f"SELECT {binary_rows.select_list(PSF_SOURCES, 't')} FROM rows_under_test t"
                 " WHERE false")
        assert list(binary_rows.stream(connection, PSF_SOURCES, query, {}, SCHEMA)) == []
        # The connection is usable after the COPY.
        assert connection.execute("SELECT count(*) FROM rows_under_test").fetchone()[0] == 3


def test_a_row_that_breaks_the_layout_is_an_error(database: Database) -> None:
    with database.admin() as connection:
        _fill(connection, 3)
        # A two-character filter code of two-byte characters is four bytes: not char(2)'s 2.
        connection.execute("UPDATE rows_under_test SET filtercode = 'éé' WHERE sourceid = 2")
        query = f"SELECT {binary_rows.select_list(PSF_SOURCES, 't')} FROM rows_under_test t"
        with pytest.raises(binary_rows.LayoutError):
            list(binary_rows.stream(connection, PSF_SOURCES, query, {}, SCHEMA))


def test_an_error_during_the_copy_is_raised_and_the_connection_recovers(
        database: Database) -> None:
    import psycopg

    with database.admin() as connection:
        _fill(connection, 5)
        connection.execute("SET LOCAL statement_timeout = '300ms'")
        query = (f"SELECT {binary_rows.select_list(PSF_SOURCES, 't')} FROM rows_under_test t,"
                 " LATERAL (SELECT pg_sleep(0.1 + 0 * t.sourceid)) pause")
        with pytest.raises(psycopg.errors.QueryCanceled):
            list(binary_rows.stream(connection, PSF_SOURCES, query, {}, SCHEMA))
        connection.rollback()
        assert connection.execute("SELECT 1").fetchone()[0] == 1
