"""Difference-image candidates (survey.candidates) and the public alert stream.

survey.candidates is a night-partitioned catalog like survey.psf_sources (ingest creates and
attaches its partitions, each with the parent's row-level security). Its rows are dated by
``archive.alert_release_date_for``: public at once for a program whose ``public_alerts`` is 1
(the public survey, as ZTF's public alert stream), otherwise with their science image.

Revision ID: 0017
Revises: 0014
"""

from alembic import op

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None

ALERT_RELEASE = """
CREATE FUNCTION archive.alert_release_date_for(program smallint, observed timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p.public_alerts = 1 THEN observed
              ELSE archive.release_date_for(program, observed) END
    FROM survey.programs p
   WHERE p.programid = program
$$;
GRANT EXECUTE ON FUNCTION archive.alert_release_date_for(smallint, timestamptz)
   TO skyvault_reader;
"""

# Generated from schema/tables.py (schema.ddl create_table and embargo_policy) at this
# revision, frozen: later changes to the table arrive as new revisions.
CANDIDATES = """
CREATE TABLE survey.candidates (
    "candid" bigint NOT NULL,
    "objectid" text,
    "diffid" bigint NOT NULL,
    "pid" bigint NOT NULL,
    "expid" bigint,
    "nid" integer NOT NULL,
    "jd" double precision NOT NULL,
    "field" integer,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "xpos" real,
    "ypos" real,
    "isdiffpos" char(1),
    "magpsf" real,
    "sigmapsf" real,
    "chipsf" real,
    "magap" real,
    "sigmagap" real,
    "magdiff" real,
    "flux" real,
    "fluxerr" real,
    "scorr" real,
    "diffmaglim" real,
    "fwhm" real,
    "aimage" real,
    "bimage" real,
    "elong" real,
    "nbad" smallint,
    "nneg" smallint,
    "sumrat" real,
    "mindtoedge" real,
    "sharpness" real,
    "dipole" real,
    "flags" integer,
    "distnr" real,
    "magnr" real,
    "sigmagnr" real,
    "chinr" real,
    "sharpnr" real,
    "distpsnr1" real,
    "sgscore1" real,
    "sgmag1" real,
    "srmag1" real,
    "simag1" real,
    "ssdistnr" real,
    "ssnamenr" text,
    "ssmagnr" real,
    "ndethist" integer,
    "ncovhist" integer,
    "jdstarthist" double precision,
    "jdendhist" double precision,
    "rb" real,
    "rb_version" text,
    "programid" smallint NOT NULL,
    "release_date" timestamptz NOT NULL
) PARTITION BY RANGE (nid);

CREATE INDEX candidates_q3c_idx ON survey.candidates USING btree (q3c_ang2ipix(ra, dec));

CREATE INDEX candidates_diffid_idx ON survey.candidates USING btree (diffid);

CREATE INDEX candidates_objectid_idx ON survey.candidates USING btree (objectid);

ALTER TABLE survey.candidates ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.candidates FOR SELECT
  USING (release_date <= now()
         OR "programid" = ANY ((SELECT archive.member_programs())::smallint[]));
GRANT SELECT ON survey.candidates TO skyvault_reader;
"""


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute(
        "ALTER TABLE survey.programs ADD COLUMN public_alerts smallint NOT NULL DEFAULT 0")
    connection.execute("UPDATE survey.programs SET public_alerts = 1 WHERE programid = 1")
    connection.execute(ALERT_RELEASE)
    connection.execute(CANDIDATES)


def downgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute("DROP TABLE survey.candidates")
    connection.execute(
        "DROP FUNCTION archive.alert_release_date_for(smallint, timestamptz)")
    connection.execute("ALTER TABLE survey.programs DROP COLUMN public_alerts")
