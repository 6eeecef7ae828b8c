"""``/most`` over real HTTP: formats (VOTable read by astropy and pyvo, CSV, HTML with
thumbnails and a sky plot, DS9 regions), the three ways to give an object, the embargo, and
errors as messages in the format asked for. The images are seeded around 2P/Encke's path
(tests/sso/most_seed.py); ``skyvault sso load`` is run as a command."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.io.votable.exceptions import VOWarning
from most_seed import IMAGES, OBJECT, SIZE, Seeded, encke
from release_calendar import NEVER_RELEASED

from skyvault.cli import run
from skyvault.db import Database

DEMO_FILE = Path(__file__).parents[2] / "sso" / "data" / "demo_orbits.txt"
WINDOW = {"obs_begin": "2026-12-04", "obs_end": "2026-12-09"}


def _get(live_server: str, params: dict, token: str | None = None, path: str = "/most"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(live_server + path, params=params, headers=headers, timeout=120)


def _votable(response: requests.Response):
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    return parse(io.BytesIO(response.content))


def _pids(table) -> set[int]:
    return {int(p) for p in table.array["pid"]}


def test_votable_holds_exactly_the_images_the_object_is_in(live_server: str,
                                                           seeded: Seeded) -> None:
    """Anonymous: the two public images that hold the prediction; not the one whose circle
    around the centre holds it but whose square does not, not the one a degree away, not the
    one where the object was three days before, not the embargoed one."""
    document = _votable(_get(live_server, {"object": OBJECT}))
    table = document.get_first_table()
    assert _pids(table) == seeded.expected(member=False)
    by_pid = {int(row["pid"]): row for row in table.array}
    for name, pid in seeded.pids.items():
        if pid not in by_pid:
            continue
        row = by_pid[pid]
        ra, dec = seeded.predictions[name]
        assert abs(row["ra"] - ra) * 3600 < 1e-3 and abs(row["dec"] - dec) * 3600 < 1e-3
        assert row["mjd_mid"] == pytest.approx(seeded.mid_mjd[name], abs=1e-9)
        expected_x, expected_y = IMAGES[name].pixel
        assert abs(row["x"] - expected_x) < 1e-3 and abs(row["y"] - expected_y) < 1e-3
        assert row["image_id"] == f"ivo://skyvault.archive/sci?{pid}"
        assert row["access_url"].endswith(f"mosttest/sci/{name}_sciimg.fits")
        assert row["delta"] > 0 and row["r"] > 0 and 0 <= row["phase"] <= 180
        assert np.isfinite(row["vmag"]) and abs(row["ra_rate"]) > 0
    infos = {info.name: info.value for info in document.resources[0].infos}
    assert infos["QUERY_STATUS"] == "OK" and infos["object"] == "2P/Encke"


def test_a_member_sees_the_embargoed_match(live_server: str, seeded: Seeded) -> None:
    table = _votable(_get(live_server, {"object": OBJECT}, seeded.member_token)).get_first_table()
    assert _pids(table) == seeded.expected(member=True)
    assert seeded.pids["embargoed"] in _pids(table)
    # Filters narrow the search: its program alone is the embargoed image.
    only = _votable(_get(live_server, {"object": OBJECT, "programid": str(NEVER_RELEASED)},
                         seeded.member_token)).get_first_table()
    assert _pids(only) == {seeded.pids["embargoed"]}
    none = _votable(_get(live_server, {"object": OBJECT, "filter": "g"}, seeded.member_token))
    assert len(none.get_first_table().array) == 0


def test_pyvo_reads_the_result(live_server: str, seeded: Seeded) -> None:
    from pyvo.dal.query import DALQuery

    results = DALQuery(live_server + "/most", object=OBJECT, **WINDOW).execute()
    assert {int(p) for p in results.to_table()["pid"]} == seeded.expected(member=False)


def test_the_object_as_an_orbit_line_or_as_elements(live_server: str, seeded: Seeded) -> None:
    line = next(text for text in DEMO_FILE.read_text().splitlines() if text.startswith("0002P"))
    by_line = _votable(_get(live_server, {"orbit": line, **WINDOW})).get_first_table()
    assert _pids(by_line) == seeded.expected(member=False)
    orbit = encke()
    elements = {"epoch": repr(orbit.epoch_mjd_tdb), "e": repr(orbit.e),
                "incl": repr(orbit.incl_deg), "node": repr(orbit.node_deg),
                "peri": repr(orbit.peri_deg), "q": repr(orbit.q_au),
                "tp": repr(orbit.tp_mjd_tdb)}
    by_elements = _votable(_get(live_server, {**elements, **WINDOW})).get_first_table()
    assert _pids(by_elements) == seeded.expected(member=False)


def test_csv_and_the_ephemeris_table(live_server: str, seeded: Seeded) -> None:
    response = _get(live_server, {"object": OBJECT, "format": "csv"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {int(r["pid"]) for r in rows} == seeded.expected(member=False)
    ephemeris = _get(live_server, {"object": OBJECT, "mode": "ephemeris", "format": "csv",
                                   "obs_begin": "2026-12-05T00:00", "obs_end": "2026-12-05T12:00",
                                   "step": "1h"})
    assert ephemeris.status_code == 200, ephemeris.text
    lines = list(csv.DictReader(io.StringIO(ephemeris.text)))
    assert len(lines) == 13
    assert float(lines[4]["mjd"]) == pytest.approx(61379.0 + 4 / 24, abs=1e-9)
    both = _votable(_get(live_server, {"object": OBJECT, "mode": "both", "step": "6h",
                                       **WINDOW}))
    tables = list(both.iter_tables())
    assert [t.name for t in tables] == ["matches", "ephemeris"]
    # From 12-04 00:00 to the end of 12-09 (a date alone as the end means that whole day).
    assert len(tables[1].array) == 25


def test_html_page_with_plot_and_thumbnails(live_server: str, seeded: Seeded) -> None:
    response = _get(live_server, {"object": OBJECT, "format": "html"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<svg" in page and "<polyline" in page and "<form" in page
    assert "2 matched images" in page
    # The page is in the site's frame, whose header has an image of its own (the logo).
    thumbnails = re.findall(r'<img src="([^"]+/most/thumbnail/[^"]+)"', page)
    assert '<nav aria-label="Main">' in page
    assert len(thumbnails) == 2
    image = requests.get(thumbnails[0].replace("&amp;", "&"), timeout=30)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    # A thumbnail of the embargoed image is as unknown as the image, until a member asks.
    ra, dec = seeded.predictions["embargoed"]
    path = f"/most/thumbnail/{seeded.pids['embargoed']}.png"
    hidden = _get(live_server, {"ra": ra, "dec": dec}, path=path)
    assert hidden.status_code == 404
    shown = _get(live_server, {"ra": ra, "dec": dec}, seeded.member_token, path=path)
    assert shown.status_code == 200 and shown.content.startswith(b"\x89PNG")
    assert _get(live_server, {}, path="/most/form").status_code == 200


def test_the_home_page_links_to_an_example_search_that_runs(live_server: str,
                                                             seeded: Seeded) -> None:
    """Issue 8's demo clause: the home page links to a moving-object search of an object
    with an orbit in the archive (the brightest), and the link gives the results page."""
    home = requests.get(f"{live_server}/", timeout=30)
    link = re.search(r'id="example-most">Example: <a\s+href="([^"]+)"', home.text)
    assert link, home.text[:2000]
    url = link.group(1).replace("&amp;", "&")
    assert url.startswith("/most?object=") and url.endswith("&format=html")
    page = requests.get(f"{live_server}{url}", timeout=120)
    assert page.status_code == 200 and "matched image" in page.text, page.text[:1000]


def test_cutout_and_datalink_urls_work(live_server: str, seeded: Seeded) -> None:
    table = _votable(_get(live_server, {"object": OBJECT, **WINDOW})).get_first_table()
    row = next(r for r in table.array if int(r["pid"]) == seeded.pids["inside_a"])
    cutout = requests.get(row["cutout_url"], timeout=30)
    assert cutout.status_code == 200, cutout.text
    with fits.open(io.BytesIO(cutout.content)) as hdus:
        data = hdus[0].data
        # The object's blob is the brightest pixel, inside the cutout, not cut off.
        assert data.shape[0] < SIZE and data.max() > 1000
    links = requests.get(row["datalink_url"], timeout=30)
    assert links.status_code == 200 and b"#this" in links.content


def test_ds9_region_file(live_server: str, seeded: Seeded) -> None:
    response = _get(live_server, {"object": OBJECT, "format": "ds9", **WINDOW})
    assert response.status_code == 200
    text = response.text
    assert text.startswith("# Region file format: DS9 version 4.1") and "\nfk5\n" in text
    assert text.count("circle(") == 2 and text.count("polygon(") == 2
    assert text.count("line(") > 10


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"object": "no such rock"}, 404, "unknown object 'no such rock'"),
    ({"orbit": "0002P         2027 02 1X.2288  0.338638  0.847306  187.2858  334.0194   "
               "11.3479  20260727  11.5  6.0  2P/Encke"}, 400, "columns 23-29 (perihelion day)"),
    ({"object": OBJECT, "mode": "ephemeris", "obs_begin": "1400-01-01",
      "obs_end": "1400-02-01"}, 400, "outside the ephemeris coverage"),
    ({"object": OBJECT, "obs_begin": "1959-12-01", "obs_end": "1960-02-01"}, 400,
     "obs_begin 1959-12-01 is outside the ephemeris coverage"),
    ({"object": OBJECT, "mode": "ephemeris", "obs_begin": "2700-01-01",
      "obs_end": "2700-01-02"}, 400, "obs_begin 2700-01-01 is outside"),
    ({"object": OBJECT, "obs_begin": "yesterday"}, 400, "obs_begin"),
    ({"object": OBJECT, "step": "fortnightly", "mode": "ephemeris"}, 400, "step"),
    ({"object": OBJECT, "orbit": "x"}, 400, "not object and orbit"),
    ({"e": "0.5", "incl": "3"}, 400, "epoch, node, peri missing"),
    ({"epoch": "60000", "e": "1.5", "incl": "3", "node": "1", "peri": "2", "a": "2",
      "m": "10"}, 400, "eccentricity 1.5"),
    ({}, 400, "give an object"),
])
@pytest.mark.parametrize("output", ["votable", "csv", "html", "ds9"])
def test_errors_are_messages_in_the_format_asked(live_server: str, seeded: Seeded, params: dict,
                                                 status: int, words: str, output: str) -> None:
    response = _get(live_server, {**params, "format": output})
    if output == "html" and not params:
        # Nothing asked yet: the page is the empty form, not an error.
        assert response.status_code == 200 and "<form" in response.text
        return
    assert response.status_code == status, response.text
    body = response.text
    assert "Traceback" not in body
    assert words.replace("'", "&#39;" if output == "html" else "'") in body, body
    if output == "votable":
        document = parse(io.BytesIO(response.content))
        infos = {info.name: info.value for info in document.resources[0].infos}
        assert infos["QUERY_STATUS"] == "ERROR"
    if output == "html":
        assert "<form" in body


def test_unknown_format_is_an_error(live_server: str, seeded: Seeded) -> None:
    response = _get(live_server, {"object": OBJECT, "format": "xlsx"})
    assert response.status_code == 400 and "format" in response.text


def test_cli_search_prints_the_public_matches(seeded: Seeded) -> None:
    found = run(["sso", "search", OBJECT, "--begin", "2026-12-04", "--end", "2026-12-09"])
    assert found.returncode == 0, found.stderr
    rows = list(csv.DictReader(io.StringIO(found.stdout)))
    assert {int(r["pid"]) for r in rows} == seeded.expected(member=False)
    assert "2 images hold 2P/Encke" in found.stderr
    unknown = run(["sso", "search", "no such rock"])
    assert unknown.returncode != 0 and "unknown object" in unknown.stderr


def test_cli_loads_orbit_files(tmp_path: Path, database: Database) -> None:
    demo = run(["sso", "load", "--demo"])
    assert demo.returncode == 0, demo.stderr
    assert "loaded 8 orbits" in demo.stdout
    lines = DEMO_FILE.read_text().splitlines()
    data = [line for line in lines if line.strip() and not line.startswith("#")]
    bad = data[3][:20] + "K26XX" + data[3][25:]
    orbit_file = tmp_path / "MPCORB.DAT"
    preamble = "MINOR PLANET CENTER ORBIT DATABASE (MPCORB)\n\nDes'n     H     G   Epoch\n"
    orbit_file.write_text(preamble + "-" * 160 + "\n" + "\n".join([data[0], bad, data[6]])
                          + "\n")
    failed = run(["sso", "load", str(orbit_file)])
    assert failed.returncode != 0
    assert "line 6: columns 21-25 (epoch): 'K26XX' is not a packed date" in failed.stderr
    assert "nothing was loaded" in failed.stderr
    skipped = run(["sso", "load", "--skip-invalid", str(orbit_file)])
    assert skipped.returncode == 0, skipped.stderr
    assert "loaded 2 orbits" in skipped.stdout and "skipped 1 invalid" in skipped.stderr
    with database.admin() as connection:
        rows = connection.execute(
            "SELECT designation, name, orbit_type FROM survey.solar_system_objects"
            " WHERE designation IN ('1', '2P') ORDER BY designation").fetchall()
    assert rows == [("1", "Ceres", "asteroid"), ("2P", "Encke", "comet")]
    neither = run(["sso", "load"])
    assert neither.returncode != 0 and "either an orbit file or --demo" in neither.stderr


def _votlint(content: bytes, tmp_path: Path) -> list[str]:
    target = tmp_path / "most.vot"
    target.write_bytes(content)
    report = subprocess.run(["stilts", "votlint", f"votable={target}"], capture_output=True,
                            text=True, timeout=300)
    return [line for line in (report.stdout + report.stderr).splitlines() if line.strip()]


def _astropy_warnings(content: bytes) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse(io.BytesIO(content), verify="warn")
    return [str(w.message) for w in caught if issubclass(w.category, VOWarning)]


@pytest.mark.parametrize("mode", ["images", "both"])
def test_votables_pass_the_validators(live_server: str, seeded: Seeded, mode: str,
                                      tmp_path: Path) -> None:
    """STILTS votlint and astropy's verifier find nothing to complain about, including in the
    two-table document (FIELD IDs stay unique)."""
    response = _get(live_server, {"object": OBJECT, "mode": mode, "step": "1d", **WINDOW})
    assert response.status_code == 200
    assert _votlint(response.content, tmp_path) == []
    assert _astropy_warnings(response.content) == []
    error = _get(live_server, {"object": "no such rock"})
    assert _votlint(error.content, tmp_path) == []


def test_the_bare_service_url_is_the_form(live_server: str) -> None:
    """What the site's menu links to: /most with no parameter at all."""
    response = requests.get(live_server + "/most", timeout=30)
    assert response.status_code == 200 and "<form" in response.text
    assert response.headers["Content-Type"].startswith("text/html")
