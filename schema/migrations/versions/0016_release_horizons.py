"""Release rules read at query time: a declaration writes one row, not every row it releases.

Until now every embargoed row stored its ``release_date``, and ``skyvault release declare``
recomputed it with an UPDATE over every table (65 s for 1.6 million catalog rows; hours per
billion).  From this revision no row stores a release date.  The embargo policies compare what
a row already holds (its program and ``obsjd``, a calibration's night, a co-add's
``ingested_at``) with two small tables read once per query (InitPlans, as the requester's
programs since 0006):

- ``archive.public_before_jd(at)``: per program (array subscripted by programid), the Julian
  date before which its observations are public at ``at``: the latest observation cutoff of the
  public data releases that list it, ``at`` minus its proprietary period, or +Infinity once its
  named release is public;
- ``archive.coadds_public_before(at)``: the latest ``declared_at`` of the public data releases:
  a reference co-add is public from the first data release declared after it was archived
  (issue 18), whatever programs its epochs came from;
- ``archive.alerts_public_before_jd(at)``: the same array for difference-image candidates
  (survey.candidates, migration 0017), dated by their ``jd``: ``at`` itself for a program whose
  alerts are public (``public_alerts`` = 1, the public alert stream: public at once), its
  observations' horizon for any other (as its science image; issue 17).

New columns: ``survey.data_releases.declared_at`` (existing releases: their observation cutoff,
a lower bound of when they were declared, so no co-add archived after the cutoff is released
by a release that may have been declared before it), ``survey.reference_images.ingested_at``
(existing co-adds: when their files were archived) and ``survey.files.obsjd`` (the Julian date
its image is dated by).  ``archive.release_date_of(program, obsjd)`` and
``archive.coadd_release_date(ingested_at)`` give the date shown in ObsCore's obs_release_date
(recreated from the frozen 0016_release_horizons_obscore.sql), ``archive.alert_release_date_of
(program, jd)`` a candidate's; ``archive.release_date_for`` keeps its signature and meaning on
top of them (and with it 0017's ``archive.alert_release_date_for``).

Every relation with an ``embargo`` policy gets the new one, each with the rule of the table
whose rows it holds (a partition's root, at any depth; a night still loading,
``archive.<catalog>_n<nid>``, its catalog's): since 0015 that is the catalogs, their
``_nights`` and ``_sky`` halves, night partitions, nights still loading and sky cells. Then
``release_date`` is dropped.

Revision ID: 0016
Revises: 0011
"""

from pathlib import Path

from alembic import op

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None

HERE = Path(__file__).parent
OBSCORE_NOW = HERE / "0016_release_horizons_obscore.sql"
INITIAL = HERE / "0001_initial.sql"

FUNCTIONS = """
CREATE FUNCTION archive.timestamp_to_jd(instant timestamptz) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT extract(epoch FROM instant)::double precision / 86400.0 + 2440587.5
$$;

-- Per program, the Julian date before which its observations are public at instant "at":
-- an array subscripted by programid (from the smallest to the largest in survey.programs;
-- -Infinity where nothing is released, NULL outside: an unknown program is never public).
-- Evaluated once per query (an InitPlan of every policy), so it is written for speed: one
-- scan of each small table, with plans PL/pgSQL keeps, the rest in memory (a version with one
-- aggregate query and subplans per program cost about ten times as much per query).
CREATE FUNCTION archive.public_before_jd(at timestamptz) RETURNS double precision[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  ids smallint[];
  days integer[];
  named text[];
  horizons double precision[];
  release record;
BEGIN
  SELECT array_agg(programid ORDER BY programid),
         array_agg(proprietary_days ORDER BY programid),
         array_agg(release_name ORDER BY programid)
    INTO ids, days, named FROM survey.programs;
  IF ids IS NULL THEN
    RETURN '{}'::double precision[];
  END IF;
  horizons := array_fill('-Infinity'::double precision,
                         ARRAY[ids[cardinality(ids)] - ids[1] + 1], ARRAY[ids[1]]);
  FOR k IN 1..cardinality(ids) LOOP
    IF days[k] IS NOT NULL THEN
      horizons[ids[k]] := archive.timestamp_to_jd(at) - days[k];
    END IF;
  END LOOP;
  FOR release IN SELECT release_name, observation_cutoff, programids
                   FROM survey.data_releases WHERE release_date <= at LOOP
    FOR k IN 1..cardinality(ids) LOOP
      IF named[k] = release.release_name THEN
        horizons[ids[k]] := 'Infinity';
      ELSIF ids[k] = ANY (release.programids) THEN
        horizons[ids[k]] := greatest(horizons[ids[k]],
                                     archive.timestamp_to_jd(release.observation_cutoff));
      END IF;
    END LOOP;
  END LOOP;
  RETURN horizons;
END $$;

-- The same array for difference-image candidates: a program whose alerts are public releases
-- them at once (its horizon is "at", or later where its observations' horizon is).
CREATE FUNCTION archive.alerts_public_before_jd(at timestamptz) RETURNS double precision[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  horizons double precision[] := archive.public_before_jd(at);
  program smallint;
BEGIN
  FOR program IN SELECT programid FROM survey.programs WHERE public_alerts = 1 LOOP
    horizons[program] := greatest(horizons[program], archive.timestamp_to_jd(at));
  END LOOP;
  RETURN horizons;
END $$;

CREATE FUNCTION archive.coadds_public_before(at timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RETURN coalesce((SELECT max(declared_at) FROM survey.data_releases
                    WHERE release_date <= at), '-infinity'::timestamptz);
END $$;

-- The date a row of "program" observed at "obsjd" becomes public under the releases declared
-- so far; NULL while no rule releases it (or for an unknown program).
CREATE FUNCTION archive.release_date_of(program smallint, obsjd double precision)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT least(
           archive.jd_to_timestamp(obsjd + p.proprietary_days),
           (SELECT r.release_date FROM survey.data_releases r
             WHERE r.release_name = p.release_name),
           (SELECT min(r.release_date) FROM survey.data_releases r
             WHERE obsjd < archive.timestamp_to_jd(r.observation_cutoff)
               AND program = ANY (r.programids)))
    FROM survey.programs p
   WHERE p.programid = program
$$;

CREATE FUNCTION archive.coadd_release_date(archived timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT min(release_date) FROM survey.data_releases WHERE declared_at > archived
$$;

-- A candidate's: at once (its jd) where the program's alerts are public, else its image's.
CREATE FUNCTION archive.alert_release_date_of(program smallint, jd double precision)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p.public_alerts = 1
              THEN least(archive.jd_to_timestamp(jd), archive.release_date_of(program, jd))
              ELSE archive.release_date_of(program, jd) END
    FROM survey.programs p
   WHERE p.programid = program
$$;

CREATE OR REPLACE FUNCTION archive.release_date_for(program smallint, observed timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(archive.release_date_of(program, archive.timestamp_to_jd(observed)),
                  'infinity'::timestamptz)
    FROM survey.programs p
   WHERE p.programid = program
$$;

GRANT EXECUTE ON FUNCTION archive.timestamp_to_jd(timestamptz),
      archive.public_before_jd(timestamptz), archive.coadds_public_before(timestamptz),
      archive.alerts_public_before_jd(timestamptz),
      archive.release_date_of(smallint, double precision),
      archive.coadd_release_date(timestamptz),
      archive.alert_release_date_of(smallint, double precision) TO skyvault_reader;
"""

NEW_COLUMNS = """
ALTER TABLE survey.data_releases ADD COLUMN declared_at timestamptz NOT NULL DEFAULT now();
UPDATE survey.data_releases SET declared_at = observation_cutoff;

ALTER TABLE survey.reference_images ADD COLUMN ingested_at timestamptz NOT NULL DEFAULT now();
UPDATE survey.reference_images r SET ingested_at = f.ingested_at
  FROM (SELECT image_id, min(ingested_at) AS ingested_at FROM survey.files
         WHERE image_table = 'reference_images' GROUP BY image_id) f
 WHERE f.image_id = r.refid;

ALTER TABLE survey.files ADD COLUMN obsjd double precision;
UPDATE survey.files f SET obsjd = i.obsjd
  FROM (SELECT 'raw_images'::text AS image_table, rawid AS image_id, obsjd
          FROM survey.raw_images
        UNION ALL SELECT 'science_images', pid, obsjd FROM survey.science_images
        UNION ALL SELECT 'difference_images', diffid, obsjd FROM survey.difference_images
        UNION ALL SELECT 'calibration_images', calid, 2457754.5 + nid
          FROM survey.calibration_images) i
 WHERE f.image_table = i.image_table AND f.image_id = i.image_id;
"""

MEMBERS = "(SELECT archive.member_programs())::smallint[]"
HORIZONS = "(SELECT archive.public_before_jd(now()))"
COADDS = "(SELECT archive.coadds_public_before(now()))"
ALERTS = "(SELECT archive.alerts_public_before_jd(now()))"
OBSERVATION = f'obsjd < {HORIZONS}[programid] OR "programid" = ANY ({MEMBERS})'
NEW_POLICIES = {
    "survey.calibration_images": (
        f"EXISTS (SELECT FROM unnest(programids) AS released(programid)"
        f" WHERE (2457754.5 + nid) < {HORIZONS}[released.programid])"
        f' OR "programids" && {MEMBERS}'),
    "survey.reference_images": f'ingested_at < {COADDS} OR "programids" && {MEMBERS}',
    "survey.files": (
        f"CASE WHEN image_table = 'reference_images' THEN ingested_at < {COADDS}"
        f" ELSE obsjd < {HORIZONS}[programids[1]] OR (cardinality(programids) > 1"
        f" AND EXISTS (SELECT FROM unnest(programids) AS released(programid)"
        f" WHERE obsjd < {HORIZONS}[released.programid])) END"
        f' OR "programids" && {MEMBERS}'),
    "survey.candidates": f'jd < {ALERTS}[programid] OR "programid" = ANY ({MEMBERS})',
}
"""The policies at this revision, by the table whose rows a relation holds; any other relation
with an embargo policy (exposures, images of one exposure, the source catalogs) is dated by its
program and obsjd."""

OLD_POLICY = "release_date <= now() OR {member}"


def _embargoed(connection) -> list[tuple[str, str, bool, bool]]:
    """(relation, the table whose rows it holds, has programid and obsjd, has release_date) of
    every relation with an embargo policy.  A partition holds its root's rows (at any depth); a
    night still loading, ``archive.<catalog>_n<nid>``, its catalog's."""
    return connection.execute("""
        SELECT format('%I.%I', n.nspname, c.relname),
               coalesce(
                 (SELECT format('%I.%I', rn.nspname, r.relname) FROM pg_class r
                    JOIN pg_namespace rn ON rn.oid = r.relnamespace
                   WHERE r.oid = pg_partition_root(c.oid)),
                 (SELECT format('survey.%I', loading.name[1])
                    FROM regexp_match(c.relname, '^(.+)_n-?[0-9]+$') AS loading(name)
                   WHERE n.nspname = 'archive'
                     AND to_regclass(format('survey.%I', loading.name[1])) IS NOT NULL),
                 format('%I.%I', n.nspname, c.relname)),
               EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                        AND a.attname = 'programid' AND NOT a.attisdropped)
               AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                            AND a.attname = 'obsjd' AND NOT a.attisdropped),
               EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                        AND a.attname = 'release_date' AND NOT a.attisdropped)
          FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE p.polname = 'embargo' ORDER BY 1""").fetchall()


def _parents_first(connection, relations: list[str]) -> list[str]:
    """Partitions lose a column with their parent; the others (and loading tables) by name."""
    children = {row[0] for row in connection.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits")}
    return [r for r in relations if r not in children]


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute(NEW_COLUMNS)
    connection.execute(FUNCTIONS)
    connection.execute("DROP VIEW ivoa.obscore")
    embargoed = _embargoed(connection)
    for relation, holds, observed, _ in embargoed:
        condition = NEW_POLICIES.get(holds)
        if condition is None:
            if not observed:
                raise RuntimeError(f"{relation}: an embargo policy on a relation without"
                                   " programid and obsjd; say how its rows are dated")
            condition = OBSERVATION
        connection.execute(f"ALTER POLICY embargo ON {relation} USING ({condition})")
    for relation in _parents_first(connection, [r for r, _, _, dated in embargoed if dated]):
        connection.execute(f"ALTER TABLE {relation} DROP COLUMN release_date")
    connection.execute(OBSCORE_NOW.read_text())
    connection.execute("GRANT SELECT ON ivoa.obscore TO skyvault_reader")


def _initial_obscore() -> str:
    script = INITIAL.read_text()
    start = script.index("CREATE VIEW ivoa.obscore")
    return script[start:script.index(";\n", start) + 1]


DOWNGRADE_DATES = {
    "survey.calibration_images": (
        "(SELECT min(archive.release_date_of(p.programid, 2457754.5 + t.nid))"
        " FROM unnest(t.programids) AS p(programid))"),
    "survey.reference_images": "archive.coadd_release_date(t.ingested_at)",
    "survey.files": (
        "CASE WHEN t.image_table = 'reference_images'"
        " THEN archive.coadd_release_date(t.ingested_at)"
        " ELSE (SELECT min(archive.release_date_of(p.programid, t.obsjd))"
        " FROM unnest(t.programids) AS p(programid)) END"),
    "survey.candidates": "archive.alert_release_date_of(t.programid, t.jd)",
}
ARRAY_PROGRAMS = ("survey.calibration_images", "survey.reference_images", "survey.files")


def downgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute("DROP VIEW ivoa.obscore")
    embargoed = _embargoed(connection)
    holding = {relation: holds for relation, holds, _, _ in embargoed}
    for relation in _parents_first(connection, list(holding)):
        date = DOWNGRADE_DATES.get(holding[relation],
                                   "archive.release_date_of(t.programid, t.obsjd)")
        connection.execute(f"ALTER TABLE {relation} ADD COLUMN release_date timestamptz")
        connection.execute(f"UPDATE {relation} t SET release_date = coalesce({date},"
                           " 'infinity')")
        connection.execute(f"ALTER TABLE {relation} ALTER COLUMN release_date SET NOT NULL")
    for relation, holds in holding.items():
        array = holds in ARRAY_PROGRAMS
        member = (f'"programids" && {MEMBERS}' if array
                  else f'"programid" = ANY ({MEMBERS})')
        connection.execute(f"ALTER POLICY embargo ON {relation}"
                           f" USING ({OLD_POLICY.format(member=member)})")
    connection.execute(_initial_obscore())
    connection.execute("GRANT SELECT ON ivoa.obscore TO skyvault_reader")
    connection.execute("""
        ALTER TABLE survey.files DROP COLUMN obsjd;
        ALTER TABLE survey.reference_images DROP COLUMN ingested_at;
        ALTER TABLE survey.data_releases DROP COLUMN declared_at;
        CREATE OR REPLACE FUNCTION archive.release_date_for(program smallint,
                                                            observed timestamptz)
        RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT coalesce(least(
                   CASE WHEN p.proprietary_days IS NOT NULL
                        THEN observed + make_interval(days => p.proprietary_days) END,
                   (SELECT r.release_date FROM survey.data_releases r
                     WHERE r.release_name = p.release_name),
                   (SELECT min(r.release_date) FROM survey.data_releases r
                     WHERE observed < r.observation_cutoff AND program = ANY (r.programids))),
                 'infinity'::timestamptz)
            FROM survey.programs p
           WHERE p.programid = program
        $$;
        DROP FUNCTION archive.alert_release_date_of(smallint, double precision);
        DROP FUNCTION archive.coadd_release_date(timestamptz);
        DROP FUNCTION archive.release_date_of(smallint, double precision);
        DROP FUNCTION archive.coadds_public_before(timestamptz);
        DROP FUNCTION archive.alerts_public_before_jd(timestamptz);
        DROP FUNCTION archive.public_before_jd(timestamptz);
        DROP FUNCTION archive.timestamp_to_jd(timestamptz);
    """)
