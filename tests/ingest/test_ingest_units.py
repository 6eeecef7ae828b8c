"""Ingest's parts on their own: q3c pixels, binary COPY, the path scheme, FITS checks, the store."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skyvault.db import Database
from skyvault.filestore import (
    LocalFileStore,
    Placement,
    SourceRejected,
    is_temporary,
    sha256_of,
)
from skyvault.ingest import layout
from skyvault.ingest.copybinary import CopyColumn, RecordBatch, encode_stream, timestamp_to_wire
from skyvault.ingest.errors import CorruptFits, GroupRejected
from skyvault.ingest.fitscheck import check_image, inspect_fits
from skyvault.ingest.q3c import ang2ipix
from skyvault.server.ibe.paths import parse_product_path


def test_q3c_pixels_match_the_sql_function(database: Database) -> None:
    """Catalogs are sorted by this pixel before COPY: it must be q3c's own numbering."""
    rng = np.random.default_rng(5)
    ra = np.concatenate([rng.uniform(0, 360, 5000), [0, 45, 90, 135, 359.999, 180, 10]])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 5000))),
                          [0, 45, -45, 89.99, -89.99, 90, -90]])
    with database.admin() as connection:
        expected = [row[0] for row in connection.execute(
            "SELECT q3c_ang2ipix(r, d) FROM unnest(%s::float8[], %s::float8[])"
            " WITH ORDINALITY AS t(r, d, i) ORDER BY i", (list(ra), list(dec)))]
    assert ang2ipix(ra, dec).tolist() == expected


def test_binary_copy_round_trips_through_postgresql(database: Database) -> None:
    columns = [CopyColumn("a", "bigint"), CopyColumn("b", "real"), CopyColumn("c", "char(2)"),
               CopyColumn("d", "timestamptz"), CopyColumn("e", "smallint"),
               CopyColumn("f", "double precision")]
    when = dt.datetime(2027, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
    batch = RecordBatch(columns, 3, null=frozenset({"e"}))
    batch.set("a", np.array([1, -2, 2**40]))
    batch.set("b", np.array([1.5, np.nan, -3.25], dtype=np.float32))
    batch.set("c", b"zr")
    batch.set("d", np.array([timestamp_to_wire(when), timestamp_to_wire(None), 0]))
    batch.set("f", np.array([0.1, 1e300, -0.0]))
    from skyvault.ingest.copybinary import HEADER, TRAILER
    with database.admin() as connection:
        connection.execute("CREATE TEMP TABLE t (a bigint, b real, c char(2), d timestamptz,"
                           " e smallint, f double precision)")
        with connection.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(HEADER + bytes(batch.payload()) + TRAILER)
        rows = connection.execute(
            "SELECT a, b::text, c, d::text, e, f FROM t ORDER BY a").fetchall()
    assert rows[0] == (-2, None, "zr", "infinity", None, 1e300)  # NaN: unknown, NULL
    assert rows[1][:2] == (1, "1.5") and rows[1][3].startswith("2027-03-04 05:06:07.890123")
    assert rows[2][0] == 2**40 and rows[2][3].startswith("2000-01-01 00:00:00")


@pytest.mark.parametrize("programs", [[1], [1, 2, 3], [256], [2, 512], []])
def test_a_shared_smallint_array_travels_as_fixed_width_bytes(database: Database,
                                                              programs: list[int]) -> None:
    """A reference catalog's rows all carry the co-add's programids: its binary form (array_send)
    set once, as bytes of its own width, even when it ends with a NUL byte (256 = 0x0100),
    which numpy's item() would drop. PostgreSQL reads back the same array on every row."""
    from skyvault.ingest.copybinary import HEADER, TRAILER, smallint_array_wire
    wire = np.array(smallint_array_wire(programs))
    columns = [CopyColumn("a", "bigint"), CopyColumn("p", f"char({wire.dtype.itemsize})")]
    batch = RecordBatch(columns, 2)
    batch.set("a", np.array([1, 2]))
    batch.set("p", wire.item())
    with database.admin() as connection:
        connection.execute("CREATE TEMP TABLE arrays (a bigint, p smallint[])")
        with connection.cursor().copy("COPY arrays FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(HEADER + bytes(batch.payload()) + TRAILER)
        rows = connection.execute("SELECT a, p FROM arrays ORDER BY a").fetchall()
    assert rows == [(1, programs), (2, programs)]


def test_nan_floats_are_copied_as_null_on_their_rows_only(database: Database) -> None:
    """Issue 13 item 3: an unmeasured magnitude is NULL, not an IEEE NaN that compares greater
    than every number; the other fields of the same row, and other rows, are untouched."""
    rng = np.random.default_rng(3)
    rows = 1000
    mag = rng.uniform(14, 21, rows).astype(np.float32)
    err = rng.uniform(0.01, 0.2, rows)
    mag[rng.random(rows) < 0.2] = np.nan
    err[rng.random(rows) < 0.1] = np.nan
    columns = [CopyColumn("id", "integer"), CopyColumn("mag", "real"),
               CopyColumn("err", "double precision"), CopyColumn("flags", "smallint")]
    batch = RecordBatch(columns, rows)
    batch.set("id", np.arange(rows))
    batch.set("mag", mag)
    batch.set("err", err)
    batch.set("flags", np.arange(rows) % 7)
    from skyvault.ingest.copybinary import HEADER, TRAILER
    with database.admin() as connection:
        connection.execute("CREATE TEMP TABLE nan_rows (id integer, mag real,"
                           " err double precision, flags smallint)")
        with connection.cursor().copy("COPY nan_rows FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(HEADER + bytes(batch.payload()) + TRAILER)
        stored = connection.execute("SELECT id, mag, err, flags FROM nan_rows ORDER BY id"
                                    ).fetchall()
        nan_count = connection.execute("SELECT count(*) FROM nan_rows WHERE mag = 'NaN'"
                                       " OR err = 'NaN'").fetchone()[0]
    assert nan_count == 0 and len(stored) == rows
    for k, (ident, m, e, flags) in enumerate(stored):
        assert ident == k and flags == k % 7
        assert (m is None) == bool(np.isnan(mag[k])) and (e is None) == bool(np.isnan(err[k]))
        assert m is None or m == pytest.approx(float(mag[k]), rel=1e-6)
        assert e is None or e == float(err[k])


def test_encode_stream_refuses_floats_for_integers() -> None:
    with pytest.raises(ValueError):
        encode_stream([CopyColumn("a", "integer")], {"a": np.array([1.0])}, 1)


def test_store_paths_follow_the_documented_scheme() -> None:
    ffd = 20261121166667
    assert layout.quadrant_path("sci", ffd, 500, "zr", 1, 2, "sciimg", ".fits") == \
        "sci/2026/1121/166667/ztf_20261121166667_000500_zr_c01_o_q2_sciimg.fits"
    assert layout.quadrant_path("diff", ffd, 500, "zr", 1, 2, "diffimg", ".fits.fz", 3) == \
        "diff/2026/1121/166667/ztf_20261121166667_000500_zr_c01_o_q2_v3_scimrefdiffimg.fits.fz"
    assert layout.raw_path(ffd, 0, "bi", 16, "b", ".fits.fz") == \
        "raw/2026/1121/166667/ztf_20261121166667_000000_bi_c16_b.fits.fz"
    assert layout.calibration_path("hifreqflat", "2026-11-20", "zg", 3, 4, ".fits") == \
        "cal/2026/1120/hifreqflat/zg/ztf_20261120_zg_c03_q4_hifreqflat.fits"
    assert layout.reference_path(1234, "zi", 7, 1, "refpsfcat", ".fits", 2) == \
        "ref/001/field001234/zi/ccd07/q1/ztf_001234_zi_c07_q1_v2_refpsfcat.fits"


@pytest.mark.parametrize("field, prefix", [(600, "000"), (1885, "001"), (245, "000"),
                                           (123456, "123"), (1885220, "188")])
def test_reference_folders_follow_irsas_field_prefix_rule(field: int, prefix: str) -> None:
    """IRSA (https://irsa.ipac.caltech.edu/docs/program_interface/ztf_metadata.html,
    "Reference Images"): 'ref/' + the first three characters of paddedfield + '/field' +
    paddedfield + ..., paddedfield being the field zero-padded to six characters. Written out
    here by that rule, for ZTF's fields (at most four digits) and the demo grid's wider ones;
    the store's path and the IBE path (parsed back to the same keys) agree with it."""
    padded = f"{field:06d}"
    expected = (f"ref/{padded[:3]}/field{padded}/zr/ccd05/q1/"
                f"ztf_{padded}_zr_c05_q1_refsexcat.fits")
    assert expected.startswith(f"ref/{prefix}/")
    assert layout.reference_path(field, "zr", 5, 1, "refsexcat", ".fits") == expected
    parsed = parse_product_path(expected)
    assert parsed is not None and (parsed.field, parsed.product) == (field, "refsexcat")
    wrong = f"ref/{field // 1000:03d}/" + expected.split("/", 2)[2]
    assert wrong == expected or parse_product_path(wrong) is None


def _image(path: Path, **cards) -> Path:
    hdu = fits.PrimaryHDU(np.zeros((8, 10), np.float32))
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(path, checksum=True)
    return path


def _rejected(path: Path) -> GroupRejected:
    with pytest.raises(GroupRejected) as caught:
        inspect_fits(path)
    return caught.value


def test_fits_checks_catch_truncation_corruption_and_missing_keywords(tmp_path: Path) -> None:
    good = _image(tmp_path / "good.fits", CTYPE1="RA---TAN")
    data = good.read_bytes()
    contents = inspect_fits(good)
    assert [(i.naxis1, i.naxis2) for i in contents.images] == [(10, 8)]
    problems = check_image(good, "sciimg", contents, (10, 8), {})
    assert [p.reason for p in problems] == ["header lacks CTYPE2, CRVAL1, CRVAL2, CRPIX1, CRPIX2"]

    (tmp_path / "cut.fits").write_bytes(data[:-2880])
    (tmp_path / "odd.fits").write_bytes(data[:-100])
    flipped = bytearray(data)
    flipped[2880 + 50] ^= 0xFF  # inside the data
    (tmp_path / "flip.fits").write_bytes(bytes(flipped))
    (tmp_path / "junk.fits").write_bytes(b"not a FITS file " * 180)
    compressed = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        np.arange(4096, dtype=np.int16).reshape(64, 64))])
    compressed.writeto(tmp_path / "c.fits.fz")
    packed = (tmp_path / "c.fits.fz").read_bytes()
    (tmp_path / "ccut.fits.fz").write_bytes(packed[:-2880])
    for name, words in [("cut.fits", "truncated"), ("odd.fits", "2880-byte"),
                        ("flip.fits", "checksum"), ("junk.fits", "FITS"),
                        ("ccut.fits.fz", "truncated")]:
        problem = _rejected(tmp_path / name).problems[0]
        assert isinstance(problem, CorruptFits), name
        assert words.lower() in problem.reason.lower(), (name, problem.reason)
    assert inspect_fits(tmp_path / "c.fits.fz").images[0].naxis1 == 64


def test_store_places_atomically_and_verifies(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    source = tmp_path / "a.fits"
    source.write_bytes(os.urandom(10000))
    digest = sha256_of(source)
    placement = Placement("sci/x/a.fits", source, 10000, digest, "sciimg")
    assert store.put_many([placement]) == 10000
    assert store.sha256("sci/x/a.fits") == digest
    assert store.put_many([placement]) == 0  # identical file already there: adopted
    with store.open_file("sci/x/a.fits") as stream:
        assert stream.read() == source.read_bytes()
    assert store.local_path("sci/x/a.fits") == tmp_path / "store" / "sci/x/a.fits"

    wrong = Placement("sci/x/b.fits", source, 10000, "0" * 64, "sciimg")
    with pytest.raises(SourceRejected) as caught:
        store.put_many([wrong])
    assert not caught.value.missing and "changed while being archived" in caught.value.reason
    assert store.size("sci/x/b.fits") is None
    assert sorted(store.walk()) == ["sci/x/a.fits"]  # no temporary left behind

    stale = tmp_path / "store" / "sci/x/.c.fits.999999999.tmp"
    stale.write_bytes(b"half")
    assert is_temporary("sci/x/.c.fits.999999999.tmp")
    store.put_many([Placement("sci/x/c.fits", source, 10000, digest)])
    assert not stale.exists()  # the dead writer's temporary is cleared
    with pytest.raises(ValueError):
        store.local_path("../etc/passwd")
