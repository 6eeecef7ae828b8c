"""Coverage MOCs, QA pages, the viewers and the HiPS, asked as every kind of requester: each
shows what its requester may see, a hidden night is answered as a night without data, and the
HiPS carries no pixel of an embargoed co-add (its tiles hold data only inside released
footprints) and is withheld as soon as one of its co-adds stops being public."""

from __future__ import annotations

import datetime as dt
import io
import json

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from embargo_seed import IMAGE_SIZE, NID, PIXEL_DEG, STATE, STATES, reset_world
from leak_probe import (
    ANONYMOUS_WHO,
    Who,
    get,
    hidden,
    leaked_secrets,
    shown,
    twin_difference,
    who,
)
from mocpy import MOC
from release_calendar import SESSION_RELEASE

from skyvault.access import ANONYMOUS
from skyvault.db import Database
from skyvault.releases.dating import released_sql
from skyvault.schema.tables import REFERENCE_IMAGES

EPOCH = dt.date(2017, 1, 1)


def night_of(nid: int) -> str:
    return (EPOCH + dt.timedelta(days=nid)).isoformat()


def state_night(state) -> str:
    return night_of(NID + state.index)


def twin_night(state) -> str:
    return night_of(NID + state.index + 900)


@pytest.fixture
def requesters(world) -> list[Who]:
    return [ANONYMOUS_WHO, who(world["leak-p1"]), who(world["leak-p2"], basic=True),
            who(world["leak-p3"]), who(world["leak-all"])]


def _moc(response) -> MOC:
    assert response.status_code == 200, response.text[:200]
    return MOC.from_fits(io.BytesIO(response.content))


def _inside(moc: MOC, state) -> bool:
    return bool(moc.contains_lonlat(np.array([state.ra]) * u.deg,
                                    np.array([state.dec]) * u.deg)[0])


def test_mocs_cover_what_each_requester_may_see(live_server, requesters) -> None:
    for requester in requesters:
        everything = _moc(get(live_server, "/moc", requester, params={"filter": "zr"}))
        for state in STATES:
            assert _inside(everything, state) == (state in shown(requester.programs)), \
                (requester.name, state.key)
            params = {"night": state_night(state)}
            response = get(live_server, "/moc", requester, params=params)
            if state in shown(requester.programs):
                assert _inside(_moc(response), state), (requester.name, state.key)
            else:
                twin = get(live_server, "/moc", requester, params={"night": twin_night(state)})
                why = twin_difference(response, state_night(state), twin, twin_night(state))
                assert why is None, (requester.name, state.key, why)
            for kind in ("moc", "stmoc"):
                for form in ("json", "ascii"):
                    body = get(live_server, f"/{kind}", requester,
                               params={**params, "format": form}).content
                    found = leaked_secrets(body, hidden(requester.programs))
                    assert not found, (requester.name, kind, form, found)


def test_qa_pages_count_only_what_each_requester_may_see(live_server, requesters) -> None:
    for requester in requesters:
        survey = get(live_server, "/qa", requester)
        assert survey.status_code == 200
        assert not leaked_secrets(survey.content, hidden(requester.programs))
        for state in STATES:
            visible = state in shown(requester.programs)
            assert (f'data-night="{state_night(state)}"'.encode() in survey.content) == visible
            page = get(live_server, f"/qa/nights/{state_night(state)}", requester)
            if visible:
                assert page.status_code == 200, (requester.name, state.key)
                assert f"pid {state.ident('pid')}".encode() in page.content
                assert not leaked_secrets(page.content, hidden(requester.programs))
            else:
                twin = get(live_server, f"/qa/nights/{twin_night(state)}", requester)
                why = twin_difference(page, state_night(state), twin, twin_night(state))
                assert why is None, (requester.name, state.key, why)


def test_viewer_pages_list_only_visible_images(live_server, requesters) -> None:
    for requester in requesters:
        sky = get(live_server, "/sky", requester)
        assert sky.status_code == 200
        assert not leaked_secrets(sky.content, hidden(requester.programs))
        for state in shown(requester.programs):
            for collection, kind in (("sci", "pid"), ("ref", "refid"), ("diff", "diffid")):
                page = get(live_server, f"/images/{collection}/{state.ident(kind)}/viewer",
                           requester)
                assert page.status_code == 200, (requester.name, state.key, collection)
                assert "wasm-unsafe-eval" in page.headers["Content-Security-Policy"]
                found = leaked_secrets(page.content, hidden(requester.programs))
                assert not found, (requester.name, state.key, found)


# -- HiPS ----------------------------------------------------------------------------------------


def _tile_positions(path) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions of a tile's pixels that hold data."""
    with fits.open(path) as hdus:
        data, header = hdus[0].data, hdus[0].header
    rows, columns = np.nonzero(np.isfinite(data))
    world = WCS(header).pixel_to_world_values(columns, rows)
    return np.asarray(world[0]) % 360.0, np.asarray(world[1])


def _in_footprint(state, ra: np.ndarray, dec: np.ndarray, margin: float) -> np.ndarray:
    half = IMAGE_SIZE / 2 * PIXEL_DEG + margin
    dra = (ra - state.ra + 180.0) % 360.0 - 180.0
    return (np.abs(dra * np.cos(np.radians(state.dec))) <= half) & \
        (np.abs(dec - state.dec) <= half)


def test_hips_holds_released_pixels_only_and_is_withheld_when_one_is_embargoed_again(
        live_server, world, database: Database) -> None:
    from skyvault.coverage.hips import build_filter, hips_root
    from skyvault.server.web.hips_files import forget_checks

    root = hips_root()
    result = build_filter(database, "zr", root, force=True)
    assert result.state == "built"
    record = json.loads((root / "zr" / "inputs.json").read_text())
    used = {item["refid"] for item in record["inputs"]}
    with database.reading(ANONYMOUS) as connection:
        public = {row[0] for row in connection.execute(
            "SELECT refid FROM survey.reference_images WHERE filtercode = 'zr'")}
    assert used <= public
    released = [s for s in STATES if s in shown(frozenset())]
    assert {s.ident("refid") for s in released} <= used
    assert not {s.ident("refid") for s in hidden(frozenset())} & used

    # Every pixel with data lies on a co-add the public may see; none on a hidden one.
    order = record["order"]
    margin = 2 * 45.0 / 512 / 2 ** order  # two tile pixels
    tiles = sorted((root / "zr").glob(f"Norder{order}/Dir*/Npix*.fits"))
    assert tiles
    hidden_states = hidden(frozenset())
    for tile in tiles:
        ra, dec = _tile_positions(tile)
        near_leak_suite = np.abs(dec - STATE["released"].dec) < 0.1
        ra, dec = ra[near_leak_suite], dec[near_leak_suite]
        if not len(ra):
            continue
        on_public = np.zeros(len(ra), dtype=bool)
        for state in released:
            on_public |= _in_footprint(state, ra, dec, margin)
        assert on_public.all(), f"{tile.name} has pixels outside every released co-add"
        for state in hidden_states:
            assert not _in_footprint(state, ra, dec, -margin).any(), (tile.name, state.key)
    coverage = MOC.from_fits(root / "zr" / "Moc.fits")
    for state in hidden_states:
        assert not _inside(coverage, state), state.key

    forget_checks()
    properties = get(live_server, "/hips/zr/properties", ANONYMOUS_WHO)
    assert properties.status_code == 200 and b"hips_tile_format" in properties.content
    tile = tiles[0].relative_to(root / "zr").as_posix()
    assert get(live_server, f"/hips/zr/{tile}", ANONYMOUS_WHO).status_code == 200
    assert get(live_server, "/hips/zr/inputs.json", ANONYMOUS_WHO).status_code == 404

    # An embargo extended after the build: the session's data release, which made the
    # co-adds public, is postponed (no row changes: the release rules read its new date).
    # The HiPS is withheld until it is made again.
    try:
        with database.admin() as connection:
            connection.execute("UPDATE survey.data_releases SET release_date = now()"
                               " + interval '100 days' WHERE release_name = %s",
                               (SESSION_RELEASE,))
            assert connection.execute(
                "SELECT count(*) FROM survey.reference_images WHERE refid = %s AND NOT"
                f" {released_sql(REFERENCE_IMAGES.embargo)}",
                (STATE["released"].ident("refid"),)).fetchone()[0] == 1
        forget_checks()
        assert get(live_server, "/hips/zr/properties", ANONYMOUS_WHO).status_code == 404
        assert get(live_server, f"/hips/zr/{tile}", ANONYMOUS_WHO).status_code == 404
        rebuilt = build_filter(database, "zr", root)
        assert rebuilt.state in ("built", "removed")
        forget_checks()
        if rebuilt.state == "built":
            record = json.loads((root / "zr" / "inputs.json").read_text())
            assert STATE["released"].ident("refid") not in {i["refid"] for i in record["inputs"]}
            assert get(live_server, "/hips/zr/properties", ANONYMOUS_WHO).status_code == 200
        else:
            assert not (root / "zr").exists()
            assert get(live_server, "/hips/zr/properties", ANONYMOUS_WHO).status_code == 404
    finally:
        with database.admin() as connection:
            reset_world(connection)
        forget_checks()
