"""Fixtures of the web interface's tests: two small nights ingested the real way, a user of one
program, and a headless Chromium driven by Selenium against the live server.

The nights are written by ingest's synthetic product writer (real FITS files and manifests, as
the pipeline writes them) and loaded by ``skyvault.ingest.ingest_paths`` into the session's
database and file store, so release dates come from the programs' rules as in production:

- OLD: 2024-10-08, program 2, filter zg, no references: its proprietary year is over, public;
  its second exposure's zero point failed (NULL magnitudes, magzp and maglimit);
- NEW: 2026-11-12, programs 2 and 3 alternating, filter zr, with references and differences:
  proprietary, visible to members of its programs only.

Both observe survey field 601 around (233.0, +12.0), where no other suite puts data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_support import (
    CHROMEDRIVER,
    CHROMIUM,
    DEC,
    FIELD,
    ORBIT,
    PASSWORD,
    RA,
    USERNAME,
    Browser,
    WebData,
    ids_of_field,
)

from skyvault.accounts import model as accounts
from skyvault.config import settings
from skyvault.db import Database


@pytest.fixture(scope="session")
def web_data(database: Database, tmp_path_factory) -> Iterator[WebData]:
    from skyvault.ingest import LocalFileStore, ingest_paths
    from skyvault.ingest.synthetic import NightSpec, write_night

    base = tmp_path_factory.mktemp("web-nights")
    common = {"ccds": (1,), "quadrants": (1, 2, 3, 4), "sources": 25, "size": 48, "field": FIELD,
              "ra": RA, "dec": DEC}
    old = NightSpec(nightdate="2024-10-08", exposures=2, programids=(2,), filtercode="zg",
                    references=False, seed=601, unmeasured=(1,), **common)
    new = NightSpec(nightdate="2026-11-12", exposures=2, programids=(2, 3), filtercode="zr",
                    seed=602, **common)
    roots = [write_night(base / "old", old).root, write_night(base / "new", new).root]
    summary = ingest_paths(roots, database=database, store=LocalFileStore(settings().store_root),
                           quarantine_root=base / "quarantine")
    assert summary.ok and summary.quarantined == 0, summary.lines()

    data = WebData()
    with database.admin() as connection:
        if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                              (USERNAME,)).fetchone() is None:
            accounts.create_user(connection, USERNAME, PASSWORD)
            accounts.grant_programs(connection, USERNAME, [2])
        connection.execute(
            "INSERT INTO survey.solar_system_objects (designation, name, orbit_type, epoch_mjd,"
            " a, e, incl, node, peri, mean_anomaly, h, g, source) VALUES"
            " (%s, %s, 'asteroid', 61000.0, 2.7, 0.1, 5.0, 80.0, 70.0, 10.0, 15.0, 0.15,"
            " 'web tests') ON CONFLICT (designation) DO NOTHING", ORBIT)
        old_nid, new_nid = old.nid, new.nid
        for collection, table, key in (("sci", "science_images", "pid"),
                                       ("raw", "raw_images", "rawid"),
                                       ("diff", "difference_images", "diffid")):
            data.public[collection] = ids_of_field(connection, table, key, f"nid = {old_nid}")
            data.member[collection] = ids_of_field(connection, table, key,
                                           f"nid = {new_nid} AND programid = 2")
            data.hidden[collection] = ids_of_field(connection, table, key,
                                           f"nid = {new_nid} AND programid = 3")
        data.public["ref"] = set()
        data.member["ref"] = ids_of_field(connection, "reference_images", "refid", "true")
        data.hidden["ref"] = set()
        data.sha256 = dict(connection.execute(
            "SELECT f.path, f.sha256 FROM survey.files f WHERE f.path LIKE ANY (%s)",
            ([f"%_{FIELD:06d}_%"],)).fetchall())
    assert data.public["sci"] and data.member["sci"] and data.hidden["sci"]
    yield data
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.solar_system_objects WHERE designation = %s",
                           (ORBIT[0],))


@pytest.fixture(scope="session")
def site(live_server: str, web_data: WebData) -> str:
    """The live server's URL, once the data are in."""
    from skyvault.server.web.pages import clear_cache

    clear_cache()
    return live_server


@pytest.fixture(scope="session")
def browser(site: str) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="skyvault-chromium-", dir="/tmp"))
    downloads = profile / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
                 f"--user-data-dir={profile / 'profile'}",
                 "--window-size=1280,900", "--lang=en-GB"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=dict(os.environ)),
                              options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    try:
        yield Browser(driver, downloads, site)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def starry_pids(database: Database, tmp_path_factory) -> list[int]:
    """The science images of a public night whose images show their catalogs' stars (field
    619 around (40, -5), where no other suite puts data), ingested the real way. Its reference
    co-adds are then dated as archived before the session's data release was declared (as
    the seeds date theirs, tests/release_calendar.py), so they are public like the night and
    the epoch has its three images for everyone."""
    from release_calendar import COADD_RELEASED
    from starry_night import STAR_FIELD, write_starry_night

    from skyvault.ingest import LocalFileStore, ingest_paths

    night = write_starry_night(tmp_path_factory.mktemp("starry-night"))
    summary = ingest_paths([night.root], database=database,
                           store=LocalFileStore(settings().store_root),
                           quarantine_root=night.root.parent / "starry-quarantine")
    assert summary.ok and summary.quarantined == 0, summary.lines()
    with database.admin() as connection:
        refids = [row[0] for row in connection.execute(
            "UPDATE survey.reference_images SET ingested_at = %s WHERE field = %s"
            " RETURNING refid", (COADD_RELEASED, STAR_FIELD))]
        connection.execute("UPDATE survey.files SET ingested_at = %s WHERE image_table ="
                           " 'reference_images' AND image_id = ANY(%s)", (COADD_RELEASED, refids))
        return [row[0] for row in connection.execute(
            "SELECT pid FROM survey.science_images WHERE field = %s ORDER BY pid",
            (STAR_FIELD,))]
