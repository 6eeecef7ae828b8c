"""SODA 1.0 /soda/sync over HTTP: cutouts against their source images, 204 for no overlap, the
standard's errors, embargo, and pyvo's DataLink and SODA processing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.wcs import WCS
from images_seed import OBSJD
from pyvo.dal.adhoc import DatalinkResults, SodaQuery
from validators import assert_valid_votable

MJD = OBSJD - 2400000.5


def soda(base: str, *pairs: tuple[str, str], headers=None, method="GET") -> requests.Response:
    if method == "POST":
        return requests.post(f"{base}/soda/sync", data=list(pairs), headers=headers, timeout=60)
    return requests.get(f"{base}/soda/sync", params=list(pairs), headers=headers, timeout=60)


def hdu_of(response: requests.Response) -> fits.PrimaryHDU:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/fits"
    hdus = fits.open(io.BytesIO(response.content))
    hdus.verify("exception")
    return hdus[0]


def source_hdu(path) -> fits.ImageHDU:
    return next(h for h in fits.open(path) if h.data is not None and h.data.ndim == 2)


def assert_same_sky(cutout: fits.PrimaryHDU, original: fits.ImageHDU) -> None:
    """Sampled cutout pixels sit at sky positions where the source has the same value."""
    w_cut, w_src = WCS(cutout.header), WCS(original.header)
    height, width = cutout.data.shape
    ys, xs = np.meshgrid(np.arange(0, height, max(1, height // 6)),
                         np.arange(0, width, max(1, width // 6)), indexing="ij")
    ra, dec = w_cut.all_pix2world(xs.ravel(), ys.ravel(), 0)
    sx, sy = w_src.all_world2pix(ra, dec, 0, tolerance=1e-10, maxiter=100)
    assert np.allclose(sx, np.round(sx), atol=1e-6) and np.allclose(sy, np.round(sy), atol=1e-6)
    expected = original.data[np.round(sy).astype(int), np.round(sx).astype(int)]
    assert np.array_equal(cutout.data[ys.ravel(), xs.ravel()], expected)


@pytest.mark.parametrize("name, collection", [
    ("sci_public", "sci"), ("diff_sci_public", "diff"), ("ref", "ref")])
def test_circle_cutouts_match_their_source(live_server, world, name, collection) -> None:
    frame = world.frames[name]
    cutout = hdu_of(soda(live_server, ("ID", world.did(collection, name)),
                         ("CIRCLE", f"{frame.ra + 0.01} {frame.dec - 0.005} 0.01")))
    assert_same_sky(cutout, source_hdu(world.path(name)))
    assert 30 <= cutout.data.shape[0] <= 45  # 0.02 deg across at 2"/px, plus rotation
    assert cutout.header["OBJECT"] == name
    assert "SODA cutout of" in str(cutout.header["COMMENT"])


def test_pos_polygon_and_pixel_filters(live_server, world) -> None:
    did = world.did("sci", "sci_public")
    original = source_hdu(world.path("sci_public"))
    for pairs in ([("POS", "CIRCLE 150.0 2.0 0.01")], [("POS", "RANGE 149.99 150.01 1.99 2.01")],
                  [("POS", "POLYGON 149.99 1.99 150.01 1.99 150.0 2.01")],
                  [("POLYGON", "149.99 1.99 150.01 1.99 150.0 2.01")]):
        assert_same_sky(hdu_of(soda(live_server, ("ID", did), *pairs)), original)
    pixels = hdu_of(soda(live_server, ("ID", did), ("PIXEL_1", "11 40"), ("PIXEL_2", "1 5")))
    assert pixels.data.shape == (5, 30)
    assert np.array_equal(pixels.data, original.data[0:5, 10:40])
    # POST, lower-case names, and a matching BAND and TIME are the same request.
    posted = hdu_of(soda(live_server, ("id", did), ("pixel_1", "11 40"), ("PIXEL_2", "1 5"),
                         ("BAND", "6e-7"), ("TIME", f"{MJD - 1} {MJD + 1}"), method="POST"))
    assert np.array_equal(posted.data, pixels.data)


def test_partial_overlap_is_clipped(live_server, world) -> None:
    frame = world.frames["sci_public"]
    corner_ra, corner_dec = frame.corners()[0]
    cutout = hdu_of(soda(live_server, ("ID", world.did("sci", "sci_public")),
                         ("CIRCLE", f"{corner_ra} {corner_dec} 0.01")))
    assert cutout.header["LTV1"] == 0 and cutout.header["LTV2"] == 0
    assert cutout.data.shape[0] < 30 and cutout.data.shape[1] < 30
    assert_same_sky(cutout, source_hdu(world.path("sci_public")))


@pytest.mark.parametrize("pairs", [
    [("CIRCLE", "10 -30 0.1")],
    [("POS", "RANGE 200 201 10 11")],
    [("PIXEL_1", "500 600")],
    [("BAND", "4e-7 5e-7")],  # a zg wavelength; the image is zr
    [("TIME", "40000 40001")],
])
def test_no_overlap_answers_204_without_a_body(live_server, world, pairs) -> None:
    """SODA 1.0 section 5.1: no pixels selected -> 204 No Content."""
    response = soda(live_server, ("ID", world.did("sci", "sci_public")), *pairs)
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize("pairs, status, start", [
    ([("CIRCLE", "150 2 0.01")], 400, "UsageError: ID is required"),
    ([("ID", "{did}"), ("CIRCLE", "150 2 0.01"), ("CIRCLE", "150 2 0.02")], 400,
     "MultiValuedParamNotSupported: CIRCLE"),
    ([("ID", "{did}"), ("ID", "{did}")], 400, "MultiValuedParamNotSupported: ID"),
    ([("ID", "{did}"), ("CIRCLE", "150 2")], 400, "UsageError: CIRCLE"),
    ([("ID", "{did}"), ("POS", "BOX 1 2 3 4")], 400, "UsageError: POS"),
    ([("ID", "{did}"), ("PIXEL_1", "5 1")], 400, "UsageError: PIXEL_1"),
    ([("ID", "{did}"), ("RESPONSEFORMAT", "image/png")], 400, "UsageError: RESPONSEFORMAT"),
    # An identifier no image has (ingested nights number theirs from 1).
    ([("ID", "ivo://skyvault.archive/sci?999999999999")], 404, "UsageError: no dataset"),
    ([("ID", "{raw}"), ("CIRCLE", "150 2 0.01")], 400, "UsageError: the image has no"),
])
def test_errors_are_text_starting_with_the_soda_code(live_server, world, pairs, status,
                                                     start) -> None:
    """SODA 1.0 section 5.2: text/plain, beginning with the error code."""
    values = {"did": world.did("sci", "sci_public"), "raw": world.did("raw", "raw_sci_public")}
    filled = [(name, value.format(**values)) for name, value in pairs]
    response = soda(live_server, *filled)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith(start), response.text


def test_raw_frames_cut_by_pixels(live_server, world) -> None:
    cutout = hdu_of(soda(live_server, ("ID", world.did("raw", "raw_sci_public")),
                         ("PIXEL_1", "1 8"), ("PIXEL_2", "2 3")))
    assert cutout.data.shape == (2, 8) and cutout.data[0, 0] == 1000 + 1  # quadrant 1 of 4
    assert cutout.header["QID"] == 1


def test_embargoed_images_cannot_be_cut_but_by_members(live_server, world) -> None:
    embargoed = world.did("sci", "sci_embargoed")
    twin = embargoed.rsplit("?", 1)[0] + "?770499998"
    hidden = soda(live_server, ("ID", embargoed), ("CIRCLE", "150.02 2.01 0.01"))
    absent = soda(live_server, ("ID", twin), ("CIRCLE", "150.02 2.01 0.01"))
    assert hidden.status_code == absent.status_code == 404
    assert hidden.text.replace(embargoed, "X") == absent.text.replace(twin, "X")
    member = {"Authorization": f"Bearer {world.member_token}"}
    cutout = hdu_of(soda(live_server, ("ID", embargoed), ("CIRCLE", "150.02 2.01 0.01"),
                         headers=member))
    assert_same_sky(cutout, source_hdu(world.path("sci_embargoed")))


def test_pyvo_cuts_out_through_datalink_and_through_sia(live_server, world) -> None:
    did = world.did("sci", "sci_public")
    links = DatalinkResults.from_result_url(f"{live_server}/datalink/links?ID={did}")
    processor = links.get_first_proc()
    stream = processor.processed(circle=(150.0, 2.0, 0.005))
    cutout = fits.open(io.BytesIO(stream.read()))[0]
    assert_same_sky(cutout, source_hdu(world.path("sci_public")))
    # A SIA record's processed() uses the SODA descriptor of the SIA response itself.
    records = [r for r in pyvo.dal.SIA2Service(f"{live_server}/sia").search(
        pos=(150.0, 2.0, 0.005), calib_level=2) if r["obs_publisher_did"] == did]
    again = fits.open(io.BytesIO(records[0].processed(circle=(150.0, 2.0, 0.005)).read()))[0]
    assert np.array_equal(again.data, cutout.data)


@pytest.mark.parametrize("path", ["capabilities", "availability"])
def test_vosi_resources_exist(live_server, path) -> None:
    response = requests.get(f"{live_server}/soda/{path}", timeout=30)
    assert response.status_code == 200
    if path == "capabilities":
        assert "ivo://ivoa.net/std/SODA#sync-1.0" in response.text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_parameters_sync_describes_itself(live_server, world, method) -> None:
    """Issue 13 item 10: a parameterless /soda/sync answered a text/plain 400; like other SODA
    services it now returns its service descriptor (SODA 1.0 section 4, DataLink 1.1 section
    4), a VOTable from which a client can build a cutout request."""
    response = soda(live_server, method=method)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert_valid_votable(response.content)
    document = parse(io.BytesIO(response.content))
    (descriptor,) = document.resources
    assert descriptor.type == "meta" and descriptor.utype == "adhoc:service"
    params = {p.name: p.value for p in descriptor.params}
    assert params["standardID"] == "ivo://ivoa.net/std/SODA#sync-1.0"
    assert params["accessURL"] == f"{live_server}/soda/sync"
    inputs = {p.name: p for p in descriptor.groups[0].entries}
    assert set(inputs) == {"ID", "POS", "CIRCLE", "POLYGON", "BAND", "TIME", "PIXEL_1",
                           "PIXEL_2"}
    assert inputs["CIRCLE"].xtype == "circle" and inputs["CIRCLE"].unit == "deg"
    # The description is enough for pyvo to cut out an image.
    did = world.did("sci", "sci_public")
    query = SodaQuery.from_resource([{"ID": did}], descriptor, ID=did)
    query.circle = (150.0, 2.0, 0.005)
    cutout = fits.open(io.BytesIO(query.execute_stream().read()))[0]
    assert_same_sky(cutout, source_hdu(world.path("sci_public")))


def test_parameters_without_an_id_are_still_a_usage_error(live_server) -> None:
    response = soda(live_server, ("RESPONSEFORMAT", "application/fits"))
    assert response.status_code == 400 and response.text.startswith("UsageError: ID")


@pytest.mark.parametrize("requested", [None, "fits", "image/fits", "application/fits",
                                       "application/fits; foo=bar"])
def test_the_content_type_is_canonical(live_server, world, requested) -> None:
    """DALI 1.1 3.4.6 (issue 13 item 7): whatever names FITS is answered as application/fits."""
    pairs = [("ID", world.did("sci", "sci_public")), ("CIRCLE", "150.0 2.0 0.005")]
    if requested is not None:
        pairs.append(("RESPONSEFORMAT", requested))
    assert hdu_of(soda(live_server, *pairs)).data.size > 0
