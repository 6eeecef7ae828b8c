"""The web interface end to end: a real headless Chromium, driven by Selenium, against the live
server over HTTP, on two nights ingested the real way (see conftest.py).

Each test leaves the browser signed out; screenshots of the main pages at 1280 px and 390 px
go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from web_support import DEC, FIELD, ORBIT, PASSWORD, RA, USERNAME, Browser, WebData

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database

WAIT = 30


def wait(browser: Browser, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(browser.driver, timeout)


def find(browser: Browser, selector: str):
    return browser.driver.find_element(By.CSS_SELECTOR, selector)


def find_all(browser: Browser, selector: str) -> list:
    return browser.driver.find_elements(By.CSS_SELECTOR, selector)


def result_ids(browser: Browser) -> set[str]:
    return {row.get_attribute("data-id") for row in find_all(browser, "#results-table tbody tr")}


def ids(collection: str, numbers: set[int]) -> set[str]:
    return {f"{collection}:{n}" for n in numbers}


def submit_search(browser: Browser, position: str, *, products: tuple[str, ...] = ("sci",),
                  extra: dict[str, str] | None = None) -> None:
    """Fill the image search form as a person would and submit it."""
    browser.get("/search")
    box = find(browser, "#f-position")
    box.clear()
    box.send_keys(position)
    for checkbox in find_all(browser, "input[name=product]"):
        if (checkbox.get_attribute("value") in products) != checkbox.is_selected():
            checkbox.click()
    for name, value in (extra or {}).items():
        field = find(browser, f"#f-{name}")
        if not field.is_displayed():
            find(browser, "details.more summary").click()
        field.clear()
        field.send_keys(value)
    find(browser, "#search-button").click()
    wait(browser).until(lambda d: d.execute_script("return document.readyState") == "complete"
                        and "search?" in d.current_url)


def thumbnails_loaded(browser: Browser) -> bool:
    return browser.driver.execute_script("""
        const images = [...document.querySelectorAll('#results-table img.thumbnail')];
        images.forEach(i => i.loading = 'eager');
        return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);""")


def sign_in(browser: Browser) -> None:
    find(browser, "#sign-in").click()
    wait(browser).until(ready.presence_of_element_located((By.NAME, "username")))
    find(browser, "input[name=username]").send_keys(USERNAME)
    find(browser, "input[name=password]").send_keys(PASSWORD)
    find(browser, "button[type=submit]").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "signed-in-as")))


def sign_out(browser: Browser) -> None:
    find(browser, "#sign-out").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "sign-in")))


def wait_for_download(browser: Browser, suffix: str, timeout: float = WAIT) -> Path:
    """The one finished file of the download folder whose name ends with ``suffix``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in browser.downloads.iterdir() if p.name.endswith(suffix)]
        partial = [p for p in browser.downloads.iterdir() if p.suffix == ".crdownload"]
        if done and not partial:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} download: {list(browser.downloads.iterdir())}")


def select_all_and_download(browser: Browser, kind: str, suffix: str) -> Path:
    browser.clear_downloads()
    select = find(browser, "#select-all")
    if not select.is_selected():
        select.click()
    assert "selected" in find(browser, "#selection-count").text
    find(browser, f"button[name=format][value={kind}]").click()
    return wait_for_download(browser, suffix)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


MAIN_FILES = {"sci": ("science_images", "sciimg"), "raw": ("raw_images", "raw"),
              "ref": ("reference_images", "refimg"), "diff": ("difference_images", "diffimg")}


def expected_files(selected: set[str], database: Database) -> dict[str, str]:
    """path -> SHA-256 of the main files of the selected images, from the archive's records."""
    found = {}
    with database.admin() as connection:
        for selection in selected:
            collection, number = selection.split(":")
            table, product = MAIN_FILES[collection]
            for path, checksum in connection.execute(
                    "SELECT path, sha256 FROM survey.files WHERE image_table = %s"
                    " AND image_id = %s AND product = %s AND is_current = 1",
                    (table, int(number), product)):
                found[path] = checksum.strip()
    return found


# -- tests ----------------------------------------------------------------------------------------


def test_home_counts_are_what_the_requester_may_see(browser: Browser, web_data: WebData,
                                                    database: Database) -> None:
    browser.get("/")
    counts = {row.get_attribute("data-product"): int(row.find_element(
        By.CSS_SELECTOR, "td.total").text.replace(",", ""))
        for row in find_all(browser, "#counts tbody tr")}
    with database.reading(ANONYMOUS) as connection:
        expected = connection.execute(
            "SELECT count(*) FROM survey.science_images WHERE is_current = 1").fetchone()[0]
    assert counts["sci"] == expected
    assert counts["sci"] >= len(web_data.public["sci"])
    maps = find_all(browser, "img.skymap")
    assert len(maps) == 3
    wait(browser).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('img.skymap')].every(i => i.complete"
        " && i.naturalWidth > 0)"))
    assert "TAP" in find(browser, "table.services").text
    assert browser.screenshot("home") == []


def galactic(ra: float, dec: float) -> str:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    position = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    return f"{position.l.deg:.7f} {position.b.deg:+.7f}"


@pytest.mark.parametrize(("position", "frame"), [
    (f"{RA} {DEC:+}", "icrs"),
    ("15:32:00.0 +12:00:00", "icrs"),  # 233 deg = 15h32m
    ("15h32m00s, 12d00m00s", "icrs"),
    (galactic(RA, DEC), "galactic"),
], ids=["decimal", "sexagesimal", "hms-dms", "galactic"])
def test_search_by_coordinates_finds_the_images_with_thumbnails(
        browser: Browser, web_data: WebData, position: str, frame: str) -> None:
    browser.get("/search")
    find(browser, f"#f-frame option[value={frame}]").click()
    find(browser, "#f-position").send_keys(position)
    find(browser, "#search-button").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "results")))
    assert result_ids(browser) == ids("sci", web_data.public["sci"])
    wait(browser).until(lambda _: thumbnails_loaded(browser))
    distances = [float(cell.text) for cell in find_all(
        browser, "#results-table tbody tr td.distance")]
    assert distances == sorted(distances) and max(distances) < 60
    if position.startswith(str(RA)):
        assert browser.screenshot("search-results") == []


def test_search_by_name_resolves_from_the_archive(browser: Browser, web_data: WebData) -> None:
    submit_search(browser, f"field {FIELD}", products=("sci", "raw"))
    assert f"field {FIELD}" in find(browser, "#resolved").text
    assert result_ids(browser) == ids("sci", web_data.public["sci"]) | ids(
        "raw", web_data.public["raw"])
    wait(browser).until(lambda _: thumbnails_loaded(browser))

    submit_search(browser, "Nowhere Nebula")
    assert "Unknown name 'Nowhere Nebula'" in find(browser, "#error-position").text
    assert find_all(browser, "#results") == []

    submit_search(browser, ORBIT[1])
    message = find(browser, "#error-position").text
    assert ORBIT[0] in message and "solar-system object" in message
    assert "time range" in message
    link = find(browser, "#most-link").get_attribute("href")
    assert "/most?" in link and "object=2026+WB601" in link


def test_a_bad_coordinate_is_explained_next_to_the_field(browser: Browser,
                                                         web_data: WebData) -> None:
    submit_search(browser, "12:75:00 +95:00:00", extra={"time_from": "2024-13-45"})
    assert find(browser, "#error-position").text == \
        "Right ascension: minutes (75) must be below 60"
    field = find(browser, "#f-position")
    assert field.get_attribute("aria-invalid") == "true"
    assert "error-position" in field.get_attribute("aria-describedby")
    assert "is not a date" in find(browser, "#error-time_from").text
    assert "2 fields" in find(browser, "#form-problems").text
    # What was typed stays, to be corrected; no result and no stack trace.
    assert field.get_attribute("value") == "12:75:00 +95:00:00"
    assert find_all(browser, "#results") == []
    assert "Traceback" not in browser.driver.page_source
    assert browser.screenshot("search-error") == []

    submit_search(browser, "150.1 +95")
    assert find(browser, "#error-position").text == \
        "Declination: 95 degrees is outside -90 to +90"


def test_long_searches_show_progress_and_columns_sort(browser: Browser,
                                                      web_data: WebData) -> None:
    submit_search(browser, f"{RA} {DEC}", products=("sci", "raw"))
    hidden = browser.driver.execute_script(
        "document.getElementById('image-search').requestSubmit();"
        " return document.getElementById('search-progress').hidden;")
    assert hidden is False
    wait(browser).until(ready.presence_of_element_located((By.ID, "results")))
    find(browser, "a.sort[data-sort=time]").click()
    wait(browser).until(lambda d: "sort=time" in d.current_url)
    find(browser, "a.sort[data-sort=time]").click()
    wait(browser).until(lambda d: "order=desc" in d.current_url)
    times = [cell.text for cell in find_all(browser, "#results-table td.time")]
    assert times == sorted(times, reverse=True)
    assert len(times) == len(web_data.public["sci"]) + len(web_data.public["raw"])
    header = find(browser, "a.sort[data-sort=time]").find_element(By.XPATH, "..")
    assert header.get_attribute("aria-sort") == "descending"


def test_results_become_cards_that_fit_a_phone(browser: Browser, web_data: WebData) -> None:
    browser.driver.set_window_size(390, 844)
    try:
        submit_search(browser, f"{RA} {DEC}", products=("sci", "raw"))
        assert not find(browser, "#results-table thead").is_displayed()
        assert find(browser, ".sort-bar").is_displayed()
        find(browser, "#select-all").click()
        count = len(web_data.public["sci"]) + len(web_data.public["raw"])
        assert find(browser, "#selection-count").text == f"{count} images selected"
        assert find(browser, "button[value=zip]").is_enabled()
        assert browser.driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        thumbnail = find(browser, "#results-table img.thumbnail")
        assert thumbnail.is_displayed() and thumbnail.size["width"] == 72
    finally:
        browser.driver.set_window_size(1280, 900)


def test_image_page_shows_preview_header_footprint_and_relations(
        browser: Browser, web_data: WebData) -> None:
    submit_search(browser, f"{RA} {DEC}")
    pid = min(web_data.public["sci"])
    find(browser, f"tr[data-id='sci:{pid}'] a.detail-link").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "large-preview")))
    wait(browser).until(lambda d: d.execute_script(
        "const i = document.getElementById('large-preview'); return i.complete"
        " && i.naturalWidth > 0"))
    assert find(browser, "#did").text == f"ivo://skyvault.archive/sci?{pid}"
    find(browser, "#fits-header-box summary").click()
    assert "CRVAL1" in find(browser, "#fits-header").text
    assert find_all(browser, "svg.footprint polygon")
    progenitors = [li.text for li in find_all(browser, "#related li[data-semantics='#progenitor']")]
    assert any("Raw CCD frame" in text for text in progenitors)
    assert browser.screenshot("image") == []

    # A cutout radius that is not a number is refused next to its field...
    radius = find(browser, "#f-radius")
    radius.clear()
    radius.send_keys("ten")
    find(browser, "#cutout-form button").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "error-radius")))
    assert find(browser, "#error-radius").text == "Radius must be a number, not 'ten'"
    # ... and a good one hands the request to SODA, whose FITS file is downloaded.
    browser.clear_downloads()
    radius = find(browser, "#f-radius")
    radius.clear()
    radius.send_keys("10")
    find(browser, "#cutout-form button").click()
    cutout = wait_for_download(browser, ".fits")
    assert cutout.read_bytes()[:30] == b"SIMPLE  =                    T"


def test_downloaded_archive_files_match_the_archive_checksums(
        browser: Browser, web_data: WebData, database: Database, tmp_path: Path) -> None:
    submit_search(browser, f"{RA} {DEC}", products=("sci", "raw"))
    selected = result_ids(browser)
    expected = expected_files(selected, database)
    assert len(expected) == len(selected) == len(web_data.public["sci"]) + len(
        web_data.public["raw"])
    bundle = select_all_and_download(browser, "zip", ".zip")
    with zipfile.ZipFile(bundle) as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path)
    (folder,) = tmp_path.iterdir()
    assert {path: sha256(folder / path) for path in expected} == expected
    listed = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        checksum, path = line.split("  ", 1)
        listed[path] = checksum
    assert listed == expected


def test_download_script_fetches_resumes_and_verifies(
        browser: Browser, web_data: WebData, database: Database, tmp_path: Path) -> None:
    submit_search(browser, f"field {FIELD}")
    expected = expected_files(result_ids(browser), database)
    script = select_all_and_download(browser, "curl", "-curl.sh")
    run = subprocess.run(["sh", str(script)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"all {len(expected)} files present and verified" in run.stdout
    assert {path: sha256(tmp_path / path) for path in expected} == expected
    # Interrupted: one file cut short, one missing. A rerun completes and checks them.
    first, second = sorted(expected)[:2]
    data = (tmp_path / first).read_bytes()
    (tmp_path / first).write_bytes(data[: len(data) // 3])
    (tmp_path / second).unlink()
    again = subprocess.run(["sh", str(script)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert {path: sha256(tmp_path / path) for path in expected} == expected


def coverage_cells(browser: Browser, filtercode: str) -> int:
    """How many MOC cells the home page's map of a filter draws, as the browser's user."""
    from lxml import etree

    document = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f" fetch('/coverage/{filtercode}.svg').then(r => r.text()).then(done);")
    return len(etree.fromstring(document.encode()).findall(
        ".//{http://www.w3.org/2000/svg}g[@class='cells']/{http://www.w3.org/2000/svg}path"))


def sci_total(browser: Browser) -> int:
    browser.get("/")
    return int(find(browser, "#counts tr[data-product=sci] td.total").text.replace(",", ""))


def test_signing_in_reveals_proprietary_rows_that_were_absent(
        browser: Browser, web_data: WebData, database: Database) -> None:
    public = ids("sci", web_data.public["sci"])
    anonymous_total = sci_total(browser)
    anonymous_cells = coverage_cells(browser, "zr")  # the member's zr night is not public
    submit_search(browser, f"{RA} {DEC}", products=("sci", "ref", "diff"))
    assert result_ids(browser) == public

    sign_in(browser)
    # Back on the same search, now with the program's proprietary images.
    assert "search?" in browser.driver.current_url
    assert find(browser, "#signed-in-as").text == USERNAME
    member = public | ids("sci", web_data.member["sci"]) | ids("ref", web_data.member["ref"]) \
        | ids("diff", web_data.member["diff"])
    assert result_ids(browser) == member
    hidden = ids("sci", web_data.hidden["sci"]) | ids("diff", web_data.hidden["diff"])
    assert not result_ids(browser) & hidden
    wait(browser).until(lambda _: thumbnails_loaded(browser))
    assert browser.screenshot("search-signed-in") == []

    with database.reading(Requester(user_id=-1, programs=frozenset({2}))) as connection:
        expected = connection.execute(
            "SELECT count(*) FROM survey.science_images WHERE is_current = 1").fetchone()[0]
    assert sci_total(browser) == expected >= anonymous_total + len(web_data.member["sci"])
    assert coverage_cells(browser, "zr") > anonymous_cells

    sign_out(browser)
    submit_search(browser, f"{RA} {DEC}", products=("sci", "ref", "diff"))
    assert result_ids(browser) == public


def test_catalog_search_lists_and_downloads_the_cone(browser: Browser, web_data: WebData,
                                                    database: Database) -> None:
    browser.get("/catalogs")
    find(browser, "#f-position").send_keys(f"{RA} {DEC}")
    radius = find(browser, "#f-radius")
    radius.clear()
    radius.send_keys("60")
    find(browser, "#catalog-search button[type=submit]").click()
    wait(browser).until(ready.presence_of_element_located((By.ID, "catalog-count")))
    with database.reading(ANONYMOUS) as connection:
        expected = connection.execute(
            "SELECT count(*) FROM survey.psf_sources WHERE q3c_join(%s, %s, ra, dec, %s)",
            (RA, DEC, 60 / 3600)).fetchone()[0]
    assert expected > 0
    assert len(find_all(browser, "#catalog-table tbody tr")) == min(expected, 500)
    assert browser.screenshot("catalogs") == []
    browser.clear_downloads()
    find(browser, "#download-csv").click()
    lines = wait_for_download(browser, ".csv").read_text().splitlines()
    assert lines[0].startswith("sourceid,")
    assert len(lines) == expected + 1
    votable = find(browser, "#download-votable").get_attribute("href")
    assert "/scs/psf_sources?" in votable and "VERB=3" in votable


def test_query_page_lists_examples_and_the_users_jobs(browser: Browser,
                                                       web_data: WebData) -> None:
    browser.get("/query")
    examples = find_all(browser, "article.example")
    assert len(examples) >= 3
    examples[1].find_element(By.CSS_SELECTOR, "button.use-example").click()
    assert "psf_sources" in find(browser, "#adql").get_attribute("value")
    assert find_all(browser, "#jobs-title") == []
    assert browser.screenshot("query") == []

    sign_in(browser)
    browser.get("/query")
    text = find(browser, "#adql")
    text.clear()
    text.send_keys(f"SELECT TOP 3 pid, field FROM survey.science_images WHERE field = {FIELD}")
    find(browser, "#run-async").click()
    wait(browser).until(ready.presence_of_element_located((By.CSS_SELECTOR, "#jobs tbody tr")))
    assert f"field = {FIELD}" in find(browser, "#jobs tbody tr").text
    sign_out(browser)


def test_pages_of_hidden_images_are_those_of_missing_ones(browser: Browser,
                                                          web_data: WebData) -> None:
    browser.get(f"/images/sci/{min(web_data.hidden['sci'])}")
    hidden_page = find(browser, "main").text
    assert find(browser, "h1").text == "Not found"
    browser.get("/images/sci/1999999999")
    assert find(browser, "main").text == hidden_page
    browser.get(f"/images/sci/{min(web_data.member['sci'])}")
    assert find(browser, "main").text == hidden_page


def test_tables_page_documents_the_schema(browser: Browser, web_data: WebData) -> None:
    browser.get("/tables")
    assert find(browser, "h3[id='survey.science_images']").text == "survey.science_images"
    assert browser.screenshot("tables") == []
