"""Coverage MOCs and quality-assurance pages over real HTTP, checked independently.

A MOC is checked against the footprints in ObsCore by brute force: points drawn inside every
visible science image's ``s_region`` (a spherical polygon test, not mocpy's) must all be in
the MOC, and points drawn around them must be in it only when they lie within one HEALPix
cell of some footprint. The documents must load in mocpy (the IVOA MOC 2.0 reader) in every
format, and give each requester the coverage of the rows they may see.
"""

from __future__ import annotations

import datetime as dt
import io
import math

import astropy.units as u
import numpy as np
import pytest
import requests
from astropy.io import fits
from mocpy import MOC, STMOC, TimeMOC
from web_support import FIELD, PASSWORD, USERNAME, WebData

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.vo import moc as mocs
from skyvault.vo.cutout import contains
from skyvault.vo.shapes import Polygon
from skyvault.vo.votable import pgsphere_degrees

MEMBER = Requester(user_id=-1, programs=frozenset({2}))
AUTH = (USERNAME, PASSWORD)


def footprints(database: Database, requester: Requester, where: str = "true",
               values: tuple = ()) -> list[list[tuple[float, float]]]:
    with database.reading(requester) as connection:
        rows = connection.execute(
            "SELECT s_region::text FROM ivoa.obscore WHERE obs_collection = 'SkyVault/sci'"
            f" AND {where}", values).fetchall()
    found = []
    for (region,) in rows:
        values_ = pgsphere_degrees(region)
        found.append(list(zip(values_[0::2], values_[1::2], strict=True)))
    return found


def sample_inside(polygon, rng, count=200) -> tuple[np.ndarray, np.ndarray]:
    ras = np.array([v[0] for v in polygon])
    decs = np.array([v[1] for v in polygon])
    ra = rng.uniform(ras.min(), ras.max(), count * 4)
    dec = rng.uniform(decs.min(), decs.max(), count * 4)
    keep = contains(Polygon(tuple(polygon)), ra, dec)
    return ra[keep][:count], dec[keep][:count]


def grown(polygon, margin_deg: float) -> Polygon:
    """The polygon pushed outwards from its centre by ``margin_deg`` (small polygons)."""
    ra0 = np.mean([v[0] for v in polygon])
    dec0 = np.mean([v[1] for v in polygon])
    cos = math.cos(math.radians(dec0))
    out = []
    for ra, dec in polygon:
        dx, dy = (ra - ra0) * cos, dec - dec0
        length = math.hypot(dx, dy)
        scale = (length + margin_deg * math.sqrt(2)) / length
        out.append((ra0 + dx * scale / cos, dec0 + dy * scale))
    return Polygon(tuple(out))


def check_moc_against_footprints(moc: MOC, polygons, order: int) -> None:
    rng = np.random.default_rng(7)
    assert polygons
    for polygon in polygons:
        ra, dec = sample_inside(polygon, rng)
        assert len(ra) > 50
        assert moc.contains_lonlat(ra * u.deg, dec * u.deg).all()
    # Around the footprints: in the MOC only within a cell of one of them.
    cell = mocs.MOC.order_to_spatial_resolution(order).to_value("deg") * 1.5
    ras = np.concatenate([[v[0] for v in p] for p in polygons])
    decs = np.concatenate([[v[1] for v in p] for p in polygons])
    ra = rng.uniform(ras.min() - 0.05, ras.max() + 0.05, 20000)
    dec = rng.uniform(decs.min() - 0.05, decs.max() + 0.05, 20000)
    in_moc = moc.contains_lonlat(ra * u.deg, dec * u.deg)
    near = np.zeros(len(ra), dtype=bool)
    for polygon in polygons:
        near |= contains(grown(polygon, cell), ra, dec)
    assert in_moc.sum() > 0
    assert not (in_moc & ~near).any(), "the MOC covers sky farther than a cell from every image"


def get(site: str, path: str, auth=None, **params) -> requests.Response:
    return requests.get(site + path, params=params, auth=auth, timeout=120)


def load(response: requests.Response, kind: str = "fits") -> MOC:
    assert response.status_code == 200, response.text[:300]
    if kind == "fits":
        with fits.open(io.BytesIO(response.content)) as hdus:
            header = hdus[1].header
            assert header["MOCVERS"] == "2.0" and header["MOCDIM"] == "SPACE"
            assert header["COORDSYS"] == "C"
        return MOC.from_fits(io.BytesIO(response.content))
    if kind == "json":
        return MOC.from_json(response.json())
    return MOC.from_str(response.text.strip())


def test_the_moc_holds_every_visible_footprint_and_nothing_far_from_them(
        site: str, web_data: WebData, database: Database) -> None:
    anonymous = load(get(site, "/moc", filter="zg"))
    check_moc_against_footprints(anonymous, footprints(database, ANONYMOUS, "filtercode = 'zg'"),
                                 mocs.DEFAULT_ORDER)
    member = load(get(site, "/moc", auth=AUTH, filter="zr"))
    check_moc_against_footprints(member, footprints(database, MEMBER, "filtercode = 'zr'"),
                                 mocs.DEFAULT_ORDER)
    coarse = load(get(site, "/moc", auth=AUTH, filter="zr", order="10"))
    assert coarse.max_order == 10
    check_moc_against_footprints(coarse, footprints(database, MEMBER, "filtercode = 'zr'"), 10)


def test_the_formats_are_one_moc(site: str, web_data: WebData) -> None:
    fits_moc = load(get(site, "/moc", auth=AUTH, filter="zr"))
    assert load(get(site, "/moc", auth=AUTH, filter="zr", format="json"), "json") == fits_moc
    assert load(get(site, "/moc", auth=AUTH, filter="zr", format="ascii"), "ascii") == fits_moc


def test_each_requester_gets_the_coverage_of_what_they_may_see(
        site: str, web_data: WebData, database: Database) -> None:
    """The proprietary night (zr) of field 601 is in a member's MOC, not in the public's."""
    member_only = footprints(database, MEMBER, "filtercode = 'zr' AND field = %s", (FIELD,))
    assert member_only
    centre_ra = np.array([np.mean([v[0] for v in p]) for p in member_only])
    centre_dec = np.array([np.mean([v[1] for v in p]) for p in member_only])
    public = load(get(site, "/moc", filter="zr"))
    member = load(get(site, "/moc", auth=AUTH, filter="zr"))
    assert not public.contains_lonlat(centre_ra * u.deg, centre_dec * u.deg).any()
    assert member.contains_lonlat(centre_ra * u.deg, centre_dec * u.deg).all()


def test_night_and_release_selections(site: str, web_data: WebData, database: Database) -> None:
    night = load(get(site, "/moc", night="2024-10-08"))
    nid = (dt.date(2024, 10, 8) - dt.date(2017, 1, 1)).days
    check_moc_against_footprints(night, footprints(
        database, ANONYMOUS, "image_id IN (SELECT pid FROM survey.science_images WHERE nid = %s)",
        (nid,)), mocs.DEFAULT_ORDER)
    nothing = load(get(site, "/moc", night="2019-01-01"))
    assert nothing.empty()
    assert get(site, "/moc", release="NoSuchRelease").status_code == 404
    for bad in ({"order": "99"}, {"filter": "zz"}, {"night": "2024-13-40"}, {"shape": "x"},
                {"format": "png"}):
        response = get(site, "/moc", **bad)
        assert response.status_code == 400, bad
        assert response.headers["Content-Type"].startswith("text/plain")


def public_at_rules(database: Database, at: dt.datetime) -> set[int]:
    """The science images public at ``at`` by the release rules, worked out here from the
    programs and releases (not by the archive's SQL): per program, observations are public
    before the latest cutoff of the releases public by then that list it, before ``at`` minus
    its proprietary period, or all once its named release is public."""
    def jd(moment: dt.datetime) -> float:
        return moment.timestamp() / 86400.0 + 2440587.5

    with database.admin() as connection:
        programs = connection.execute(
            "SELECT programid, proprietary_days, release_name FROM survey.programs").fetchall()
        releases = connection.execute(
            "SELECT release_name, release_date, observation_cutoff, programids"
            " FROM survey.data_releases").fetchall()
        images = connection.execute(
            "SELECT pid, programid, obsjd FROM survey.science_images WHERE is_current = 1"
        ).fetchall()
    horizon = {}
    for programid, days, named in programs:
        limit = jd(at) - days if days is not None else -math.inf
        for name, date, cutoff, listed in releases:
            if date > at:
                continue
            if name == named:
                limit = math.inf
            elif programid in listed:
                limit = max(limit, jd(cutoff))
        horizon[programid] = limit
    return {pid for pid, programid, obsjd in images if obsjd < horizon.get(programid, -math.inf)}


def test_a_release_moc_covers_what_the_release_holds_as_the_requester_may_see_it(
        site: str, web_data: WebData, database: Database) -> None:
    """release=NAME: the images public at the release's date by the release rules (what its
    export holds), through row-level security: before the date, the public's release MOC
    holds only what is public already; a member's adds their programs' images."""
    from release_calendar import SESSION_RELEASE

    member_night = footprints(database, MEMBER, "filtercode = 'zr' AND field = %s", (FIELD,))
    night_ra = np.array([np.mean([v[0] for v in p]) for p in member_night])
    night_dec = np.array([np.mean([v[1] for v in p]) for p in member_night])
    with database.admin() as connection:
        (date,) = connection.execute("SELECT release_date FROM survey.data_releases"
                                     " WHERE release_name = %s", (SESSION_RELEASE,)).fetchone()
    held = sorted(public_at_rules(database, date))
    session = load(get(site, "/moc", auth=AUTH, release=SESSION_RELEASE))
    check_moc_against_footprints(session, footprints(
        database, MEMBER, "image_id = ANY(%s)", (held,)), mocs.DEFAULT_ORDER)
    # The member's proprietary zr night (2026-11-12) was observed after the session release.
    session_zr = load(get(site, "/moc", auth=AUTH, release=SESSION_RELEASE, filter="zr"))
    assert not session_zr.contains_lonlat(night_ra * u.deg, night_dec * u.deg).any()

    future = "WEBDR-FUTURE"
    with database.admin() as connection:
        (date,) = connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids) VALUES (%s, now() + interval '10 days', now(), '{2}')"
            " RETURNING release_date", (future,)).fetchone()
    try:
        held = sorted(public_at_rules(database, date))
        for requester, auth in ((ANONYMOUS, None), (MEMBER, AUTH)):
            moc = load(get(site, "/moc", auth=auth, release=future, filter="zr"))
            expected = footprints(database, requester,
                                  "filtercode = 'zr' AND image_id = ANY(%s)", (held,))
            if expected:
                check_moc_against_footprints(moc, expected, mocs.DEFAULT_ORDER)
            else:
                assert moc.empty()
            inside = moc.contains_lonlat(night_ra * u.deg, night_dec * u.deg)
            assert inside.all() if requester is MEMBER else not inside.any()
    finally:
        with database.admin() as connection:
            connection.execute("DELETE FROM survey.data_releases WHERE release_name = %s",
                               (future,))


def test_the_tap_capabilities_lead_to_the_moc(site: str, web_data: WebData) -> None:
    """VOSI capabilities (VOResource 1.1 3.2): the coverage capability's access URL answers
    the MOC, filter and all."""
    from lxml import etree

    capabilities = etree.fromstring(get(site, "/tap/capabilities").content)
    (capability,) = [c for c in capabilities.findall("capability")
                     if c.get("standardID") == mocs.MOC_STANDARD_ID]
    url = capability.findtext("interface/accessURL")
    assert url.startswith("http") and url.endswith("/moc")
    advertised = load(requests.get(url, params={"filter": "zg"}, timeout=120))
    assert advertised == load(get(site, "/moc", filter="zg"))
    assert not advertised.empty()


def test_the_space_time_moc_places_each_exposure_in_its_night(
        site: str, web_data: WebData, database: Database) -> None:
    from astropy.time import Time

    response = get(site, "/stmoc", auth=AUTH, filter="zr")
    assert response.status_code == 200
    stmoc = STMOC.from_fits(io.BytesIO(response.content))
    with database.reading(MEMBER) as connection:
        t_min, t_max = connection.execute(
            "SELECT min(t_min), max(t_max) FROM ivoa.obscore WHERE obs_collection ="
            " 'SkyVault/sci' AND filtercode = 'zr' AND field = %s", (FIELD,)).fetchone()
    def spans(start: float, end: float) -> TimeMOC:
        return TimeMOC.from_time_ranges(Time([start], format="mjd"), Time([end], format="mjd"))

    during = stmoc.query_by_time(spans(t_min - 1e-4, t_max + 1e-4))
    member_only = footprints(database, MEMBER, "filtercode = 'zr' AND field = %s", (FIELD,))
    ra = np.array([np.mean([v[0] for v in p]) for p in member_only])
    dec = np.array([np.mean([v[1] for v in p]) for p in member_only])
    assert during.contains_lonlat(ra * u.deg, dec * u.deg).all()
    before = stmoc.query_by_time(spans(t_min - 30, t_min - 29))
    assert not before.contains_lonlat(ra * u.deg, dec * u.deg).any()


@pytest.mark.parametrize("filtercode", ["zg", "zr"])
def test_home_maps_are_drawn_from_the_moc(site: str, web_data: WebData,
                                          filtercode: str) -> None:
    from lxml import etree

    public = get(site, f"/coverage/{filtercode}.svg")
    member = get(site, f"/coverage/{filtercode}.svg", auth=AUTH)
    cells = {name: etree.fromstring(r.content).findall(
        ".//{http://www.w3.org/2000/svg}g[@class='cells']/{http://www.w3.org/2000/svg}path")
        for name, r in (("public", public), ("member", member))}
    moc = load(get(site, "/moc", auth=AUTH, filter=filtercode))
    assert len(cells["member"]) == len(moc.degrade_to_order(7).flatten())
    if filtercode == "zg":
        assert cells["public"] and len(cells["public"]) == len(cells["member"])
    else:
        assert len(cells["member"]) > len(cells["public"])


def test_qa_pages_show_each_night_as_the_requester_may_see_it(
        site: str, web_data: WebData, database: Database) -> None:
    from lxml import html

    survey = get(site, "/qa")
    assert survey.status_code == 200
    nights = html.fromstring(survey.content).xpath("//table[@id='nights']/tbody/tr/@data-night")
    with database.reading(ANONYMOUS) as connection:
        expected = [row[0].isoformat() for row in connection.execute(
            "SELECT DISTINCT date '2017-01-01' + nid FROM survey.science_images ORDER BY 1")]
    assert nights == expected and "2024-10-08" in nights and "2026-11-12" not in nights
    member_nights = html.fromstring(get(site, "/qa", auth=AUTH).content).xpath(
        "//table[@id='nights']/tbody/tr/@data-night")
    assert "2026-11-12" in member_nights

    nid = (dt.date(2024, 10, 8) - dt.date(2017, 1, 1)).days
    page = get(site, "/qa/nights/2024-10-08")
    assert page.status_code == 200
    tree = html.fromstring(page.content)
    with database.reading(ANONYMOUS) as connection:
        exposures, images, seeing = connection.execute(
            "SELECT (SELECT count(*) FROM survey.exposures WHERE nid = %s AND itid = 1),"
            " count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY seeing)"
            " FROM survey.science_images WHERE nid = %s AND filtercode = 'zg'",
            (nid, nid)).fetchone()
    assert int(tree.get_element_by_id("exposure-total").text) == exposures
    row = tree.xpath("//table[@id='quality']/tbody/tr[@data-filter='zg']")[0]
    assert int(row.xpath("td[contains(@class,'images')]")[0].text) == images
    assert float(row.xpath("td[contains(@class,'seeing')]")[0].text) == pytest.approx(
        seeing, abs=0.005)
    hidden = get(site, "/qa/nights/2026-11-12")
    absent = get(site, "/qa/nights/2026-11-13")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.content.replace(b"2026-11-12", b"X") == absent.content.replace(
        b"2026-11-13", b"X")
    assert get(site, "/qa/nights/2026-11-12", auth=AUTH).status_code == 200
    assert get(site, "/qa/nights/not-a-date").status_code == 404
