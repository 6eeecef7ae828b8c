"""What a data release is, where its exports live, and the errors of release operations.

A release is one row of ``survey.data_releases``: from ``release_date``, data observed before
``observation_cutoff`` by the listed programs are public, and so are the reference co-adds
archived before the release was first declared (``declared_at``).  Nothing else records it:
the rules of skyvault/releases/dating.py read that row at query time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import psycopg

from skyvault.config import settings

# \Z, not $: $ also matches before a final newline ("DR1\n" would name a release and its
# export directory).
RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class ReleaseError(Exception):
    """A release operation cannot be done; the message says why (the CLI prints it, the web
    pages answer 404 for what they cannot serve)."""


@dataclass(frozen=True)
class Release:
    name: str
    release_date: datetime
    observation_cutoff: datetime
    programids: tuple[int, ...]
    notes: str | None
    declared_at: datetime

    @property
    def is_public(self) -> bool:
        return self.release_date <= datetime.now(UTC)

    def as_json(self) -> dict:
        return {"release_name": self.name, "release_date": self.release_date.isoformat(),
                "observation_cutoff": self.observation_cutoff.isoformat(),
                "programids": list(self.programids), "notes": self.notes}


def parse_instant(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 instant (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ReleaseError(f"not a date: {text!r} (use YYYY-MM-DD or ISO 8601)") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_COLUMNS = "release_name, release_date, observation_cutoff, programids, notes, declared_at"


def _release(row) -> Release:
    return Release(row[0], row[1], row[2], tuple(row[3]), row[4], row[5])


def get_release(connection: psycopg.Connection, name: str) -> Release | None:
    row = connection.execute(f"SELECT {_COLUMNS} FROM survey.data_releases"
                             " WHERE release_name = %s", (name,)).fetchone()
    return _release(row) if row else None


def public_release(connection: psycopg.Connection, name: str) -> Release | None:
    """The release, if it exists and its date has passed by the database's clock."""
    if not RELEASE_NAME.match(name):
        return None
    row = connection.execute(f"SELECT {_COLUMNS} FROM survey.data_releases"
                             " WHERE release_name = %s AND release_date <= now()",
                             (name,)).fetchone()
    return _release(row) if row else None


def list_releases(connection: psycopg.Connection) -> list[Release]:
    rows = connection.execute(f"SELECT {_COLUMNS} FROM survey.data_releases"
                              " ORDER BY release_date, release_name").fetchall()
    return [_release(row) for row in rows]


def releases_root() -> Path:
    """Where exports are written and served from."""
    return settings().releases_root
