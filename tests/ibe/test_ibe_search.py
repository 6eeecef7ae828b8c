"""IBE's image search, ``/ibe/search/ztf/products/{sci,raw,cal,ref}``, as IRSA documents it
(https://irsa.ipac.caltech.edu/docs/program_interface/ztf_api.html): POS, SIZE, INTERSECT, mcen,
WHERE, COLUMNS, ct and FORMAT=METADATA; IRSA's column names
(https://irsa.ipac.caltech.edu/docs/program_interface/ztf_metadata.html).

Every spatial answer is checked against an independent computation (ibe_truth: rows read as
the owner, the visibility rule written out, the search polygon and the predicates computed with
astropy's gnomonic projection and shapely).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import requests
from astropy.io import ascii as astropy_ascii
from astropy.io.votable import parse_single_table
from astropy.table import Table
from ibe_support import DEC, FIELD, RA, SEARCH
from ibe_truth import expected, images, most_centred
from lxml import etree

from skyvault.db import Database
from skyvault.ingest.synthetic import PIXEL_SCALE

ANYONE = frozenset()
STEP = 48 * PIXEL_SCALE
"""A quadrant's side (the ingested images are 48 pixels square)."""
COS = math.cos(math.radians(DEC))

# IRSA's columns of each table (ztf.ztf_current_meta_*), in IRSA's order, as ztfquery lists them
# (ztfquery/metasearch.py QUERIABLE_FIELD) without 'poly'; raw adds the centre and corners.
IRSA_COLUMNS = {
    "sci": ["ra", "dec", "infobits", "field", "ccdid", "qid", "rcid", "fid", "filtercode", "pid",
            "nid", "expid", "itid", "imgtype", "imgtypecode", "obsdate", "obsjd", "exptime",
            "filefracday", "seeing", "airmass", "moonillf", "moonesb", "maglimit", "crpix1",
            "crpix2", "crval1", "crval2", "cd11", "cd12", "cd21", "cd22", "ra1", "dec1", "ra2",
            "dec2", "ra3", "dec3", "ra4", "dec4", "ipac_pub_date", "ipac_gid", "meta_id"],
    "raw": ["infobits", "field", "ccdid", "fid", "filtercode", "nid", "expid", "itid",
            "imgtype", "imgtypecode", "filefracday", "obsdate", "obsjd", "exptime", "seeing",
            "airmass", "moonillf", "moonesb", "telra", "teldec", "ccdrot", "ra", "dec", "ra1",
            "dec1", "ra2", "dec2", "ra3", "dec3", "ra4", "dec4", "ipac_pub_date", "ipac_gid",
            "meta_id"],
    "ref": ["infobits", "field", "ccdid", "qid", "rcid", "fid", "filtercode", "rfid", "nframes",
            "maglimit", "startobsdate", "endobsdate", "crpix1", "crpix2", "crval1", "crval2",
            "cd11", "cd12", "cd21", "cd22", "ra", "dec", "ra1", "dec1", "ra2", "dec2", "ra3",
            "dec3", "ra4", "dec4", "ipac_pub_date", "ipac_gid", "meta_id"],
    "cal": ["caltype", "ccdid", "qid", "rcid", "fid", "filtercode", "cid", "nightdate",
            "startobsdate", "endobsdate", "nid", "nframes", "ipac_pub_date", "meta_id"],
}
KEY_COLUMN = {"sci": "pid", "raw": "meta_id", "ref": "rfid", "cal": "cid"}


def search(ibe, table: str, who=None, **params) -> requests.Response:
    return requests.get(f"{ibe.base}{SEARCH}/{table}", params=params, timeout=60,
                        headers=who.headers if who else {})


def csv_table(response: requests.Response) -> Table:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv;header=present"
    return Table.read(response.text, format="ascii.csv")


def keys(ibe, table: str, who=None, **params) -> set[int]:
    found = csv_table(search(ibe, table, who, ct="csv", COLUMNS=KEY_COLUMN[table], **params))
    return {int(v) for v in found[KEY_COLUMN[table]]} if len(found) else set()


def error_of(response: requests.Response) -> str:
    """The message of an IBE error: a VOTable with QUERY_STATUS=ERROR, never a stack trace."""
    assert response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    root = etree.fromstring(response.content)
    info = root.find(".//{*}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    assert "Traceback" not in response.text
    return info.text or ""


@pytest.fixture(scope="module")
def sky(database: Database, ibe):
    return {table: images(database, table, f"field = {FIELD}") for table in ("sci", "raw", "ref")}


def quadrant(ccd: int, qid: int) -> tuple[float, float]:
    """The centre of a quadrant of the ingested field (ingest/synthetic.py quadrant_centre)."""
    column = {1: 1, 2: 0, 3: 0, 4: 1}[qid]
    row = {1: 1, 2: 1, 3: 0, 4: 0}[qid] + 2 * (ccd - 1)
    return RA + (column - 0.5) * STEP / COS, DEC + (row - 0.5) * STEP


@pytest.mark.parametrize("table", ["sci", "raw", "ref", "cal"])
def test_each_table_has_irsas_columns(ibe, table) -> None:
    where = f"field = {FIELD}" if table != "cal" else f"nid = {ibe.nids['old']}"
    found = csv_table(search(ibe, table, ibe.member, WHERE=where, ct="csv"))
    assert found.colnames == IRSA_COLUMNS[table]
    assert len(found) > 0


def test_ztfquery_tells_the_kinds_apart_by_their_columns(ibe) -> None:
    """ztfquery.query.guess_kind_from_metatable: caltype -> cal, startobsdate -> ref,
    rcid -> sci, expid -> raw (in that order)."""
    from ztfquery.query import guess_kind_from_metatable

    for table in ("sci", "raw", "ref", "cal"):
        where = f"field = {FIELD}" if table != "cal" else f"nid = {ibe.nids['old']}"
        found = csv_table(search(ibe, table, ibe.member, WHERE=where, ct="csv")).to_pandas()
        assert guess_kind_from_metatable(found) == table


POINTS = [
    quadrant(1, 1), quadrant(2, 3),
    # On the line between two quadrants' centres, off the edge they share.
    (RA + 0.2 * STEP / COS, DEC + 0.5 * STEP),
    # Outside the field.
    (RA + 3 * STEP / COS, DEC), (RA, DEC - 2 * STEP),
]


@pytest.mark.parametrize("point", range(len(POINTS)))
@pytest.mark.parametrize("table", ["sci", "raw", "ref"])
def test_point_searches_return_the_images_containing_the_point(ibe, sky, table, point) -> None:
    ra, dec = POINTS[point]
    for who, programs in ((None, ANYONE), (ibe.member, ibe.member.programs),
                          (ibe.outsider, ibe.outsider.programs)):
        want = expected(sky[table], programs, ra, dec)
        assert keys(ibe, table, who, POS=f"{ra},{dec}") == want
        for intersect in ("COVERS", "CENTER", "OVERLAPS"):  # the same for a point
            assert keys(ibe, table, who, POS=f"{ra},{dec}", INTERSECT=intersect) == want
        assert keys(ibe, table, who, POS=f"{ra},{dec}", INTERSECT="ENCLOSED") == set()
        # A size of zero is a point (IRSA).
        assert keys(ibe, table, who, POS=f"{ra},{dec}", SIZE="0") == want
    assert expected(sky[table], ibe.member.programs, *POINTS[0]), "the test needs hits"


BOXES = [
    # Inside one quadrant: COVERS by it, ENCLOSES nothing.
    (*quadrant(1, 1), 0.3 * STEP, 0.2 * STEP),
    # Across two quadrants: neither COVERS it.
    (RA, DEC + 0.5 * STEP, 0.5 * STEP, 0.2 * STEP),
    # Around the whole field: ENCLOSES every image.
    (RA, DEC + STEP, 5 * STEP, 7 * STEP),
    # Around the two lower quadrants of CCD 1 only, wider than tall.
    (RA, DEC - 0.5 * STEP, 2.2 * STEP, 1.1 * STEP),
    # Overlapping one corner of the field.
    (RA + 1.1 * STEP / COS, DEC - 1.1 * STEP, 0.5 * STEP, 0.5 * STEP),
]


@pytest.mark.parametrize("intersect", ["OVERLAPS", "COVERS", "ENCLOSED", "CENTER"])
@pytest.mark.parametrize("table", ["sci", "ref"])
def test_box_searches_follow_irsas_intersect_definitions(ibe, sky, table, intersect) -> None:
    """COVERS: X contains S; ENCLOSED: S contains X; CENTER: X contains S's centre; OVERLAPS:
    S and X meet (S the search region, X an image; IRSA's ZTF API page)."""
    nonempty = 0
    for ra, dec, width, height in BOXES:
        want = expected(sky[table], ibe.member.programs, ra, dec, width, height, intersect)
        got = keys(ibe, table, ibe.member, POS=f"{ra},{dec}", SIZE=f"{width},{height}",
                   INTERSECT=intersect)
        assert got == want, (ra, dec, width, height)
        nonempty += bool(want)
    assert nonempty, "the boxes must give this predicate something to find"


def test_the_predicates_differ_on_these_boxes(ibe, sky) -> None:
    """So that the test above tells the four definitions apart."""
    for ra, dec, width, height in BOXES[:3]:
        answers = {i: frozenset(expected(sky["sci"], ibe.member.programs, ra, dec, width, height,
                                         i)) for i in ("OVERLAPS", "COVERS", "ENCLOSED")}
        assert len(set(answers.values())) >= 2


def test_one_size_is_width_and_height(ibe, sky) -> None:
    ra, dec = RA, DEC + 0.5 * STEP
    size = 0.8 * STEP
    assert keys(ibe, "sci", ibe.member, POS=f"{ra},{dec}", SIZE=f"{size}") == \
        keys(ibe, "sci", ibe.member, POS=f"{ra},{dec}", SIZE=f"{size},{size}") == \
        expected(sky["sci"], ibe.member.programs, ra, dec, size, size)


def test_mcen_returns_the_most_centred_image(ibe, sky) -> None:
    for ra, dec in POINTS[:3]:
        got = keys(ibe, "sci", ibe.member, POS=f"{ra},{dec}", mcen="")
        want = most_centred(sky["sci"], ibe.member.programs, ra, dec)
        assert len(got) == 1 and got <= want
    # mcen is ignored when SIZE is given and not zero (IRSA).
    ra, dec = POINTS[0]
    assert keys(ibe, "sci", ibe.member, POS=f"{ra},{dec}", SIZE="0.001", mcen="1") == \
        expected(sky["sci"], ibe.member.programs, ra, dec, 0.001, 0.001)


def test_where_filters_like_sql_and_reads_only_visible_rows(ibe, database) -> None:
    where = f"field={FIELD} AND qid IN (1,3) AND filtercode='zr' AND ccdid BETWEEN 1 AND 2"
    for who, programs in ((None, ANYONE), (ibe.member, ibe.member.programs),
                          (ibe.outsider, ibe.outsider.programs)):
        with database.admin() as connection:
            want = {pid for pid, programid, release in connection.execute(
                "SELECT pid, programid, archive.release_date_of(programid, obsjd)"
                " FROM survey.science_images"
                " WHERE field = %s AND qid IN (1, 3) AND filtercode = 'zr' AND is_current = 1",
                (FIELD,)) if programid in programs
                or (release is not None and release <= _now(connection))}
        assert keys(ibe, "sci", who, WHERE=where) == want
    assert want, "the outsider sees program 3's images"


def _now(connection):
    return connection.execute("SELECT now()").fetchone()[0]


@pytest.mark.parametrize("where", [
    "1=1) UNION SELECT pid FROM survey.science_images WHERE (1=1",
    "pid IN (SELECT pid FROM survey.science_images)",
    "EXISTS (SELECT 1 FROM survey.files)",
    "sin(ra) > 0",
    "1=1; DROP TABLE survey.files",
    "field = 1885 ORDER BY pid",
    "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 41.3, -7.7, 1)) = 1",
    "no_such_column = 1",
    "field = 'a' ||",
    "release_date > 0",
])
def test_a_where_that_is_not_a_filter_is_refused(ibe, where) -> None:
    """WHERE is parsed as an ADQL search condition, checked against IRSA's rule (no function
    calls, no sub-queries) and translated as TAP translates ADQL: never pasted into SQL."""
    message = error_of(search(ibe, "sci", WHERE=where))
    assert message.startswith("WHERE")


def test_where_alone_is_a_search_and_pos_is_optional_with_it(ibe) -> None:
    assert keys(ibe, "cal", ibe.member, WHERE=f"nid={ibe.nids['new']} AND caltype='bias'")


def test_columns_selects_and_orders(ibe) -> None:
    found = csv_table(search(ibe, "sci", ibe.member, WHERE=f"field={FIELD}", ct="csv",
                             COLUMNS="filefracday, FIELD,ccdid,qid,filtercode,imgtypecode"))
    assert found.colnames == ["filefracday", "field", "ccdid", "qid", "filtercode",
                              "imgtypecode"]
    assert set(found["imgtypecode"]) == {"o"} and set(found["field"]) == {FIELD}


@pytest.mark.parametrize("form", ["csv", "tsv", "ipac_table", "votable", "html"])
def test_every_output_format_holds_the_same_rows(ibe, form) -> None:
    params = {"WHERE": f"field={FIELD}", "COLUMNS": "pid,obsjd,filtercode,moonesb,obsdate"}
    reference = csv_table(search(ibe, "sci", ibe.member, ct="csv", **params))
    response = search(ibe, "sci", ibe.member, ct=form, **params)
    assert response.status_code == 200
    body = response.text
    if form == "csv":
        table = reference
    elif form == "tsv":
        assert response.headers["Content-Type"] == "text/tab-separated-values"
        table = Table.read(body, format="ascii.tab")
    elif form == "ipac_table":
        assert response.headers["Content-Type"] == "text/plain;charset=utf-8"
        table = astropy_ascii.read(body, format="ipac", guess=False)
    elif form == "votable":
        assert response.headers["Content-Type"].startswith("application/x-votable+xml")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = parse_single_table(io.BytesIO(response.content)).to_table()
    else:
        assert response.headers["Content-Type"] == "text/html;charset=utf-8"
        table = Table.read(body, format="ascii.html")
    assert len(table) == len(reference) > 0
    assert [int(v) for v in table["pid"]] == [int(v) for v in reference["pid"]]
    assert np.allclose(np.asarray(table["obsjd"], float), np.asarray(reference["obsjd"], float),
                       rtol=0, atol=0)
    assert [str(v) for v in table["filtercode"]] == [str(v) for v in reference["filtercode"]]
    # moonesb is not measured: NULL in every format.
    assert all(np.ma.is_masked(v) or v == "" for v in table["moonesb"])


def test_the_default_format_is_an_ipac_table(ibe) -> None:
    """IBE's default (astroquery's Ibe reads it with Table.read(format='ipac'))."""
    response = search(ibe, "sci", ibe.member, WHERE=f"field={FIELD}")
    table = Table.read(response.text, format="ipac", guess=False)
    assert table.colnames == IRSA_COLUMNS["sci"] and len(table) > 0


def test_format_metadata_describes_the_columns(ibe) -> None:
    table = csv_table(search(ibe, "ref", FORMAT="METADATA", ct="csv"))
    assert list(table["name"]) == IRSA_COLUMNS["ref"]
    units = dict(zip(table["name"], table["unit"], strict=True))
    assert units["ra"] == "deg" and np.ma.is_masked(units["rfid"])


def test_astroquery_ibe_reads_the_search(ibe, sky, database) -> None:
    """astroquery's IBE client, pointed at SkyVault, unchanged: IPAC table output, lower-case
    where and columns, INTERSECT always sent."""
    from astropy.coordinates import SkyCoord
    from astroquery.ipac.irsa.ibe import IbeClass

    client = IbeClass()
    client.URL = f"{ibe.base}/ibe/"
    ra, dec = quadrant(1, 1)
    table = client.query_region(coordinate=SkyCoord(ra, dec, unit="deg"), mission="ztf",
                                dataset="products", table="sci", columns="pid,filefracday",
                                where="filtercode='zg'", intersect="COVERS")
    with database.admin() as connection:
        zg = {row[0] for row in connection.execute(
            "SELECT pid FROM survey.science_images WHERE field = %s AND filtercode = 'zg'",
            (FIELD,))}
    want = expected(sky["sci"], ANYONE, ra, dec, intersect="COVERS") & zg
    assert want and {int(v) for v in table["pid"]} == want


@pytest.mark.parametrize(("table", "params", "status", "words"), [
    ("deep", {"POS": "1,2"}, 404, "No table"),
    ("sci", {}, 400, "POS is required"),
    ("sci", {"POS": "1"}, 400, "POS"),
    ("sci", {"POS": "1,95"}, 400, "declination"),
    ("sci", {"POS": "nan,1"}, 400, "finite"),
    ("sci", {"POS": "1,2", "SIZE": "-1"}, 400, "negative"),
    ("sci", {"POS": "1,2", "SIZE": "1,2,3"}, 400, "SIZE"),
    ("sci", {"POS": "1,2", "SIZE": "1,0"}, 400, "SIZE"),
    ("sci", {"POS": "1,2", "SIZE": "100"}, 400, "SIZE"),
    ("sci", {"POS": "1,2", "INTERSECT": "INSIDE"}, 400, "INTERSECT"),
    ("sci", {"SIZE": "1", "WHERE": "pid=1"}, 400, "only valid with POS"),
    ("sci", {"POS": "1,2", "ct": "pdf"}, 400, "ct"),
    ("sci", {"POS": "1,2", "COLUMNS": "pid,nope"}, 400, "COLUMNS"),
    ("sci", {"POS": "1,2", "RADIUS": "1"}, 400, "Unknown parameter"),
    ("sci", {"POS": "1,2", "FORMAT": "fits"}, 400, "FORMAT"),
    ("cal", {"POS": "1,2"}, 400, "no position"),
])
def test_bad_requests_get_an_ibe_error(ibe, table, params, status, words) -> None:
    response = search(ibe, table, **params)
    assert response.status_code == status
    assert words in error_of(response)


def test_repeated_parameters_are_refused(ibe) -> None:
    response = requests.get(f"{ibe.base}{SEARCH}/sci?POS=1,2&POS=3,4", timeout=30)
    assert "POS" in error_of(response)
