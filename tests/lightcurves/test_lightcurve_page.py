"""The light-curve pages in headless Chromium (Selenium), on the light-curve survey's archive:
a bright periodic variable of the simulator's truth found by position on /objects, its page
(light curve, periodogram, folded curve drawn by plotly.js; the best period against the truth;
counts against the brute force; downloads), and the ways there from the catalog search and the
image pages. The member signs in with IRSA's sign-on (a session cookie)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from lightcurve_survey import SurveyArchive
from survey_service import MEMBER, MEMBER_PASSWORD, Served

from skyvault.geometry import separation

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def driver(served: Served) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="skyvault-chromium-", dir="/tmp"))
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run",
                 "--enable-unsafe-swiftshader", f"--user-data-dir={profile}",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER, env=dict(os.environ)),
                               options=options)
    browser.set_page_load_timeout(60)
    try:
        signed = requests.get(f"{served.base}/login", params={
            "josso_cmd": "login", "josso_username": MEMBER, "josso_password": MEMBER_PASSWORD},
            timeout=60, allow_redirects=False)
        browser.get(served.base + "/objects")
        for name, value in signed.cookies.items():
            browser.add_cookie({"name": name, "value": value, "path": "/"})
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _variable(archive: SurveyArchive, served: Served) -> tuple[int, float, dict]:
    """A bright periodic variable (amplitude above 0.3 mag) and its object."""
    stars = archive.stars
    objects = served.objects[served.objects["filtercode"] == "zr"]
    counts = served.points.groupby("oid").size()
    for s in np.argsort(stars["mag_r"]):
        if stars["var_amplitude"][s] < 0.3 or stars["var_period"][s] > 20:
            continue
        distance = separation(objects["ra"].to_numpy(), objects["dec"].to_numpy(),
                              stars["ra"][s], stars["dec"][s]) * 3600
        nearest = int(np.argmin(distance))
        oid = int(objects["oid"].iloc[nearest])
        if distance[nearest] < 1.0 and counts.get(oid, 0) >= 30:
            return oid, float(stars["var_period"][s]), {"ra": float(stars["ra"][s]),
                                                        "dec": float(stars["dec"][s])}
    raise AssertionError("no bright variable with 30 epochs in the survey")


def _wait_for_plots(browser, names: set[str]) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda b: names <= set(b.execute_script(
        "return window.skyvaultPlots ? window.skyvaultPlots.drawn : []")))
    return browser.execute_script("return window.skyvaultPlots")


def test_object_page_from_a_position_search(driver, served: Served,
                                            survey_archive: SurveyArchive) -> None:
    """/objects by position lists the variable; its page draws the light curve, the
    periodogram and the folded curve, finds the simulator's period within 1 %, counts every
    epoch and upper limit, and its downloads hold the same points."""
    from selenium.webdriver.common.by import By

    oid, period, star = _variable(survey_archive, served)
    driver.get(f"{served.base}/objects?position={star['ra']:.6f}+{star['dec']:+.6f}&radius=3")
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                 "a.object-link")]
    assert any(link.endswith(f"/objects/{oid}") for link in links), links
    driver.get(f"{served.base}/objects/{oid}")
    state = _wait_for_plots(driver, {"lightcurve", "periodogram", "folded"})
    assert state["errors"] == []
    found = float(driver.find_element(By.ID, "period-days").text)
    assert abs(found - period) / period < 0.01, (found, period)
    epochs = int((served.points["oid"] == oid).sum())
    assert int(driver.find_element(By.ID, "nobs").text) == epochs
    figure = json.loads(driver.find_element(
        By.CSS_SELECTOR, "script.plot-data[data-plot='lightcurve']").get_attribute("innerHTML"))
    drawn = sum(len(trace["x"]) for trace in figure["data"] if "upper" not in trace["name"])
    limits = sum(len(trace["x"]) for trace in figure["data"] if "upper" in trace["name"])
    assert drawn == epochs
    assert limits == int(driver.find_element(By.ID, "nlimits").text)
    assert {trace["marker"]["symbol"] for trace in figure["data"]} <= {
        "circle", "circle-open", "triangle-down-open"}
    hrefs = {a.text: a.get_attribute("href")
             for a in driver.find_elements(By.CSS_SELECTOR, "#downloads a")}
    assert set(hrefs) == {"VOTable", "IPAC table", "CSV", "TSV", "HTML"}
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    table = pd.read_csv(io.StringIO(requests.get(hrefs["CSV"], cookies=cookies,
                                                 timeout=60).text))
    assert int((~table["upperlimit"].astype(bool)).sum()) == epochs
    assert int(table["upperlimit"].astype(bool).sum()) == limits


def test_catalog_results_and_image_pages_lead_to_objects(served: Served) -> None:
    """The catalog search's oid cells link to the object pages, and an image page links to the
    objects around it."""
    ra, dec = float(np.median(served.objects["ra"])), float(np.median(served.objects["dec"]))
    page = requests.get(f"{served.base}/catalogs", params={
        "position": f"{ra} {dec}", "radius": "30", "catalog": "psf_sources"}, timeout=60)
    assert page.status_code == 200
    assert 'class="object-link"' in page.text and 'id="objects-here"' in page.text
    released = served.points[served.points["obsjd"] < served.cutoff_jd]
    pid = int(released["pid"].iloc[0])  # in the release: the public sees its page
    image = requests.get(f"{served.base}/images/sci/{pid}", timeout=60)
    assert image.status_code == 200
    assert 'id="objects-in-image"' in image.text
