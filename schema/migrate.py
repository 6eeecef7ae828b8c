"""Bring a database to the current schema: alembic revisions, then TAP_SCHEMA's content."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from skyvault.schema.tap_schema import refresh_statements

MIGRATIONS = Path(__file__).with_name("migrations")


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # alembic's config is an ini parser: '%' must be doubled.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def refresh_tap_schema(url: str) -> None:
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        for statement, rows in refresh_statements():
            if rows:
                cursor.executemany(statement, rows)
            else:
                cursor.execute(statement)


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
    # TAP_SCHEMA's rows are generated from today's model, whose shape (tap_schema.tables'
    # IRSA columns since 0022) is the head's: a database left at an older revision keeps the
    # rows it had.
    if current_revision(url) == head_revision():
        refresh_tap_schema(url)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
