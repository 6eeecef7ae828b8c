"""Accuracy of skyvault.sso against JPL Horizons, object by object.

The requirement (issue 8) is at most 0.5" from Horizons, goal 0.1", for a main-belt asteroid,
a near-Earth asteroid and a comet over months, including elements whose epoch is years away
from the dates. Each test names the Horizons answer it compares with; the numbers themselves,
their provenance and the Horizons settings are in tests/sso/data/ (see its README.md).

Measured when these tests were written (max over the rows):
  Ceres, 2.5 years after the epoch, geocentric:      0.016"  (Horizons prints 5 decimals: 0.018")
  Ceres, 20 years before the epoch:                   0.20"   (no asteroid perturbers for Ceres)
  Eros, X05 and W84, six weeks around the epoch:      < 0.0001"
  1P/Halley, Gemini N and S, 57 years after epoch:    0.0006"
  70P/Kojima, X05, 10 years after the epoch:          0.0001"
  2P/Encke, X05, 2 years before to near perihelion:   < 0.0001"
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.time import Time

from skyvault.sso.ephemeris import predict
from skyvault.sso.integrator import integrate
from skyvault.sso.kepler import ECLIPTIC_TO_ICRF, heliocentric_state_at_epoch
from skyvault.sso.observatories import Observatory, get_observatory, observer_gcrs
from skyvault.sso.orbits import Orbit, orbit_from_elements
from skyvault.sso.planets import AU_KM, barycentric_state
from skyvault.sso.timescales import tdb_to_tt, tt_to_utc

DATA = Path(__file__).parent / "data"
JD_MJD = 2400000.5
GOAL_ARCSEC = 0.1


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def separation_arcsec(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Great-circle distance, accurate at milliarcseconds (haversine)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    hav = (
        np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    )
    return np.degrees(2 * np.arcsin(np.sqrt(hav))) * 3600.0


def orbit_from_reference(item: dict[str, Any], designation: str, **extra: Any) -> Orbit:
    """Orbit from a reference file's elements, cometary (q, tp) form when present."""
    epoch = item.get("epoch_mjd_tdb", item.get("epoch_jd_tdb", JD_MJD) - JD_MJD)
    common = {
        "epoch_mjd_tdb": epoch,
        "e": item["e"],
        "incl_deg": item["incl_deg"],
        "node_deg": item["node_deg"],
        "peri_deg": item["peri_deg"],
        "designation": designation,
        "nongrav_a1": item.get("a1", 0.0),
        "nongrav_a2": item.get("a2", 0.0),
        "nongrav_a3": item.get("a3", 0.0),
        **extra,
    }
    if "tp_jd_tdb" in item and "a_au" not in item:
        return orbit_from_elements(
            q_au=item["q_au"], tp_mjd_tdb=item["tp_jd_tdb"] - JD_MJD, **common
        )
    return orbit_from_elements(
        a_au=item["a_au"], mean_anomaly_deg=item["mean_anomaly_deg"], **common
    )


def position_angle_deg(ra_rate: np.ndarray, dec_rate: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(ra_rate, dec_rate))


# --------------------------------------------------------------------------- main belt: Ceres


def ceres(h: float = 3.33) -> Orbit:
    item = load("horizons_ceres.json")["orbit"]
    return orbit_from_reference(item, "1", h=h, g=item["g"], number=1, name="Ceres")


def test_ceres_elements_give_the_state_horizons_prints() -> None:
    """Horizons' 'Equivalent ICRF heliocentric cartesian coordinates' of the same elements."""
    reference = np.array(load("horizons_ceres.json")["orbit"]["icrf_state_au_au_per_day"])
    position, velocity = heliocentric_state_at_epoch(ceres())
    assert np.linalg.norm(position - reference[:3]) * AU_KM < 0.01  # km
    assert np.linalg.norm(velocity - reference[3:]) * AU_KM / 86400 < 1e-6  # km/s


def test_ceres_integration_matches_horizons_vectors() -> None:
    """Horizons VECTORS (heliocentric ecliptic, geometric, TDB) 2.5 years after the epoch.

    Horizons also lets the 15 other big asteroids pull on Ceres; ASSIST cannot (it would pull
    on itself), which costs 0.7 km here and 330 km over 20 years.
    """
    vectors = np.array(load("horizons_ceres.json")["vectors"])
    recent = vectors[vectors[:, 0] > 2459000]
    times = recent[:, 0] - JD_MJD
    trajectory = integrate(ceres(), times.min(), times.max())
    position, _ = trajectory.state(times)
    sun, _ = barycentric_state("sun", times)
    ecliptic = (position - sun) @ ECLIPTIC_TO_ICRF
    error_km = np.linalg.norm(ecliptic - recent[:, 1:4], axis=1) * AU_KM
    assert error_km.max() < 2.0


def test_ceres_geocentric_astrometric_positions_2022() -> None:
    """ceres_ephemerides_range.txt: CENTER=500, UTC, 2022-Jun-10 to Jul-10 every 10 days."""
    rows = np.array(load("horizons_ceres.json")["ephemeris"])
    rows = rows[rows[:, 0] > 2459000]
    ephemeris = predict(ceres(), rows[:, 0] - JD_MJD, "500")
    error = separation_arcsec(ephemeris.ra, ephemeris.dec, rows[:, 1], rows[:, 2])
    # Horizons printed 5 decimals of a degree (EXTRA_PREC=NO): rounding alone is up to 0.018".
    assert error.max() < 0.03
    np.testing.assert_allclose(ephemeris.vmag, rows[:, 5], atol=0.0015)
    np.testing.assert_allclose(ephemeris.r, rows[:, 6], atol=2e-9)
    np.testing.assert_allclose(ephemeris.delta, rows[:, 7], atol=2e-9)
    # Horizons' S-O-T uses the apparent Sun (aberration, 20"); the angles agree to 0.01 deg.
    np.testing.assert_allclose(ephemeris.elong, rows[:, 8], atol=0.01)
    np.testing.assert_allclose(ephemeris.phase, rows[:, 9], atol=0.01)
    # Rates: Horizons' are apparent, in the true equator of date (rotated ~0.3 deg from the
    # ICRF by 2022); the speed agrees to 0.1 %, the direction to the frame rotation.
    speed = np.hypot(ephemeris.ra_rate, ephemeris.dec_rate)
    np.testing.assert_allclose(speed, np.hypot(rows[:, 3], rows[:, 4]), rtol=1e-3)
    angle = position_angle_deg(ephemeris.ra_rate, ephemeris.dec_rate)
    np.testing.assert_allclose(angle, position_angle_deg(rows[:, 3], rows[:, 4]), atol=0.5)


def test_ceres_twenty_years_before_the_epoch() -> None:
    """ceres_ephemerides_single.txt: 2000-01-01 00:00 UTC, geocentric, elements of 2020."""
    row = load("horizons_ceres.json")["ephemeris"][-1]
    ephemeris = predict(ceres(h=row[10]), [row[0] - JD_MJD], "500")
    error = separation_arcsec(ephemeris.ra, ephemeris.dec, row[1], row[2])[0]
    assert error < 0.5  # requirement; measured 0.20" (see test_ceres_integration_...)
    assert ephemeris.vmag[0] == pytest.approx(row[5], abs=0.002)


# --------------------------------------------------------------------------- near-Earth: Eros


def test_eros_topocentric_positions_at_two_observatories() -> None:
    """adam_core's ephemeris.csv rows (verbatim): X05 in October, W84 in November 2004."""
    reference = load("horizons_eros.json")["orbit"]
    eros = orbit_from_reference(
        reference, "433", h=reference["h"], g=reference["g"], number=433, name="Eros"
    )
    with (DATA / "horizons_eros_2004_X05_W84.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["observatory_code"] for row in rows} == {"X05", "W84"}
    for code in ("X05", "W84"):
        mine = [row for row in rows if row["observatory_code"] == code]
        column = {
            key: np.array([float(row[key]) for row in mine])
            for key in (
                "mjd_utc",
                "RA",
                "DEC",
                "V",
                "r",
                "delta",
                "alpha",
                "elong",
                "RA_rate",
                "DEC_rate",
            )
        }
        ephemeris = predict(eros, column["mjd_utc"], code)
        error = separation_arcsec(ephemeris.ra, ephemeris.dec, column["RA"], column["DEC"])
        assert error.max() < 0.01, code
        np.testing.assert_allclose(ephemeris.delta, column["delta"], atol=1e-8)
        np.testing.assert_allclose(ephemeris.r, column["r"], atol=1e-8)
        np.testing.assert_allclose(ephemeris.vmag, column["V"], atol=0.0015)
        np.testing.assert_allclose(ephemeris.phase, column["alpha"], atol=0.01)
        np.testing.assert_allclose(ephemeris.elong, column["elong"], atol=0.01)
        speed = np.hypot(ephemeris.ra_rate, ephemeris.dec_rate)
        np.testing.assert_allclose(
            speed, np.hypot(column["RA_rate"], column["DEC_rate"]), rtol=1e-3
        )


def test_topocentric_parallax_is_what_separates_the_sites() -> None:
    """The topocentric shift is the site's offset across the line of sight over the distance."""
    reference = load("horizons_eros.json")["orbit"]
    eros = orbit_from_reference(reference, "433")
    geocentric = predict(eros, [53281.0], "500")
    topocentric = predict(eros, [53281.0], "X05")
    shift = separation_arcsec(geocentric.ra, geocentric.dec, topocentric.ra, topocentric.dec)[0]
    site, _ = observer_gcrs(get_observatory("X05"), [53281.0])
    ra, dec = np.radians(geocentric.ra[0]), np.radians(geocentric.dec[0])
    line_of_sight = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    across = np.linalg.norm(np.cross(site[0], line_of_sight))
    assert shift == pytest.approx(across / geocentric.delta[0] * 206264.806, rel=0.01)
    assert shift > 1.0  # Eros at 0.85 au: arcseconds, which is why I41 matters for ZTF


# --------------------------------------------------------------------------- comets


def _sexagesimal(ra: str, dec: str) -> tuple[float, float]:
    hours, minutes, seconds = (float(x) for x in ra.split())
    degrees, arcmin, arcsec = dec.split()
    sign = -1.0 if degrees.startswith("-") else 1.0
    return (
        15.0 * (hours + minutes / 60 + seconds / 3600),
        sign * (abs(float(degrees)) + float(arcmin) / 60 + float(arcsec) / 3600),
    )


GEMINI = {
    # The sites as Horizons prints them in the headers of these answers.
    "T15": Observatory.from_geodetic("T15", "Gemini North", 204.5309, 19.8238126, 4246.72),
    "I11": Observatory.from_geodetic("I11", "Gemini South", 289.2634, -30.2406227, 2712.33),
}


def test_halley_57_years_after_its_elements_with_nongravitational_forces() -> None:
    """Verbatim Horizons answers (lucuma fixtures): Gemini North May 2025, Gemini South Nov 2025.

    The elements are of 1968; the comet went through perihelion in 1986, where the
    non-gravitational forces act: without them the prediction is 8" off (measured).
    """
    comet = load("horizons_comets.json")["1P/Halley"]
    orbit = orbit_from_reference(
        comet["orbit"],
        "1P",
        h=comet["orbit"]["m1"],
        k1=comet["orbit"]["k1"],
        number=1,
        name="Halley",
    )
    for code, site in GEMINI.items():
        rows = [row for row in comet["ephemeris"] if row[0] == code]
        times = Time([row[1] for row in rows], scale="utc").mjd
        ephemeris = predict(orbit, times, site)
        ra, dec = np.array([_sexagesimal(row[2], row[3]) for row in rows]).T
        assert separation_arcsec(ephemeris.ra, ephemeris.dec, ra, dec).max() < 0.01, code
        np.testing.assert_allclose(ephemeris.vmag, [row[4] for row in rows], atol=0.0015)


@pytest.mark.parametrize("name", ["70P/Kojima", "2P/Encke"])
def test_periodic_comets_at_rubin_years_from_their_elements(name: str) -> None:
    """Excerpts of Horizons answers, X05, times given in TT (see data/README.md)."""
    comet = load("horizons_comets.json")[name]
    orbit = orbit_from_reference(comet["orbit"], name.split("/")[0])
    rows = comet["ephemeris"]
    times_utc = tt_to_utc(np.array([row[1] for row in rows]) - JD_MJD)
    ephemeris = predict(orbit, times_utc, "X05")
    ra, dec = np.array([row[2] for row in rows]), np.array([row[3] for row in rows])
    assert separation_arcsec(ephemeris.ra, ephemeris.dec, ra, dec).max() < 0.01
    if len(rows[0]) > 4:  # 70P also has r, delta and the phase angle
        np.testing.assert_allclose(ephemeris.r, [row[4] for row in rows], atol=1e-8)
        np.testing.assert_allclose(ephemeris.delta, [row[5] for row in rows], atol=1e-8)
        np.testing.assert_allclose(ephemeris.phase, [row[6] for row in rows], atol=0.01)


def test_comet_states_from_elements_match_horizons() -> None:
    """q, e, tp -> ICRF state, against the state Horizons prints for the same elements."""
    for name, comet in load("horizons_comets.json").items():
        reference = np.array(comet["orbit"]["icrf_state_au_au_per_day"])
        position, velocity = heliocentric_state_at_epoch(orbit_from_reference(comet["orbit"], name))
        assert np.linalg.norm(position - reference[:3]) * AU_KM < 0.01, name  # km
        assert np.linalg.norm(velocity - reference[3:]) * AU_KM / 86400 < 1e-6, name  # km/s


def test_nongravitational_forces_matter_and_are_applied() -> None:
    """The same 70P elements without A1, A2 land 0.1" away: the force model is in play."""
    comet = load("horizons_comets.json")["70P/Kojima"]
    row = comet["ephemeris"][0]
    times = tt_to_utc(np.array([row[1]]) - JD_MJD)
    with_forces = predict(orbit_from_reference(comet["orbit"], "70P"), times, "X05")
    gravity_only = {**comet["orbit"], "a1": 0.0, "a2": 0.0}
    without = predict(orbit_from_reference(gravity_only, "70P"), times, "X05")
    assert separation_arcsec(with_forces.ra, with_forces.dec, row[2], row[3])[0] < 0.01
    assert separation_arcsec(without.ra, without.dec, row[2], row[3])[0] > 0.05


# --------------------------------------------------------------------------- the observer


def test_i41_site_position_matches_horizons() -> None:
    """adam_core's I41_ssb.csv: Horizons vectors of the ZTF site, barycentric, ecliptic, TDB."""
    rows = np.array(load("horizons_observer_I41.json")["rows"])
    mjd_tdb = rows[:, 0] - JD_MJD
    mjd_utc = tt_to_utc(tdb_to_tt(mjd_tdb))
    earth_r, earth_v = barycentric_state("earth", mjd_tdb)
    site_r, site_v = observer_gcrs(get_observatory("I41"), mjd_utc)
    position = (earth_r + site_r) @ ECLIPTIC_TO_ICRF
    velocity = (earth_v + site_v) @ ECLIPTIC_TO_ICRF
    assert (np.linalg.norm(position - rows[:, 1:4], axis=1) * AU_KM * 1000).max() < 10.0  # m
    assert (np.linalg.norm(velocity - rows[:, 4:7], axis=1) * AU_KM * 1e6 / 86400).max() < 1.0
