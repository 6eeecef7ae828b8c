"""The result writers against outside validators and readers (no database needed).

Every VOTable is parsed by astropy in pedantic mode (warnings are errors), passes
``astropy.io.votable.validate`` and STILTS votlint, and gives back the values written: NULLs,
NaN, infinities, integer extremes, XML-special and non-ASCII text, timestamps, arrays.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table
from votable_support import (
    FIELDS,
    POLYGON,
    POLYGONS,
    ROWS,
    astropy_table,
    astropy_validates,
    same_float,
    same_time,
    votlint,
)

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import (
    OUTPUT_FORMATS,
    ColumnBatch,
    UnknownFormat,
    WriteStats,
    error_votable,
    lookup_format,
    metadata_votable,
    scs_error_votable,
    write_csv,
    write_fits,
    write_parquet,
    write_tsv,
    write_votable,
)

INFOS = [("QUERY", "SELECT * FROM survey.sources WHERE mag < 20 & ra > 1", None),
         ("standardID", "ivo://ivoa.net/std/TAP", None)]


def document(serialization: str, batches, **options) -> bytes:
    return b"".join(write_votable(FIELDS, batches, serialization=serialization, infos=INFOS,
                                  **options))


def batches_of(rows, size):
    return [ColumnBatch.from_rows(FIELDS, rows[i:i + size]) for i in range(0, len(rows), size)]


def check_values(table, serialization: str, rows=ROWS) -> None:
    data = table.array
    assert len(data) == len(rows)
    for index, row in enumerate(rows):
        (ident, ra, mag, ccd, fid, ok, name, label, band, when, pos, flags) = row
        for column, expected in (("id", ident), ("ccd", ccd), ("fid", fid), ("ok", ok)):
            cell = data[column][index]
            assert (np.ma.is_masked(cell) if expected is None else cell == expected), column
        for column, expected in (("ra", ra), ("mag", mag)):
            cell = data[column][index]
            if expected is None or np.isnan(expected):  # astropy masks NaN doubles too
                assert np.ma.is_masked(cell) or np.isnan(cell)
            else:
                assert same_float(cell, np.float32(expected) if column == "mag" else expected)
        for column, expected in (("name", name), ("label", label), ("band", band)):
            text = data[column][index]
            want = expected or ""
            if serialization == "TABLEDATA":  # astropy strips the (significant) blanks of TDs
                assert text == want.strip(), column
            else:
                assert text == want, column
        assert same_time(data["obs_time"][index], when)
        cell = data["pos"][index]
        if pos is None:
            assert np.all(np.ma.getmaskarray(cell)) or np.all(np.isnan(cell))
        else:
            assert list(np.ma.getdata(cell)) == pos
        assert list(np.ma.getdata(data["flags"][index])) == (flags or [])


@pytest.mark.parametrize("serialization", ["BINARY2", "TABLEDATA"])
def test_votable_validates_and_round_trips(serialization: str, tmp_path: Path) -> None:
    """VOTable 1.4 sections 5.1 (TABLEDATA) and 5.5 (BINARY2); DALI 1.1 section 4.4."""
    # Uneven batches: base64 groups of 57 bytes span batch boundaries.
    body = document(serialization, batches_of(ROWS, 2))
    path = tmp_path / "result.vot"
    path.write_bytes(body)
    assert votlint(path) == ""
    assert astropy_validates(body)
    table = astropy_table(body)
    check_values(table, serialization)
    text = body.decode("utf-8")
    # QUERY_STATUS=OK before the TABLE, the INFOs echoed, nothing after the TABLE.
    assert re.search(r'<RESOURCE type="results">\s*<INFO name="QUERY_STATUS" value="OK"/>', text)
    assert '<INFO name="QUERY" value="SELECT * FROM survey.sources WHERE mag &lt; 20 &amp; ' \
           'ra &gt; 1"/>' in text
    assert re.search(r"</TABLE>\s*</RESOURCE>", text)
    field = table.get_field_by_id("id")
    assert field.ucd == "meta.id;meta.main" and field.description == "Row & <identifier>"
    assert table.get_field_by_id("ra").utype == "obscore:Char.x"
    assert table.get_field_by_id("obs_time").xtype == "timestamp"
    if serialization == "TABLEDATA":
        assert "<TD> lead and trail </TD>" in text  # blanks kept: they are significant
        assert "<TD>a&lt;b &amp; c&gt;\"d\"&#13;\nnext</TD>" in text
        assert "<TD>+Inf</TD>" in text and "<TD>-Inf</TD>" in text


def test_votable_11_for_simple_cone_search(tmp_path: Path) -> None:
    """SCS 1.03 section 2 asks for VOTable 1.0 or 1.1: no xtype, NULL integers as the value
    their FIELD declares (VOTable 1.1 section 4.6), no INFO after the TABLE; the values read
    back as written."""
    # (Not the rows holding the integer extremes: 1.1 takes those for the NULL value.)
    rows = [ROWS[0], ROWS[1], ROWS[4], ROWS[0]]
    body = b"".join(write_votable(FIELDS, batches_of(rows, 2), serialization="TABLEDATA",
                                  version="1.1", resource_name="cone", table_name="cone",
                                  description="A <cone> & more", limit=3))
    path = tmp_path / "cone.vot"
    path.write_bytes(body)
    assert votlint(path) == ""
    assert astropy_validates(body)
    text = body.decode("utf-8")
    assert '<VOTABLE version="1.1" xmlns="http://www.ivoa.net/xml/VOTable/v1.1">' in text
    assert "xtype" not in text and '<RESOURCE type="results" name="cone">' in text
    assert '<VALUES null="-2147483648"/>' in text and '<VALUES null="-32768"/>' in text
    assert "<DESCRIPTION>A &lt;cone&gt; &amp; more</DESCRIPTION>" in text
    # No INFO may follow a TABLE in VOTable 1.1: the overflow is told before it.
    assert re.search(r'<INFO name="QUERY_STATUS" value="OK"/>\s*'
                     r'<INFO name="QUERY_STATUS" value="OVERFLOW"/>\s*<TABLE', text)
    check_values(astropy_table(body), "TABLEDATA", rows=rows[:3])
    with pytest.raises(ValueError, match="BINARY2"):
        write_votable(FIELDS, [], serialization="BINARY2", version="1.1")


def test_polygons_in_both_serializations(tmp_path: Path) -> None:
    """DALI 1.1 section 3.3.7 polygons as double arrays, NULL included."""
    fields = [FieldSpec("obs_id", "char", arraysize="*"), POLYGON]
    batch = ColumnBatch.from_rows(fields, [(f"o{i}", p) for i, p in enumerate(POLYGONS)])
    tabledata = b"".join(write_votable(fields, [batch], serialization="TABLEDATA"))
    binary2 = b"".join(write_votable(fields, [batch]))
    for body in (tabledata, binary2):
        assert astropy_validates(body)
        cells = astropy_table(body).array["s_region"]
        assert list(np.ma.getdata(cells[0])) == POLYGONS[0]
        assert list(np.ma.getdata(cells[2])) == POLYGONS[2]
        assert np.all(np.ma.getmaskarray(cells[1])) or np.all(np.isnan(cells[1]))
    (tmp_path / "td.vot").write_bytes(tabledata)
    assert votlint(tmp_path / "td.vot") == ""
    # STILTS 3.4.7 votlint misreads every variable-length xtype="polygon" BINARY/BINARY2
    # cell ("Apparent negative element count"), STILTS' own BINARY2 output included. So the
    # BINARY2 form is checked by having STILTS re-encode it: its linter's report on our bytes
    # must be exactly its report on its own, and its reading must give our TABLEDATA values.
    (tmp_path / "b2.vot").write_bytes(binary2)
    reencoded = tmp_path / "stil.vot"
    subprocess.run(["stilts", "tcopy", f"in={tmp_path / 'b2.vot'}", f"out={reencoded}",
                    "ofmt=votable-binary2-inline"], check=True, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=120)
    def report(path: Path) -> str:
        return re.sub(r"\(l\.\d+, c\.\d+\)", "", votlint(path))

    assert report(tmp_path / "b2.vot").splitlines()[:1] == report(reencoded).splitlines()[:1]
    as_td = subprocess.run(["stilts", "tcopy", f"in={tmp_path / 'b2.vot'}", "out=-",
                            "ofmt=csv"], check=True, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=120).stdout.splitlines()
    first = next(csv.reader(as_td[1:2]))
    assert first[0] == "o0" and [float(v) for v in first[1].strip("()").split(",")] == \
        POLYGONS[0]
    assert as_td[2] == "o1,"


def test_limit_writes_maxrec_rows_then_overflow() -> None:
    """DALI 1.1 section 4.4.1: exactly MAXREC rows, then QUERY_STATUS=OVERFLOW after TABLE."""
    closed = []

    def source():
        try:
            yield from batches_of(ROWS, 2)
        finally:
            closed.append(True)

    stats = WriteStats()
    body = document("BINARY2", source(), limit=3, stats=stats)
    assert astropy_validates(body)
    assert len(astropy_table(body).array) == 3
    assert stats.rows == 3 and stats.overflow and closed == [True]
    assert re.search(r'</TABLE>\s*<INFO name="QUERY_STATUS" value="OVERFLOW"/>\s*</RESOURCE>',
                     body.decode())
    # Exactly MAXREC rows available: no overflow.
    exact = WriteStats()
    body = document("TABLEDATA", batches_of(ROWS, 3), limit=len(ROWS), stats=exact)
    assert not exact.overflow and "OVERFLOW" not in body.decode()
    # The caller may know of an overflow the writer cannot see.
    body = document("TABLEDATA", batches_of(ROWS, 5), overflow=lambda: True)
    assert 'value="OVERFLOW"' in body.decode()


def test_failure_mid_stream_is_reported_after_the_table(tmp_path: Path) -> None:
    """DALI 1.1 section 4.4.2: an error while writing goes into a trailing ERROR INFO."""

    def failing():
        yield ColumnBatch.from_rows(FIELDS, ROWS[:2])
        raise RuntimeError("canceling statement due to statement timeout")

    stats = WriteStats()
    body = document("BINARY2", failing(), stats=stats)
    (tmp_path / "error.vot").write_bytes(body)
    assert votlint(tmp_path / "error.vot") == ""
    assert len(astropy_table(body).array) == 2
    assert stats.error == "RuntimeError: canceling statement due to statement timeout"
    assert re.search(r'</TABLE>\s*<INFO name="QUERY_STATUS" value="ERROR">RuntimeError: '
                     r"canceling statement", body.decode())
    with pytest.raises(RuntimeError):
        document("BINARY2", failing(), errors="raise")


def test_writers_stream_without_reading_ahead() -> None:
    """Output starts before the source is exhausted: memory does not grow with the result."""
    pulled = []

    def source():
        for index in range(1000):
            pulled.append(index)
            yield ColumnBatch.from_rows(FIELDS, ROWS)

    chunks = write_votable(FIELDS, source())
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > 200_000:
            break
    assert len(pulled) < 1000


def test_metadata_error_and_scs_documents(tmp_path: Path) -> None:
    """MAXREC=0 (DALI 2.3.5), error documents (DALI 4.4.2) and SCS 1.03 errors (section 2)."""
    meta = metadata_votable(FIELDS, infos=INFOS)
    error = error_votable("Query syntax error at line 1, column 8: expected FROM", infos=INFOS)
    scs = scs_error_votable("DEC out of range: 91")
    for name, body in (("meta", meta), ("error", error), ("scs", scs)):
        path = tmp_path / f"{name}.vot"
        path.write_bytes(body)
        assert votlint(path) == "", name
        assert astropy_validates(body), name
    table = astropy_table(meta)
    assert [f.name for f in table.fields] == [f.name for f in FIELDS] and len(table.array) == 0
    assert re.search(r'</TABLE>\s*<INFO name="QUERY_STATUS" value="OVERFLOW"/>', meta.decode())
    assert re.search(r'<RESOURCE type="results">\s*<INFO name="QUERY_STATUS" value="ERROR">'
                     r"Query syntax error at line 1, column 8: expected FROM</INFO>",
                     error.decode())
    assert '<INFO name="Error" value="DEC out of range: 91"/>' in scs.decode()


def test_char_fields_hold_ascii_unless_asked_for_utf8(tmp_path: Path) -> None:
    """VOTable 1.4 section 2.1: char is ASCII, so other characters become "?".

    Both readers at hand decode BINARY2 char cells as ASCII (astropy fails on other bytes) or
    Latin-1 (STILTS 3.4); with ``utf8_char`` the VOTable 1.6 reading (UTF-8) is written, and
    TABLEDATA carries it to both.
    """
    fields = [FieldSpec("name", "char", arraysize="*"), FieldSpec("code", "char", arraysize="3")]
    batch = ColumnBatch.from_rows(fields, [("Ωmega", "Λé"), ("plain", "abcd")])
    for serialization in ("BINARY2", "TABLEDATA"):
        body = b"".join(write_votable(fields, [batch], serialization=serialization))
        table = astropy_table(body)
        assert list(table.array["name"]) == ["?mega", "plain"]
        assert list(table.array["code"]) == ["??", "abc"]
    path = tmp_path / "utf8.vot"
    path.write_bytes(b"".join(write_votable(fields, [batch], serialization="TABLEDATA",
                                            utf8_char=True)))
    text = subprocess.run(["stilts", "tcopy", f"in={path}", "out=-", "ofmt=csv"],
                          check=True, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=120).stdout.decode("utf-8")
    # char(3) holds 3 bytes: "Λé" needs 4, so the cut falls before the split character.
    assert text.splitlines() == ["name,code", "Ωmega,Λ", "plain,abc"]


def test_csv_and_tsv() -> None:
    """TAP 1.1 section 5.2, RFC 4180: header row, CRLF, quoting; NULL empty, "" empty text."""
    stats = WriteStats()
    body = b"".join(write_csv(FIELDS, batches_of(ROWS, 2), limit=4, stats=stats)).decode()
    assert stats.overflow and stats.rows == 4
    assert body.startswith("id,ra,mag,ccd,fid,ok,name,label,band,obs_time,pos,flags\r\n")
    records = list(csv.reader(io.StringIO(body, newline="")))
    assert len(records) == 5
    assert records[1][:7] == ["1", "10.5", "1.25", "3", "1", "true", "plain"]
    assert records[1][10:] == ["10.5 -20.25", "1 2 3"]
    assert records[2] == [""] * 12
    assert records[3][1:3] == ["NaN", "+Inf"] and records[3][6] == 'a<b & c>"d"\r\nnext'
    assert '\r\n-9223372036854775807,-Inf,' in body
    assert ',"",' in body  # the empty string, unlike NULL, is quoted
    table = Table.read(body, format="ascii.csv")
    assert list(table["id"][:1]) == [1] and table["name"][0] == "plain"

    tsv = b"".join(write_tsv(FIELDS, batches_of(ROWS, 3))).decode()
    lines = tsv.split("\n")
    assert lines[0].split("\t") == [f.name for f in FIELDS]
    assert len(lines) == len(ROWS) + 2 and lines[-1] == ""
    assert lines[3].split("\t")[6] == 'a<b & c>"d" next'  # TSV cannot carry line breaks
    assert same_time(lines[5].split("\t")[9], ROWS[4][9])


def test_fits_binary_table(tmp_path: Path) -> None:
    """FITS 4.0 section 7.3: a BINTABLE readable by astropy, NULLs as TNULL/NaN, heap arrays."""
    fields = [*FIELDS, POLYGON]
    rows = [(*row, POLYGONS[i % 3]) for i, row in enumerate(ROWS)]
    stats = WriteStats()
    data = b"".join(write_fits(fields, [ColumnBatch.from_rows(fields, rows[:3]),
                                        ColumnBatch.from_rows(fields, rows[3:])],
                               infos=INFOS, limit=4, stats=stats))
    assert len(data) % 2880 == 0 and stats.overflow
    path = tmp_path / "result.fits"
    path.write_bytes(data)
    with fits.open(path) as hdus:
        hdus.verify("exception")
        header = hdus[1].header
        assert header["NAXIS2"] == 4 and header["OVERFLOW"] is True
        assert header["TUNIT2"] == "deg" and header["TUCD1"] == "meta.id;meta.main"
        assert any("UTF-8" in card for card in header["COMMENT"])
    table = Table.read(path)
    assert list(table["id"].mask) == [False, True, False, False]
    assert table["id"][2] == np.iinfo(np.int64).max and table["fid"][3] == -32768
    assert np.ma.is_masked(table["ra"][2]) and table["mag"][2] == np.inf  # astropy masks NaN
    # UTF-8 in A columns, the width in bytes (the fitsbits 2026 convention; fits.py)
    assert table["label"][2] == "ΛCDM Ωmega"
    assert table["obs_time"][2] == "1969-12-31T23:59:59.123456"
    assert list(table["s_region"][0]) == POLYGONS[0] and len(table["s_region"][1]) == 0
    assert list(table["flags"][3]) == [-32768, 32767]
    assert list(table["pos"][0]) == [10.5, -20.25]


def test_parquet_with_votable_metadata(tmp_path: Path) -> None:
    """IVOA VOParquet 1.0: Parquet data, VOTable FIELDs in the file metadata."""
    stats = WriteStats()
    data = b"".join(write_parquet(FIELDS, batches_of(ROWS, 2), infos=INFOS, limit=4,
                                  stats=stats))
    parquet = pq.ParquetFile(io.BytesIO(data))
    assert parquet.metadata.num_row_groups == 2
    rows = parquet.read().to_pylist()
    assert len(rows) == 4 and all(value is None for value in rows[1].values())
    assert rows[2]["id"] == np.iinfo(np.int64).max and np.isnan(rows[2]["ra"])
    assert rows[2]["label"] == "ΛCDM Ωmega" and rows[2]["name"] == 'a<b & c>"d"\r\nnext'
    assert rows[3]["name"] == "" and rows[0]["pos"] == [10.5, -20.25]
    assert rows[2]["obs_time"] == "1969-12-31T23:59:59.123456"
    schema = parquet.schema_arrow
    assert schema.field("ra").metadata[b"unit"] == b"deg"
    content = parquet.metadata.metadata[b"IVOA.VOTable-Parquet.content"]
    assert parquet.metadata.metadata[b"IVOA.VOTable-Parquet.version"] == b"1.0"
    embedded = astropy_table(content)
    assert [f.name for f in embedded.fields] == [f.name for f in FIELDS]
    assert b'value="OVERFLOW"' in content
    (tmp_path / "content.vot").write_bytes(content)
    assert votlint(tmp_path / "content.vot") == ""


def test_output_format_registry() -> None:
    """TAPRegExt outputFormat listing; DALI 3.4.6: the Content-Type is the canonical media type
    of what is sent (tests/tap/test_tap_formats.py tries every alias over HTTP)."""
    assert lookup_format(None) == (OUTPUT_FORMATS[0],
                                   "application/x-votable+xml;serialization=BINARY2")
    assert lookup_format("votable/td")[1] == "application/x-votable+xml;serialization=TABLEDATA"
    assert lookup_format("image/fits")[1] == "application/fits"
    assert lookup_format("text/xml; foo=bar")[1] == "text/xml"
    assert lookup_format("votable")[0].mime == "application/x-votable+xml;serialization=BINARY2"
    assert lookup_format("text/xml") == (lookup_format("votable/td")[0], "text/xml")
    assert lookup_format("application/x-votable+xml; serialization=TableData")[0].name == \
        "votable/td"
    assert lookup_format("text/csv") == (lookup_format("csv")[0], "text/csv;header=present")
    assert lookup_format("TSV")[0].name == "tsv"
    assert lookup_format("application/fits")[0].name == "fits"
    assert lookup_format("application/vnd.apache.parquet")[0].name == "parquet"
    with pytest.raises(UnknownFormat):
        lookup_format("application/json")
    ids = {f.ivo_id for f in OUTPUT_FORMATS if f.ivo_id}
    assert "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2" in ids
    # Every format writes through the same call.
    for output in OUTPUT_FORMATS:
        stats = WriteStats()
        data = b"".join(output.write(FIELDS, batches_of(ROWS, 2), infos=INFOS, limit=2,
                                     stats=stats))
        assert data and stats.rows == 2 and stats.overflow, output.name
