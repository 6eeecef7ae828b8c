"""The chunked binary COPY reader: same bytes as psycopg's own, errors as psycopg raises them."""

from __future__ import annotations

import psycopg
import pytest

from skyvault.server.tap.copy_out import copy_chunks

SERIES = "SELECT i::bigint, i * 0.5::float8, 'row ' || i FROM generate_series(1, 50000) AS i"


def test_chunks_carry_exactly_the_copy_stream(database) -> None:
    with database.admin() as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY ({SERIES}) TO STDOUT (FORMAT binary)") as copy:
            expected = b"".join(bytes(row) for row in copy)
        chunks = list(copy_chunks(cursor, SERIES, chunk_bytes=4096))
        assert b"".join(chunks) == expected
        assert len(chunks) > 10 and max(len(c) for c in chunks) < 4096 + 100
        assert connection.execute("SELECT 42").fetchone() == (42,)
        assert b"".join(copy_chunks(cursor, "SELECT 1 WHERE false")).startswith(b"PGCOPY")


def test_errors_raise_with_their_sqlstate(database) -> None:
    with database.admin() as connection, connection.cursor() as cursor:
        with pytest.raises(psycopg.errors.DivisionByZero):
            list(copy_chunks(cursor, "SELECT 1 / (i - 40000) FROM generate_series(1, 50000) i"))
        connection.rollback()
        connection.execute("SET statement_timeout = 200")
        with pytest.raises(psycopg.errors.QueryCanceled):
            list(copy_chunks(cursor, "SELECT count(*) FROM generate_series(1, 10000000) a,"
                                     " generate_series(1, 1000) b"))
        connection.rollback()


def test_closing_early_ends_the_copy(database) -> None:
    with database.admin() as connection, connection.cursor() as cursor:
        chunks = copy_chunks(cursor, "SELECT a FROM generate_series(1, 10000) a,"
                                     " generate_series(1, 10000) b", chunk_bytes=1024)
        next(chunks)
        chunks.close()
        connection.rollback()
        assert connection.execute("SELECT 7").fetchone() == (7,)
