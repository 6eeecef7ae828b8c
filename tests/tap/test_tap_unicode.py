"""Text that is not ASCII survives every output format: an ADQL string literal, an uploaded
``unicodeChar`` column, an uploaded ``char`` value, free-text schema columns.

VOTable 1.4 section 2.1: ``char`` is ASCII, ``unicodeChar`` is UTF-16 (BMP) in BINARY/BINARY2
(section 5.4) and the characters themselves in TABLEDATA; so such columns are declared
``unicodeChar``. FITS ``A`` columns carry UTF-8 with the width in bytes (vo/votable/fits.py).
Each result is read back by astropy, and the VOTables by STILTS too (votlint, and tpipe, which
decodes them independently of astropy).
"""

from __future__ import annotations

import io
import subprocess
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

OMEGA = "Ωmega ✓ ü"
STRASSE = "Straße"
UPLOAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>
<FIELD name="id" datatype="int"/>
<FIELD name="uc" datatype="unicodeChar" arraysize="*"/>
<FIELD name="c" datatype="char" arraysize="*"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>{OMEGA}</TD><TD>{STRASSE}</TD></TR>
<TR><TD>2</TD><TD>plain</TD><TD>ascii</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
""".encode()
QUERY = (f"SELECT t.id, t.uc, t.c, '{OMEGA}' AS lit, t.c || ' ✓' AS joined, LOWER(t.c) AS low,"
         " CAST(t.c AS VARCHAR(5)) AS cut FROM TAP_UPLOAD.t AS t ORDER BY t.id")
EXPECTED = [(1, OMEGA, STRASSE, OMEGA, STRASSE + " ✓", "straße", "Straß"),
            (2, "plain", "ascii", OMEGA, "ascii ✓", "ascii", "ascii")]
COLUMNS = ["id", "uc", "c", "lit", "joined", "low", "cut"]
FORMATS = ["votable", "votable/td", "csv", "tsv", "fits", "parquet", "ipac"]


def _query(tap, response_format: str) -> requests.Response:
    response = requests.post(f"{tap.url}/sync", timeout=60, data={
        "LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": response_format,
        "UPLOAD": "t,param:table"}, files={"table": ("t.vot", UPLOAD)})
    assert response.status_code == 200, response.text
    return response


def _astropy_rows(response_format: str, body: bytes) -> list[tuple]:
    if response_format.startswith("votable"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no W55 "non-ASCII in char" or other complaint
            table = parse_single_table(io.BytesIO(body)).to_table()
    elif response_format == "ipac":
        table = Table.read(body.decode("utf-8"), format="ascii.ipac", guess=False)
    elif response_format in ("csv", "tsv"):
        table = Table.read(body.decode("utf-8"), format="ascii.csv" if response_format == "csv"
                           else "ascii.tab")
    elif response_format == "fits":
        with fits.open(io.BytesIO(body)) as hdus:
            hdus.verify("exception")
        table = Table.read(io.BytesIO(body), format="fits", character_as_bytes=False)
    else:
        table = Table(pq.read_table(io.BytesIO(body)).to_pydict())
    return [tuple(int(v) if name == "id" else str(v) for name, v in zip(COLUMNS, row,
                                                                      strict=True))
            for row in table.iterrows(*COLUMNS)]


@pytest.mark.parametrize("response_format", FORMATS)
def test_unicode_text_round_trips_through_astropy(tap, response_format) -> None:
    """Issue 13 item 2: 'Ωmega ✓ ü' came back as '?mega ? ?' in VOTable and FITS."""
    body = _query(tap, response_format).content
    assert _astropy_rows(response_format, body) == EXPECTED


@pytest.mark.parametrize("response_format", ["votable", "votable/td"])
def test_unicode_columns_are_declared_unicodechar_and_stilts_reads_them(
        tap, tmp_path: Path, response_format) -> None:
    body = _query(tap, response_format).content
    table = parse_single_table(io.BytesIO(body))
    datatypes = {field.name: field.datatype for field in table.fields}
    assert datatypes == {"id": "int", "uc": "unicodeChar", "c": "unicodeChar",
                         "lit": "unicodeChar", "joined": "unicodeChar", "low": "unicodeChar",
                         "cut": "unicodeChar"}
    assert table.get_field_by_id_or_name("cut").arraysize == "5*"  # characters, as PostgreSQL
    path = tmp_path / "result.vot"
    path.write_bytes(body)
    linted = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert not [line for line in linted.stdout.splitlines()
                if line.startswith(("ERROR", "WARNING"))], linted.stdout
    copied = subprocess.run(["stilts", "tpipe", f"in={path}", "ofmt=csv", "out=-"],
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert copied.returncode == 0, copied.stderr
    rows = Table.read(copied.stdout.decode("utf-8"), format="ascii.csv")
    assert [str(v) for v in rows["lit"]] == [OMEGA, OMEGA]
    assert [str(v) for v in rows["c"]] == [STRASSE, "ascii"]
    assert [str(v) for v in rows["uc"]] == [OMEGA, "plain"]


def test_ascii_text_stays_char(tap) -> None:
    """Only what may hold other characters changes: ASCII literals and the archive's own
    identifier columns stay char, as TAP_SCHEMA declares them."""
    response = requests.get(f"{tap.url}/sync", timeout=60, params={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 'abc' AS a, table_name, description "
                                  "FROM TAP_SCHEMA.tables"})
    fields = {f.name: f.datatype for f in parse_single_table(io.BytesIO(response.content)).fields}
    assert fields == {"a": "char", "table_name": "char", "description": "unicodeChar"}


def test_free_text_schema_columns_are_unicodechar_in_tap_schema(tap) -> None:
    """What TAP_SCHEMA declares is what a query of the column returns (taplint compares)."""
    service = pyvo.dal.TAPService(tap.url)
    declared = service.run_sync(
        "SELECT column_name, datatype FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'survey.programs'").to_table()
    types = dict(zip((str(n) for n in declared["column_name"]),
                     (str(t) for t in declared["datatype"]), strict=True))
    assert types["name"] == types["description"] == "unicodeChar"
    assert types["release_rule"] == "char"
    returned = service.run_sync("SELECT TOP 1 name, description, release_rule "
                                "FROM survey.programs")
    assert [f.datatype for f in returned.fielddescs] == ["unicodeChar", "unicodeChar", "char"]


def test_pyvo_uploads_and_reads_back_unicode(tap) -> None:
    """pyvo writes a str column with non-ASCII text as unicodeChar; it comes back whole."""
    service = pyvo.dal.TAPService(tap.url)
    targets = Table({"name": [OMEGA, STRASSE]})
    result = service.run_sync(
        f"SELECT name, name || ' ✓' AS marked, '{OMEGA}' AS lit FROM TAP_UPLOAD.targets",
        uploads={"targets": targets}).to_table()
    assert sorted(str(v) for v in result["name"]) == sorted([OMEGA, STRASSE])
    assert sorted(str(v) for v in result["marked"]) == sorted([OMEGA + " ✓", STRASSE + " ✓"])
    assert {str(v) for v in result["lit"]} == {OMEGA}
