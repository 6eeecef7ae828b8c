"""Objects and light curves: psf_sources.oid, survey.lightcurves (the light-curve points,
filed under their objects), the object registry, survey.objects (statistics of the epochs the
requester may see, computed when asked) and survey.objects_released (statistics of the released
epochs, precomputed), relative photometry of science images.

- ``survey.psf_sources.oid``: the object a detection belongs to, written by ingest's
  association step (ingest/objects.py) in the transaction that loads the detection. Added to
  the loading tables of nights not yet sealed too. Rows archived before this revision keep an
  empty oid (and have no light-curve points).
- ``survey.lightcurves``: every associated PSF detection again, with its oid, laid out like the
  catalogs (schema/model.py ``SkyLayout``) but keyed by ``oid``, an identifier that is the q3c
  pixel of its object (ingest.q3c.object_ids): a light curve by oid is one index range in one
  sky cell once its nights are compacted. Ingest creates, seals and compacts its partitions.
- ``survey.science_images.relphot_corr``, ``relphot_corr_err``, ``relphot_nstars``: the
  relative photometric correction of each image's PSF magnitudes (the ensemble step,
  skyvault/lightcurves/ensemble.py).
- ``survey.object_registry`` (visible where one of an object's points is),
  ``archive.object_metrics(oid)``, the view ``survey.objects`` over both, the table
  ``survey.objects_released``; the ensemble step's work lists.

Generated from schema/tables.py and schema/objects_sql.py (schema.ddl) at this revision,
frozen: later changes arrive as new revisions.

On top of migration 0016 (release horizons): no row stores a release date. The light-curve
points carry their detection's programid and obsjd and get the catalogs' policy (dating
"observation", skyvault/releases/dating.py); survey.objects reads them through it, and the
registry shows an object where one of its points is visible. survey.objects_released names the
programs of the epochs each row summarises and each one's latest obsjd (``programids``,
``lastobsjds``): its policy ``public_epochs`` (dating.py ``summary_released_sql``) shows a row
while every one of those epochs is public. ``archive.released_horizons`` holds the horizons the
ensemble step last refreshed the released statistics against.

Revision ID: 0018
Revises: 0020
"""

from alembic import op

revision = "0018"
down_revision = "0020"
branch_labels = None
depends_on = None

RELPHOT_COLUMNS = ("relphot_corr real", "relphot_corr_err real", "relphot_nstars integer")

LIGHTCURVES = """
CREATE TABLE survey.lightcurves (
    "oid" bigint NOT NULL,
    "sourceid" bigint NOT NULL,
    "pid" bigint NOT NULL,
    "expid" bigint,
    "nid" integer NOT NULL,
    "field" integer,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "mag" real,
    "magerr" real,
    "sharpness" real,
    "chi" real,
    "flags" integer,
    "snr" real,
    "obsjd" double precision NOT NULL,
    "programid" smallint NOT NULL,
    "placement" smallint NOT NULL DEFAULT 0
) PARTITION BY LIST (placement);

CREATE INDEX lightcurves_q3c_idx ON survey.lightcurves USING btree (q3c_ang2ipix(ra, dec));

CREATE INDEX lightcurves_oid_idx ON survey.lightcurves USING btree (oid);

ALTER TABLE survey.lightcurves ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.lightcurves FOR SELECT USING (obsjd < (SELECT
    archive.public_before_jd(now()))[programid] OR "programid" = ANY ((SELECT
    archive.member_programs())::smallint[]));

CREATE TABLE survey.lightcurves_nights PARTITION OF survey.lightcurves FOR VALUES IN (0)
    PARTITION BY RANGE ("nid");

ALTER TABLE survey.lightcurves_nights ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.lightcurves_nights FOR SELECT USING (obsjd < (SELECT
    archive.public_before_jd(now()))[programid] OR "programid" = ANY ((SELECT
    archive.member_programs())::smallint[]));

CREATE TABLE survey.lightcurves_sky PARTITION OF survey.lightcurves FOR VALUES IN (1) PARTITION
    BY RANGE (oid);

ALTER TABLE survey.lightcurves_sky ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.lightcurves_sky FOR SELECT USING (obsjd < (SELECT
    archive.public_before_jd(now()))[programid] OR "programid" = ANY ((SELECT
    archive.member_programs())::smallint[]));

GRANT SELECT ON survey.lightcurves TO skyvault_reader;
"""

REGISTRY = """
CREATE TABLE survey.object_registry (
    "oid" bigint NOT NULL,
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "field" integer,
    "ccdid" smallint,
    "qid" smallint,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    PRIMARY KEY ("oid")
);

CREATE INDEX object_registry_q3c_idx ON survey.object_registry USING btree (q3c_ang2ipix(ra, dec));

ALTER TABLE survey.object_registry ENABLE ROW LEVEL SECURITY;

CREATE POLICY visible_epoch ON survey.object_registry FOR SELECT USING (EXISTS (
    SELECT FROM survey.lightcurves d WHERE d.oid = object_registry.oid));

CREATE TABLE archive.ensemble_pending (
    pid bigint PRIMARY KEY,
    fid smallint NOT NULL,
    associated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE archive.ensemble_dirty (
    oid bigint PRIMARY KEY
);

CREATE TABLE archive.released_stale (
    oid bigint PRIMARY KEY
);

CREATE TABLE archive.released_horizons (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    horizons double precision[] NOT NULL,
    taken_at timestamptz NOT NULL
);

CREATE TABLE archive.association_log (
    pid bigint PRIMARY KEY,
    ndetections integer NOT NULL,
    nnew integer NOT NULL,
    associated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION archive.object_metrics(object_id bigint)
RETURNS TABLE (nobs integer, ngoodobs integer, firstmjd double precision, lastmjd double
    precision, meanra double precision, meandec double precision, meanmag real, weightedmeanmag
    real, medianmag real, minmag real, maxmag real, magrms real, medianabsdev real, medmagerr
    real, chisq real, skewness real, smallkurtosis real, stetsonj real, stetsonk real,
    vonneumannratio real, maxslope real)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH epochs AS (
    SELECT d.obsjd - 2400000.5 AS mjd,
           (d.mag + coalesce(i.relphot_corr, 0))::double precision AS mag,
           d.magerr::double precision AS magerr,
           d.mag IS NOT NULL AND d.magerr > 0 AND (d.flags & 23) = 0 AS good,
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
$$;

GRANT EXECUTE ON FUNCTION archive.object_metrics(bigint) TO skyvault_reader;

GRANT SELECT ON survey.object_registry TO skyvault_reader;
"""

OBJECTS = """
CREATE VIEW survey.objects ("oid", "ra", "dec", "field", "ccdid", "qid", "rcid", "fid",
    "filtercode", "nobs", "ngoodobs", "firstmjd", "lastmjd", "meanra", "meandec", "meanmag",
    "weightedmeanmag", "medianmag", "minmag", "maxmag", "magrms", "medianabsdev", "medmagerr",
    "chisq", "skewness", "smallkurtosis", "stetsonj", "stetsonk", "vonneumannratio",
    "maxslope") WITH (security_invoker = true) AS
SELECT o.oid, o.ra, o.dec, o.field, o.ccdid, o.qid, o.rcid, o.fid, o.filtercode,
       m.nobs, m.ngoodobs, m.firstmjd, m.lastmjd, m.meanra, m.meandec, m.meanmag,
    m.weightedmeanmag, m.medianmag, m.minmag, m.maxmag, m.magrms, m.medianabsdev, m.medmagerr,
    m.chisq, m.skewness, m.smallkurtosis, m.stetsonj, m.stetsonk, m.vonneumannratio, m.maxslope
  FROM survey.object_registry o
 CROSS JOIN LATERAL archive.object_metrics(o.oid) m
 WHERE m.nobs > 0;

CREATE TABLE survey.objects_released (
    "oid" bigint NOT NULL,
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "field" integer,
    "ccdid" smallint,
    "qid" smallint,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    "nobs" integer,
    "ngoodobs" integer,
    "firstmjd" double precision,
    "lastmjd" double precision,
    "meanra" double precision,
    "meandec" double precision,
    "meanmag" real,
    "weightedmeanmag" real,
    "medianmag" real,
    "minmag" real,
    "maxmag" real,
    "magrms" real,
    "medianabsdev" real,
    "medmagerr" real,
    "chisq" real,
    "skewness" real,
    "smallkurtosis" real,
    "stetsonj" real,
    "stetsonk" real,
    "vonneumannratio" real,
    "maxslope" real,
    "computed_at" timestamptz NOT NULL,
    "programids" smallint[] NOT NULL,
    "lastobsjds" double precision[] NOT NULL,
    UNIQUE ("oid")
);

CREATE INDEX objects_released_q3c_idx ON survey.objects_released USING btree (q3c_ang2ipix(ra,
    dec));

CREATE INDEX objects_released_variability_idx ON survey.objects_released USING btree (fid,
    vonneumannratio);

ALTER TABLE survey.objects_released ENABLE ROW LEVEL SECURITY;

CREATE POLICY public_epochs ON survey.objects_released FOR SELECT USING (CASE WHEN
    cardinality(programids) = 1 THEN lastobsjds[1] < (SELECT
    archive.public_before_jd(now()))[programids[1]] ELSE NOT EXISTS (SELECT FROM
    unnest(programids, lastobsjds) AS summarised(programid, obsjd) WHERE NOT
    coalesce(summarised.obsjd < (SELECT archive.public_before_jd(now()))[summarised.programid],
    false)) END);

GRANT SELECT ON survey.objects TO skyvault_reader;

GRANT SELECT ON survey.objects_released TO skyvault_reader;
"""


def _loading_tables(connection, catalog: str) -> list[str]:
    return [f"archive.{row[0]}" for row in connection.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'archive' AND c.relkind = 'r' AND c.relname ~ %s",
        (f"^{catalog}_n-?[0-9]+$",))]


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute("ALTER TABLE survey.psf_sources ADD COLUMN oid bigint")
    for loading in _loading_tables(connection, "psf_sources"):
        connection.execute(f"ALTER TABLE {loading} ADD COLUMN oid bigint")
    connection.execute("ALTER TABLE survey.science_images "
                       + ", ".join(f"ADD COLUMN {column}" for column in RELPHOT_COLUMNS))
    connection.execute(LIGHTCURVES)
    connection.execute(REGISTRY)
    connection.execute(OBJECTS)


def downgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute("DROP VIEW survey.objects")
    connection.execute("DROP TABLE survey.objects_released")
    connection.execute("DROP FUNCTION archive.object_metrics(bigint)")
    connection.execute("DROP TABLE survey.object_registry, archive.ensemble_pending,"
                       " archive.ensemble_dirty, archive.released_stale,"
                       " archive.released_horizons, archive.association_log")
    for loading in _loading_tables(connection, "lightcurves"):
        connection.execute(f"DROP TABLE {loading}")
    connection.execute("DROP TABLE survey.lightcurves")
    connection.execute("ALTER TABLE survey.science_images "
                       + ", ".join(f"DROP COLUMN {column.split()[0]}"
                                   for column in RELPHOT_COLUMNS))
    for loading in _loading_tables(connection, "psf_sources"):
        connection.execute(f"ALTER TABLE {loading} DROP COLUMN oid")
    connection.execute("ALTER TABLE survey.psf_sources DROP COLUMN oid")
