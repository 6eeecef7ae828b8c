"""The light-curve API (/lightcurves/query, IRSA's /cgi-bin/ZTF/nph_light_curves) over real
HTTP on the light-curve survey, against a numpy brute force over the detections
(survey.psf_sources, not the light-curve table the service reads) and the images' corners:
objects by ID and by cone, BANDNAME, NOBS_MIN, MAG, TIME, BAD_CATFLAGS_MASK, the upper limits,
a data release's collection, every FORMAT, and the errors.

The survey's archive is served by an application of its own (its database in place of the
session's while the module runs), as a member of every program, as the public, and as the
public asking for a release declared for the test.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import requests
from astropy.io import ascii as astropy_ascii
from astropy.io import votable
from hypothesis import given, settings
from hypothesis import strategies as st
from survey_service import JD_MJD, MEMBER, MEMBER_PASSWORD, RELEASE, Served

from skyvault.geometry import inside_convex_polygon, separation
from skyvault.schema.objects_sql import GOOD_FLAGS_MASK
from skyvault.vo.dali import Parameters


def _get(served: Served, params: dict, *, member: bool = True,
         path: str = "/lightcurves/query") -> requests.Response:
    headers = {"Authorization": f"Bearer {served.member_token}"} if member else {}
    return requests.get(served.base + path, params=params, headers=headers, timeout=120)


def _table(served: Served, params: dict, **options) -> pd.DataFrame:
    answer = _get(served, {**params, "FORMAT": "CSV"}, **options)
    assert answer.status_code == 200, answer.text
    return pd.read_csv(io.StringIO(answer.text))


def _expected(served: Served, oids, *, mjd=(-np.inf, np.inf), mask: int | None = None,
              before_jd: float = np.inf) -> set[tuple[int, int]]:
    p = served.points
    keep = p["oid"].isin(list(oids)) & (p["obsjd"] < before_jd)
    keep &= (p["obsjd"] >= mjd[0] + JD_MJD) & (p["obsjd"] <= mjd[1] + JD_MJD)
    if mask is not None:
        keep &= (p["flags"] & mask) == 0
    return set(zip(p["oid"][keep], p["expid"][keep], strict=True))


def _in_cone(served: Served, ra: float, dec: float, radius: float,
             bands: tuple[str, ...] = ()) -> set[int]:
    o = served.objects
    near = separation(o["ra"].to_numpy(), o["dec"].to_numpy(), ra, dec) <= radius
    if bands:
        near &= o["filtercode"].isin(bands).to_numpy()
    return set(o["oid"][near])


def _statistics(served: Served, oids, before_jd: float = np.inf) -> dict[int, tuple[int, float]]:
    """nobs and the median magnitude of the unflagged epochs, per object."""
    p = served.points[served.points["obsjd"] < before_jd]
    out = {}
    for oid, group in p[p["oid"].isin(list(oids))].groupby("oid"):
        good = ((group["flags"] & GOOD_FLAGS_MASK) == 0) & np.isfinite(group["mag"]) \
            & (group["magerr"] > 0)
        out[int(oid)] = (len(group), float(np.median(group["mag"][good])) if good.any()
                         else np.nan)
    return out


def _centre(served: Served) -> tuple[float, float]:
    o = served.objects
    return float(np.median(o["ra"])), float(np.median(o["dec"]))


def _detections(table: pd.DataFrame) -> set[tuple[int, int]]:
    rows = table[~table["upperlimit"].astype(bool)]
    return set(zip(rows["oid"], rows["expid"], strict=True))


def test_cone_with_object_and_point_constraints(served: Served) -> None:
    """POS=CIRCLE with BANDNAME, NOBS_MIN and MAG (on all the object's epochs), then TIME and
    BAD_CATFLAGS_MASK on the points: exactly the brute force's objects and points, with their
    magnitudes."""
    ra, dec = _centre(served)
    radius = 0.03
    mjd = served.points["obsjd"].quantile([0.2, 0.8]).to_numpy() - JD_MJD
    statistics = _statistics(served, _in_cone(served, ra, dec, radius, ("zr",)))
    objects = {oid for oid, (nobs, median) in statistics.items()
               if nobs >= 20 and 15.0 <= median <= 19.5}
    assert len(objects) >= 10 and len(objects) < len(statistics)
    table = _table(served, {"POS": f"CIRCLE {ra} {dec} {radius}", "BANDNAME": "r",
                            "NOBS_MIN": "20", "MAG": "15 19.5", "TIME": f"{mjd[0]} {mjd[1]}",
                            "BAD_CATFLAGS_MASK": "23", "UPPERLIMITS": "false"})
    expected = _expected(served, objects, mjd=tuple(mjd), mask=23)
    assert len(expected) > 100
    assert _detections(table) == expected
    p = served.points.set_index(["oid", "expid"])
    mags = p.loc[list(zip(table["oid"], table["expid"], strict=True)), "mag"].to_numpy()
    assert np.allclose(table["mag"].to_numpy(), mags, atol=1e-6)
    assert (table["catflags"] & 23 == 0).all()
    hours = (table["hjd"] - (table["mjd"] + JD_MJD)) * 24
    assert (hours.abs() < 8.4 / 60).all() and (hours.abs() > 0).any()


def test_identifiers_repeated_or_comma_separated(served: Served) -> None:
    """ID=a,b&ID=c: every point of the three objects (and of nothing else); an unknown
    identifier adds nothing."""
    oids = [int(o) for o in served.objects["oid"][:3]]
    params = [("ID", f"{oids[0]},{oids[1]}"), ("ID", str(oids[2])), ("ID", "123"),
              ("FORMAT", "CSV"), ("UPPERLIMITS", "false")]
    answer = requests.get(served.base + "/cgi-bin/ZTF/nph_light_curves", params=params,
                          headers={"Authorization": f"Bearer {served.member_token}"},
                          timeout=60)
    assert answer.status_code == 200, answer.text
    table = pd.read_csv(io.StringIO(answer.text))
    assert _detections(table) == _expected(served, oids)


def test_upper_limits_are_the_images_without_a_detection(served: Served) -> None:
    """Upper limits of the objects of a cone: the current images of their filter whose corners
    hold the object's position (numpy, spherical polygon) and hold none of its detections,
    with the image's limiting magnitude; marked upperlimit, no magnitude."""
    ra, dec = _centre(served)
    table = _table(served, {"CIRCLE": f"{ra} {dec} 0.05"})
    oids = set(table["oid"])
    images = served.images
    corners_ra = images[["ra1", "ra2", "ra3", "ra4"]].to_numpy()
    corners_dec = images[["dec1", "dec2", "dec3", "dec4"]].to_numpy()
    expected = set()
    objects = served.objects.set_index("oid")
    for oid in oids:
        position = objects.loc[oid]
        inside = inside_convex_polygon(position["ra"], position["dec"], corners_ra, corners_dec)
        detected = set(served.points["pid"][served.points["oid"] == oid])
        for pid in images["pid"][inside & (images["fid"] == position["fid"]).to_numpy()]:
            if pid not in detected:
                expected.add((oid, int(pid)))
    limits = table[table["upperlimit"].astype(bool)]
    assert len(expected) > 0
    assert set(zip(limits["oid"], limits["pid"], strict=True)) == expected
    assert limits["mag"].isna().all() and limits["ra"].isna().all()
    maglimit = images.set_index("pid")["maglimit"]
    assert np.allclose(limits["limitmag"], maglimit.loc[limits["pid"]].to_numpy(), atol=1e-5)
    assert _detections(table) == _expected(served, oids)


def test_a_release_collection_is_what_the_release_holds(served: Served) -> None:
    """COLLECTION=<release>: the points observed before its cutoff, whoever asks (the member
    sees every epoch live); NOBS_MIN counts the release's epochs; its upper limits are its
    images; the live collection by default."""
    ra, dec = _centre(served)
    cone = {"POS": f"CIRCLE {ra} {dec} 0.03", "BANDNAME": "r"}
    in_cone = _in_cone(served, ra, dec, 0.03, ("zr",))
    released = _statistics(served, in_cone, served.cutoff_jd)
    wanted = {oid for oid, (nobs, _) in released.items() if nobs >= 5}
    live = _statistics(served, in_cone)
    assert {oid for oid, (nobs, _) in live.items() if nobs >= 5} != wanted
    for member in (True, False):
        table = _table(served, {**cone, "COLLECTION": RELEASE, "NOBS_MIN": "5"}, member=member)
        assert _detections(table) == _expected(served, wanted, before_jd=served.cutoff_jd)
        limits = table[table["upperlimit"].astype(bool)]
        before = set(served.images["pid"][served.images["obsjd"] < served.cutoff_jd])
        assert set(limits["pid"]) <= before
    live_table = _table(served, {**cone, "UPPERLIMITS": "false"})
    assert _detections(live_table) == _expected(served, in_cone)


def test_every_format_holds_the_same_rows(served: Served) -> None:
    """VOTABLE (the default), IPAC_TABLE, CSV, TSV and HTML, read by astropy and pandas."""
    oids = ",".join(str(o) for o in served.objects["oid"][:4])
    csv = _table(served, {"ID": oids})
    assert len(csv) > 20
    vot = _get(served, {"ID": oids})
    assert vot.headers["Content-Type"].startswith("application/x-votable+xml")
    table = votable.parse_single_table(io.BytesIO(vot.content)).to_table()
    ipac = _get(served, {"ID": oids, "FORMAT": "ipac_table"})
    ipac_table = astropy_ascii.read(ipac.text, format="ipac")
    tsv = pd.read_csv(io.StringIO(_get(served, {"ID": oids, "FORMAT": "TSV"}).text), sep="\t")
    html = _get(served, {"ID": oids, "FORMAT": "html"})
    assert html.headers["Content-Type"].startswith("text/html")
    for other in (table, ipac_table):
        assert list(other["expid"]) == list(csv["expid"])
        assert list(other.colnames)[:22] == list(csv.columns)[:22]
    assert list(tsv["expid"]) == list(csv["expid"])
    assert html.text.count("<tr>") == len(csv) + 1
    assert list(csv.columns)[:22] == [
        "oid", "expid", "hjd", "mjd", "mag", "magerr", "catflags", "filtercode", "ra", "dec",
        "chi", "sharp", "filefracday", "field", "ccdid", "qid", "limitmag", "magzp", "magzprms",
        "exptime", "airmass", "programid"]


@pytest.mark.parametrize(("params", "fragment"), [
    ({}, "Name the objects"),
    ({"ID": "1", "POS": "CIRCLE 80 60 0.01"}, "not both"),
    ({"ID": "1", "BANDNAME": "g"}, "BANDNAME"),
    ({"POS": "CIRCLE 80 60 1"}, "at most 0.1667"),
    ({"POS": "BOX 80 60 1 1"}, "CIRCLE"),
    ({"POS": "CIRCLE 80 95 0.1"}, "latitude"),
    ({"ID": "abc"}, "ID"),
    ({"ID": "1", "TIME": "60000 59000"}, "TIME"),
    ({"ID": "1", "BAND": "4e-7 5e-7"}, "BAND"),
    ({"ID": "1", "BAD_CATFLAGS_MASK": "-1"}, "BAD_CATFLAGS_MASK"),
    ({"POS": "CIRCLE 80 60 0.01", "NOBS_MIN": "x"}, "NOBS_MIN"),
    ({"ID": "1", "COLLECTION": "ztf_dr99"}, "COLLECTION"),
])
def test_errors_in_the_format_asked(served: Served, params: dict, fragment: str) -> None:
    """400 with the reason: a DALI error VOTable by default, text for CSV, an HTML page."""
    vot = _get(served, params, member=False)
    assert vot.status_code == 400
    document = votable.parse(io.BytesIO(vot.content))
    status = [info for info in document.resources[0].infos if info.name == "QUERY_STATUS"]
    assert status[0].value == "ERROR" and fragment in status[0].content
    text = _get(served, {**params, "FORMAT": "csv"}, member=False)
    assert text.status_code == 400 and text.headers["Content-Type"].startswith("text/plain")
    assert fragment in text.text
    page = _get(served, {**params, "FORMAT": "HTML"}, member=False)
    assert page.status_code == 400 and page.headers["Content-Type"].startswith("text/html")
    bad_format = _get(served, {**params, "FORMAT": "xlsx"}, member=False)
    assert bad_format.status_code == 400 and b"FORMAT" in bad_format.content


def test_irsa_parameters_parse_as_documented() -> None:
    """IRSA's forms: POS's shape in any case, a right ascension from -180, CIRCLE, band names
    and numbers, one-value and open TIME intervals."""
    from skyvault.lightcurves.irsa_request import parse_lightcurve_request

    request = parse_lightcurve_request(Parameters([
        ("pos", "circle -164.7 -5.8 0.1"), ("bandname", "g,3"), ("time", "-Inf 59000"),
        ("mag", "17")]))
    assert request.circle is not None and request.circle.ra == pytest.approx(195.3)
    assert request.filtercodes == ("zg", "zi") and request.time.hi == 59000
    assert request.mag.lo == request.mag.hi == 17 and request.format == "VOTABLE"
    request = parse_lightcurve_request(Parameters([("ID", "5, 6"), ("ID", "5"),
                                                   ("FORMAT", "ipac_table")]),
                                       upper_limits_default=False)
    assert request.oids == (5, 6) and request.format == "IPAC_TABLE"
    assert not request.upper_limits and request.collection is None


def test_heliocentric_dates_agree_with_astropy() -> None:
    """hjd against astropy's light travel time to the Sun from the Earth's centre."""
    from astropy import units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    from skyvault.lightcurves.service import heliocentric_jd

    jd = np.array([2461000.5, 2461100.25, 2461300.7])
    ra, dec = np.array([80.0, 200.0, 359.9]), np.array([60.0, -10.0, 1.0])
    centre = EarthLocation.from_geocentric(0, 0, 0, unit=u.m)
    with iers.conf.set_temp("auto_download", False), \
            iers.conf.set_temp("iers_degraded_accuracy", "ignore"):
        astropy_seconds = Time(jd, format="jd", scale="utc").light_travel_time(
            SkyCoord(ra * u.deg, dec * u.deg), kind="heliocentric",
            location=centre).to_value(u.s)
    assert np.allclose((heliocentric_jd(jd, ra, dec) - jd) * 86400, astropy_seconds, atol=1e-3)


def test_ztfquery_lcquery_downloads_light_curves(served: Served, tmp_path, monkeypatch) -> None:
    """ztfquery's LCQuery from PyPI, unchanged but for its base URL and sign-on constants:
    signed on as the member (IRSA's josso sign-on, a session cookie), by ID and by position,
    it reads every epoch of the objects (IRSA's path: detections only); without an account
    (empty cookies) it reads what the public may see."""
    import ztfquery.io
    import ztfquery.lightcurve
    from ztfquery.lightcurve import LCQuery

    monkeypatch.setattr(ztfquery.lightcurve, "BASEURL",
                        f"{served.base}/cgi-bin/ZTF/nph_light_curves?")
    monkeypatch.setattr(ztfquery.io, "LOGIN_URL", f"{served.base}/login")
    monkeypatch.setattr(ztfquery.io, "_ENCRYPT_FILE", str(tmp_path / "ztfquery-account"))
    ztfquery.io.set_account("irsa", username=MEMBER, password=MEMBER_PASSWORD, test=False)
    oids = [int(o) for o in served.objects["oid"][:2]]
    by_id = LCQuery.from_id([str(oid) for oid in oids]).data
    assert set(zip(by_id["oid"], by_id["expid"], strict=True)) == _expected(served, oids)
    assert {"hjd", "mag", "magerr", "catflags", "filtercode", "limitmag"} <= set(by_id.columns)
    ra, dec = _centre(served)
    by_position = LCQuery.from_position(ra, dec, 20.0, bandname="r").data
    assert len(by_position) > 0
    assert set(zip(by_position["oid"], by_position["expid"], strict=True)) == _expected(
        served, _in_cone(served, ra, dec, 20.0 / 3600, ("zr",)))
    public = LCQuery.download_data(cookies={}, ID=",".join(str(o) for o in oids))
    assert set(zip(public["oid"], public["expid"], strict=True)) == _expected(
        served, oids, before_jd=served.cutoff_jd)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["ID", "POS", "CIRCLE", "BANDNAME", "MAG", "NOBS_MIN", "TIME",
                     "BAD_CATFLAGS_MASK", "COLLECTION", "FORMAT", "UPPERLIMITS", "BAND", "id"]),
    st.one_of(st.text(max_size=40), st.sampled_from([
        "CIRCLE 80 60 0.01", "circle -164.7 -5.8 0.1", "1,2,,3", "-Inf Inf", "nan", "1e308",
        "18446744073709551616", "9223372036854775807", "ipac_table", "g,r,i,4", "5 4"]))),
    max_size=6))
def test_any_parameters_parse_or_are_refused_with_a_reason(pairs) -> None:
    """Whatever the parameters, the request parses or is refused with LightCurveRequestError
    (a 400 in the format asked), never another exception (a 500)."""
    from skyvault.lightcurves.irsa_request import (
        LightCurveRequestError,
        parse_lightcurve_request,
    )

    try:
        request = parse_lightcurve_request(Parameters(pairs))
    except LightCurveRequestError as error:
        assert str(error)
        return
    assert bool(request.oids) != (request.circle is not None)
    assert all(0 <= oid < 2 ** 63 for oid in request.oids)
