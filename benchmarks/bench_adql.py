"""ADQL parse and translate time per query, against the published tables.

    .venv/bin/python -m benchmarks.bench_adql [--repeat 2000]

For each representative query it prints the time to tokenize (the baseline: reading the text
once), to parse, and to parse and translate, in microseconds of CPU time (process time, so that
other work on a shared machine does not count; best of five runs of --repeat calls each), with
the ratio of translation to tokenizing and the share of the 1 ms budget a cone query may take.
No database is involved: translation is a pure function.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.vo.adql import catalog_from_tables, parse, translate
from skyvault.vo.adql.lexer import tokenize

_ESO_POLYGON = ", ".join(f"{150 + 0.1 * k:.2f}, {2 + (0.3 if k % 2 else -0.3):.2f}"
                         for k in range(24))

QUERIES = {
    "cone (CONTAINS)":
        "SELECT TOP 100 sourceid, ra, dec, mag, magerr FROM survey.psf_sources "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.0, 2.2, 0.01))",
    "cone (DISTANCE)":
        "SELECT sourceid, mag, DISTANCE(POINT(ra, dec), POINT(150.0, 2.2)) AS d "
        "FROM survey.psf_sources WHERE DISTANCE(POINT(ra, dec), POINT(150.0, 2.2)) < 0.01 "
        "ORDER BY d",
    "cone, SELECT *":
        "SELECT * FROM survey.psf_sources WHERE "
        "CONTAINS(POINT(ra, dec), CIRCLE(150.0, 2.2, 0.01)) = 1",
    "ObsCore footprint":
        "SELECT * FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(150.0, 2.2, 0.5)) = 1 "
        "AND dataproduct_type = 'image' ORDER BY t_min",
    "24-vertex polygon":
        f"SELECT sourceid FROM survey.psf_sources WHERE "
        f"CONTAINS(POINT(ra, dec), POLYGON({_ESO_POLYGON})) = 1",
    "crossmatch join":
        "SELECT a.sourceid, b.sourceid FROM survey.psf_sources AS a JOIN "
        "survey.aperture_sources AS b ON DISTANCE(a.ra, a.dec, b.ra, b.dec) < 0.0003 "
        "WHERE a.pid = 1234",
    "aggregate":
        "SELECT fid, COUNT(*) AS n, AVG(mag), MIN(mag), MAX(mag) FROM survey.psf_sources "
        "WHERE field = 600 GROUP BY fid HAVING COUNT(*) > 10 ORDER BY n DESC",
    "CTE + UNION + subquery":
        "WITH recent AS (SELECT pid, field FROM survey.science_images WHERE obsjd > 2460000) "
        "SELECT s.sourceid, s.mag FROM survey.psf_sources AS s JOIN recent USING (pid) "
        "WHERE s.mag < (SELECT AVG(mag) FROM survey.psf_sources WHERE field = 600) "
        "UNION SELECT sourceid, mag FROM survey.aperture_sources WHERE pid IN "
        "(SELECT pid FROM recent) ORDER BY 2",
}


def best_microseconds(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            call()
        best = min(best, (time.process_time() - start) / repeat)
    return best * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    catalog = catalog_from_tables(PUBLISHED_TABLES)
    print(f"{'query':<24} {'chars':>6} {'tokenize':>9} {'parse':>8} {'translate':>10} "
          f"{'x tokenize':>11} {'of 1 ms':>8}")
    for name, adql in QUERIES.items():
        translate(adql, catalog, max_rows=1000)  # warm the per-table column cache
        lexing = best_microseconds(lambda adql=adql: tokenize(adql), args.repeat)
        parsing = best_microseconds(lambda adql=adql: parse(adql), args.repeat)
        total = best_microseconds(
            lambda adql=adql: translate(adql, catalog, max_rows=1000), args.repeat)
        print(f"{name:<24} {len(adql):>6} {lexing:>7.1f}us {parsing:>6.1f}us {total:>8.1f}us "
              f"{total / lexing:>10.1f}x {total / 1000:>7.0%}")


if __name__ == "__main__":
    main()
