"""Fixtures of the moving-object search tests: the images seeded around 2P/Encke's path."""

from __future__ import annotations

import pytest
from most_seed import Seeded, remove, seed

from skyvault.db import Database
from skyvault.sso.load import load_demo


@pytest.fixture(scope="module")
def seeded(database: Database) -> Seeded:
    with database.admin() as connection:
        load_demo(connection)
        result = seed(connection)
    yield result
    with database.admin() as connection:
        remove(connection)
