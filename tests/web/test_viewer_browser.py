"""The image viewer and the sky viewer (Aladin Lite, served by SkyVault itself) in the real
headless Chromium: the library loads from this origin only, a science image is drawn with its
PSF catalog over it, and the markers land on the stars.

Where the stars are is computed independently of Aladin Lite's own projection: the view's WCS
(Aladin's ``getViewWCS``) is read with astropy, the catalog's positions go through it to screen
pixels, and the screenshot must show a star (the image brighter than its surroundings) and a
marker (the overlay's colour) at each of them. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from web_support import SCREENSHOTS, Browser, WebData

from skyvault.access import ANONYMOUS
from skyvault.db import Database

WAIT = 60
MARKER_RGB = (0x00, 0xE5, 0xFF)
"""The first overlay's colour (server/web/overlays.py COLOURS[0])."""


def wait_for(browser: Browser, script: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = browser.driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    state = browser.driver.execute_script(
        "return JSON.stringify({errors: window.skyvaultViewer && window.skyvaultViewer.errors,"
        " blocked: window.skyvaultViewer && window.skyvaultViewer.blocked,"
        " status: (document.getElementById('viewer-status') || {}).textContent})")
    raise AssertionError(f"timed out waiting for {script!r}: {state}")


def settle(browser: Browser) -> None:
    """A few animation frames, so that what Aladin Lite drew is on the screen."""
    browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; let n = 0;"
        " const step = () => (++n > 10 ? done() : requestAnimationFrame(step)); step();")
    time.sleep(0.5)


def screenshot(browser: Browser, name: str) -> np.ndarray:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = browser.driver.get_screenshot_as_png()
    (SCREENSHOTS / f"{name}.png").write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)


def outside_requests(browser: Browser) -> list[str]:
    return browser.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(u => !u.startsWith(location.origin) && !u.startsWith('data:')"
        " && !u.startsWith('blob:'))")


def view_pixels(browser: Browser, ra: np.ndarray, dec: np.ndarray,
                view: str = "#aladin-viewer") -> np.ndarray:
    """Screen pixels (x right, y down, from the page's top left) of sky positions, through the
    view's WCS read by astropy."""
    from astropy.io import fits
    from astropy.wcs import WCS

    cards = browser.driver.execute_script(
        "const w = window.skyvaultViewer.aladin.getViewWCS(); return JSON.stringify(w);")
    import json

    header = fits.Header()
    for key, value in json.loads(cards).items():
        header[key] = value
    wcs = WCS(header)
    x, y = wcs.world_to_pixel_values(ra, dec)
    box = browser.driver.execute_script(
        "const r = document.querySelector(arguments[0] + ' canvas').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height];", view)
    height = int(header["NAXIS2"])
    # FITS pixel y grows upwards from the bottom row; the screen's grows downwards.
    return np.column_stack([box[0] + x, box[1] + (height - 1 - y)])


@pytest.fixture
def viewed_image(site: str, starry_pids: list[int], database: Database) -> dict:
    pid = starry_pids[0]
    with database.reading(ANONYMOUS) as connection:
        rows = connection.execute(
            "SELECT ra, dec, flux FROM survey.psf_sources WHERE pid = %s ORDER BY flux DESC",
            (pid,)).fetchall()
    assert rows
    return {"pid": pid, "ra": np.array([r[0] for r in rows]),
            "dec": np.array([r[1] for r in rows]), "flux": np.array([r[2] for r in rows])}


def test_viewer_draws_the_science_image_with_its_catalog_on_the_stars(
        browser: Browser, viewed_image: dict) -> None:
    pid = viewed_image["pid"]
    browser.driver.set_window_size(1280, 900)
    browser.get(f"/images/sci/{pid}/viewer")
    wait_for(browser, "return window.skyvaultViewer && window.skyvaultViewer.ready")
    count = wait_for(browser, "return window.skyvaultViewer.overlays['survey.psf_sources']")
    assert count == len(viewed_image["ra"])
    # Zoom onto the image so that a star spans several screen pixels.
    browser.driver.execute_script(
        "const a = window.skyvaultViewer.aladin; a.gotoRaDec(arguments[0], arguments[1]);"
        " a.setFoV(arguments[2]);", float(np.mean(viewed_image["ra"])),
        float(np.mean(viewed_image["dec"])), 60 / 3600)

    # The stars, without the overlay.
    browser.driver.find_element(
        By.CSS_SELECTOR, "input[name=overlay][value='survey.psf_sources']").click()
    settle(browser)
    bare = screenshot(browser, "viewer-image")
    positions = view_pixels(browser, viewed_image["ra"], viewed_image["dec"])
    aladin_positions = np.array(browser.driver.execute_script(
        "const a = window.skyvaultViewer.aladin;"
        " const r = document.querySelector('#aladin-viewer canvas').getBoundingClientRect();"
        " return arguments[0].map((ra, i) => { const p = a.world2pix(ra, arguments[1][i]);"
        " return [r.left + p[0], r.top + p[1]]; });",
        viewed_image["ra"].tolist(), viewed_image["dec"].tolist()))
    assert np.max(np.abs(positions - aladin_positions)) < 1.5

    grey = bare.mean(axis=2)
    height, width = grey.shape
    left, top, canvas_width, canvas_height = browser.driver.execute_script(
        "const r = document.querySelector('#aladin-viewer canvas').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height];")
    inside = [(round(x), round(y)) for x, y in positions
              if left + 14 <= x < min(width, left + canvas_width) - 14
              and top + 14 <= y < min(height, top + canvas_height) - 14]
    brightest = inside[: max(5, len(inside) // 3)]
    assert len(brightest) >= 5
    canvas = grey[int(top):int(min(height, top + canvas_height)),
                  int(left):int(min(width, left + canvas_width))]
    background = np.median(canvas)
    peaks = [grey[y - 2:y + 3, x - 2:x + 3].max() for x, y in brightest]
    rng = np.random.default_rng(1)
    offsets = [(x + int(dx), y + int(dy)) for (x, y) in brightest
               for dx, dy in rng.integers(12, 30, (1, 2)) * rng.choice([-1, 1], (1, 2))]
    elsewhere = [grey[y - 2:y + 3, x - 2:x + 3].max() for x, y in offsets
                 if 2 <= x < width - 2 and 2 <= y < height - 2]
    assert np.median(peaks) > background + 40, (peaks, background)
    assert np.median(peaks) > np.median(elsewhere) + 25, (peaks, elsewhere)

    # The overlay's markers: circles of its colour around the same pixels.
    browser.driver.find_element(
        By.CSS_SELECTOR, "input[name=overlay][value='survey.psf_sources']").click()
    settle(browser)
    marked = screenshot(browser, "viewer-overlay")
    colour = np.array(MARKER_RGB, dtype=float)
    near_colour = np.linalg.norm(marked - colour, axis=2) < 60
    for x, y in brightest:
        ring = near_colour[y - 12:y + 13, x - 12:x + 13]
        assert ring.any(), f"no marker near the star at screen ({x}, {y})"
        centre = near_colour[y - 1:y + 2, x - 1:x + 2]
        assert not centre.all(), "a marker is a circle around the star, not a blot on it"
    marker_pixels = np.argwhere(near_colour)
    centroid_distances = [np.min(np.hypot(marker_pixels[:, 1] - x, marker_pixels[:, 0] - y))
                          for x, y in brightest]
    assert max(centroid_distances) <= 10

    assert outside_requests(browser) == []
    assert browser.driver.execute_script("return window.skyvaultViewer.blocked") == []
    assert browser.driver.execute_script("return window.skyvaultViewer.errors") == []


def test_viewer_blinks_between_science_reference_and_difference(
        browser: Browser, starry_pids: list[int], web_data: WebData) -> None:
    """The epoch's science, reference and difference images are layers of one view: shown one
    at a time by choice or in turn by the blink button. An image the requester may not see
    has no viewer, exactly as one that does not exist."""
    browser.get(f"/images/sci/{starry_pids[0]}/viewer")
    wait_for(browser, "return window.skyvaultViewer && window.skyvaultViewer.ready")
    layers = [i.get_attribute("value") for i in browser.driver.find_elements(
        By.CSS_SELECTOR, "input[name=layer]")]
    assert layers == ["sci", "ref", "diff"]
    browser.driver.find_element(By.CSS_SELECTOR, "input[name=layer][value=diff]").click()
    assert wait_for(browser, "return window.skyvaultViewer.shown === 'diff'")
    browser.driver.find_element(By.ID, "blink").click()
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(seen) < 3:
        seen.add(browser.driver.execute_script("return window.skyvaultViewer.shown"))
        time.sleep(0.1)
    assert seen == {"sci", "ref", "diff"}
    browser.driver.find_element(By.ID, "blink").click()
    assert outside_requests(browser) == []
    assert browser.driver.execute_script("return window.skyvaultViewer.errors") == []

    browser.get(f"/images/sci/{min(web_data.member['sci'])}/viewer")
    hidden = browser.driver.find_element(By.TAG_NAME, "main").text
    browser.get("/images/sci/1999999999/viewer")
    assert browser.driver.find_element(By.TAG_NAME, "main").text == hidden
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "Not found"


def test_the_sky_viewer_shows_the_hips_of_the_public_co_adds(
        browser: Browser, starry_pids: list[int], database: Database) -> None:
    """HiPS 1.0 in Aladin Lite: ``skyvault hips build`` makes the g-band HiPS of the public
    co-adds (the starry night's among them), the sky page offers it, Aladin Lite loads its PNG
    tiles from this origin, and they hold pixels where the co-add lies on the sky (found
    through the view's WCS by astropy) and none far from it."""
    from skyvault.coverage.hips import build_filter, hips_root
    from skyvault.server.web.hips_files import forget_checks

    with database.reading(ANONYMOUS) as connection:
        refs = connection.execute(
            "SELECT ra, dec FROM survey.reference_images WHERE field = 619"
            " AND filtercode = 'zg'").fetchall()
    assert refs  # public: archived before the session's release was declared
    assert build_filter(database, "zg", hips_root(), force=True).state == "built"
    forget_checks()
    browser.driver.set_window_size(1280, 900)
    browser.get("/sky")
    wait_for(browser, "return window.skyvaultViewer && window.skyvaultViewer.ready")
    assert browser.driver.execute_script("return window.skyvaultViewer.hips") == "zg"
    for box in browser.driver.find_elements(By.CSS_SELECTOR, "#sky-mocs input[name=moc]"):
        box.click()  # the coverage off: only the HiPS is drawn
    ra, dec = float(np.mean([r[0] for r in refs])), float(np.mean([r[1] for r in refs]))
    settle(browser)  # Aladin Lite refuses to move while it is still setting up the layer
    browser.driver.execute_script(
        "const a = window.skyvaultViewer.aladin; a.gotoRaDec(arguments[0], arguments[1]);"
        " a.setFoV(arguments[2]);", ra, dec, 4 / 60)
    tiles = wait_for(browser, (
        "const t = performance.getEntriesByType('resource').filter(e =>"
        " e.name.includes('/hips/zg/Norder') && e.name.endsWith('.png')"
        " && e.responseStatus === 200).map(e => e.name); return t.length ? t : null;"))
    assert all(tile.startswith(browser.base) for tile in tiles)
    time.sleep(2)
    settle(browser)
    grey = screenshot(browser, "sky-hips").mean(axis=2)
    (x, y), = view_pixels(browser, np.array([ra]), np.array([dec]), "#aladin-sky").astype(int)
    far = view_pixels(browser, np.array([ra + 1.5 / 60]), np.array([dec + 1.5 / 60]),
                      "#aladin-sky").astype(int)[0]
    on_coadd = grey[y - 5:y + 6, x - 5:x + 6]
    off_coadd = grey[far[1] - 5:far[1] + 6, far[0] - 5:far[0] + 6]
    assert on_coadd.mean() > off_coadd.mean() + 20, (on_coadd.mean(), off_coadd.mean())
    assert outside_requests(browser) == []
    assert browser.driver.execute_script("return window.skyvaultViewer.blocked") == []
    assert browser.driver.execute_script("return window.skyvaultViewer.errors") == []


def orbit_through(ra: float, dec: float, mid_mjd: float, designation: str):
    """A circular asteroid orbit (epoch ``mid_mjd``) seen at (ra, dec) from Palomar then: its
    heliocentric position is put 1.5 au along the line of sight, moving prograde in the plane
    of least inclination through it, and the aim is corrected by what ``predict`` makes of it
    (light time, the planets) until the prediction is within a milliarcsecond."""
    from skyvault.geometry import separation, unit_vectors
    from skyvault.sso.ephemeris import observer_state, predict
    from skyvault.sso.kepler import ECLIPTIC_TO_ICRF
    from skyvault.sso.observatories import get_observatory
    from skyvault.sso.orbits import orbit_from_elements
    from skyvault.sso.planets import barycentric_state
    from skyvault.sso.timescales import utc_to_tdb

    utc = np.array([mid_mjd])
    tdb = utc_to_tdb(utc)
    observer, _ = observer_state(get_observatory("I41"), utc, tdb)
    sun, _ = barycentric_state("sun", tdb)
    aim_ra, aim_dec = ra, dec
    for _ in range(6):
        line = unit_vectors(np.array([aim_ra]), np.array([aim_dec]))[0]
        position = ECLIPTIC_TO_ICRF.T @ (observer[0] - sun[0] + 1.5 * line)
        ahead = np.cross([0.0, 0.0, 1.0], position)
        normal = np.cross(position, ahead)
        normal /= np.linalg.norm(normal)
        node = np.arctan2(normal[0], -normal[1])
        along = np.array([np.cos(node), np.sin(node), 0.0])
        latitude = np.arctan2(np.dot(np.cross(along, position), normal), np.dot(along, position))
        orbit = orbit_from_elements(
            epoch_mjd_tdb=float(tdb[0]), e=0.0, incl_deg=float(np.degrees(np.arccos(normal[2]))),
            node_deg=float(np.degrees(node)) % 360.0, peri_deg=0.0,
            a_au=float(np.linalg.norm(position)),
            mean_anomaly_deg=float(np.degrees(latitude)) % 360.0, h=16.0, g=0.15,
            designation=designation, name="Viewertestia", orbit_type="asteroid",
            source="viewer browser test")
        seen = predict(orbit, utc)
        if separation(seen.ra[0], seen.dec[0], ra, dec) * 3600 < 1e-3:
            return orbit
        aim_ra += ra - float(seen.ra[0])
        aim_dec += dec - float(seen.dec[0])
    raise AssertionError("the aimed orbit does not converge on the image")


def test_viewer_overlays_the_solar_system_objects_predicted_in_the_image(
        browser: Browser, site: str, starry_pids: list[int], database: Database) -> None:
    """An asteroid whose orbit is aimed at the image's centre at its mid-exposure: the viewer
    offers the overlay (off at first), and switched on it draws as many markers as /most/field
    lists, the asteroid's among them, its marker where the prediction falls on the screen."""
    import requests

    from skyvault.sso.load import store_orbits
    from skyvault.sso.search import mid_exposure_mjd

    pid = starry_pids[0]
    with database.reading(ANONYMOUS) as connection:
        ra, dec, obsjd, exptime = connection.execute(
            "SELECT ra, dec, obsjd, exptime FROM survey.science_images WHERE pid = %s",
            (pid,)).fetchone()
    orbit = orbit_through(ra, dec, float(mid_exposure_mjd(obsjd, exptime)), "2026 VB999")
    with database.admin() as connection:
        store_orbits(connection, [orbit])
    try:
        listed = requests.get(f"{site}/most/field", params={
            "ID": f"ivo://skyvault.archive/sci?{pid}"}, timeout=120)
        assert listed.status_code == 200
        rows = re.findall(rb"<TR>(.*?)</TR>", listed.content, re.DOTALL)
        assert rows and any(b"2026 VB999" in row for row in rows)

        browser.driver.set_window_size(1280, 900)
        browser.get(f"/images/sci/{pid}/viewer")
        wait_for(browser, "return window.skyvaultViewer && window.skyvaultViewer.ready")
        toggle = browser.driver.find_element(
            By.CSS_SELECTOR, "input[name=overlay][value='solar_system_objects']")
        assert not toggle.is_selected()
        assert browser.driver.execute_script(
            "return window.skyvaultViewer.overlays['solar_system_objects']") is None
        # Only this overlay, zoomed onto the prediction.
        browser.driver.find_element(
            By.CSS_SELECTOR, "input[name=overlay][value='survey.psf_sources']").click()
        toggle.click()
        count = wait_for(browser,
                         "return window.skyvaultViewer.overlays['solar_system_objects']")
        assert count == len(rows)
        label = browser.driver.find_element(
            By.CSS_SELECTOR, ".overlay-count[data-overlay='solar_system_objects']").text
        assert label == f"({len(rows)})"
        browser.driver.execute_script(
            "const a = window.skyvaultViewer.aladin; a.gotoRaDec(arguments[0], arguments[1]);"
            " a.setFoV(arguments[2]);", ra, dec, 60 / 3600)
        settle(browser)
        marked = screenshot(browser, "viewer-solar-system")
        (x, y), = view_pixels(browser, np.array([ra]), np.array([dec])).round().astype(int)
        overlay_colour = browser.driver.execute_script(
            "return JSON.parse(document.getElementById('viewer-config').textContent)"
            ".overlays.find(o => o.name === 'solar_system_objects').colour")
        rgb = np.array([int(overlay_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
        near_colour = np.linalg.norm(marked - rgb, axis=2) < 60
        assert near_colour[y - 10:y + 11, x - 10:x + 11].any(), "no marker at the prediction"
        assert outside_requests(browser) == []
        assert browser.driver.execute_script("return window.skyvaultViewer.errors") == []
    finally:
        with database.admin() as connection:
            connection.execute("DELETE FROM survey.solar_system_objects WHERE designation = %s",
                               (orbit.designation,))
