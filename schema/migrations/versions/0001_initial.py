"""Initial archive schema: survey tables, ObsCore, TAP_SCHEMA, the private archive schema.

Revision ID: 0001
Revises:
"""

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The script generated from schema/tables.py at this revision, frozen so that later changes
# to the model arrive as new revisions (tests check the migrated database against the model).
SCRIPT = Path(__file__).with_name("0001_initial.sql")

DEFAULT_PROGRAMS = """
INSERT INTO survey.programs (programid, name, description, release_rule, proprietary_days)
VALUES
  (1, 'Public survey', 'The public survey: released at the data releases', 'data_release', NULL),
  (2, 'Partnership', 'Partnership survey: proprietary for 365 days', 'proprietary_period', 365),
  (3, 'Caltech', 'Caltech programs: proprietary for 365 days', 'proprietary_period', 365)
"""


def upgrade() -> None:
    # The driver's own connection, in alembic's transaction: the script is plain SQL, and
    # SQLAlchemy would read its '%' and ':' as parameter markers.
    connection = op.get_bind().connection.driver_connection
    connection.execute(SCRIPT.read_text())
    connection.execute(DEFAULT_PROGRAMS)


def downgrade() -> None:
    op.get_bind().exec_driver_sql(
        "DROP SCHEMA IF EXISTS ivoa, tap_schema, survey, archive CASCADE"
    )
