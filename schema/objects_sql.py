"""The SQL behind survey.objects: the object registry, and light-curve statistics computed from
the epochs the requester may see.

``survey.object_registry`` holds what never changes about an object: its identifier, the
position and quadrant of its first detection, its filter. Everything that depends on the
epochs, from the number of epochs to the Stetson indices, is computed when asked by
``archive.object_metrics`` from the object's points in survey.lightcurves, read through their
row-level security: the embargo rule lives only there, and a member sees a new epoch of their
program at its commit. The registry's own policy shows an object only where one of its points
is visible, so an object whose every epoch is hidden does not exist for that requester,
whoever reads it. It is published (user queries reach only what TAP_SCHEMA describes) and holds
nothing of an epoch but the first detection's position (which the identifier encodes anyway)
and quadrant.

survey.lightcurves is filed under its objects (``SkyLayout(key="oid")``): ``oid = X`` reads one
index range in the one sky cell that holds the object, plus one in each night not yet
compacted. Every point lies within ``OBJECT_REACH_ARCSEC`` of its object's position
(skyvault/lightcurves/association.py), the layout's margin for cones on the points' own
positions.

The statistics have the definitions of the ``light-curve`` package where it has them (the
precomputed survey.objects_released is computed with it, skyvault/lightcurves/metrics.py; a
test holds the two to agreement). Magnitudes have the image's relative photometric correction
applied (science_images.relphot_corr).

survey.objects_released holds the same statistics over the public epochs, precomputed by the
ensemble step for searches over the whole sky; each row names the programs of its epochs and
each one's latest epoch, and its policy shows it only while all of them are public.
"""

from __future__ import annotations

from skyvault.releases.dating import summary_policy_statements

OBJECT_REACH_ARCSEC = 2.1
"""How far an object's detections lie from its position at most: the largest match radius
(2") plus a margin for the identifier's pixel (0.06")."""
OBJECT_REACH_DEG = OBJECT_REACH_ARCSEC / 3600.0
GOOD_FLAGS_MASK = 1 | 2 | 4 | 16
"""Catalog flags that make an epoch unusable for statistics: saturated core, bad pixels within
1 FWHM, within 3 px of the edge, PSF fit not converged (pipeline/README.md). Deblended sources
(8) keep their photometry."""

METRIC_NAMES = (
    "nobs", "ngoodobs", "firstmjd", "lastmjd", "meanra", "meandec", "meanmag",
    "weightedmeanmag", "medianmag", "minmag", "maxmag", "magrms", "medianabsdev", "medmagerr",
    "chisq", "skewness", "smallkurtosis", "stetsonj", "stetsonk", "vonneumannratio", "maxslope",
)
_METRIC_TYPES = {"nobs": "integer", "ngoodobs": "integer", "firstmjd": "double precision",
                 "lastmjd": "double precision", "meanra": "double precision",
                 "meandec": "double precision"}


def metric_type(name: str) -> str:
    return _METRIC_TYPES.get(name, "real")


def _returns() -> str:
    return ", ".join(f"{name} {metric_type(name)}" for name in METRIC_NAMES)


OBJECT_METRICS_FUNCTION = f"""
CREATE FUNCTION archive.object_metrics(object_id bigint)
RETURNS TABLE ({_returns()})
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH epochs AS (
    SELECT d.obsjd - 2400000.5 AS mjd,
           (d.mag + coalesce(i.relphot_corr, 0))::double precision AS mag,
           d.magerr::double precision AS magerr,
           d.mag IS NOT NULL AND d.magerr > 0 AND (d.flags & {GOOD_FLAGS_MASK}) = 0 AS good,
           d.ra, d.dec
      FROM survey.lightcurves d JOIN survey.science_images i ON i.pid = d.pid
     WHERE d.oid = object_id
), good AS (
    SELECT mjd, mag, magerr,
           lead(mag) OVER w AS next_mag, lead(magerr) OVER w AS next_magerr,
           lead(mjd) OVER w AS next_mjd
      FROM epochs WHERE good
    WINDOW w AS (ORDER BY mjd, mag)
), moments AS (
    SELECT count(*) AS n, avg(mag) AS mean, stddev_samp(mag) AS sd, min(mag) AS minimum,
           max(mag) AS maximum,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY mag) AS median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY magerr) AS medmagerr,
           sum(mag / (magerr * magerr)) / nullif(sum(1 / (magerr * magerr)), 0) AS wmean,
           sum((next_mag - mag) ^ 2) AS successive,
           max(abs((next_mag - mag) / nullif(next_mjd - mjd, 0))) AS maxslope
      FROM good
), residuals AS (
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(g.mag - m.median)) AS mad,
           sum(((g.mag - m.wmean) / g.magerr) ^ 2) AS chi2,
           sum(abs(g.mag - m.wmean) / g.magerr) AS absolute,
           sum((g.mag - m.mean) ^ 3) AS third, sum((g.mag - m.mean) ^ 4) AS fourth,
           sum(sign(p.product) * sqrt(abs(p.product))) AS stetson_pairs
      FROM good g CROSS JOIN moments m
      CROSS JOIN LATERAL (
          SELECT m.n / nullif(m.n - 1.0, 0) * (g.mag - m.wmean) * (g.next_mag - m.wmean)
                 / (g.magerr * g.next_magerr) AS product) p
), positions AS (
    SELECT count(*) AS nobs, min(mjd) AS firstmjd, max(mjd) AS lastmjd,
           avg(cos(radians(dec)) * cos(radians(ra))) AS x,
           avg(cos(radians(dec)) * sin(radians(ra))) AS y, avg(sin(radians(dec))) AS z
      FROM epochs
)
SELECT p.nobs::integer, m.n::integer, p.firstmjd, p.lastmjd,
       CASE WHEN p.nobs > 0 THEN degrees(atan2(p.y, p.x))
           + CASE WHEN p.y < 0 THEN 360.0 ELSE 0.0 END END,
       CASE WHEN p.nobs > 0 THEN degrees(atan2(p.z, sqrt(p.x * p.x + p.y * p.y))) END,
       m.mean::real, m.wmean::real, m.median::real, m.minimum::real, m.maximum::real,
       m.sd::real, r.mad::real, m.medmagerr::real,
       (r.chi2 / nullif(m.n - 1, 0))::real,
       (m.n / nullif((m.n - 1.0) * (m.n - 2.0), 0) * r.third / nullif(m.sd ^ 3, 0))::real,
       (m.n * (m.n + 1.0) / nullif((m.n - 1.0) * (m.n - 2.0) * (m.n - 3.0), 0)
           * r.fourth / nullif(m.sd ^ 4, 0)
           - 3.0 * (m.n - 1.0) ^ 2 / nullif((m.n - 2.0) * (m.n - 3.0), 0))::real,
       (r.stetson_pairs / nullif(m.n - 1, 0))::real,
       (CASE WHEN m.maximum > m.minimum
             THEN r.absolute / nullif(sqrt(m.n * r.chi2), 0) END)::real,
       (m.successive / nullif((m.n - 1) * m.sd ^ 2, 0))::real,
       m.maxslope::real
  FROM positions p CROSS JOIN moments m CROSS JOIN residuals r
$$"""

OBJECTS_VIEW_SQL = f"""
SELECT o.oid, o.ra, o.dec, o.field, o.ccdid, o.qid, o.rcid, o.fid, o.filtercode,
       {', '.join(f'm.{name}' for name in METRIC_NAMES)}
  FROM survey.object_registry o
 CROSS JOIN LATERAL archive.object_metrics(o.oid) m
 WHERE m.nobs > 0"""

REGISTRY_STATEMENTS = [
    "ALTER TABLE survey.object_registry ENABLE ROW LEVEL SECURITY",
    # The released statistics are shown while every epoch they summarise is public
    # (skyvault/releases/dating.py summary_released_sql).
    *summary_policy_statements("survey.objects_released"),
    # An object exists for whoever may see one of its points (their policy decides).
    """CREATE POLICY visible_epoch ON survey.object_registry FOR SELECT USING (EXISTS (
    SELECT FROM survey.lightcurves d WHERE d.oid = object_registry.oid))""",
    # Images whose detections were associated and await the ensemble step (relative
    # photometry, released statistics): skyvault/lightcurves/ensemble.py.
    """CREATE TABLE archive.ensemble_pending (
    pid bigint PRIMARY KEY,
    fid smallint NOT NULL,
    associated_at timestamptz NOT NULL DEFAULT now()
)""",
    # Objects that lost detections (a superseded image's), to be checked by the ensemble step.
    """CREATE TABLE archive.ensemble_dirty (
    oid bigint PRIMARY KEY
)""",
    # Objects whose survey.objects_released row is to be computed again.
    """CREATE TABLE archive.released_stale (
    oid bigint PRIMARY KEY
)""",
    # The release horizons (archive.public_before_jd, per program) at the ensemble step's last
    # run: the objects with epochs between them and the current ones are computed again.
    # No row: the step has not run yet (every object is computed at its first run).
    """CREATE TABLE archive.released_horizons (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    horizons double precision[] NOT NULL,
    taken_at timestamptz NOT NULL
)""",
    # Per image: how its detections were associated, and its relative photometry.
    """CREATE TABLE archive.association_log (
    pid bigint PRIMARY KEY,
    ndetections integer NOT NULL,
    nnew integer NOT NULL,
    associated_at timestamptz NOT NULL DEFAULT now()
)""",
]
OBJECT_GRANTS = [
    "GRANT EXECUTE ON FUNCTION archive.object_metrics(bigint) TO skyvault_reader",
]
