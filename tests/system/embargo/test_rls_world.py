"""The one place of enforcement, checked at the database: every embargoed relation, every
requester, every state; release dates that pass need no command; nothing bypasses the policies.
"""

from __future__ import annotations

import pytest
from embargo_seed import (
    BASE,
    CATALOGS,
    IMAGE_KEYS,
    NID,
    PASSED_RELEASE,
    PRODUCT_INDEX,
    PRODUCTS,
    STATE,
    STATES,
    Person,
    release_now,
    reset_world,
    row_visible,
    visible,
)

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.releases.dating import KINDS
from skyvault.schema.tables import EMBARGOED_TABLES

KEYED = {"survey.exposures": "expid", **{f"survey.{t}": k for t, k in IMAGE_KEYS.items()},
         "survey.files": "file_id", "survey.psf_sources": "sourceid",
         "survey.aperture_sources": "sourceid", "survey.candidates": "candid",
         "survey.lightcurves": "sourceid", "survey.reference_psf_sources": "sourceid",
         "survey.reference_aperture_sources": "sourceid"}


def _requesters(people: dict[str, Person]) -> list[tuple[str, Requester]]:
    return [("anonymous", ANONYMOUS)] + [
        (name, Requester(user_id=1000 + i, username=name, programs=person.programs))
        for i, (name, person) in enumerate(sorted(people.items()))]


def _expected(table: str, programs, released: frozenset[str] | set[str] = frozenset()
              ) -> set[int]:
    key = KEYED[table]
    ids = set()
    for state in STATES:
        if not row_visible(table, state, programs) and state.key not in released:
            continue
        if key == "file_id":
            ids |= {state.file_id(i) for i in range(len(PRODUCTS))}
        elif key == "sourceid":
            ids |= set(state.source_ids())
        else:
            ids.add(state.ident(key))
    return ids


def _seen(connection, table: str) -> set[int]:
    """The seeded rows of ``table`` (or of a relation holding its rows, keyed as it is)."""
    key = KEYED.get(table) or KEYED[table.removesuffix("_sky")]
    return _seen_in(connection, table, key)


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
    """A release declared for a moment to come opens its rows when the database clock reaches
    it: no command runs, no row is rewritten."""
    waiting = STATE["waiting"]
    try:
        with database.admin() as connection:
            release_now(connection, [waiting], "now() + interval '1 hour'")
        with database.reading(ANONYMOUS, user_query=True) as connection:
            assert waiting.ident("expid") not in _seen(connection, "survey.exposures")
            assert waiting.file_id(0) not in _seen(connection, "survey.files")
        with database.admin() as connection:
            connection.execute("UPDATE survey.data_releases SET release_date = now()"
                               " - interval '1 ms' WHERE release_name = %s", (PASSED_RELEASE,))
        with database.reading(ANONYMOUS, user_query=True) as connection:
            for table in KEYED:
                assert _seen(connection, table) == _expected(table, frozenset(), {"waiting"}), \
                    table
    finally:
        with database.admin() as connection:
            reset_world(connection)


def test_release_rules_cover_every_embargoed_table() -> None:
    """A new embargoed table must say how its rows are dated, or no policy can be made."""
    for table in EMBARGOED_TABLES:
        assert table.embargo is not None and table.embargo.dating in KINDS, table.name
        names = set(table.column_names)
        dated_by = {"observation": "obsjd", "file": "obsjd", "night": "nid",
                    "coadd": "ingested_at", "alert": "jd"}[table.embargo.dating]
        assert {table.embargo.program_column, dated_by} <= names, table.name


def test_public_survey_candidates_are_public_at_once(database: Database, world) -> None:
    """Issue 17: alerts from public-survey exposures are public at once (the public alert
    stream), while their images wait for a data release; the other programs' candidates wait
    with their science image.  The rule reads survey.programs.public_alerts at query time."""
    waiting, prop2 = STATE["waiting"], STATE["prop2"]
    candids = {"waiting": waiting.ident("candid"), "prop2": prop2.ident("candid")}
    p2 = Requester(user_id=2, username="p2", programs=frozenset({2}))
    p3 = Requester(user_id=1, username="p3", programs=frozenset({3}))

    def seen(connection) -> tuple[set[str], int, int]:
        found = {row[0] for row in connection.execute(
            "SELECT candid FROM survey.candidates WHERE candid = ANY (%s)",
            (list(candids.values()),))}
        images = connection.execute(
            "SELECT (SELECT count(*) FROM survey.science_images WHERE pid = %s),"
            " (SELECT count(*) FROM survey.difference_images WHERE diffid = %s)",
            (waiting.ident("pid"), waiting.ident("diffid"))).fetchone()
        return {name for name, candid in candids.items() if candid in found}, *images

    for requester, sees in ((ANONYMOUS, {"waiting"}), (p3, {"waiting"}),
                            (p2, {"waiting", "prop2"})):
        with database.reading(requester, user_query=True) as connection:
            # The public candidate's science and difference images stay embargoed.
            assert seen(connection) == (sees, 0, 0), requester
    connection = database.admin()
    try:
        connection.execute("UPDATE survey.programs SET public_alerts = 1 WHERE programid = 2")
        _as_anonymous_reader(connection)
        assert seen(connection) == ({"waiting", "prop2"}, 0, 0)
        connection.execute("RESET ROLE")
        connection.execute("UPDATE survey.programs SET public_alerts = 0 WHERE programid = 1")
        _as_anonymous_reader(connection)
        assert seen(connection) == ({"prop2"}, 0, 0)
        # A public alert is public once observed, not before.
        connection.execute("RESET ROLE")
        connection.execute("UPDATE survey.candidates SET jd = %s WHERE candid = %s AND nid = %s",
                           (2_500_000.5, prop2.ident("candid"), NID + prop2.index))
        _as_anonymous_reader(connection)
        assert seen(connection) == (set(), 0, 0)
    finally:
        connection.rollback()
        connection.close()


ROLES = ("skyvault_reader", "skyvault_app")


def test_nothing_readable_bypasses_row_level_security(database: Database, world) -> None:
    """Every relation the service's roles can read that holds embargoed rows (programs and the
    facts the release rules date them by) is protected:
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
               AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                             AND a.attname IN ('programid', 'programids')
                             AND NOT a.attisdropped)
                    AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                AND a.attname IN ('obsjd', 'nid', 'ingested_at')
                                AND NOT a.attisdropped)
                    OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                               AND a.attname = 'obs_release_date' AND NOT a.attisdropped))
               AND has_table_privilege(r.rolname, c.oid, 'SELECT')""",
                                    (list(ROLES),)).fetchall()
        unsafe = [row for row in exposed
                  if not (row[1] in ("r", "p") and row[2])
                  and not (row[1] == "v" and "security_invoker=true" in row[3])
                  and row[0] not in ("survey.data_releases", "survey.programs")]
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
    """Migration 0006 and the dating module agree: every embargo policy compares with the
    requester's programs and the release horizons through scalar subqueries (evaluated once
    per query, not per row)."""
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
        assert "release_date" not in qual, (table, qual)


def test_migrated_policies_are_the_ones_the_model_makes(database: Database) -> None:
    """Migration 0016 wrote by hand what skyvault/releases/dating.py generates: on a scratch
    copy of each embargoed table the generated policy reads back the same as the live one, and
    every relation that holds a catalog's rows (its nights and sky halves, night partitions,
    nights still loading, sky cells) carries its catalog's policy."""
    import dataclasses

    from skyvault.ingest.partitions import PARTITION_NAME
    from skyvault.schema.ddl import embargo_policy

    connection = database.admin()
    try:
        live = dict(connection.execute(
            "SELECT schemaname || '.' || tablename, qual FROM pg_policies"
            " WHERE policyname = 'embargo'").fetchall())
        # The table whose rows each relation holds: a partition's root; a loading night's
        # catalog, by its name.
        roots = dict(connection.execute(
            "SELECT c.oid::regclass::text, pg_partition_root(c.oid)::regclass::text"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('survey', 'archive') AND c.relkind IN ('r', 'p')").fetchall())
        connection.execute("CREATE SCHEMA policy_scratch")
        for table in EMBARGOED_TABLES:
            connection.execute(f"CREATE TABLE policy_scratch.{table.name}"
                               f" (LIKE {table.qualified_name})")
            for statement in embargo_policy(dataclasses.replace(table,
                                                                schema="policy_scratch")):
                connection.execute(statement)
        made = dict(connection.execute(
            "SELECT tablename, qual FROM pg_policies WHERE policyname = 'embargo'"
            " AND schemaname = 'policy_scratch'").fetchall())
        for table in EMBARGOED_TABLES:
            assert live[table.qualified_name] == made[table.name], table.name
        holders = {}
        for relation in live:
            schema, name = relation.split(".")
            loading = PARTITION_NAME.match(name) if schema == "archive" else None
            holders[relation] = (f"survey.{loading['catalog']}" if loading
                                 else roots.get(relation) or relation)
        held = {holders[r] for r in live if holders[r] != r}
        assert {f"survey.{c}" for c in CATALOGS} <= held, held
        for relation, qual in live.items():
            if relation.startswith("policy_scratch."):
                continue
            assert qual == made[holders[relation].split(".")[1]], relation
    finally:
        connection.rollback()
        connection.close()


def test_sky_cells_named_directly_hide_what_their_catalog_hides(database: Database,
                                                                world) -> None:
    """The seeded catalog rows moved into sky cells as compaction moves them (cells made by
    ``compact.create_cell``): read through the catalog, and through each cell and half named
    directly (granted for the test), every requester sees exactly what it may."""
    from skyvault.ingest.compact import SkyCell, create_cell, layout_of, sky_cells, sky_table
    from skyvault.ingest.partitions import CATALOGS as DECLARED
    from skyvault.ingest.q3c import cell_shift

    connection = database.admin()
    try:
        direct: dict[str, list[str]] = {}
        for catalog in CATALOGS:
            table, key, layout = f"survey.{catalog}", KEYED[f"survey.{catalog}"], \
                layout_of(catalog)
            present = {cell.number for cell in sky_cells(connection, catalog)
                       if cell.depth == layout.depth}
            needed = {row[0] for row in connection.execute(
                f"SELECT DISTINCT ({layout.key}) >> {cell_shift(layout.depth)}"
                f" FROM {table}_nights WHERE {key} BETWEEN %s AND %s", (BASE, BASE + 99_999))}
            for number in sorted(needed - present):
                create_cell(connection, SkyCell(DECLARED[catalog], layout.depth, number))
            columns = ", ".join(f'"{c}"' for c in DECLARED[catalog].column_names)
            seeded = len(_seen_in(connection, table, key))
            moved = connection.execute(
                f"WITH moved AS (DELETE FROM {table}_nights WHERE {key} BETWEEN %s AND %s"
                f" RETURNING {columns}) INSERT INTO {sky_table(catalog)} ({columns}, placement)"
                f" SELECT {columns}, 1 FROM moved", (BASE, BASE + 99_999)).rowcount
            assert moved == seeded > 0, table
            direct[table] = [sky_table(catalog)] + [
                cell.qualified_name for cell in sky_cells(connection, catalog)
                if cell.number in needed]
            for relation in direct[table]:
                connection.execute(f"GRANT SELECT ON {relation} TO skyvault_reader")
        for programs in (frozenset(), frozenset({2}), frozenset({1, 3})):
            connection.execute("SELECT set_config('skyvault.programs', %s, true)",
                               ("{" + ",".join(map(str, sorted(programs))) + "}",))
            _as_anonymous_reader(connection)
            for table, relations in direct.items():
                expected = _expected(table, programs)
                assert _seen(connection, table) == expected, (table, programs)
                assert _seen(connection, relations[0]) == expected, (table, programs)
                through_cells: set[int] = set()
                for cell in relations[1:]:
                    through_cells |= _seen_in(connection, cell, KEYED[table])
                assert through_cells == expected, (table, programs)
            connection.execute("RESET ROLE")
    finally:
        connection.rollback()
        connection.close()


def _seen_in(connection, relation: str, key: str) -> set[int]:
    return {row[0] for row in connection.execute(
        f"SELECT {key} FROM {relation} WHERE {key} BETWEEN %s AND %s",
        (BASE, BASE + 99_999)).fetchall()}


def _as_anonymous_reader(connection) -> None:
    """Inside the owner's transaction: read as the reader role with nobody's programs, so the
    policies apply to what this transaction changed (rolled back at the end)."""
    connection.execute("SET LOCAL ROLE skyvault_reader")


def test_a_programs_proprietary_period_is_read_at_query_time(database: Database, world) -> None:
    """Changing a program's period opens (or closes) its rows at once; no row is rewritten.
    The seeded partnership rows were observed 20 and 370 days ago."""
    prop2, old = STATE["prop2"], STATE["oldprop2"]
    connection = database.admin()
    try:
        for days, visible_now in ((10, {prop2, old}), (25, {old}), (400, set())):
            connection.execute("UPDATE survey.programs SET proprietary_days = %s"
                               " WHERE programid = 2", (days,))
            _as_anonymous_reader(connection)
            seen = _seen(connection, "survey.exposures")
            sources = _seen(connection, "survey.psf_sources")
            files = _seen(connection, "survey.files")
            connection.execute("RESET ROLE")
            for state in (prop2, old):
                assert (state.ident("expid") in seen) == (state in visible_now), (days, state)
                assert set(state.source_ids()) <= sources or state not in visible_now
                assert (state.file_id(0) in files) == (state in visible_now), (days, state)
    finally:
        connection.rollback()
        connection.close()


def test_a_coadd_waits_for_a_release_declared_after_it(database: Database, world) -> None:
    """Issue 18: a co-add is public from the first data release declared after it was made,
    whatever programs its epochs came from; a difference image follows its science image,
    whatever its reference."""
    released = STATE["released"]
    connection = database.admin()
    try:
        # Archived just now: the session's release was declared before, so it waits.
        connection.execute("UPDATE survey.reference_images SET ingested_at = now()"
                           " - interval '1 ms', programids = '{1,2,3}' WHERE refid = %s",
                           (released.ident("refid"),))
        connection.execute("UPDATE survey.files SET ingested_at = now() - interval '1 ms'"
                           " WHERE image_table = 'reference_images' AND image_id = %s",
                           (released.ident("refid"),))
        refimg = released.file_id(PRODUCT_INDEX["refimg"])

        def seen() -> tuple[bool, bool, bool]:
            _as_anonymous_reader(connection)
            result = (released.ident("refid") in _seen(connection, "survey.reference_images"),
                      refimg in _seen(connection, "survey.files"),
                      released.ident("diffid") in _seen(connection, "survey.difference_images"))
            connection.execute("RESET ROLE")
            return result

        assert seen() == (False, False, True)
        # A release declared before it was archived does not open it, even a public one...
        connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids, declared_at) VALUES ('COADD-BEFORE', now() - interval '1 hour',"
            " now() - interval '2 hours', '{7}', now() - interval '2 ms')")
        assert seen() == (False, False, True)
        # ...a release declared after it does, from its date, whatever programs it lists.
        connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids) VALUES ('COADD-AFTER', now() + interval '1 hour', now(), '{7}')")
        assert seen() == (False, False, True)
        connection.execute("UPDATE survey.data_releases SET release_date = now()"
                           " WHERE release_name = 'COADD-AFTER'")
        assert seen() == (True, True, True)
        # The date ObsCore shows is that release's.
        shown = connection.execute("SELECT archive.coadd_release_date(ingested_at) = now()"
                                   " FROM survey.reference_images WHERE refid = %s",
                                   (released.ident("refid"),)).fetchone()[0]
        assert shown
    finally:
        connection.rollback()
        connection.close()
