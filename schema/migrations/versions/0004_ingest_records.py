"""Ingest's own records: what each manifest brought, why something was quarantined, which
version a product superseded, and how many catalog rows each science image loaded.

- ``archive.ingested_manifests``: the manifest's name and kind (dependencies are named, not
  hashed) and what it added, for ``skyvault ingest report``.
- ``archive.quarantine``: the group the file belonged to, its product type and the kind of
  problem (checksum_mismatch, corrupt_fits, missing_keyword, impossible_value,
  unknown_program, bad_manifest, missing_file), so reports can count by kind.
- ``archive.provenance``: the processing version the row describes and the image it replaced.
- ``archive.catalog_loads``: rows loaded per science image and catalog table, written in the
  same transaction as the rows, so ``skyvault ingest check --deep`` can prove nothing was lost
  or duplicated without trusting the catalog files.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE archive.ingested_manifests
    ADD COLUMN manifest_name text,
    ADD COLUMN kind text,
    ADD COLUMN nfiles integer NOT NULL DEFAULT 0,
    ADD COLUMN nbytes bigint NOT NULL DEFAULT 0,
    ADD COLUMN nrows bigint NOT NULL DEFAULT 0,
    ADD COLUMN new_versions integer NOT NULL DEFAULT 0;
CREATE INDEX ingested_manifests_name_idx ON archive.ingested_manifests (manifest_name);

ALTER TABLE archive.quarantine
    ADD COLUMN manifest_name text,
    ADD COLUMN product_type text,
    ADD COLUMN problem text;
CREATE INDEX quarantine_open_idx ON archive.quarantine (original_path)
    WHERE resolved_at IS NULL;

ALTER TABLE archive.provenance
    ADD COLUMN proc_version smallint,
    ADD COLUMN supersedes bigint;

CREATE TABLE archive.catalog_loads (
    catalog text NOT NULL,
    pid bigint NOT NULL,
    nid integer NOT NULL,
    nrows bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (catalog, pid)
);
"""

DOWNGRADE = """
DROP TABLE archive.catalog_loads;
ALTER TABLE archive.provenance DROP COLUMN supersedes, DROP COLUMN proc_version;
DROP INDEX archive.quarantine_open_idx;
ALTER TABLE archive.quarantine
    DROP COLUMN problem, DROP COLUMN product_type, DROP COLUMN manifest_name;
DROP INDEX archive.ingested_manifests_name_idx;
ALTER TABLE archive.ingested_manifests
    DROP COLUMN new_versions, DROP COLUMN nrows, DROP COLUMN nbytes, DROP COLUMN nfiles,
    DROP COLUMN kind, DROP COLUMN manifest_name;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(UPGRADE)


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(DOWNGRADE)
