"""Alembic environment: runs SkyVault's migrations against the URL given in the config."""

from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True,
                      version_table_schema="public")
    with context.begin_transaction():
        context.run_migrations()
