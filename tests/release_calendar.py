"""The test session's release calendar: how seeds put their rows in a state.

No row stores a release date (skyvault/releases/dating.py): a seed chooses a row's state with
its program and observation time, against the programs and data releases below, exactly as
production data are dated.  Every instant is relative to the session's start, so no state
changes with the calendar date:

- program 1 (public survey, released at data releases): ``SESSION_RELEASE`` has been public for
  a month and covers what was observed before ``PUBLIC_CUTOFF`` (60 days ago); program-1 rows
  observed later wait for a release;
- programs 2 and 3: proprietary for 365 days after the observation;
- ``ALWAYS_PUBLIC``: a test program whose data are all public, whenever observed (its named
  release is the session's);
- ``NEVER_RELEASED``: a test program no release ever covers;
- reference co-adds are public when archived (``ingested_at``) before the session's release
  was declared: seeds use ``COADD_RELEASED`` or ``COADD_PENDING``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

SESSION_START = datetime.now(UTC)
SESSION_RELEASE = "TESTDR0"
PUBLIC_CUTOFF = SESSION_START - timedelta(days=60)
SESSION_RELEASE_DATE = SESSION_START - timedelta(days=30)
COADD_RELEASED = SESSION_START - timedelta(days=400)
"""An ``ingested_at`` before the session release's declaration: the co-add is public."""
COADD_PENDING = SESSION_START + timedelta(days=36500)
"""An ``ingested_at`` no release declared in the session comes after: the co-add waits."""
ALWAYS_PUBLIC = 21
NEVER_RELEASED = 22


def jd(instant: datetime) -> float:
    return instant.timestamp() / 86400.0 + 2440587.5


def prepare(connection: psycopg.Connection) -> None:
    """The test programs and the session's release (idempotent)."""
    connection.execute(
        "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
        " programids, notes, declared_at) VALUES (%s, %s, %s, '{1}', 'test session', %s)"
        " ON CONFLICT (release_name) DO UPDATE SET release_date = EXCLUDED.release_date,"
        " observation_cutoff = EXCLUDED.observation_cutoff, programids = '{1}',"
        " declared_at = EXCLUDED.declared_at",
        (SESSION_RELEASE, SESSION_RELEASE_DATE, PUBLIC_CUTOFF, SESSION_START))
    connection.execute(
        "INSERT INTO survey.programs (programid, name, description, release_rule,"
        " release_name) VALUES"
        " (%s, 'Test: always public', 'Public at its named release', 'proprietary_period', %s),"
        " (%s, 'Test: never released', 'No release covers it', 'data_release', NULL)"
        " ON CONFLICT (programid) DO NOTHING",
        (ALWAYS_PUBLIC, SESSION_RELEASE, NEVER_RELEASED))
