"""UWS jobs as a work queue: the base URL a job runs with, its attempts, the sweep's index.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
-- The service's public URL as the creating request saw it (archive.service_url() in results).
ALTER TABLE archive.uws_jobs ADD COLUMN base_url text;
-- Times a worker took the job; a job whose worker died is queued again only a few times, so
-- that a query that kills its worker cannot do so forever.
ALTER TABLE archive.uws_jobs ADD COLUMN attempts smallint NOT NULL DEFAULT 0;
CREATE INDEX uws_jobs_destruction_idx ON archive.uws_jobs (destruction_time);
"""

DOWNGRADE = """
DROP INDEX archive.uws_jobs_destruction_idx;
ALTER TABLE archive.uws_jobs DROP COLUMN attempts;
ALTER TABLE archive.uws_jobs DROP COLUMN base_url;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(UPGRADE)


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(DOWNGRADE)
