"""Declaring a data release: one row in ``survey.data_releases``, whatever the archive's size.

The policies read that table once per query (skyvault/releases/dating.py), so the release
applies to every row it concerns from its date on, with no row rewritten and nothing run when
the date arrives.  Changing a release (same name) changes its dates and programs; the instant
it was first declared stays, so a correction does not pull in co-adds archived since.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import psycopg

from skyvault.releases.model import RELEASE_NAME, Release, ReleaseError, get_release


def data_release_programs(connection: psycopg.Connection) -> list[int]:
    """The programs released at data releases (rule 'data_release'): a release's default."""
    return [row[0] for row in connection.execute(
        "SELECT programid FROM survey.programs WHERE release_rule = 'data_release'"
        " ORDER BY programid")]


def declare_release(connection: psycopg.Connection, name: str, release_date: datetime,
                    cutoff: datetime, programs: Iterable[int] | None = None,
                    notes: str | None = None) -> Release:
    """Create or change data release ``name``; the caller commits."""
    if not RELEASE_NAME.match(name):
        raise ReleaseError(f"invalid release name {name!r}")
    if cutoff > release_date:
        raise ReleaseError("the observation cutoff must not be after the release date")
    previous = get_release(connection, name)
    if programs is None:
        chosen = list(previous.programids) if previous else data_release_programs(connection)
    else:
        chosen = sorted({int(p) for p in programs})
    known = {row[0] for row in connection.execute("SELECT programid FROM survey.programs")}
    if not chosen or not set(chosen) <= known:
        raise ReleaseError(f"programs {chosen} must be non-empty and in survey.programs "
                           f"(known: {sorted(known)})")
    connection.execute(
        "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
        " programids, notes) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (release_name) DO UPDATE SET release_date = EXCLUDED.release_date,"
        " observation_cutoff = EXCLUDED.observation_cutoff, programids = EXCLUDED.programids,"
        " notes = coalesce(EXCLUDED.notes, survey.data_releases.notes)",
        (name, release_date, cutoff, chosen, notes))
    release = get_release(connection, name)
    assert release is not None
    return release
