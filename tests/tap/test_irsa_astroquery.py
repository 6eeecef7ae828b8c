"""astroquery's IRSA client (``astroquery.ipac.irsa.Irsa``) pointed at SkyVault, unchanged.

``Irsa`` is pyvo underneath: ``tap_url`` for ``query_tap``, ``query_region`` (``SELECT * FROM
<catalog> WHERE CONTAINS(POINT('ICRS',ra,dec), CIRCLE|BOX(...))=1``), ``list_catalogs``
(``TAP_SCHEMA.tables WHERE irsa_dbms=21 AND irsa_pos='y'``) and ``list_collections``
(``caom.observation`` joined to ``caom.plane``); ``sia_url`` for ``query_sia`` (SIA 2.0, found
through VOSI capabilities). Positional answers are checked against numpy on the rows the same
requester reads without any spatial function (TAP 1.1; ADQL 2.1 sections 4.2.9 BOX and 4.2.11
CIRCLE).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astroquery.ipac.irsa import IrsaClass
from pyvo.dal import DALQueryError
from tap_seed import BASE, CENTRE_DEC, CENTRE_RA, quadrant_centre, visible_exposures

CATALOGS = {"survey.psf_sources", "survey.aperture_sources", "survey.candidates",
            "survey.lightcurves", "survey.reference_psf_sources",
            "survey.reference_aperture_sources"}


@pytest.fixture
def irsa(tap, live_server: str) -> IrsaClass:
    client = IrsaClass()
    client.tap_url = tap.url
    client.sia_url = f"{live_server}/sia"
    return client


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def _nearby_sources(irsa: IrsaClass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every visible PSF source within half a degree in Dec, read without a spatial function."""
    table = irsa.query_tap(
        "SELECT sourceid, ra, dec FROM survey.psf_sources "
        f"WHERE dec BETWEEN {CENTRE_DEC - 0.5} AND {CENTRE_DEC + 0.5}").to_table()
    return (np.asarray(table["sourceid"]), np.asarray(table["ra"]), np.asarray(table["dec"]))


def test_cone_on_a_catalog_matches_numpy(irsa: IrsaClass) -> None:
    centre = SkyCoord(CENTRE_RA + 0.02, CENTRE_DEC + 0.01, unit="deg")
    radius = 0.05 * u.deg
    found = irsa.query_region(centre, catalog="survey.psf_sources", spatial="Cone",
                              radius=radius)
    ids, ra, dec = _nearby_sources(irsa)
    cosine = _unit(ra, dec) @ _unit(np.array(centre.ra.deg), np.array(centre.dec.deg))
    separation = np.degrees(np.arccos(np.clip(cosine, -1, 1)))
    assert not np.any(np.abs(separation - 0.05) < 1e-9)  # nothing on the edge
    expected = set(ids[separation < 0.05].tolist())
    assert expected and set(np.asarray(found["sourceid"]).tolist()) == expected
    assert {"ra", "dec", "mag", "flags"} <= set(found.colnames)


def test_box_on_a_catalog_matches_numpy(irsa: IrsaClass) -> None:
    """An ADQL BOX's sides are great circles through its arms' ends (ADQL 2.1 section 4.2.9):
    a point is inside when its gnomonic coordinates about the centre are within tan(half)."""
    ra0, dec0, width = CENTRE_RA - 0.03, CENTRE_DEC, 0.08
    found = irsa.query_region(f"{ra0} {dec0}", catalog="survey.psf_sources", spatial="Box",
                              width=width * u.deg)
    ids, ra, dec = _nearby_sources(irsa)
    c = _unit(np.array(ra0), np.array(dec0))
    a, d = np.radians(ra0), np.radians(dec0)
    east = np.array([-np.sin(a), np.cos(a), 0.0])
    north = np.array([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
    p = _unit(ra, dec)
    xi, eta = (p @ east) / (p @ c), (p @ north) / (p @ c)
    limit = np.tan(np.radians(width / 2))
    inside = (p @ c > 0) & (np.abs(xi) <= limit) & (np.abs(eta) <= limit)
    assert not np.any(np.abs(np.maximum(np.abs(xi), np.abs(eta)) - limit) < 1e-12)
    expected = set(ids[inside].tolist())
    assert expected and set(np.asarray(found["sourceid"]).tolist()) == expected


def test_query_tap_runs_sync_and_async(irsa: IrsaClass) -> None:
    query = f"SELECT pid FROM survey.science_images WHERE pid BETWEEN {BASE} AND {BASE + 9999}"
    expected = {e.pid(rcid) for e in visible_exposures(set()) for rcid in (0, 1)}
    assert set(irsa.query_tap(query).to_table()["pid"].tolist()) == expected
    assert set(irsa.query_tap(query, async_job=True).to_table()["pid"].tolist()) == expected


def test_list_catalogs_names_the_source_catalogs(irsa: IrsaClass) -> None:
    catalogs = irsa.list_catalogs()
    assert set(catalogs) == CATALOGS
    assert "PSF-fit photometry" in catalogs["survey.psf_sources"]
    everything = irsa.list_catalogs(include_metadata_tables=True, full=True)
    assert {"survey.science_images", "ivoa.obscore", "caom.plane"} <= set(
        everything["table_name"])
    assert set(irsa.list_catalogs(filter="aperture")) == {
        "survey.aperture_sources", "survey.reference_aperture_sources"}
    # Every catalog it lists is one query_region can search.
    for name in catalogs:
        irsa.query_region(f"{CENTRE_RA} {CENTRE_DEC}", catalog=name, radius=1 * u.arcsec)


def test_list_collections_are_the_sia_collections(irsa: IrsaClass) -> None:
    everything = set(irsa.list_collections()["collection"])
    assert {"SkyVault/raw", "SkyVault/sci", "SkyVault/ref", "SkyVault/diff"} <= everything
    images = set(irsa.list_collections(servicetype="SIA")["collection"])
    assert images == everything  # every product is an image
    assert len(irsa.list_collections(servicetype="SSA")) == 0
    assert set(irsa.list_collections(filter="sci")["collection"]) == {"SkyVault/sci"}


def test_query_sia_finds_the_science_images_holding_a_position(irsa: IrsaClass) -> None:
    """Quadrant 1's footprint holds (ra, dec); quadrant 0's does not (tap_seed corners)."""
    ra, dec = quadrant_centre(1)
    found = irsa.query_sia(pos=(ra * u.deg, dec * u.deg, 0.001 * u.deg),
                           collection="SkyVault/sci")
    pids = {int(did.split("?")[1]) for did in found["obs_publisher_did"]}
    ours = {pid for pid in pids if BASE <= pid < BASE + 100_000}
    assert ours == {e.pid(1) for e in visible_exposures(set())}
    assert set(found["obs_collection"]) == {"SkyVault/sci"}


def test_bad_adql_is_a_clear_error(irsa: IrsaClass) -> None:
    with pytest.raises(DALQueryError, match="no_such_catalog"):
        irsa.query_region(f"{CENTRE_RA} {CENTRE_DEC}", catalog="no_such_catalog")
