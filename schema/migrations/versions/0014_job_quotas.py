"""What job quotas count (server/job_quota.py): the address that created an anonymous job and
the bytes of a job's inline uploads.

Revision ID: 0014
Revises: 0010
"""

from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE archive.uws_jobs ADD COLUMN client_address text;
ALTER TABLE archive.uws_jobs ADD COLUMN upload_bytes bigint NOT NULL DEFAULT 0;
CREATE INDEX uws_jobs_client_idx ON archive.uws_jobs (client_address) WHERE owner_id IS NULL;
"""

DOWNGRADE = """
DROP INDEX archive.uws_jobs_client_idx;
ALTER TABLE archive.uws_jobs DROP COLUMN upload_bytes;
ALTER TABLE archive.uws_jobs DROP COLUMN client_address;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(UPGRADE)


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(DOWNGRADE)
