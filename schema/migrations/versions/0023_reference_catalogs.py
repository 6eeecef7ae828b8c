"""Reference catalogs in the catalog (issue 18): ``survey.reference_psf_sources`` (ZTF's
refpsfcat) and ``survey.reference_aperture_sources`` (refsexcat), one row per source of a
reference co-add, q3c-indexed, dated as the co-add (``ingested_at``, copied from it in the
same ingest transaction; ``programids``: its epochs' programs), so a reference's catalogs are
public with it, from the first data release declared after it was archived, and visible at
once to members of a program that contributed epochs (skyvault/releases/dating.py "coadd").

The web service's role may read ``archive.provenance``: DataLink links a co-add to its input
epochs (#progenitor), those the requester may see, and a science image to the co-adds it went
into (#derivation, through a GIN index on the co-adds' provenance).

References archived before this revision have their refpsfcat file but no rows: their next
version (a reprocessing) loads them.  TAP_SCHEMA's rows are rewritten after every migration.

Revision ID: 0023
Revises: 0018
"""

from alembic import op

revision = "0023"
down_revision = "0018"
branch_labels = None
depends_on = None

# Generated from schema/tables.py (schema.ddl create_table and embargo_policy) at this
# revision, frozen: later changes to the tables arrive as new revisions.
REFERENCE_CATALOGS = """
CREATE TABLE survey.reference_psf_sources (
    "sourceid" bigint NOT NULL,
    "refid" bigint NOT NULL,
    "field" integer,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "x" real,
    "y" real,
    "mag" real,
    "magerr" real,
    "flux" real,
    "fluxerr" real,
    "sharpness" real,
    "chi" real,
    "flags" integer,
    "snr" real,
    "ingested_at" timestamptz DEFAULT now() NOT NULL,
    "programids" smallint[] NOT NULL,
    UNIQUE ("refid", "sourceid"),
    FOREIGN KEY ("refid") REFERENCES survey.reference_images ("refid")
);

CREATE INDEX reference_psf_sources_q3c_idx ON survey.reference_psf_sources
  USING btree (q3c_ang2ipix(ra, dec));

ALTER TABLE survey.reference_psf_sources ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.reference_psf_sources FOR SELECT
  USING (ingested_at < (SELECT archive.coadds_public_before(now()))
         OR "programids" && (SELECT archive.member_programs())::smallint[]);

GRANT SELECT ON survey.reference_psf_sources TO skyvault_reader;

CREATE TABLE survey.reference_aperture_sources (
    "sourceid" bigint NOT NULL,
    "refid" bigint NOT NULL,
    "field" integer,
    "rcid" smallint,
    "fid" smallint,
    "filtercode" char(2),
    "ra" double precision NOT NULL,
    "dec" double precision NOT NULL,
    "x" real,
    "y" real,
    "mag" real,
    "magerr" real,
    "flux" real,
    "fluxerr" real,
    "fwhm" real,
    "a" real,
    "b" real,
    "theta" real,
    "flags" integer,
    "snr" real,
    "ingested_at" timestamptz DEFAULT now() NOT NULL,
    "programids" smallint[] NOT NULL,
    UNIQUE ("refid", "sourceid"),
    FOREIGN KEY ("refid") REFERENCES survey.reference_images ("refid")
);

CREATE INDEX reference_aperture_sources_q3c_idx ON survey.reference_aperture_sources
  USING btree (q3c_ang2ipix(ra, dec));

ALTER TABLE survey.reference_aperture_sources ENABLE ROW LEVEL SECURITY;

CREATE POLICY embargo ON survey.reference_aperture_sources FOR SELECT
  USING (ingested_at < (SELECT archive.coadds_public_before(now()))
         OR "programids" && (SELECT archive.member_programs())::smallint[]);

GRANT SELECT ON survey.reference_aperture_sources TO skyvault_reader;
"""


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute(REFERENCE_CATALOGS)
    # DataLink's #progenitor links of a co-add: its input exposures (server/images/products.py).
    connection.execute("GRANT SELECT ON archive.provenance TO skyvault_app")
    connection.execute(
        "CREATE INDEX provenance_coadd_inputs_idx ON archive.provenance USING gin"
        " (inputs jsonb_path_ops) WHERE image_table = 'reference_images'")


def downgrade() -> None:
    op.execute("REVOKE SELECT ON archive.provenance FROM skyvault_app")
    op.execute("DROP INDEX archive.provenance_coadd_inputs_idx")
    for table in ("reference_psf_sources", "reference_aperture_sources"):
        op.execute("DELETE FROM tap_schema.key_columns WHERE key_id IN (SELECT key_id FROM"
                   f" tap_schema.keys WHERE from_table = 'survey.{table}')")
        op.execute(f"DELETE FROM tap_schema.keys WHERE from_table = 'survey.{table}'")
        op.execute(f"DELETE FROM tap_schema.columns WHERE table_name = 'survey.{table}'")
        op.execute(f"DELETE FROM tap_schema.tables WHERE table_name = 'survey.{table}'")
        op.execute(f"DROP TABLE survey.{table}")
