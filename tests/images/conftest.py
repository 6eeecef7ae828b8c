"""Fixtures of the image services' tests: the seeded images, files and requesters."""

from __future__ import annotations

import pytest
from images_seed import Seed, remove, reset_world, seed

from skyvault.db import Database


@pytest.fixture(scope="session")
def images(database: Database) -> Seed:
    seeded = seed(database)
    yield seeded
    with database.admin() as connection:
        remove(connection)


@pytest.fixture
def world(database: Database, images: Seed) -> Seed:
    """The seeded data, with the session's release calendar (other suites may have moved it)."""
    with database.admin() as connection:
        reset_world(connection)
    return images
