"""Magnitudes: the H,G system and the comet total magnitude (values from Horizons' formulas)."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.sso.photometry import comet_total_magnitude, hg_magnitude


def test_hg_at_opposition_is_h_plus_distance_modulus() -> None:
    assert hg_magnitude(5.0, 0.15, 2.0, 1.0, 0.0) == pytest.approx(5.0 + 5 * np.log10(2.0))


def test_hg_dims_with_phase_and_default_slope() -> None:
    v = hg_magnitude(10.0, None, [2.0, 2.0], [1.0, 1.0], [0.0, 20.0])
    assert v[1] - v[0] == pytest.approx(hg_magnitude(10.0, 0.15, 2.0, 1.0, 20.0) - v[0])
    assert 0.5 < v[1] - v[0] < 1.2


def test_unknown_magnitude_parameters_give_nan() -> None:
    assert np.isnan(hg_magnitude(None, 0.15, [2.0], [1.0], [5.0])).all()
    assert np.isnan(comet_total_magnitude(5.5, None, [1.0], [1.0])).all()


def test_comet_total_magnitude() -> None:
    # Halley as Horizons printed it on 2025-05-02: T-mag 25.598 at r = 35.11, delta = 35.23.
    value = comet_total_magnitude(5.5, 8.0, 35.11281894, 35.22606362)
    assert float(value) == pytest.approx(25.598, abs=0.0006)
