"""Shared pieces of the votable tests: a table exercising every kind of value, and the validators.

Not a test module (no ``test_`` prefix); the tests import it by path-free name because pytest
puts this folder on sys.path (rootdir conftest, no __init__.py).
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import warnings
from pathlib import Path

import numpy as np
from astropy.io.votable import parse, validate

from skyvault.vo.fields import FieldSpec

UTC = dt.UTC

# Every VOTable datatype the schema uses, NULL in row 1, extremes and special values elsewhere.
FIELDS = [
    FieldSpec("id", "long", ucd="meta.id;meta.main", description="Row & <identifier>"),
    FieldSpec("ra", "double", unit="deg", ucd="pos.eq.ra", utype="obscore:Char.x"),
    FieldSpec("mag", "float", unit="mag"),
    FieldSpec("ccd", "int"),
    FieldSpec("fid", "short"),
    FieldSpec("ok", "boolean"),
    FieldSpec("name", "char", arraysize="*", description='Quoted "name"\twith tab'),
    FieldSpec("label", "unicodeChar", arraysize="*"),
    FieldSpec("band", "char", arraysize="2"),
    FieldSpec("obs_time", "char", arraysize="*", xtype="timestamp"),
    FieldSpec("pos", "double", arraysize="2", xtype="point", unit="deg"),
    FieldSpec("flags", "short", arraysize="*"),
]
ROWS = [
    (1, 10.5, 1.25, 3, 1, True, "plain", "ASCII", "g", dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
     [10.5, -20.25], [1, 2, 3]),
    (None, None, None, None, None, None, None, None, None, None, None, None),
    (np.iinfo(np.int64).max, np.nan, np.inf, np.iinfo(np.int32).min, np.iinfo(np.int16).max,
     False, 'a<b & c>"d"\r\nnext', "ΛCDM Ωmega", "zr",
     dt.datetime(1969, 12, 31, 23, 59, 59, 123456, tzinfo=UTC), [359.9999999999, -90.0], []),
    (np.iinfo(np.int64).min + 1, -np.inf, -np.finfo(np.float32).max, 0, np.iinfo(np.int16).min,
     True, "", "", "", dt.datetime(2000, 1, 1, tzinfo=UTC), [0.0, 90.0], [-32768, 32767]),
    (42, 5e-324, np.finfo(np.float32).tiny, -1, 0, False, " lead and trail ",
     "漢字 text", "i", dt.datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=UTC),
     [1e-300, 1e300], [7]),
]

POLYGON = FieldSpec("s_region", "double", arraysize="*", xtype="polygon", unit="deg")
POLYGONS = [[10.0, 10.0, 10.2, 10.0, 10.2, 10.2, 10.0, 10.2], None,
            [359.5, -1.0, 0.5, -1.0, 0.0, 1.0]]


def votlint(path: Path) -> str:
    """STILTS votlint's report (it prints nothing for a clean document)."""
    result = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120)
    return (result.stdout + result.stderr).strip()


def astropy_table(document: bytes):
    """Parsed in pedantic mode: any VOTable warning is an exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse(io.BytesIO(document), verify="exception").get_first_table()


def astropy_validates(document: bytes) -> bool:
    return bool(validate(io.BytesIO(document), output=None))


def same_time(text, value: dt.datetime | None) -> bool:
    """An ISO 8601 cell (DALI timestamp, no zone letter) against the datetime written."""
    if value is None:
        return text in (None, "") or np.ma.is_masked(text)
    assert not str(text).endswith("Z")
    expected = np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")
    return np.datetime64(str(text), "us") == expected


def same_float(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    return (np.isnan(a) and np.isnan(b)) or a == b
