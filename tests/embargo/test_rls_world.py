"""The one place of enforcement, checked at the database: every embargoed relation, every
requester, every state; release dates that pass need no command; nothing bypasses the policies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from embargo_seed import (
    BASE,
    IMAGE_KEYS,
    STATE,
    STATES,
    Person,
    set_release_date,
    visible,
)

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.releases import DATING
from skyvault.schema.tables import EMBARGOED_TABLES

KEYED = {"survey.exposures": "expid", **{f"survey.{t}": k for t, k in IMAGE_KEYS.items()},
         "survey.files": "file_id", "survey.psf_sources": "sourceid",
         "survey.aperture_sources": "sourceid", "survey.candidates": "candid",
         "survey.lightcurves": "sourceid"}


def _requesters(people: dict[str, Person]) -> list[tuple[str, Requester]]:
    return [("anonymous", ANONYMOUS)] + [
        (name, Requester(user_id=1000 + i, username=name, programs=person.programs))
        for i, (name, person) in enumerate(sorted(people.items()))]


def _expected(table: str, programs) -> set[int]:
    key = KEYED[table]
    ids = set()
    for state in STATES:
        if not visible(state, programs):
            continue
        if key == "file_id":
            ids |= {state.file_id(i) for i in range(6)}
        elif key == "sourceid":
            ids |= set(state.source_ids())
        else:
            ids.add(state.ident(key))
    return ids


def _seen(connection, table: str) -> set[int]:
    key = KEYED[table]
    return {row[0] for row in connection.execute(
        f"SELECT {key} FROM {table} WHERE {key} BETWEEN %s AND %s",
        (BASE, BASE + 99_999)).fetchall()}


def test_every_embargoed_table_is_keyed_by_the_suite() -> None:
    assert {t.qualified_name for t in EMBARGOED_TABLES} == set(KEYED)


def test_each_requester_sees_exactly_the_rows_of_its_programs_and_released_ones(
        database: Database, world) -> None:
    for name, requester in _requesters(world):
        for user_query in (False, True):
            with database.reading(requester, user_query=user_query) as connection:
                for table in KEYED:
                    assert _seen(connection, table) == _expected(table, requester.programs), (
                        name, table, user_query)
                obscore = {row[0] for row in connection.execute(
                    "SELECT image_id FROM ivoa.obscore WHERE image_id BETWEEN %s AND %s",
                    (BASE, BASE + 99_999))}
                expected = set()
                for state in STATES:
                    if visible(state, requester.programs):
                        expected |= {state.ident(k) for k in ("rawid", "pid", "refid", "diffid")}
                assert obscore == expected, (name, user_query)
                counts = connection.execute(
                    "SELECT count(*), count(DISTINCT programid) FROM survey.exposures"
                    " WHERE expid BETWEEN %s AND %s", (BASE, BASE + 99_999)).fetchone()
                assert counts[0] == len(_expected("survey.exposures", requester.programs))


def test_a_release_date_that_passes_needs_no_command(database: Database, world) -> None:
    waiting = STATE["waiting"]
    with database.admin() as connection:
        set_release_date(connection, waiting, datetime.now(UTC) - timedelta(seconds=1))
    with database.reading(ANONYMOUS, user_query=True) as connection:
        assert waiting.ident("expid") in _seen(connection, "survey.exposures")
        assert waiting.file_id(0) in _seen(connection, "survey.files")
    with database.admin() as connection:
        set_release_date(connection, waiting, datetime.now(UTC) + timedelta(hours=1))
    with database.reading(ANONYMOUS, user_query=True) as connection:
        assert waiting.ident("expid") not in _seen(connection, "survey.exposures")
    # The same row, with its date in the past by the database clock: visible, no job ran.
    with database.admin() as connection:
        connection.execute("UPDATE survey.exposures SET release_date = now() - interval '1 ms'"
                           " WHERE expid = %s", (waiting.ident("expid"),))
    with database.reading(ANONYMOUS) as connection:
        assert waiting.ident("expid") in _seen(connection, "survey.exposures")


def test_release_rules_cover_every_embargoed_table() -> None:
    """A new embargoed table must say how its rows are dated, or declare cannot date it."""
    assert {t.qualified_name for t in EMBARGOED_TABLES} == set(DATING)


def test_public_survey_candidates_are_public_at_once(database: Database, world) -> None:
    """Issue 17: alerts from public-survey exposures are public at once (the public alert
    stream), while their images wait for a data release; the other programs' candidates wait
    with their images. Ingest dates candidates by archive.alert_release_date_for."""
    waiting, prop2 = STATE["waiting"], STATE["prop2"]
    extra = {"public": BASE + 200_001, "private": BASE + 200_002}
    with database.admin() as connection:
        for candid, state in zip(extra.values(), (waiting, prop2), strict=True):
            connection.execute(
                "INSERT INTO survey.candidates (candid, diffid, pid, nid, jd, ra, dec,"
                " programid, release_date) SELECT %s, d.diffid, d.pid, d.nid, d.obsjd, d.ra,"
                " d.dec, d.programid, archive.alert_release_date_for(d.programid, d.obsdate)"
                " FROM survey.difference_images d WHERE d.diffid = %s",
                (candid, state.ident("diffid")))
    try:
        for requester, sees in (
                (ANONYMOUS, {"public"}),
                (Requester(user_id=1, username="p3", programs=frozenset({3})), {"public"}),
                (Requester(user_id=2, username="p2", programs=frozenset({2})),
                 {"public", "private"})):
            with database.reading(requester, user_query=True) as connection:
                found = {row[0] for row in connection.execute(
                    "SELECT candid FROM survey.candidates WHERE candid = ANY (%s)",
                    (list(extra.values()),))}
                assert found == {extra[name] for name in sees}, requester
                # The public candidate's science and difference images stay embargoed.
                images = connection.execute(
                    "SELECT (SELECT count(*) FROM survey.science_images WHERE pid = %s),"
                    " (SELECT count(*) FROM survey.difference_images WHERE diffid = %s)",
                    (waiting.ident("pid"), waiting.ident("diffid"))).fetchone()
                assert images == (0, 0), requester
    finally:
        with database.admin() as connection:
            connection.execute("DELETE FROM survey.candidates WHERE candid = ANY (%s)",
                               (list(extra.values()),))


ROLES = ("skyvault_reader", "skyvault_app")


def test_nothing_readable_bypasses_row_level_security(database: Database, world) -> None:
    """Every relation the service's roles can read that holds release dates is protected:
    tables by their policy, views by reading with the caller's rights.  Partitions, views
    without security_invoker, materialized views and SECURITY DEFINER functions would read
    embargoed rows with the owner's rights."""
    with database.admin() as connection:
        exposed = connection.execute("""
            SELECT n.nspname || '.' || c.relname, c.relkind, c.relrowsecurity,
                   coalesce(array_to_string(c.reloptions, ','), ''), r.rolname
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              CROSS JOIN (SELECT unnest(%s::text[]) AS rolname) r
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                            AND a.attname IN ('release_date', 'obs_release_date')
                            AND NOT a.attisdropped)
               AND has_table_privilege(r.rolname, c.oid, 'SELECT')""",
                                    (list(ROLES),)).fetchall()
        unsafe = [row for row in exposed
                  if not (row[1] in ("r", "p") and row[2])
                  and not (row[1] == "v" and "security_invoker=true" in row[3])
                  and row[0] != "survey.data_releases"]
        assert not unsafe, f"readable relations that bypass row-level security: {unsafe}"
        definers = connection.execute("""
            SELECT n.nspname || '.' || p.proname FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND has_function_privilege('skyvault_reader', p.oid, 'EXECUTE')""").fetchall()
        assert not definers, f"SECURITY DEFINER functions the reader may call: {definers}"
        bypass = connection.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY (%s) AND (rolbypassrls"
            " OR rolsuper)", (list(ROLES),)).fetchall()
        assert not bypass


def test_declare_release_default_programs_and_dates(database: Database, world) -> None:
    """Inside a transaction rolled back at the end: declaring with the default programs
    (those with the data_release rule, program 1) dates program-1 rows observed before the
    cutoff at the release date, and leaves other programs alone."""
    from skyvault.releases import declare_release

    released, waiting, prop2 = STATE["released"], STATE["waiting"], STATE["prop2"]
    connection = database.admin()
    try:
        now = connection.execute("SELECT now()").fetchone()[0]
        date = now + timedelta(days=7)
        release, changed = declare_release(connection, "TESTDR-ROLLBACK", date,
                                           now - timedelta(days=1))
        by_rule = {row[0] for row in connection.execute(
            "SELECT programid FROM survey.programs WHERE release_rule = 'data_release'")}
        assert 1 in release.programids and set(release.programids) == by_rule
        assert changed["survey.exposures"] >= 2 and changed["survey.files"] >= 12
        rows = dict(connection.execute(
            "SELECT expid, release_date FROM survey.exposures WHERE expid = ANY (%s)",
            ([released.ident("expid"), waiting.ident("expid"), prop2.ident("expid")],)))
        assert rows[released.ident("expid")] == date == rows[waiting.ident("expid")]
        assert rows[prop2.ident("expid")] > date  # a partnership row keeps its own period
        for table, key in (("calibration_images", "calid"), ("reference_images", "refid")):
            value = connection.execute(f"SELECT release_date FROM survey.{table}"
                                       f" WHERE {key} = %s", (waiting.ident(key),)).fetchone()
            assert value[0] == date, table
        sources = connection.execute(
            "SELECT DISTINCT release_date FROM survey.psf_sources WHERE pid = %s",
            (waiting.ident("pid"),)).fetchall()
        assert sources == [(date,)]
        files = connection.execute(
            "SELECT DISTINCT release_date FROM survey.files WHERE image_id = ANY (%s)",
            ([waiting.ident(k) for k in ("rawid", "calid", "pid", "refid", "diffid")],)
        ).fetchall()
        assert files == [(date,)]
        # Products of two programs: a calibration is public with the earliest of them, a
        # co-add with the latest, a difference never before its reference.
        from skyvault.releases import recompute_release_dates

        for table, key in (("calibration_images", "calid"), ("reference_images", "refid")):
            connection.execute(f"UPDATE survey.{table} SET programids = '{{1,2}}'"
                               f" WHERE {key} = %s", (waiting.ident(key),))
        recompute_release_dates(connection, [1, 2])
        dates = connection.execute(
            "SELECT (SELECT release_date FROM survey.calibration_images WHERE calid = %s),"
            " (SELECT release_date FROM survey.reference_images WHERE refid = %s),"
            " (SELECT release_date FROM survey.difference_images WHERE diffid = %s),"
            " archive.release_date_for(2::smallint, %s)",
            (waiting.ident("calid"), waiting.ident("refid"), waiting.ident("diffid"),
             connection.execute("SELECT endobsdate FROM survey.reference_images"
                                " WHERE refid = %s", (waiting.ident("refid"),)).fetchone()[0]),
        ).fetchone()
        assert dates[0] == date and dates[1] == dates[3] > date and dates[2] == dates[1]
        # The programids rule: the latest date of the programs a product holds.
        mixed = connection.execute(
            "SELECT archive.release_date_for_programs('{1,2}', %s),"
            " archive.release_date_for(2::smallint, %s),"
            " archive.release_date_for_programs('{1,99}', %s),"
            " archive.release_date_for_programs('{}', %s)",
            (now - timedelta(days=20),) * 4).fetchone()
        assert mixed[0] == mixed[1] and mixed[2] is None and mixed[3] is None
        with pytest.raises(Exception, match="cutoff"):
            declare_release(connection, "TESTDR-BAD", now, now + timedelta(days=1))
    finally:
        connection.rollback()
        connection.close()


def test_the_reader_cannot_change_who_is_asking(database: Database) -> None:
    """Second guard behind the ADQL allow-list (migration 0009): as the reader, set_config is
    refused, so no query could rewrite the programs the embargo policies read; the service
    role sets them before switching."""
    import psycopg

    with database.admin() as connection:
        assert connection.execute("SELECT has_function_privilege('skyvault_reader',"
                                  " 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE'),"
                                  " has_function_privilege('skyvault_app',"
                                  " 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE')"
                                  ).fetchone() == (False, True)
    with database.reading(user_query=True) as connection, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute("SELECT set_config('skyvault.programs', '{1,2,3}', true)")


def test_user_queries_can_read_published_relations_only(database: Database) -> None:
    """ADQL runs as skyvault_reader: it must reach nothing outside the published schemas
    (archive tables such as per-image row counts, job records or provenance would describe
    embargoed products), and every relation it reaches must be described in TAP_SCHEMA."""
    from skyvault.schema.tables import PUBLISHED_TABLES

    published = {t.qualified_name for t in PUBLISHED_TABLES}
    with database.admin() as connection:
        readable = {row[0] for row in connection.execute("""
            SELECT n.nspname || '.' || c.relname FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND has_table_privilege('skyvault_reader', c.oid, 'SELECT')""")}
    assert readable <= published, sorted(readable - published)


def test_policies_read_who_is_asking_once_per_query(database: Database) -> None:
    """Migration 0006 and schema/ddl.py agree: every embargo policy compares with the
    requester's programs through a scalar subquery (evaluated once, not per row)."""
    with database.admin() as connection:
        policies = dict(connection.execute(
            "SELECT schemaname || '.' || tablename, qual FROM pg_policies"
            " WHERE policyname = 'embargo'").fetchall())
        partitions = {row[0] for row in connection.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relispartition")}
    # Partitions (nights, sky cells, the halves of a sky-laid-out catalog) carry their
    # catalog's policy as well: one of them could be named directly.
    assert set(policies) - partitions == {t.qualified_name for t in EMBARGOED_TABLES}
    for table, qual in policies.items():
        assert "SELECT archive.member_programs()" in qual and "now()" in qual, (table, qual)
