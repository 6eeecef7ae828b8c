"""IBE's file tree, ``/ibe/data/ztf/products/...``: files at IRSA's paths
(https://irsa.ipac.caltech.edu/docs/program_interface/ztf_metadata.html, "constructing a URL"),
whole or as cutouts (https://irsa.ipac.caltech.edu/ibe/cutouts.html), under the embargo.

The paths are built here from the search's metadata by IRSA's rules, written out independently
of the service; downloads are checked against the archive's own checksums; a cutout is checked
against SODA's cutout of the same pixels (pixel for pixel) and against astropy's reading of the
image's WCS (centre and size).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from ibe_support import DATA, FIELD, NEW_NIGHT, OLD_NIGHT, SEARCH

from skyvault.db import Database

SCIENCE_SUFFIXES = {"sciimg.fits": "sciimg", "mskimg.fits": "mskimg", "psfcat.fits": "psfcat",
                    "sexcat.fits": "sexcat", "scimrefdiffimg.fits.fz": "diffimg",
                    "diffcat.fits": "diffcat", "diffimgpsf.fits": "diffimgpsf"}


def metadata(ibe, table: str, who, where: str) -> Table:
    response = requests.get(f"{ibe.base}{SEARCH}/{table}", timeout=60, headers=who.headers,
                            params={"WHERE": where, "ct": "csv"})
    assert response.status_code == 200, response.text
    return Table.read(response.text, format="ascii.csv")


def science_path(row, suffix: str) -> str:
    """IRSA: sci/YYYY/MMDD/dddddd/ztf_<filefracday>_<field:06d>_<filtercode>_c<ccd:02d>_
    <imgtypecode>_q<qid>_<suffix>."""
    ffd = str(row["filefracday"])
    return (f"sci/{ffd[:4]}/{ffd[4:8]}/{ffd[8:]}/ztf_{ffd}_{int(row['field']):06d}_"
            f"{row['filtercode']}_c{int(row['ccdid']):02d}_{row['imgtypecode']}_q{row['qid']}_"
            f"{suffix}")


def raw_path(row) -> str:
    ffd = str(row["filefracday"])
    return (f"raw/{ffd[:4]}/{ffd[4:8]}/{ffd[8:]}/ztf_{ffd}_{int(row['field']):06d}_"
            f"{row['filtercode']}_c{int(row['ccdid']):02d}_{row['imgtypecode']}.fits.fz")


def reference_path(row, suffix: str) -> str:
    """IRSA: ref/<first three digits of the six-digit field>/field<field>/<filtercode>/
    ccd<ccd>/q<qid>/ztf_<field>_<filtercode>_c<ccd>_q<qid>_<suffix>."""
    field = f"{int(row['field']):06d}"
    ccd = f"{int(row['ccdid']):02d}"
    return (f"ref/{field[:3]}/field{field}/{row['filtercode']}/ccd{ccd}/q{row['qid']}/"
            f"ztf_{field}_{row['filtercode']}_c{ccd}_q{row['qid']}_{suffix}")


def calibration_path(row) -> str:
    day = str(row["nightdate"])
    code = str(row["filtercode"]).zfill(2)
    ccd = f"{int(row['ccdid']):02d}"
    return (f"cal/{day[:4]}/{day[4:]}/{row['caltype']}/{code}/ccd{ccd}/q{row['qid']}/"
            f"ztf_{day}_{code}_c{ccd}_q{row['qid']}_{row['caltype']}.fits")


def fetch(ibe, path: str, who=None, **params) -> requests.Response:
    return requests.get(f"{ibe.base}{DATA}/{path}", params=params, timeout=60,
                        headers=who.headers if who else {})


def stored(database: Database, table: str, image_id: int, product: str) -> tuple[str, str]:
    with database.admin() as connection:
        return connection.execute(
            "SELECT path, sha256 FROM survey.files WHERE image_table = %s AND image_id = %s"
            " AND product = %s AND is_current = 1", (table, image_id, product)).fetchone()


def visible_science(ibe, who, night_where: str):
    return metadata(ibe, "sci", who, f"field={FIELD} AND {night_where}")


def test_science_and_difference_products_at_irsas_paths(ibe, database) -> None:
    rows = visible_science(ibe, ibe.member, f"nid={ibe.nids['new']}")
    assert len(rows) > 0
    for row in rows[:3]:
        for suffix, product in SCIENCE_SUFFIXES.items():
            response = fetch(ibe, science_path(row, suffix), ibe.member)
            assert response.status_code == 200, (science_path(row, suffix), response.text)
            if product.startswith("diff"):
                with database.admin() as connection:
                    image = connection.execute(
                        "SELECT diffid FROM survey.difference_images WHERE pid = %s",
                        (int(row["pid"]),)).fetchone()[0]
                table = "difference_images"
            else:
                image, table = int(row["pid"]), "science_images"
            _path, sha256 = stored(database, table, image, product)
            assert hashlib.sha256(response.content).hexdigest() == sha256.strip()
            assert response.headers["ETag"].strip('"') == sha256.strip()


def test_raw_reference_and_calibration_files(ibe, database) -> None:
    raws = metadata(ibe, "raw", ibe.member, f"field={FIELD}")
    refs = metadata(ibe, "ref", ibe.member, f"field={FIELD}")
    cals = metadata(ibe, "cal", ibe.member, f"nid={ibe.nids['old']}")
    assert len(raws) and len(refs) and len(cals)
    checks = [(raw_path(r), "raw_images", int(r["meta_id"]), "raw") for r in raws[:2]]
    checks += [(reference_path(r, s), "reference_images", int(r["rfid"]), p)
               for r in refs[:2] for s, p in (("refimg.fits", "refimg"),
                                              ("refunc.fits", "refunc"),
                                              ("refpsfcat.fits", "refpsfcat"),
                                              ("refsexcat.fits", "refsexcat"))]
    checks += [(calibration_path(r), "calibration_images", int(r["cid"]), str(r["caltype"]))
               for r in cals]
    assert {str(r["caltype"]) for r in cals} == {"bias", "hifreqflat"}
    assert any(p.startswith("ref/001/field001885/zr/ccd01/q1/") for p, *_ in checks)
    assert any(p.startswith(f"cal/{OLD_NIGHT[:4]}/{OLD_NIGHT[5:7]}{OLD_NIGHT[8:]}/bias/00/")
               for p, *_ in checks)
    for path, table, image, product in checks:
        response = fetch(ibe, path, ibe.member)
        assert response.status_code == 200, path
        assert hashlib.sha256(response.content).hexdigest() == \
            stored(database, table, image, product)[1].strip()


def test_paths_whose_parts_disagree_name_nothing(ibe) -> None:
    row = visible_science(ibe, ibe.member, f"nid={ibe.nids['old']}")[0]
    good = science_path(row, "sciimg.fits")
    assert fetch(ibe, good).status_code == 200
    bad = [good.replace("sci/", "sci/1999/", 1), good.replace("_sciimg.", "_nosuch."),
           good.replace(f"_{FIELD:06d}_", f"_{FIELD}_"), good.replace("_o_q", "_b_q"),
           good.replace(str(row["filefracday"])[4:8] + "/", "0101/", 1),
           "ref/000/field001885/zr/ccd01/q1/ztf_001885_zr_c01_q1_refimg.fits",
           "cal/2024/0903/bias/zg/ccd01/q1/ztf_20240903_zg_c01_q1_bias.fits",
           "cal/2024/0230/bias/00/ccd01/q1/ztf_20240230_00_c01_q1_bias.fits", "", "sci/"]
    for path in bad:
        response = fetch(ibe, path)
        assert response.status_code == 404 and response.text == "Not found.\n", path


def test_an_embargoed_file_is_answered_as_a_missing_one(ibe) -> None:
    """Program 3's images of the new night: the member of program 2 gets the same 404 as for
    a path of nothing; the member of program 3 gets the file."""
    theirs = visible_science(ibe, ibe.outsider, f"nid={ibe.nids['new']} AND ipac_gid=3")
    assert len(theirs)
    row = theirs[0]
    for suffix in ("sciimg.fits", "scimrefdiffimg.fits.fz"):
        path = science_path(row, suffix)
        assert fetch(ibe, path, ibe.outsider).status_code == 200
        hidden = fetch(ibe, path, ibe.member)
        absent = fetch(ibe, path.replace("_c0", "_c1", 1).replace("/ccd0", "/ccd1"),
                       ibe.member)
        for response in (hidden, absent):
            assert (response.status_code, response.text) == (404, "Not found.\n")
        cutout = fetch(ibe, path, ibe.member, center=f"{row['ra']},{row['dec']}", size="10arcsec")
        assert (cutout.status_code, cutout.text) == (404, "Not found.\n")


# -- cutouts --------------------------------------------------------------------------------------


def soda(ibe, pid: int, who, pixel1: str, pixel2: str) -> fits.HDUList:
    response = requests.get(f"{ibe.base}/soda/sync", timeout=60, headers=who.headers, params={
        "ID": f"ivo://skyvault.archive/sci?{pid}", "PIXEL_1": pixel1, "PIXEL_2": pixel2})
    assert response.status_code == 200, response.text
    return fits.open(io.BytesIO(response.content))


def source_range(header: fits.Header) -> tuple[str, str]:
    """The source pixels a cutout holds (LTVn: image = physical + LTV), as PIXEL_n ranges."""
    x0, y0 = -int(header["LTV1"]), -int(header["LTV2"])
    return f"{x0 + 1} {x0 + header['NAXIS1']}", f"{y0 + 1} {y0 + header['NAXIS2']}"


def same_cutout(first: fits.HDUList, second: fits.HDUList) -> None:
    """Pixel for pixel, and the same header apart from the note saying who cut it."""
    assert np.array_equal(first[0].data, second[0].data)
    def cards(hdus):
        return [c for c in hdus[0].header.cards if c.keyword not in ("COMMENT", "")]
    assert [(c.keyword, c.value) for c in cards(first)] == \
        [(c.keyword, c.value) for c in cards(second)]


@pytest.fixture(scope="module")
def public_image(ibe, database):
    row = visible_science(ibe, ibe.member, f"nid={ibe.nids['old']}")[0]
    local, _sha = stored(database, "science_images", int(row["pid"]), "sciimg")
    from skyvault.config import settings

    with fits.open(settings().store_root / local) as hdus:
        header = hdus[0].header.copy()
    return row, header


def test_an_angular_cutout_is_sodas_cutout_of_the_same_pixels(ibe, public_image) -> None:
    row, header = public_image
    ra, dec = float(row["ra"]) + 3 / 3600, float(row["dec"]) - 2 / 3600
    response = fetch(ibe, science_path(row, "sciimg.fits"), center=f"{ra},{dec}",
                     size="20arcsec", gzip="false")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/fits"
    cutout = fits.open(io.BytesIO(response.content))
    same_cutout(cutout, soda(ibe, int(row["pid"]), ibe.member, *source_range(cutout[0].header)))
    # Independently: astropy's WCS of the whole image says where the centre is and how many
    # pixels 20 arcsec make; the cutout is that many pixels, centred there.
    wcs = WCS(header)
    cx, cy = wcs.world_to_pixel_values(ra, dec)
    scale = math.sqrt(np.prod(proj_plane_pixel_scales(wcs))) * 3600
    width = round(20 / scale)
    assert cutout[0].header["NAXIS1"] == cutout[0].header["NAXIS2"] == width
    x0, y0 = -cutout[0].header["LTV1"], -cutout[0].header["LTV2"]
    assert abs(x0 + (width - 1) / 2 - cx) <= 0.5 and abs(y0 + (width - 1) / 2 - cy) <= 0.5
    # And the cutout's own WCS puts the centre at its middle.
    mx, my = WCS(cutout[0].header).world_to_pixel_values(ra, dec)
    assert abs(mx - (width - 1) / 2) <= 0.5 and abs(my - (width - 1) / 2) <= 0.5


def test_a_pixel_cutout_is_the_pixels_named(ibe, public_image) -> None:
    """center=24,10px&size=11,7px: the 11 x 7 pixels centred on pixel (24, 10), FITS numbering:
    columns 19-29, rows 7-13."""
    row, _header = public_image
    response = fetch(ibe, science_path(row, "sciimg.fits"), center="24,10px", size="11,7px",
                     gzip="false")
    cutout = fits.open(io.BytesIO(response.content))
    assert source_range(cutout[0].header) == ("19 29", "7 13")
    same_cutout(cutout, soda(ibe, int(row["pid"]), ibe.member, "19 29", "7 13"))
    # Even sizes: 10 pixels centred on 24.5 are 20-29, 6 centred on 10.5 are 8-13.
    even = fits.open(io.BytesIO(fetch(ibe, science_path(row, "sciimg.fits"),
                                      center="24.5,10.5px", size="10,6px",
                                      gzip="false").content))
    assert source_range(even[0].header) == ("20 29", "8 13")


def test_a_cutout_partly_outside_is_clipped_and_one_outside_refused(ibe, public_image) -> None:
    row, _header = public_image
    path = science_path(row, "sciimg.fits")
    # 10 pixels centred on 2.5 and 47.5 are -2..7 and 43..52, clipped to the 48 x 48 image.
    clipped = fits.open(io.BytesIO(fetch(ibe, path, center="2.5,47.5px", size="10px",
                                         gzip="false").content))
    assert source_range(clipped[0].header) == ("1 7", "43 48")
    same_cutout(clipped, soda(ibe, int(row["pid"]), ibe.member, "1 7", "43 48"))
    outside = fetch(ibe, path, center=f"{float(row['ra']) + 1},{row['dec']}", size="10arcsec")
    assert outside.status_code == 400 and "does not intersect" in outside.text


def test_cutouts_are_gzipped_unless_asked_not_to_be(ibe, public_image) -> None:
    row, _header = public_image
    path = science_path(row, "sciimg.fits")
    params = {"center": f"{row['ra']},{row['dec']}", "size": "0.004"}
    packed = fetch(ibe, path, **params)
    plain = fetch(ibe, path, gzip="false", **params)
    assert packed.headers["Content-Type"] == "application/gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert int(plain.headers["Content-Length"]) == len(plain.content)


@pytest.mark.parametrize(("params", "words"), [
    ({"center": "1,2"}, "both center and size"),
    ({"size": "1"}, "both center and size"),
    ({"center": "1,2", "size": "0"}, "above zero"),
    ({"center": "1,2", "size": "-3arcsec"}, "above zero"),
    ({"center": "1,91", "size": "1"}, "declination"),
    ({"center": "1,2parsec", "size": "1"}, "unknown unit"),
    ({"center": "1,2", "size": "1,2,3"}, "size"),
    ({"center": "1,2", "size": "1", "gzip": "maybe"}, "gzip"),
    ({"center": "1,2", "size": "1", "radius": "3"}, "Unknown parameter"),
])
def test_bad_cutout_requests_are_refused(ibe, public_image, params, words) -> None:
    row, _header = public_image
    response = fetch(ibe, science_path(row, "sciimg.fits"), **params)
    assert response.status_code == 400 and words in response.text
    assert response.headers["Content-Type"].startswith("text/plain")


def test_a_catalog_has_no_cutout(ibe, public_image) -> None:
    row, _header = public_image
    response = fetch(ibe, science_path(row, "psfcat.fits"), center=f"{row['ra']},{row['dec']}",
                     size="10arcsec")
    assert response.status_code == 400 and "no image" in response.text


def test_files_urls_cut_out_too_and_refuse_other_parameters(ibe, database,
                                                            public_image) -> None:
    """Before: /files/<path>?center=..&size=.. sent the whole file, silently."""
    row, _header = public_image
    local, sha256 = stored(database, "science_images", int(row["pid"]), "sciimg")
    params = {"center": f"{row['ra']},{row['dec']}", "size": "15arcsec", "gzip": "false"}
    from_files = requests.get(f"{ibe.base}/files/{local}", params=params, timeout=60)
    from_ibe = fetch(ibe, science_path(row, "sciimg.fits"), **params)
    assert from_files.status_code == 200 and from_files.content == from_ibe.content
    assert hashlib.sha256(from_files.content).hexdigest() != sha256.strip()
    refused = requests.get(f"{ibe.base}/files/{local}", params={"cutout": "yes"}, timeout=60)
    assert refused.status_code == 400 and "Unknown parameter" in refused.text
    whole = requests.get(f"{ibe.base}/files/{local}", timeout=60)
    assert hashlib.sha256(whole.content).hexdigest() == sha256.strip()


def test_new_night_paths_use_the_new_nights_date(ibe) -> None:
    row = visible_science(ibe, ibe.member, f"nid={ibe.nids['new']}")[0]
    assert science_path(row, "sciimg.fits").startswith(f"sci/{NEW_NIGHT[:4]}/")
