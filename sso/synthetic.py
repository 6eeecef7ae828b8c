"""Synthetic survey metadata and orbits, for the moving-object search's tests and benchmark.

``camera_quadrants``: the 64 readout quadrants of a ZTF-like exposure (16 CCDs of 2 x 2
quadrants of 3072 x 3080 pixels at 1.012"/pixel, CCD gaps included), as sky corners, centres and
linear TAN WCS, for any pointings at once. ``survey_year``: exposures with a ZTF-like cadence
(a fixed field grid north of -30 deg, fields near the meridian visited twice a night in g and r
about half an hour apart, ~30 s exposures back to back through the dark hours, a fraction of
nights lost to weather). ``random_orbits``: main-belt and near-Earth asteroid orbits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skyvault.geometry import gnomonic_inverse

from .orbits import Orbit, orbit_from_elements

PIXEL_DEG = 1.012 / 3600.0
QUADRANT_NX, QUADRANT_NY = 3072, 3080
CCD_GAP_PIXELS = 64
EXPTIME_S = 30.0
CADENCE_S = 39.0
FIELD_SPACING_DEG = 6.9
MIN_DEC = -30.0
PALOMAR_LONGITUDE_DEG = -116.8650


@dataclass(frozen=True)
class Quadrants:
    """Arrays (N, 64) for N exposures: centres, corners (N, 64, 4), WCS, readout ids."""

    centre_ra: NDArray[np.float64]
    centre_dec: NDArray[np.float64]
    corners_ra: NDArray[np.float64]
    corners_dec: NDArray[np.float64]
    ccdid: NDArray[np.int16]
    qid: NDArray[np.int16]
    rcid: NDArray[np.int16]
    cd: NDArray[np.float64]
    """(2, 2): the same CD matrix for all (no rotation)."""


def _focal_offsets() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per quadrant (64): centre (x, y) and the four corners' (x, y) in degrees from the
    boresight (x towards decreasing RA), with ccdid, qid; the layout of pipeline.camera."""
    pitch_x = 2 * QUADRANT_NX + CCD_GAP_PIXELS
    pitch_y = 2 * QUADRANT_NY + CCD_GAP_PIXELS
    cell = {1: (1, 1), 2: (0, 1), 3: (0, 0), 4: (1, 0)}
    centres, corners, ccds, qids = [], [], [], []
    for ccdid in range(1, 17):
        row, col = divmod(ccdid - 1, 4)
        for qid in (1, 2, 3, 4):
            qcol, qrow = cell[qid]
            x0 = (col - 2) * pitch_x + CCD_GAP_PIXELS / 2 + qcol * QUADRANT_NX
            y0 = (row - 2) * pitch_y + CCD_GAP_PIXELS / 2 + qrow * QUADRANT_NY
            xs = np.array([x0, x0 + QUADRANT_NX - 1, x0 + QUADRANT_NX - 1, x0]) + 0.5
            ys = np.array([y0, y0, y0 + QUADRANT_NY - 1, y0 + QUADRANT_NY - 1]) + 0.5
            corners.append((xs * PIXEL_DEG, ys * PIXEL_DEG))
            centres.append((xs.mean() * PIXEL_DEG, ys.mean() * PIXEL_DEG))
            ccds.append(ccdid)
            qids.append(qid)
    c = np.array(centres)
    k = np.array(corners)
    return c[:, 0], c[:, 1], k[:, 0, :], k[:, 1, :], np.array([ccds, qids])


_CX, _CY, _, _, _IDS = _focal_offsets()


def camera_quadrants(telra: NDArray, teldec: NDArray) -> Quadrants:
    """The 64 quadrants of exposures pointed at (telra, teldec), no rotation: +x is east (to
    decreasing xi), as FITS images of the sky are usually drawn."""
    ra0 = np.asarray(telra, dtype=float)[:, None]
    dec0 = np.asarray(teldec, dtype=float)[:, None]
    centre_ra, centre_dec = gnomonic_inverse(-_CX[None, :], _CY[None, :], ra0, dec0)
    # Corners from each quadrant's own TAN WCS (CRVAL its centre, CRPIX its middle pixel), so
    # footprints and WCS agree exactly, as the pipeline's do.
    cd = np.array([[-PIXEL_DEG, 0.0], [0.0, PIXEL_DEG]])
    crpix1, crpix2 = (QUADRANT_NX + 1) / 2, (QUADRANT_NY + 1) / 2
    dx = np.array([1, QUADRANT_NX, QUADRANT_NX, 1]) - crpix1
    dy = np.array([1, 1, QUADRANT_NY, QUADRANT_NY]) - crpix2
    corners_ra, corners_dec = gnomonic_inverse(
        (cd[0, 0] * dx)[None, None, :], (cd[1, 1] * dy)[None, None, :],
        centre_ra[:, :, None], centre_dec[:, :, None])
    ccd, qid = _IDS
    return Quadrants(centre_ra, centre_dec, corners_ra, corners_dec, ccd.astype(np.int16),
                     qid.astype(np.int16), (4 * (ccd - 1) + qid - 1).astype(np.int16), cd)


def field_grid() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Field centres: rings of declination FIELD_SPACING_DEG apart, RA spaced to match."""
    ras, decs = [], []
    dec = MIN_DEC + FIELD_SPACING_DEG / 2
    while dec < 90.0:
        count = max(1, math.floor(360.0 * math.cos(math.radians(dec)) / FIELD_SPACING_DEG))
        ras += list(np.arange(count) * 360.0 / count)
        decs += [dec] * count
        dec += FIELD_SPACING_DEG
    return np.array(ras), np.array(decs)


def _local_sidereal_deg(mjd_utc: NDArray) -> NDArray[np.float64]:
    gmst = 280.46061837 + 360.98564736629 * (np.asarray(mjd_utc) - 51544.5)
    return (gmst + PALOMAR_LONGITUDE_DEG) % 360.0


@dataclass(frozen=True)
class NightPlan:
    nid: int
    mjd_start: NDArray[np.float64]
    """Exposure start times (MJD UTC)."""
    field: NDArray[np.int32]
    filtercode: list[str]
    telra: NDArray[np.float64]
    teldec: NDArray[np.float64]


def survey_nights(first_mjd: float, nights: int, rng: np.random.Generator,
                  weather_loss: float = 0.2) -> Iterator[NightPlan]:
    """One plan per clear night: ~9 hours of back-to-back 30 s exposures, each field near the
    meridian taken in r and then, ~30 minutes later, in g."""
    field_ra, field_dec = field_grid()
    for night in range(nights):
        if rng.random() < weather_loss:
            continue
        evening = first_mjd + night + 0.125  # ~03:00 UTC, dark at Palomar for most of the year
        starts = evening + np.arange(int(9 * 3600 / CADENCE_S)) * CADENCE_S / 86400.0
        fields: list[int] = []
        filters: list[str] = []
        block = 45  # exposures per block: a block of fields in r, then the same in g
        for first in range(0, starts.size, 2 * block):
            lst = _local_sidereal_deg(starts[min(first + block, starts.size - 1)])
            hour_angle = (lst - field_ra + 180.0) % 360.0 - 180.0
            usable = np.flatnonzero((np.abs(hour_angle) < 20.0) & (field_dec < 85.0))
            chosen = rng.choice(usable, size=min(block, usable.size), replace=False)
            chosen = chosen[np.argsort(field_dec[chosen])]
            for code in ("zr", "zg"):
                fields += chosen.tolist()
                filters += [code] * chosen.size
        n = min(len(fields), starts.size)
        index = np.array(fields[:n])
        yield NightPlan(nid=night, mjd_start=starts[:n], field=index.astype(np.int32),
                        filtercode=filters[:n], telra=field_ra[index], teldec=field_dec[index])


def random_orbits(count: int, epoch_mjd_tdb: float, rng: np.random.Generator,
                  near_earth_fraction: float = 0.05) -> list[Orbit]:
    """Main-belt asteroids (a 2.1-3.3 au, e < 0.3, i < 25 deg) and some near-Earth ones
    (a 1.0-2.0 au, q < 1.3 au), osculating at ``epoch``, with H and G."""
    orbits = []
    for k in range(count):
        if rng.random() < near_earth_fraction:
            a = rng.uniform(1.0, 2.0)
            e = rng.uniform(max(0.0, 1.0 - 1.3 / a), 0.7)
        else:
            a = rng.uniform(2.1, 3.3)
            e = rng.uniform(0.0, 0.3)
        orbits.append(orbit_from_elements(
            epoch_mjd_tdb=epoch_mjd_tdb, e=e, incl_deg=rng.uniform(0.0, 25.0),
            node_deg=rng.uniform(0, 360), peri_deg=rng.uniform(0, 360), a_au=a,
            mean_anomaly_deg=rng.uniform(0, 360), h=rng.uniform(14.0, 20.0), g=0.15,
            designation=f"synthetic {k}", source="synthetic"))
    return orbits
