"""Costs of the coverage MOCs, the HiPS build and the viewer pages, on an existing archive.

    SKYVAULT_PGPORT=... .venv/bin/python -m benchmarks.bench_sky [--base-url http://127.0.0.1:8000]

Against the archive of the current settings (e.g. after ``skyvault demo --no-serve``):

- MOC: the footprint query and mocpy's coverage, per filter and for everything, as the public
  and as a member of every program (median of 3); and mocpy alone on synthetic full-size
  quadrants (0.86 deg squares) at orders 10 and 13, for scale.
- HiPS: ``build_filter`` of every filter into a throwaway folder, as the public (the demo's
  co-adds are public: DR1 was declared after they were archived), then again with nothing
  changed: what the daily ``skyvault hips build`` costs on most days.
- Pages (with ``--base-url``): bytes of the home, sky, QA and viewer pages and of the scripts
  they load, as sent and gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.support import timed

EVERY_PROGRAM_IDS = frozenset({1, 2, 3})


def bench_mocs() -> None:
    from skyvault.access import ANONYMOUS, Requester
    from skyvault.coverage import queries
    from skyvault.coverage.selection import CoverageSelection
    from skyvault.db import database
    from skyvault.vo import moc as mocs

    everyone = Requester(user_id=-1, programs=EVERY_PROGRAM_IDS)
    print("MOC (order 13): footprint query + mocpy, median of 3")
    for who, requester in (("public", ANONYMOUS), ("all programs", everyone)):
        for code in ("zg", "zr", "zi", None):
            selection = CoverageSelection(filtercode=code)
            groups: list = []

            def query(selection=selection, groups=groups, requester=requester) -> None:
                with database().reading(requester) as connection:
                    groups[:] = queries.science_exposures(connection, selection)

            query_time = timed(query)
            polygons = [p for g in groups for p in g.polygons]
            moc_time = timed(lambda polygons=polygons: mocs.footprint_moc(polygons))
            moc = mocs.footprint_moc(polygons)
            fits_bytes = len(mocs.serialise(moc, "fits"))
            print(f"  {who:>12} {code or 'all':>3}: {len(polygons):5d} images, query "
                  f"{query_time * 1000:7.1f} ms, mocpy {moc_time * 1000:7.1f} ms, "
                  f"{mocs.sky_area_deg2(moc):8.3f} deg2, FITS {fits_bytes} B")
    rng = np.random.default_rng(1)
    for count in (2000,):
        centres = np.column_stack([rng.uniform(0, 360, count),
                                   np.degrees(np.arcsin(rng.uniform(-0.5, 1, count)))])
        half = 0.43
        polygons = []
        for ra, dec in centres:
            c = np.cos(np.radians(dec))
            polygons.append([(ra - half / c, dec - half), (ra + half / c, dec - half),
                             (ra + half / c, min(dec + half, 89.9)),
                             (ra - half / c, min(dec + half, 89.9))])
        for order in (10, 13):
            seconds = timed(
                lambda o=order, p=polygons: mocs.footprint_moc(p, o), 1)
            print(f"  synthetic: {count} full-size quadrants, order {order}: {seconds:.2f} s"
                  f" ({seconds / count * 1000:.2f} ms per quadrant)")


def bench_hips() -> None:
    from skyvault.coverage.hips import build_filter
    from skyvault.db import database

    print("HiPS build (as the public), then the same again with nothing changed (the daily run)")
    with tempfile.TemporaryDirectory(prefix="bench-hips-") as folder:
        root = Path(folder)
        for code in ("zg", "zr", "zi"):
            built = build_filter(database(), code, root, force=True)
            again = build_filter(database(), code, root)
            print(f"  {code}: {built.state}, {built.inputs} co-adds, {built.tiles} FITS+PNG tile"
                  f" pairs, order {built.order}, {built.seconds:.1f} s; {again.state}:"
                  f" {again.seconds * 1000:.1f} ms")
        sizes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"  written: {sizes / 1e6:.1f} MB")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def bench_pages(base: str) -> None:
    import re

    print("Pages: bytes sent (gzipped)")
    first = _get(f"{base}/qa").decode()
    night = re.search(r'data-night="([0-9-]+)"', first)
    pages = ["/", "/sky", "/qa"]
    pid = None
    if night:
        pages.append(f"/qa/nights/{night.group(1)}")
        pid = re.search(r"/images/sci/(\d+)", _get(f"{base}{pages[-1]}").decode())
    if pid:
        pages.append(f"/images/sci/{pid.group(1)}/viewer")
    scripts = set()
    for page in pages:
        body = _get(base + page)
        scripts |= set(re.findall(rb'src="(/(?:static|vendor)/[^"]+\.js)"', body))
        print(f"  {page:<32} {len(body):9d} B ({len(gzip.compress(body)):8d} B)")
    scripts.add(b"/static/web/aladin-common.js")
    for script in sorted(scripts):
        body = _get(base + script.decode())
        print(f"  {script.decode():<32} {len(body):9d} B ({len(gzip.compress(body)):8d} B)")
    viewer = next((p for p in pages if p.endswith("/viewer")), None)
    if viewer:
        library = re.search(rb'"library": ?"([^"]+)"', _get(base + viewer))
        if library:
            body = _get(base + library.group(1).decode())
            print(f"  {'Aladin Lite (module)':<32} {len(body):9d} B "
                  f"({len(gzip.compress(body)):8d} B)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running service, for page sizes")
    parser.add_argument("--skip-hips", action="store_true")
    parser.add_argument("--pages-only", action="store_true")
    args = parser.parse_args()
    if not args.pages_only:
        bench_mocs()
    if not args.skip_hips and not args.pages_only:
        bench_hips()
    if args.base_url:
        bench_pages(args.base_url.rstrip("/"))


if __name__ == "__main__":
    main()
