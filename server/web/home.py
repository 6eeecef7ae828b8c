"""The home page (what the archive holds, where to point VO clients), the coverage maps and the
tables' documentation.

Counts, time span and maps are computed through the requester's connection: someone who may not
see embargoed data gets numbers that do not include it, so nothing hints at what is hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flask import Response

from skyvault.releases.model import list_releases
from skyvault.schema.bits import BIT_MASKS
from skyvault.schema.docs import tables_html
from skyvault.server.context import reading, service_url
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.epochs import format_mjd
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.image_query import JD_MJD, PRODUCTS
from skyvault.server.web.pages import per_audience, render

_COUNTS_SQL = " UNION ALL ".join(
    f"SELECT '{p.collection}'::text, filtercode::text, count(*), min({p.t_start}),"
    f" max({p.t_end}) FROM survey.{p.table} i WHERE is_current = 1 GROUP BY filtercode"
    for p in PRODUCTS.values())


@dataclass
class Summary:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """collection -> filter code (or "other") -> images."""
    first_mjd: float | None = None
    last_mjd: float | None = None
    exposures: int = 0
    nights: int = 0
    detections: int = 0
    orbits: int = 0
    example_position: tuple[float, float] = (150.1, 2.2)
    """The centre of an image the requester may see (the pyvo example searches there)."""
    example_object: str | None = None
    """The brightest object with an orbit (lowest H): the home page's example search."""
    releases: list[tuple] = field(default_factory=list)
    """(release, public) pairs."""

    def total(self, collection: str) -> int:
        return sum(self.counts.get(collection, {}).values())

    @property
    def span(self) -> tuple[str, str] | None:
        if self.first_mjd is None or self.last_mjd is None:
            return None
        return format_mjd(self.first_mjd)[:10], format_mjd(self.last_mjd)[:10]


SUMMARY_TIMEOUT_MS = 60_000


def compute_summary() -> Summary:
    summary = Summary()
    with reading(statement_timeout_ms=SUMMARY_TIMEOUT_MS) as connection:
        for collection, filtercode, count, first, last in connection.execute(_COUNTS_SQL):
            key = filtercode if filtercode in FILTERS else "other"
            per_filter = summary.counts.setdefault(collection, {})
            per_filter[key] = per_filter.get(key, 0) + count
            if collection != "ref" and first is not None:
                first_mjd, last_mjd = first - JD_MJD, last - JD_MJD
                summary.first_mjd = min(first_mjd, summary.first_mjd or math.inf)
                summary.last_mjd = max(last_mjd, summary.last_mjd or -math.inf)
        summary.exposures, summary.nights = connection.execute(
            "SELECT count(*), count(DISTINCT nid) FROM survey.exposures WHERE itid = 1"
        ).fetchone()
        summary.detections = connection.execute(
            "SELECT coalesce(sum(nsources), 0) FROM survey.science_images WHERE is_current = 1"
        ).fetchone()[0]
        summary.orbits, summary.example_object = connection.execute(
            "SELECT count(*), (SELECT coalesce(name, designation)"
            " FROM survey.solar_system_objects ORDER BY h NULLS LAST, designation LIMIT 1)"
            " FROM survey.solar_system_objects").fetchone()
        first_image = connection.execute(
            "SELECT ra, dec FROM survey.science_images WHERE is_current = 1 ORDER BY pid LIMIT 1"
        ).fetchone()
        if first_image is not None:
            summary.example_position = (float(first_image[0]), float(first_image[1]))
        now = connection.execute("SELECT now()").fetchone()[0]
        summary.releases = [(r, r.release_date <= now) for r in list_releases(connection)]
    return summary


@blueprint.get("/")
def home() -> Response:
    summary = per_audience("summary", compute_summary)
    base = service_url()
    services = [
        ("TAP (ADQL queries)", f"{base}/tap"),
        ("SIA 2.0 (image search)", f"{base}/sia/query"),
        ("Cone search, PSF photometry", f"{base}/scs/psf_sources?"),
        ("Cone search, aperture photometry", f"{base}/scs/aperture_sources?"),
        ("DataLink (files, previews, cutouts of an image)", f"{base}/datalink/links"),
        ("SODA cutouts", f"{base}/soda/sync"),
    ]
    return render("web/home.html", summary=summary, filters=FILTERS, products=PRODUCTS,
                  services=services, base=base)


@blueprint.get("/tables")
def tables_page() -> Response:
    return render("web/tables.html", tables=tables_html())


@blueprint.get("/tables/bits")
def bits_page() -> Response:
    """What each bit of infobits, the catalogs' flags and the mask images means (schema/bits.py,
    the one declaration the pipeline and the column descriptions read too)."""
    return render("web/bits.html", masks=BIT_MASKS)
