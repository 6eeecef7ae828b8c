"""What the home page says about the archive (images per collection and filter, time span,
exposures, nights, detections, orbits, releases), counted through the requester's connection:
someone who may not see embargoed data gets numbers that do not include it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import psycopg

from skyvault.releases.model import list_releases
from skyvault.server.web.epochs import format_mjd
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.image_query import JD_MJD, PRODUCTS

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


def archive_summary(connection: psycopg.Connection) -> Summary:
    """What the archive holds, counted through ``connection`` (the requester's)."""
    summary = Summary()
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
