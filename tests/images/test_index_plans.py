"""Sky searches use their indexes under row-level security (migration 0005).

PostgreSQL takes a condition as an index condition on a table with RLS only when its functions
are LEAKPROOF; without that, every footprint or cone search read the whole table. The plans are
taken as the service reads (the app role, an anonymous requester), with sequential scans
priced out so that a usable index is always chosen, and an unusable one shows as a Seq Scan.
"""

from __future__ import annotations

from skyvault.access import ANONYMOUS
from skyvault.db import Database
from skyvault.server.images.scs import CATALOGS
from skyvault.server.images.sia import sia_sql
from skyvault.vo.dali import Parameters
from skyvault.vo.scs import Cone, cone_select
from skyvault.vo.sia import parse_sia_query

LINKS = "http://example.org/datalink/links?ID="


def plan(database: Database, sql: str, values: tuple = (), analyze: bool = False) -> str:
    with database.reading(ANONYMOUS) as connection:
        connection.execute("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN (ANALYZE, COSTS OFF) " if analyze else "EXPLAIN "
        return "\n".join(row[0] for row in connection.execute(explain + sql, values))


def test_sia_footprint_searches_use_every_footprint_index(database: Database) -> None:
    for pos in ("CIRCLE 150 2 0.1", "POLYGON 150 2 150.1 2 150 2.1", "RANGE 150 151 2 3"):
        sql, values = sia_sql(parse_sia_query(Parameters([("POS", pos)])), LINKS)
        text = plan(database, sql, values)
        for table in ("raw_images", "science_images", "reference_images", "difference_images"):
            assert f"{table}_footprint_idx" in text, (pos, text)
        assert "Seq Scan" not in text, text


def test_sia_identifiers_use_the_primary_key(database: Database) -> None:
    query = parse_sia_query(Parameters([("ID", "ivo://skyvault.archive/sci?42")]))
    sql, values = sia_sql(query, LINKS)
    text = plan(database, sql, values, analyze=True)
    assert "Index Scan using science_images_pkey" in text, text
    # The other collections' branches are ruled out by a constant-false filter: never run.
    for line in text.splitlines():
        if "Seq Scan" in line:
            assert "never executed" in line, text


def test_cone_searches_use_the_q3c_index(database: Database, images) -> None:
    """(``images`` seeds the partitions of the source tables.)"""
    for name in ("science_images", "exposures", "psf_sources"):
        catalog = CATALOGS[name]
        sql, values = cone_select(catalog, Cone(150.0, 2.0, 0.05, 1, 10))
        text = plan(database, sql, values)
        assert "q3c" in text and "Index" in text and "Seq Scan" not in text, (name, text)
