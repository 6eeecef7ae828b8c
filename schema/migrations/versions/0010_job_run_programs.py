"""The programs an async job's owner had when it ran (archive.uws_jobs.run_programs).

Result files keep whatever rows the owner could see then. If a membership is withdrawn later,
those rows must not stay downloadable: results are withheld while the owner lacks any of the
programs the job ran with (server/jobs.py ``StoredJob.as_seen_by``). NULL: not run yet (or run
before this migration, as anonymous-equivalent jobs were).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(
        "ALTER TABLE archive.uws_jobs ADD COLUMN run_programs smallint[]")


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(
        "ALTER TABLE archive.uws_jobs DROP COLUMN run_programs")
