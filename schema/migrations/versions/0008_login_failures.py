"""Failed password sign-ins, for throttling guessers (skyvault/login_throttle.py).

Rows older than the throttle's window are deleted as new failures arrive; the table stays as
small as the failures of the last minutes.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute("""
CREATE TABLE archive.login_failures (
    username text NOT NULL,
    client text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_client_idx ON archive.login_failures (client, failed_at);
CREATE INDEX login_failures_time_idx ON archive.login_failures (failed_at);
GRANT SELECT, INSERT, DELETE ON archive.login_failures TO skyvault_app;
""")


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute("DROP TABLE archive.login_failures")
