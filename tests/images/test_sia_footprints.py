"""SIA POS against each image's real footprint, compared with a brute-force spherical test.

SIA 2.0 section 2.1.1: "A POS constraint is satisfied if the specified shape intersects the
bounds (s_region ...) of the observation." A few hundred random quadrilateral footprints
(near the pole, across RA = 0 and in between) are searched with random circles, polygons and
ranges over HTTP; the answer must be exactly the footprints numpy geometry says intersect.
Cases on a knife edge (where a shape grown or shrunk by 0.04 arcsec gives a different truth)
are left out, since there rounding decides.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table
from images_seed import BASE, OBSJD, Frame, spoly
from spherical import (
    circle_meets_polygon,
    polygons_meet,
    range_meets_polygon,
    unit,
    vertices,
)

from skyvault.db import Database

FIRST_PID = BASE + 60_000_000
FIRST_EXPOSURE = BASE + 6_000_000
EPSILON = 1e-5  # degrees


def _random_frames(rng: np.random.Generator) -> list[Frame]:
    frames = []
    groups = ((230.0, 60.0, 3.0, 150), (None, 89.2, 0.7, 50), (0.0, -10.0, 1.0, 56))
    for ra0, dec0, spread, count in groups:
        for _ in range(count):
            if ra0 is None:  # around the pole: any longitude
                ra, dec = rng.uniform(0, 360), rng.uniform(dec0 - spread, 89.95)
            else:
                dec = dec0 + rng.uniform(-spread, spread)
                ra = (ra0 + rng.uniform(-spread, spread) / np.cos(np.radians(dec))) % 360.0
            frames.append(Frame(float(ra), float(dec), int(rng.integers(100, 600)),
                                int(rng.integers(100, 600)), scale=3.6 / 3600,
                                rotation=float(rng.uniform(0, 180))))
    return frames


@pytest.fixture(scope="module")
def footprints(database: Database, images) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(20260301)
    frames = _random_frames(rng)
    corners_by_pid: dict[int, np.ndarray] = {}
    with database.admin() as connection:
        for exposure in range(5):
            connection.execute(
                "INSERT INTO survey.exposures (expid, obsjd, telra, teldec, programid,"
                " filtercode) VALUES (%s, %s, 0, 0, 1, 'zg')",
                (FIRST_EXPOSURE + exposure, OBSJD))
        with connection.cursor() as cursor:
            for index, frame in enumerate(frames):
                corners = frame.corners()
                pid = FIRST_PID + index
                corners_by_pid[pid] = vertices(corners)
                cursor.execute(
                    "INSERT INTO survey.science_images (pid, expid, obsjd, rcid, field,"
                    " filtercode, ra, dec, footprint, programid, ra1, dec1, ra3,"
                    " dec3) VALUES (%s, %s, %s, %s, 999, 'zg', %s, %s, %s::spoly, 1, %s,"
                    " %s, %s, %s)",
                    (pid, FIRST_EXPOSURE + index // 64, OBSJD, index % 64, frame.ra,
                     frame.dec, spoly(corners), *corners[0], *corners[2]))
    yield corners_by_pid
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.science_images WHERE pid BETWEEN %s AND %s",
                           (FIRST_PID, FIRST_PID + 10_000))
        connection.execute("DELETE FROM survey.exposures WHERE expid BETWEEN %s AND %s",
                           (FIRST_EXPOSURE, FIRST_EXPOSURE + 10))


def sia_pids(base: str, pos: str) -> set[int]:
    response = requests.get(f"{base}/sia/query", params={
        "POS": pos, "COLLECTION": "SkyVault/sci", "FIELD": "999", "MAXREC": "100000"},
        timeout=60)
    assert response.status_code == 200, response.text
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    found = {int(did.rsplit("?", 1)[1]) for did in table["obs_publisher_did"]}
    return {pid for pid in found if FIRST_PID <= pid < FIRST_PID + 10_000}


def decided(test, shrunk, grown, footprints, near=None) -> set[int] | None:
    """The footprints the shape meets, or None when growing it by EPSILON changes the answer.
    ``near`` (centre, radius in degrees) skips footprints too far away to be worth testing."""
    candidates = footprints
    if near is not None:
        centre, reach = near
        candidates = {pid: corners for pid, corners in footprints.items()
                      if _separation(centre, corners) <= reach + _extent(corners) + 0.01}
    inner = {pid for pid, corners in candidates.items() if test(shrunk, corners)}
    outer = {pid for pid, corners in candidates.items() if test(grown, corners)}
    return inner if inner == outer else None


def _centre(corners: np.ndarray) -> np.ndarray:
    centre = corners.sum(axis=0)
    return centre / np.linalg.norm(centre)


def _separation(point: np.ndarray, corners: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(point @ _centre(corners), -1, 1))))


def _extent(corners: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(corners @ _centre(corners), -1, 1))).max())


def _circles(rng, footprints):
    pids = sorted(footprints)
    for _ in range(45):
        corners = footprints[pids[rng.integers(len(pids))]]
        centre = corners.mean(axis=0)
        ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360)
        dec = float(np.degrees(np.arcsin(centre[2] / np.linalg.norm(centre))))
        dec = float(np.clip(dec + rng.uniform(-0.6, 0.6), -89.99, 89.99))
        ra = float((ra + rng.uniform(-0.6, 0.6) / max(np.cos(np.radians(dec)), 0.05)) % 360)
        yield ra, dec, float(rng.uniform(0.003, 0.6))


def test_circles_find_exactly_the_footprints_they_touch(live_server, footprints) -> None:
    rng = np.random.default_rng(7)
    checked = 0
    for ra, dec, radius in _circles(rng, footprints):
        def meets(r, corners, ra=ra, dec=dec):
            return circle_meets_polygon(ra, dec, r, corners)
        truth = decided(meets, radius - EPSILON, radius + EPSILON, footprints,
                        near=(unit(ra, dec), radius))
        if truth is None:
            continue
        assert sia_pids(live_server, f"CIRCLE {ra!r} {dec!r} {radius!r}") == truth, (ra, dec)
        checked += 1
    assert checked >= 40


def _polygon(ra: float, dec: float, radius: float, angles: np.ndarray,
             scale: float) -> list[tuple[float, float]]:
    """A convex polygon: vertices at the given bearings on a small circle, scaled about it."""
    cos_dec = max(np.cos(np.radians(dec)), 0.05)
    size = radius * scale
    return [(float((ra + size * np.cos(a) / cos_dec) % 360),
             float(np.clip(dec + size * np.sin(a), -89.9, 89.9))) for a in angles]


def test_polygons_find_exactly_the_footprints_they_touch(live_server, footprints) -> None:
    rng = np.random.default_rng(11)
    checked = 0
    for ra, dec, radius in list(_circles(rng, footprints))[:25]:
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))

        def meets(points, corners):
            return polygons_meet(vertices(points), corners)

        truth = decided(meets, _polygon(ra, dec, radius, angles, 1 - 1e-4),
                        _polygon(ra, dec, radius, angles, 1 + 1e-4), footprints,
                        near=(unit(ra, dec), 1.5 * radius))
        if truth is None:
            continue
        points = _polygon(ra, dec, radius, angles, 1.0)
        pos = "POLYGON " + " ".join(f"{x!r} {y!r}" for x, y in points)
        assert sia_pids(live_server, pos) == truth, pos
        checked += 1
    assert checked >= 20


RANGES = [
    (229.0, 231.0, 59.0, 61.0),
    (232.5, 236.0, 57.0, 58.5),
    (359.5, 0.5, -11.0, -9.0),  # across RA = 0
    (350.0, 360.0, -20.0, 0.0),
    (0.0, 360.0, 89.5, 90.0),  # the polar cap
    (0.0, 360.0, 61.0, 62.0),  # a band around the sky
    (100.0, 200.0, 88.6, 89.0),
    (220.0, 240.0, 62.9, 63.5),
]


@pytest.mark.parametrize("box", RANGES)
def test_ranges_find_exactly_the_footprints_they_touch(live_server, footprints, box) -> None:
    ra_min, ra_max, dec_min, dec_max = box
    full = ra_max - ra_min >= 360
    shrunk = (ra_min if full else ra_min + EPSILON, ra_max if full else ra_max - EPSILON,
              dec_min + EPSILON, dec_max - EPSILON)
    grown = (ra_min if full else ra_min - EPSILON, ra_max if full else ra_max + EPSILON,
             dec_min - EPSILON, min(90.0, dec_max + EPSILON))
    truth = decided(range_meets_polygon, shrunk, grown, footprints)
    assert truth is not None, "the chosen range sits on a footprint edge"
    upper = "+Inf" if dec_max == 90.0 else repr(dec_max)
    lon = ("-Inf", "+Inf") if full else (repr(ra_min), repr(ra_max))
    found = sia_pids(live_server, f"RANGE {lon[0]} {lon[1]} {dec_min!r} {upper}")
    assert found == truth
    assert truth or box == (100.0, 200.0, 88.6, 89.0)


def test_circles_larger_than_a_hemisphere(live_server, footprints) -> None:
    """DALI circles go up to 180 degrees; pgsphere's stop at 90 (``CIRCLE 0 0 180`` was a 500).
    The antipode of a small circle near the footprints, with radius 180 - r, has its edge
    running through them: the same brute force decides."""
    assert sia_pids(live_server, "CIRCLE 0 0 180") == set(footprints)
    rng = np.random.default_rng(13)
    checked = 0
    for ra, dec, _ in list(_circles(rng, footprints))[:15]:
        # The sky outside a circle of 0.5-4 degrees: footprints wholly inside that circle are
        # the ones left out.
        big = ((ra + 180.0) % 360.0, -dec, 180.0 - float(rng.uniform(0.5, 4.0)))

        def meets(r, corners, big=big):
            return circle_meets_polygon(big[0], big[1], r, corners)
        truth = decided(meets, big[2] - EPSILON, big[2] + EPSILON, footprints)
        if truth is None:
            continue
        assert 0 < len(truth) < len(footprints)
        assert sia_pids(live_server, "CIRCLE {!r} {!r} {!r}".format(*big)) == truth, big
        checked += 1
    assert checked >= 10
