"""The IPAC table writer (vo/ipac_table.py), read back by astropy's ``ascii.ipac`` reader.

IRSA's IPAC Table Format 1.2 (https://irsa.ipac.caltech.edu/applications/DDGEN/Doc/ipac_tbl.html):
keywords ``\\name = value``, four header lines between bars (names, types, units, nulls), rows
of fixed width with nothing under a bar. The shared table of every kind of value
(votable_support) goes through, with NULLs, NaN, infinities, integer extremes, non-ASCII text
and long values; what the format cannot keep is stated and checked too.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii
from votable_support import FIELDS, ROWS, same_float, same_time

from skyvault.vo.fields import FieldSpec
from skyvault.vo.ipac_table import write_ipac
from skyvault.vo.votable import ColumnBatch, WriteStats, lookup_format


def ipac(fields, rows, batch_size: int = 2, **options) -> str:
    batches = [ColumnBatch.from_rows(fields, rows[i:i + batch_size])
               for i in range(0, len(rows), batch_size)]
    return b"".join(write_ipac(fields, batches, **options)).decode("utf-8")


def read(text: str):
    return astropy_ascii.read(text, format="ipac", guess=False)


def cell(table, name: str, row: int):
    value = table[name][row]
    return None if np.ma.is_masked(value) else value


def test_layout_follows_the_standard() -> None:
    text = ipac(FIELDS, ROWS)
    lines = text.splitlines()
    keywords = [line for line in lines if line.startswith("\\")]
    header = [line for line in lines if line.startswith("|")]
    rows = [line for line in lines if line[:1] not in ("\\", "|")]
    assert keywords[:2] == ["\\fixlen = T", f"\\RowsRetrieved = {len(ROWS)}"]
    assert len(header) == 4 and len(rows) == len(ROWS)
    bars = [i for i, c in enumerate(header[0]) if c == "|"]
    for line in header:
        assert [i for i, c in enumerate(line) if c == "|"] == bars
    for line in rows:
        # Every row is as wide as the header and holds nothing under a bar.
        assert len(line) == len(header[0])
        assert all(line[i] == " " for i in bars)
    types = [t.strip() for t in header[1].strip("|").split("|")]
    assert types == ["long", "double", "real", "int", "int", "char", "char", "char", "char",
                     "char", "char", "char"]
    assert [u.strip() for u in header[2].strip("|").split("|")][1] == "deg"


def test_values_round_trip_through_astropy() -> None:
    table = read(ipac(FIELDS, ROWS))
    assert table.colnames == [f.name for f in FIELDS]
    for index, row in enumerate(ROWS):
        (ident, ra, mag, ccd, fid, ok, name, label, band, obs_time, pos, flags) = row
        assert cell(table, "id", index) == ident
        assert same_float(cell(table, "ra", index), ra)
        if mag is None:
            assert cell(table, "mag", index) is None
        else:  # float32 values, written as their shortest repr
            assert np.float32(cell(table, "mag", index)) == np.float32(mag)
        assert cell(table, "ccd", index) == ccd
        assert cell(table, "fid", index) == fid
        assert cell(table, "ok", index) == (None if ok is None else ("true" if ok else "false"))
        # Blanks around text and empty text are what the format cannot keep (readers strip
        # cells; astropy reads an empty cell as missing); line breaks become blanks.
        expected_name = None if name is None else (name.replace("\r\n", " ").strip() or None)
        assert cell(table, "name", index) == expected_name
        assert cell(table, "label", index) == (label or None)
        assert cell(table, "band", index) == (band or None)
        assert same_time(cell(table, "obs_time", index), obs_time)
        expected_pos = None if pos is None else [float(v) for v in pos]
        got_pos = cell(table, "pos", index)
        assert (None if got_pos is None else [float(v) for v in got_pos.split()]) == expected_pos
        got_flags = cell(table, "flags", index)
        assert ([] if got_flags is None else [int(v) for v in got_flags.split()]) == \
            ([] if flags is None else list(flags))


def test_a_text_value_spelling_null_is_not_read_as_null() -> None:
    fields = [FieldSpec("word", "char", "*"), FieldSpec("n", "int")]
    rows = [("null", 1), (None, None), ("NULL", 3), ("(null)", 4)]
    text = ipac(fields, rows)
    table = read(text)
    assert [cell(table, "word", i) for i in range(4)] == ["null", None, "NULL", "(null)"]
    assert [cell(table, "n", i) for i in range(4)] == [1, None, 3, 4]


def test_long_values_and_wide_unicode() -> None:
    fields = [FieldSpec("long_text", "unicodeChar", "*"), FieldSpec("big", "long"),
              FieldSpec("tiny", "double")]
    long_text = "Ωmega ✓ ü " * 600
    rows = [(long_text.strip(), np.iinfo(np.int64).max, 5e-324),
            ("漢字", np.iinfo(np.int64).min + 1, 1.7976931348623157e308)]
    table = read(ipac(fields, rows, batch_size=1))
    assert cell(table, "long_text", 0) == long_text.strip()
    assert cell(table, "long_text", 1) == "漢字"
    assert [cell(table, "big", i) for i in range(2)] == [rows[0][1], rows[1][1]]
    assert [cell(table, "tiny", i) for i in range(2)] == [5e-324, 1.7976931348623157e308]


def test_infos_become_keywords_and_an_overflow_says_so() -> None:
    fields = [FieldSpec("n", "int")]
    stats = WriteStats()
    text = ipac(fields, [(i,) for i in range(5)], infos=[
        ("QUERY", "SELECT n\nFROM t WHERE s = 'it''s'", None)], limit=3, stats=stats)
    table = read(text)
    assert list(table["n"]) == [0, 1, 2] and stats.rows == 3 and stats.overflow
    keywords = table.meta["keywords"]
    assert keywords["RowsRetrieved"]["value"] == 3
    assert keywords["QUERY_STATUS"]["value"] == "OVERFLOW"
    assert keywords["QUERY"]["value"] == "SELECT n FROM t WHERE s = 'it''s'"


def test_an_empty_result_is_a_header() -> None:
    fields = [FieldSpec("n", "int"), FieldSpec("t", "char", "*")]
    table = read(ipac(fields, []))
    assert len(table) == 0 and table.colnames == ["n", "t"]


@pytest.mark.parametrize("value", ["ipac", "ipac_table", "text/plain", "text/plain; charset=utf-8",
                                   "TEXT/PLAIN"])
def test_tap_offers_the_format_by_ipacs_names(value) -> None:
    """IPAC's TAP services list it as TAPRegExt outputFormat ``text/plain``, alias ``ipac``."""
    found, content_type = lookup_format(value)
    assert found.name == "ipac" and found.mime == "text/plain"
    assert content_type == "text/plain;charset=utf-8"


def test_the_first_chunk_comes_after_the_whole_result_is_read() -> None:
    """Spooled (the widths, nulls and row count are known only at the end): a failing source
    raises before any byte, so the service can still answer with an error document."""
    fields = [FieldSpec("n", "int")]

    def failing():
        yield ColumnBatch.from_rows(fields, [(1,)])
        raise RuntimeError("source failed")

    chunks = write_ipac(fields, failing())
    with pytest.raises(RuntimeError):
        next(chunks)


def test_timestamps_keep_their_precision() -> None:
    fields = [FieldSpec("t", "char", "*", xtype="timestamp")]
    moment = dt.datetime(2026, 3, 1, 6, 0, 0, 123456, tzinfo=dt.UTC)
    table = read(ipac(fields, [(moment,)]))
    assert same_time(cell(table, "t", 0), moment)
