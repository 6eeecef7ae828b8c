"""Objects and light curves: psf_sources.oid, the object registry, survey.objects (statistics
of the epochs the requester may see, computed when asked) and survey.objects_released
(statistics of the released epochs, precomputed), relative photometry of science images.

- ``survey.psf_sources.oid``: the object a detection belongs to, written by ingest's
  association step (skyvault/ingest/objects.py) in the transaction that loads the detection.
  Added to the loading tables of nights not yet sealed too. Rows archived before this revision
  keep an empty oid.
- ``survey.science_images.relphot_corr``, ``relphot_corr_err``, ``relphot_nstars``: the
  relative photometric correction of each image's PSF magnitudes (the ensemble step,
  skyvault/lightcurves/ensemble.py).
- ``archive.objects`` (the registry, visible where one of an object's detections is),
  ``archive.object_metrics(oid, ra, dec)``, the view ``survey.objects`` over both, the table
  ``survey.objects_released``; the ensemble step's work lists.

The DDL of the published relations is generated from schema/tables.py, as the first
revision's was.

Revision ID: 0018
Revises: 0010
"""

from alembic import op

from skyvault.schema.ddl import READER_ROLE, create_table, create_view
from skyvault.schema.objects_sql import OBJECT_GRANTS, OBJECT_METRICS_FUNCTION, OBJECT_REGISTRY
from skyvault.schema.tables import OBJECTS, OBJECTS_RELEASED

revision = "0018"
down_revision = "0010"
branch_labels = None
depends_on = None

RELPHOT_COLUMNS = ("relphot_corr real", "relphot_corr_err real", "relphot_nstars integer")


def _loading_tables(connection) -> list[str]:
    return [f"archive.{row[0]}" for row in connection.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'archive' AND c.relkind = 'r'"
        " AND c.relname ~ '^psf_sources_n-?[0-9]+$'")]


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute("ALTER TABLE survey.psf_sources ADD COLUMN oid bigint")
    for loading in _loading_tables(connection):
        connection.execute(f"ALTER TABLE {loading} ADD COLUMN oid bigint")
    connection.execute("ALTER TABLE survey.science_images "
                       + ", ".join(f"ADD COLUMN {column}" for column in RELPHOT_COLUMNS))
    for statement in OBJECT_REGISTRY:
        connection.execute(statement)
    connection.execute(OBJECT_METRICS_FUNCTION)
    for statement in create_view(OBJECTS) + create_table(OBJECTS_RELEASED):
        connection.execute(statement)
    for table in (OBJECTS, OBJECTS_RELEASED):
        connection.execute(f"GRANT SELECT ON {table.qualified_name} TO {READER_ROLE}")
    for statement in OBJECT_GRANTS:
        connection.execute(statement)


def downgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    connection.execute(f"DROP VIEW {OBJECTS.qualified_name}")
    connection.execute(f"DROP TABLE {OBJECTS_RELEASED.qualified_name}")
    connection.execute("DROP FUNCTION archive.object_metrics(bigint, double precision,"
                       " double precision)")
    connection.execute("DROP TABLE archive.objects, archive.ensemble_pending,"
                       " archive.ensemble_dirty, archive.released_stale,"
                       " archive.association_log")
    connection.execute("ALTER TABLE survey.science_images "
                       + ", ".join(f"DROP COLUMN {column.split()[0]}"
                                   for column in RELPHOT_COLUMNS))
    for loading in _loading_tables(connection):
        connection.execute(f"ALTER TABLE {loading} DROP COLUMN oid")
    connection.execute("ALTER TABLE survey.psf_sources DROP COLUMN oid")
