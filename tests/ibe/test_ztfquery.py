"""ztfquery from PyPI, unchanged, against a running SkyVault: only its base URL constants point
here instead of IRSA (the login URL, IBE's search and data roots) and its account file is a
temporary one. It signs on with IRSA's josso fields, searches the metadata
(``ZTFQuery().load_metadata``), downloads science, mask and catalog files and reference images,
and cutouts, with its own URL building (ztfquery/buildurl.py) from the metadata's columns.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from ibe_support import DATA, FIELD, OLD_NIGHT, SEARCH
from ibe_truth import expected, images

from skyvault.db import Database


@pytest.fixture
def ztfquery_here(ibe, tmp_path, monkeypatch):
    """ztfquery's module constants pointed at SkyVault, its account file in tmp_path."""
    import ztfquery.buildurl
    import ztfquery.io
    import ztfquery.metasearch

    monkeypatch.setattr(ztfquery.io, "LOGIN_URL", f"{ibe.base}/login")
    monkeypatch.setattr(ztfquery.io, "_ENCRYPT_FILE", str(tmp_path / "ztfquery-account"))
    monkeypatch.setattr(ztfquery.metasearch, "SEARCH_BASEURL", f"{ibe.base}{SEARCH}/")
    monkeypatch.setattr(ztfquery.buildurl, "DATA_BASEURL", f"{ibe.base}{DATA}/")
    monkeypatch.setattr(ztfquery.buildurl, "DEFAULT_SOURCE", f"{ibe.base}{DATA}/")
    ztfquery.io.set_account("irsa", username=ibe.member.username, password=ibe.member.password,
                            test=False)
    return tmp_path


def checksums(database: Database, table: str, product: str,
              pattern: str = f"%_{FIELD:06d}_%") -> dict[str, str]:
    """Archived checksum of each file of a product (of field 1885), by file name."""
    with database.admin() as connection:
        return {Path(path).name: sha.strip() for path, sha in connection.execute(
            "SELECT path, sha256 FROM survey.files WHERE product = %s AND image_table = %s"
            " AND path LIKE %s", (product, table, pattern))}


def test_login_metadata_and_downloads(ibe, database, ztfquery_here) -> None:
    from ztfquery import io as ztfio
    from ztfquery.query import ZTFQuery

    cookies = ztfio.get_cookie(ibe.member.username, ibe.member.password)
    assert "skyvault_session" in cookies

    sky = images(database, "sci", f"field = {FIELD}")
    ra, dec = sky[0].centre
    zquery = ZTFQuery()
    zquery.load_metadata(radec=[ra, dec], size=0.002)
    metatable = zquery.metatable
    want = expected(sky, ibe.member.programs, ra, dec, 0.002, 0.002)
    assert want and set(metatable["pid"]) == want
    assert zquery.datakind == "sci"

    folder = ztfquery_here / "downloads"
    for suffix, product in (("sciimg.fits", "sciimg"), ("mskimg.fits", "mskimg"),
                            ("psfcat.fits", "psfcat"), ("sexcat.fits", "sexcat")):
        # auth: one sign-on for the lot (without it ztfquery signs on again for each file)
        zquery.download_data(suffix, download_dir=str(folder / product), show_progress=False,
                             auth=(ibe.member.username, ibe.member.password))
        archived = checksums(database, "science_images", product)
        got = sorted((folder / product).iterdir())
        assert len(got) == len(metatable)
        for path in got:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == archived[path.name]


def test_cutouts(ibe, database, ztfquery_here) -> None:
    from ztfquery.query import ZTFQuery

    sky = images(database, "sci", f"field = {FIELD}")
    ra, dec = sky[0].centre
    zquery = ZTFQuery()
    zquery.load_metadata(radec=[ra, dec], size=0.002, sql_query="filtercode='zg'")
    assert len(zquery.metatable)
    folder = ztfquery_here / "cutouts"
    zquery.download_data("sciimg.fits", cutouts=True, radec=[ra, dec], cutout_size=20,
                         download_dir=str(folder), show_progress=False)
    got = sorted(folder.iterdir())
    assert len(got) == len(zquery.metatable)
    urls = zquery.get_data_path(suffix="sciimg.fits", source="irsa")
    for path, url in zip(got, sorted(urls), strict=True):
        assert Path(url).name == path.name
        with fits.open(path) as hdus:
            data = hdus[0].data
            assert data.shape == (20, 20)  # 20 arcsec at 1.012 arcsec per pixel
        import requests

        direct = requests.get(url, params={"center": f"{ra},{dec}", "size": "20arcsec",
                                           "gzip": "false"}, headers=ibe.member.headers,
                              timeout=60)
        with fits.open(io.BytesIO(direct.content)) as hdus:
            assert np.array_equal(hdus[0].data, data)


def test_references_and_calibration_frames(ibe, database, ztfquery_here) -> None:
    from ztfquery.query import ZTFQuery

    refs = ZTFQuery()
    refs.load_metadata(kind="ref", sql_query=f"field={FIELD} AND ccdid=1")
    assert refs.datakind == "ref" and len(refs.metatable) == 4
    folder = ztfquery_here / "refs"
    refs.download_data("refimg.fits", download_dir=str(folder), show_progress=False,
                       auth=(ibe.member.username, ibe.member.password))
    archived = checksums(database, "reference_images", "refimg")
    for path in sorted(folder.iterdir()):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == archived[path.name]

    cals = ZTFQuery()
    cals.load_metadata(kind="cal", sql_query=f"nid={ibe.nids['old']} AND ccdid=2",
                       caltype="bias")
    assert set(cals.metatable["caltype"]) == {"bias"} and len(cals.metatable) == 4
    folder = ztfquery_here / "cal"
    cals.download_data(download_dir=str(folder), show_progress=False,
                       auth=(ibe.member.username, ibe.member.password))
    archived = checksums(database, "calibration_images", "bias",
                         f"cal/{OLD_NIGHT[:4]}/{OLD_NIGHT[5:7]}{OLD_NIGHT[8:]}/%")
    got = sorted(folder.iterdir())
    assert len(got) == 4
    for path in got:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == archived[path.name]
