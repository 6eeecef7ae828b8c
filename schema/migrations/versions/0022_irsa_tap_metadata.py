"""IRSA's TAP metadata, as astroquery's ``astroquery.ipac.irsa.Irsa`` reads it (issue 18).

- ``tap_schema.tables`` gains IRSA's ``irsa_pos`` and ``irsa_dbms`` columns:
  ``Irsa.list_catalogs`` asks for ``irsa_dbms=21 AND irsa_pos='y'`` (the source catalogs that
  ``Irsa.query_region`` searches); schema/tap_schema.py ``irsa_columns`` fills them.
- The ``caom`` schema: ``caom.observation`` and ``caom.plane``, views of ``ivoa.obscore`` with
  CAOM 2 names, which ``Irsa.list_collections`` reads (schema/tables.py ``CAOM_SCHEMA``).

TAP_SCHEMA's rows are rewritten after every migration (schema.migrate.upgrade); the downgrade
removes the rows of the ``caom`` schema before its views.

Revision ID: 0022
Revises: 0016
"""

from alembic import op

revision = "0022"
down_revision = "0016"
branch_labels = None
depends_on = None

# Generated from schema/tables.py (schema.ddl create_view) at this revision, frozen.
VIEWS = [
    'CREATE VIEW caom.observation ("obsid", "collection", "observationid", "telescope_name", '
    '"instrument_name") WITH (security_invoker = true) AS SELECT obs_publisher_did, '
    "obs_collection, obs_id, facility_name, instrument_name FROM ivoa.obscore",
    'CREATE VIEW caom.plane ("planeid", "obsid", "dataproducttype", "calibrationlevel") '
    "WITH (security_invoker = true) AS SELECT obs_publisher_did, obs_publisher_did, "
    "dataproduct_type, calib_level FROM ivoa.obscore",
]


def upgrade() -> None:
    op.execute("ALTER TABLE tap_schema.tables ADD COLUMN irsa_pos char(1), "
               "ADD COLUMN irsa_dbms integer")
    op.execute("CREATE SCHEMA caom")
    op.execute("GRANT USAGE ON SCHEMA caom TO skyvault_reader")
    for statement in VIEWS:
        op.execute(statement)
    op.execute("GRANT SELECT ON caom.observation, caom.plane TO skyvault_reader")


def downgrade() -> None:
    op.execute("DELETE FROM tap_schema.key_columns WHERE key_id IN "
               "(SELECT key_id FROM tap_schema.keys WHERE from_table LIKE 'caom.%')")
    op.execute("DELETE FROM tap_schema.keys WHERE from_table LIKE 'caom.%'")
    op.execute("DELETE FROM tap_schema.columns WHERE table_name LIKE 'caom.%'")
    op.execute("DELETE FROM tap_schema.tables WHERE schema_name = 'caom'")
    op.execute("DELETE FROM tap_schema.schemas WHERE schema_name = 'caom'")
    op.execute("DROP SCHEMA caom CASCADE")
    op.execute("ALTER TABLE tap_schema.tables DROP COLUMN irsa_pos, DROP COLUMN irsa_dbms")
