"""astroquery's ``astroquery.ipac.irsa.Most`` against SkyVault's ``/most``, unchanged: IRSA's
parameter names (``catalog``, ``input_type``, ``obj_name``, ``obs_begin``/``obs_end``,
``output_mode``, the manual elements) and its answers as astroquery parses them (IPAC tables for
Brief and Gator, a VOTable, an HTML page whose Download links lead to the results, the image
metadata and the DS9 region file). The images are seeded around 2P/Encke's path
(tests/sso/most_seed.py), where the object falls by construction."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
import requests
from astroquery.exceptions import InvalidQueryError, NoResultsWarning
from astroquery.ipac.irsa import MostClass, conf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from most_seed import IMAGES, Seeded, encke

from skyvault.sso.most_irsa import comet_line_from_fields
from skyvault.sso.orbits import parse_orbit_lines

DEMO_FILE = Path(__file__).parents[2] / "sso" / "data" / "demo_orbits.txt"
WINDOW = {"obs_begin": "2026-12-04", "obs_end": "2026-12-09"}
NAME = {"catalog": "ztf", "input_mode": "name_input", "obj_name": "Encke", **WINDOW}


@pytest.fixture
def most(live_server: str) -> MostClass:
    client = MostClass()
    client.URL = f"{live_server}/most"
    return client


def _check_positions(pids, ra, dec, mjd, seeded: Seeded) -> None:
    names = {pid: name for name, pid in seeded.pids.items()}
    assert {int(p) for p in pids} == seeded.expected(member=False)
    for pid, ra_obj, dec_obj, mjd_obs in zip(pids, ra, dec, mjd, strict=True):
        expected_ra, expected_dec = seeded.predictions[names[int(pid)]]
        assert abs(ra_obj - expected_ra) * 3600 < 1e-3 and abs(dec_obj - expected_dec) * 3600 < 1e-3
        assert mjd_obs == pytest.approx(seeded.mid_mjd[names[int(pid)]], abs=1e-9)


def test_brief_is_the_ipac_results_table(most: MostClass, seeded: Seeded) -> None:
    table = most.query_object(output_mode="Brief", **NAME)
    _check_positions(table["pid"], table["ra_obj"], table["dec_obj"], table["mjd_obs"], seeded)
    assert all(str(i).startswith("ivo://skyvault.archive/sci?") for i in table["Image_ID"])
    assert all(url.endswith("_sciimg.fits") for url in table["image_url"])


def test_regular_page_links_to_results_metadata_and_regions(most: MostClass,
                                                           seeded: Seeded) -> None:
    answer = most.query_object(**NAME)
    results, metadata = answer["results"], answer["metadata"]
    _check_positions(results["pid"], results["ra_obj"], results["dec_obj"], results["mjd_obs"],
                     seeded)
    _check_positions(metadata["pid"], metadata["ra_obj"], metadata["dec_obj"],
                     metadata["mjd_mid"], seeded)
    assert {"sun_dist", "geo_dist", "dist_ctr", "x", "y", "cutout_url"} <= set(metadata.colnames)
    region = requests.get(answer["region"], timeout=120)
    assert region.status_code == 200 and region.text.startswith("# Region file format: DS9")
    assert "fits_tarball" not in answer


def test_votable_and_gator(most: MostClass, seeded: Seeded) -> None:
    table = most.query_object(output_mode="VOTable", **NAME).get_first_table().to_table()
    _check_positions(table["pid"], table["ra_obj"], table["dec_obj"], table["mjd_mid"], seeded)
    gator = most.query_object(output_mode="Gator", **NAME)
    _check_positions(gator["pid"], gator["ra"], gator["dec"], gator["mjd"], seeded)


def test_manual_elements_find_the_same_images(most: MostClass, seeded: Seeded) -> None:
    """Encke's elements typed in as IRSA's manual input (a comet: q and the perihelion time,
    to the second as IRSA's form takes it) find the same images."""
    orbit = encke()
    tp = dt.datetime(1858, 11, 17, tzinfo=dt.UTC) + dt.timedelta(days=orbit.tp_mjd_tdb)
    table = most.query_object(
        catalog="ztf", input_mode="manual_input", obj_type="Comet", output_mode="Brief",
        epoch=str(orbit.epoch_mjd_tdb), eccentricity=orbit.e, inclination=orbit.incl_deg,
        arg_perihelion=str(orbit.peri_deg), ascend_node=orbit.node_deg,
        perih_dist=orbit.q_au, perih_time=tp.strftime("%Y+%m+%d+%H:%M:%S"), **WINDOW)
    assert {int(p) for p in table["pid"]} == seeded.expected(member=False)


@pytest.mark.parametrize("joined", [False, True])
def test_an_mpc_line_finds_the_same_images(most: MostClass, seeded: Seeded, joined: bool) -> None:
    """Encke's CometEls.txt record, as the line itself or with its fields joined by '+' (the
    form of IRSA's own mpc_data example)."""
    line = next(text for text in DEMO_FILE.read_text().splitlines() if text.startswith("0002P"))
    table = most.query_object(
        catalog="ztf", input_mode="mpc_input", obj_type="Comet", output_mode="Brief",
        mpc_data="+".join(line.split()) if joined else line, **WINDOW)
    assert {int(p) for p in table["pid"]} == seeded.expected(member=False)


def test_irsas_mpc_example_reads_as_its_comet() -> None:
    """The mpc_data of astroquery's MOST documentation and tests (P/2010 N1 (WISE))."""
    line = comet_line_from_fields(
        "K10N010+2010+08+16.1477+1.494525+0.533798+153.4910+113.2118+12.8762+20100621+17.0"
        "+4.0+P/2010+N1+(WISE)+MPC+75712")
    (orbit,) = parse_orbit_lines([line], source="test")
    assert orbit.designation == "P/2010 N1" and orbit.name == "WISE"
    assert (orbit.q_au, orbit.e, orbit.peri_deg, orbit.node_deg, orbit.incl_deg) == (
        1.494525, 0.533798, 153.4910, 113.2118, 12.8762)
    assert orbit.tp_mjd_tdb == pytest.approx(55424.1477, abs=1e-3)  # 2010-08-16.1477 TT


def test_no_images_is_astroquerys_no_results(most: MostClass, seeded: Seeded) -> None:
    with pytest.warns(NoResultsWarning):
        assert most.query_object(catalog="ztf", obj_name="Encke", obs_begin="2026-11-01",
                                 obs_end="2026-11-02", output_mode="Brief") is None
    with pytest.warns(NoResultsWarning):
        assert most.query_object(catalog="ztf", obj_name="Encke", obs_begin="2026-11-01",
                                 obs_end="2026-11-02") is None


@pytest.mark.parametrize("params, message", [
    ({"catalog": "wise_merge"}, "catalog 'wise_merge' is not served here"),
    ({"obj_name": "No Such Object 12345"}, "No Such Object"),
    ({"input_mode": "nafid_input", "obj_nafid": "2000433"}, "NAIF identifiers"),
    ({"with_tarballs": True}, "tarballs"),
    ({"obs_begin": "yesterday"}, "obs_begin"),
    ({"output_mode": "Tabular"}, "output_mode 'Tabular'"),
])
def test_bad_requests_are_irsas_error_text(most: MostClass, seeded: Seeded, params: dict,
                                          message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        most.query_object(**(NAME | params))


def test_list_catalogs_reads_the_application_page(most: MostClass, live_server: str) -> None:
    with conf.set_temp("most_interface_url", f"{live_server}/most/irsa"):
        assert most.list_catalogs() == ["ztf"]


def test_the_embargoed_image_is_never_answered(live_server: str, seeded: Seeded) -> None:
    """Every IRSA output mode, anonymous: not the embargoed image, in any form."""
    hidden = str(seeded.pids["embargoed"])
    assert not IMAGES["embargoed"].released
    for mode in ("Regular", "Brief", "Gator", "VOTable", "Metadata", "DS9"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = requests.post(f"{live_server}/most", timeout=120, data={
                "catalog": "ztf", "input_type": "name_input", "obj_name": "Encke",
                "output_mode": mode, **WINDOW})
        assert response.status_code == 200 and hidden not in response.text, mode
    member = requests.post(f"{live_server}/most", timeout=120, headers={
        "Authorization": f"Bearer {seeded.member_token}"}, data={
        "catalog": "ztf", "input_type": "name_input", "obj_name": "Encke",
        "output_mode": "Gator", **WINDOW})
    assert hidden in member.text


IRSA_NAMES = ("catalog", "input_type", "output_mode", "obs_begin", "obs_end", "ephem_step",
              "fits_region_files", "obj_name", "obj_type", "mpc_data", "epoch", "eccentricity",
              "inclination", "arg_perihelion", "ascend_node", "semimajor_axis", "mean_anomaly",
              "perih_dist", "perih_time")
HOSTILE = st.one_of(st.sampled_from(["", "0", "-1", "1e308", "nan", "inf", "9999-99-99",
                                     "2026+13+45+25:61:61", "+", "++++", "Encke", "ztf",
                                     "manual_input", "mpc_input", "name_input", "Brief",
                                     "VOTable", "Comet", "Asteroid", "on", "\u00e9\u4e2d"]),
                    st.text(max_size=20))


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(IRSA_NAMES), HOSTILE, max_size=8))
def test_any_irsa_parameters_get_an_answer_or_irsas_error(live_server: str, seeded: Seeded,
                                                          params: dict) -> None:
    """Never a 5xx: a result, or IRSA's error text."""
    data = {"input_type": "manual_input", "catalog": "ztf", **WINDOW} | params
    data["input_type"] = data.get("input_type") or "manual_input"
    response = requests.post(f"{live_server}/most", data=data, timeout=300)
    assert response.status_code < 500, response.text[:300]
    if response.status_code == 200 and response.text.startswith("MOST: "):
        assert response.text.startswith("MOST: *** error: ") and len(response.text) > 20
