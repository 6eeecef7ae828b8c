"""Row-level security is the one place embargoes are enforced (DEVELOPERS.md)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from release_calendar import SESSION_START, jd

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.schema.tables import EMBARGOED_TABLES


@pytest.fixture
def three_exposures(database: Database):
    with database.admin() as connection:
        # Program 1 observed long ago is in the session's release; programs 2 and 3 observed
        # ten days ago are within their proprietary period (tests/release_calendar.py).
        recent = jd(SESSION_START - timedelta(days=10))
        connection.execute("""
            INSERT INTO survey.exposures (expid, obsjd, telra, teldec, programid)
            VALUES (9001, 2460000.5, 10, 10, 1), (9002, %s, 10, 10, 2),
                   (9003, %s, 10, 10, 3)""", (recent, recent + 0.1))
    yield
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.exposures WHERE expid BETWEEN 9001 AND 9003")


@pytest.mark.parametrize("programs, visible", [
    (frozenset(), [9001]), (frozenset({2}), [9001, 9002]), (frozenset({2, 3}), [9001, 9002, 9003]),
])
def test_rows_follow_program_membership(database, three_exposures, programs, visible) -> None:
    requester = Requester(user_id=1, username="u", programs=programs) if programs else ANONYMOUS
    for user_query in (False, True):
        with database.reading(requester, user_query=user_query) as connection:
            rows = connection.execute(
                "SELECT expid FROM survey.exposures WHERE expid BETWEEN 9001 AND 9003"
                " ORDER BY expid").fetchall()
            count = connection.execute(
                "SELECT count(*) FROM survey.exposures WHERE expid BETWEEN 9001 AND 9003"
            ).fetchone()[0]
        assert [row[0] for row in rows] == visible
        assert count == len(visible)


def test_every_embargoed_table_has_row_level_security(database: Database) -> None:
    with database.admin() as connection:
        protected = {row[0] for row in connection.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relrowsecurity AND EXISTS (SELECT 1 FROM pg_policy p"
            "  WHERE p.polrelid = c.oid)")}
    assert {t.qualified_name for t in EMBARGOED_TABLES} <= protected


def test_user_queries_cannot_reach_private_tables_or_write(database: Database) -> None:
    with database.reading(ANONYMOUS, user_query=True) as connection, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("SELECT * FROM archive.users")
    with database.reading(ANONYMOUS) as connection, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute("DELETE FROM survey.exposures")


def test_obscore_view_reads_through_the_base_tables_policies(database: Database) -> None:
    with database.admin() as connection:
        options = connection.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'ivoa.obscore'::regclass").fetchone()[0]
    assert "security_invoker=true" in options
