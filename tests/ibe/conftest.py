"""Fixtures of the IBE tests: two small nights of field 1885 ingested the real way (ingest's
synthetic product writer, loaded by ``ingest_paths`` into the session's database and store, so
the files sit at IRSA's paths and release dates follow the programs' rules), and two users."""

from __future__ import annotations

import pytest
from ibe_support import (
    DEC,
    FIELD,
    MEMBER,
    NEW_NIGHT,
    OLD_NIGHT,
    OUTSIDER,
    PASSWORD,
    RA,
    IbeData,
    Person,
)

from skyvault.accounts import model as accounts
from skyvault.config import settings
from skyvault.db import Database


def _person(connection, username: str, programs: set[int]) -> Person:
    if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                          (username,)).fetchone() is None:
        accounts.create_user(connection, username, PASSWORD)
        accounts.grant_programs(connection, username, programs)
    token = accounts.create_token(connection, username, "ibe tests").token
    return Person(username, PASSWORD, token, frozenset(programs))


@pytest.fixture(scope="session")
def ibe(database: Database, live_server: str, tmp_path_factory) -> IbeData:
    from skyvault.ingest import LocalFileStore, ingest_paths
    from skyvault.ingest.synthetic import NightSpec, write_night

    base = tmp_path_factory.mktemp("ibe-nights")
    common = {"ccds": (1, 2), "quadrants": (1, 2, 3, 4), "sources": 20, "size": 48,
              "field": FIELD, "ra": RA, "dec": DEC}
    old = NightSpec(nightdate=OLD_NIGHT, exposures=2, programids=(2,), filtercode="zg",
                    references=False, seed=1885, **common)
    new = NightSpec(nightdate=NEW_NIGHT, exposures=2, programids=(2, 3), filtercode="zr",
                    seed=1886, **common)
    roots = [write_night(base / "old", old).root, write_night(base / "new", new).root]
    summary = ingest_paths(roots, database=database, store=LocalFileStore(settings().store_root),
                           quarantine_root=base / "quarantine")
    assert summary.ok and summary.quarantined == 0, summary.lines()
    with database.admin() as connection:
        member = _person(connection, MEMBER, {2})
        outsider = _person(connection, OUTSIDER, {3})
    return IbeData(live_server, member, outsider, {"old": old.nid, "new": new.nid})
