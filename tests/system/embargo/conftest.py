"""Fixtures of the embargo suite: the seeded products of every state and their requesters."""

from __future__ import annotations

import pytest
from embargo_seed import Person, reset_world, seed

from skyvault.db import Database


@pytest.fixture(scope="session")
def seeded_people(database: Database) -> dict[str, Person]:
    return seed(database)


@pytest.fixture
def world(database: Database, seeded_people: dict[str, Person]) -> dict[str, Person]:
    """The seeded products, in their states as of now; the requesters by username."""
    with database.admin() as connection:
        reset_world(connection)
    return seeded_people
