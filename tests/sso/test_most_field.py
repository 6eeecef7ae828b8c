"""``/most/field``: the known solar-system objects predicted inside one image at its
mid-exposure time (the image viewer's overlay, issue 19), over real HTTP, on the images seeded
around 2P/Encke's path (tests/sso/most_seed.py).

The truth is computed independently of the endpoint's batch search: every demo orbit is
predicted with ``ephemeris.predict`` (the full integration held to JPL Horizons in
test_horizons_accuracy.py) at each image's mid-exposure, and placed on the image through the
WCS of its FITS file read by astropy; an object is expected where it lands on the pixels.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.wcs import WCS
from most_seed import BASE, IMAGES, SIZE, STORE_FOLDER, Seeded, encke

from skyvault.config import settings
from skyvault.sso.ephemeris import predict
from skyvault.sso.orbits import load_demo_orbits

PATH = "/most/field"


def _get(live_server: str, did: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(live_server + PATH, params={"ID": did}, headers=headers, timeout=120)


def _rows(response: requests.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    table = parse(io.BytesIO(response.content)).get_first_table()
    return {str(row["designation"]): {name: row[name] for name in table.array.dtype.names}
            for row in table.array}


def _did(pid: int) -> str:
    return f"ivo://skyvault.archive/sci?{pid}"


def _expected_inside(name: str, mid_mjd: float) -> dict[str, tuple[float, float, float]]:
    """Designation -> (ra, dec, V) of every demo orbit whose prediction lands on the image."""
    path = settings().store_root / STORE_FOLDER / "sci" / f"{name}_sciimg.fits"
    wcs = WCS(fits.getheader(path))
    inside = {}
    for orbit in load_demo_orbits():
        ephemeris = predict(orbit, [mid_mjd])
        x, y = wcs.world_to_pixel_values(ephemeris.ra[0], ephemeris.dec[0])
        if 0.5 <= x + 1 <= SIZE + 0.5 and 0.5 <= y + 1 <= SIZE + 0.5:
            inside[orbit.designation] = (float(ephemeris.ra[0]), float(ephemeris.dec[0]),
                                         float(ephemeris.vmag[0]))
    return inside


def test_each_image_lists_the_objects_predicted_on_its_pixels(live_server: str,
                                                               seeded: Seeded) -> None:
    """Anonymous, every public image: Encke where the seed put it (the two ``inside`` images),
    not in the one whose circle but not square holds it, not a degree away, not three days
    late; positions within a milliarcsecond of the full integration, on the seeded pixel."""
    encke_designation = encke().designation
    for name, placement in IMAGES.items():
        if not placement.released:
            continue
        expected = _expected_inside(name, seeded.mid_mjd[name])
        assert (encke_designation in expected) == placement.expected, name
        rows = _rows(_get(live_server, _did(seeded.pids[name])))
        assert set(rows) == set(expected), name
        for designation, (ra, dec, vmag) in expected.items():
            row = rows[designation]
            assert abs(row["ra"] - ra) * 3600 * np.cos(np.radians(dec)) < 1e-3, name
            assert abs(row["dec"] - dec) * 3600 < 1e-3, name
            assert row["vmag"] == pytest.approx(vmag, abs=1e-9)
            assert row["mjd_mid"] == pytest.approx(seeded.mid_mjd[name], abs=1e-9)
            assert row["image_id"] == _did(seeded.pids[name])
            assert row["pid"] == seeded.pids[name]
        if placement.expected:
            row = rows[encke_designation]
            assert row["object"] == "2P/Encke" and np.isfinite(row["vmag"])
            ra, dec = seeded.predictions[name]
            assert abs(row["ra"] - ra) * 3600 < 1e-3 and abs(row["dec"] - dec) * 3600 < 1e-3
            path = settings().store_root / STORE_FOLDER / "sci" / f"{name}_sciimg.fits"
            x, y = WCS(fits.getheader(path)).world_to_pixel_values(row["ra"], row["dec"])
            assert abs(x + 1 - placement.pixel[0]) < 1e-2, name
            assert abs(y + 1 - placement.pixel[1]) < 1e-2, name


def test_a_hidden_image_answers_as_a_missing_one_and_its_members_see_it(
        live_server: str, seeded: Seeded) -> None:
    hidden_pid = seeded.pids["embargoed"]
    missing_pid = BASE + 1999
    hidden = _get(live_server, _did(hidden_pid))
    missing = _get(live_server, _did(missing_pid))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.headers["Content-Type"] == missing.headers["Content-Type"]
    assert hidden.content.replace(str(hidden_pid).encode(), b"N") == \
        missing.content.replace(str(missing_pid).encode(), b"N")
    assert b'name="QUERY_STATUS" value="ERROR"' in hidden.content
    # The member: the prediction, where the seed put it.
    rows = _rows(_get(live_server, _did(hidden_pid), seeded.member_token))
    row = rows[encke().designation]
    ra, dec = seeded.predictions["embargoed"]
    assert abs(row["ra"] - ra) * 3600 < 1e-3 and abs(row["dec"] - dec) * 3600 < 1e-3


@pytest.mark.parametrize(("params", "status", "words"), [
    ({}, 400, "ID is required"),
    ({"ID": "not a DID"}, 400, "not an image of this archive"),
    ({"ID": "ivo://skyvault.archive/ref?1"}, 400, "no single exposure time"),
    ({"ID": "ivo://skyvault.archive/raw?1"}, 400, "no single exposure time"),
    ({"ID": ["ivo://skyvault.archive/sci?1", "ivo://skyvault.archive/sci?2"]}, 400, "only once"),
    ({"ID": "ivo://skyvault.archive/diff?999999999999"}, 404, "that you may see"),
])
def test_bad_requests_get_a_votable_error(live_server: str, seeded: Seeded, params: dict,
                                          status: int, words: str) -> None:
    response = requests.get(live_server + PATH, params=params, timeout=60)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert b'name="QUERY_STATUS" value="ERROR"' in response.content
    assert words in response.text
