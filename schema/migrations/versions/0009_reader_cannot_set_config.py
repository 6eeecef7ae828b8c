"""The reader role cannot call set_config: a second guard behind the ADQL allow-list.

The embargo policies read the transaction setting ``skyvault.programs``, which the service sets
(as ``skyvault_app``) before switching to ``skyvault_reader`` for a user's query. ADQL reaches
only allow-listed functions, so set_config is already out of its reach; should a translator bug
ever let a function call through, the reader still could not rewrite who is asking. (The SET
command cannot appear in a SELECT, and ADQL produces nothing else.)

Function privileges are per database; only EXECUTE for PUBLIC is taken away, and the service
and the owner running this migration keep it.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FUNCTION = "pg_catalog.set_config(text, text, boolean)"


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(f"""
REVOKE EXECUTE ON FUNCTION {FUNCTION} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {FUNCTION} TO skyvault_app, CURRENT_USER;
""")


def downgrade() -> None:
    op.get_bind().connection.driver_connection.execute(f"""
GRANT EXECUTE ON FUNCTION {FUNCTION} TO PUBLIC;
REVOKE EXECUTE ON FUNCTION {FUNCTION} FROM skyvault_app;
""")
