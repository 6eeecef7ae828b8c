"""DE440 access: interpolated states for long time series, and the range of the file."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.sso import planets
from skyvault.sso.planets import AU_KM, EphemerisRangeError, barycentric_state


@pytest.mark.parametrize("body", ["earth", "sun"])
def test_interpolated_states_match_direct_evaluation(body: str) -> None:
    times = 60000.0 + np.sort(np.random.default_rng(1).uniform(0, 60, 2000))
    assert times.size > planets.DIRECT_EVALUATION_LIMIT
    position, velocity = barycentric_state(body, times)  # type: ignore[arg-type]
    exact_r, exact_v = planets._exact_state(body, times)  # type: ignore[arg-type]
    assert np.abs(position - exact_r).max() * AU_KM * 1000 < 0.5  # metres
    assert np.abs(velocity - exact_v).max() * AU_KM * 1e6 / 86400 < 0.1  # mm/s


def test_sparse_requests_use_few_nodes() -> None:
    times = np.linspace(50000.0, 62000.0, 1000)
    nodes, left, fraction = planets.grid_nodes(times, planets.GRID_STEP_DAYS)
    assert nodes.size <= 2 * times.size
    assert np.all((fraction >= 0) & (fraction < 1))
    np.testing.assert_allclose(nodes[left] + fraction * planets.GRID_STEP_DAYS, times)


def test_earth_is_an_au_from_the_sun() -> None:
    earth, _ = barycentric_state("earth", [60000.0])
    sun, _ = barycentric_state("sun", [60000.0])
    assert 0.98 < np.linalg.norm(earth - sun) < 1.02


def test_outside_de440_is_an_error() -> None:
    with pytest.raises(EphemerisRangeError, match="1550 and 2650"):
        barycentric_state("earth", [300000.0])
