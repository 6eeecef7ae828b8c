"""The web pages' pure parts: positions, times, forms, download bundles, maps and footprints."""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from lxml import etree
from werkzeug.datastructures import MultiDict

from skyvault.geometry import gnomonic
from skyvault.server.web.bundles import BundleFile, download_script, tar_stream, zip_stream
from skyvault.server.web.coords import (
    CoordinateError,
    format_degrees,
    format_hours,
    galactic_to_icrs,
    icrs_to_galactic,
    looks_like_coordinates,
    parse_coordinates,
)
from skyvault.server.web.epochs import FieldTimeError, parse_time, parse_time_range
from skyvault.server.web.footprint import footprint_svg
from skyvault.server.web.forms import box_range, parse_cone_form, parse_image_form
from skyvault.server.web.skymap import CoverageCell, coverage_svg, hammer, to_pixels
from skyvault.vo.shapes import Circle, Range

MAS = 1 / 3_600_000


def separation(a: tuple[float, float], b: tuple[float, float]) -> float:
    return SkyCoord(a[0] * u.deg, a[1] * u.deg).separation(
        SkyCoord(b[0] * u.deg, b[1] * u.deg)).deg


# -- positions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ra", "dec"), [
    ("150.025 2.2", 150.025, 2.2),
    ("150.025, +2.2", 150.025, 2.2),
    ("10:00:06 +02:12:00", 150.025, 2.2),
    ("10h00m06s +02d12m00s", 150.025, 2.2),
    ("10 00 06 +02 12 00", 150.025, 2.2),
    ("10 00.1 +02 12", 150.025, 2.2),
    ("10:00:06.0 −02:12:00", 150.025, -2.2),  # a typographic minus
    ("-0:30:00", None, None),
    ("0 -0.5", 0.0, -0.5),
    ("00:00:00 -00:30:00", 0.0, -0.5),  # the sign of a zero-degree declination is kept
    ("150d01m30s 2.2", 150.025, 2.2),  # 'd' means degrees, also for right ascension
    ("23:59:59.99 +89:59:59.9", 359.99995833, 89.99997222),
])
def test_coordinates_in_every_notation(text: str, ra: float | None, dec: float | None) -> None:
    if ra is None:
        with pytest.raises(CoordinateError):
            parse_coordinates(text)
        return
    position = parse_coordinates(text)
    assert position.ra == pytest.approx(ra, abs=1e-7)
    assert position.dec == pytest.approx(dec, abs=1e-7)


@pytest.mark.parametrize(("text", "message"), [
    ("12:75:00 +10:00:00", "Right ascension: minutes (75) must be below 60"),
    ("12:10:61 +10:00:00", "Right ascension: seconds (61) must be below 60"),
    ("25:00:00 +10:00:00", "Right ascension: 25 hours is outside 0 to 24 hours"),
    ("370 10", "Right ascension: 370 degrees is outside 0 to 360"),
    ("150 -91", "Declination: -91 degrees is outside -90 to +90"),
    ("150 2 3", "Give two coordinates"),
    ("150.1.2 3", "is neither a number nor"),
    ("12.5:30:00 +1", "hours must be a whole number when minutes follow"),
])
def test_bad_coordinates_are_explained(text: str, message: str) -> None:
    with pytest.raises(CoordinateError) as raised:
        parse_coordinates(text)
    assert message in str(raised.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("150.1 2.2", True), ("10:00:06 +02:12", True), ("field 601", False), ("433", False),
    ("(433) Eros", False), ("2004 PC112", False), ("C/2012 S1", False), ("", False),
    ("ivo://skyvault.archive/sci?12", False), ("15h32m 12d", True),
])
def test_names_are_told_from_coordinates(text: str, expected: bool) -> None:
    assert looks_like_coordinates(text) is expected


def test_galactic_conversion_agrees_with_astropy_to_a_milliarcsecond() -> None:
    generator = np.random.default_rng(9)
    longitudes = generator.uniform(0, 360, 200)
    latitudes = np.degrees(np.arcsin(generator.uniform(-1, 1, 200)))
    truth = SkyCoord(longitudes * u.deg, latitudes * u.deg, frame="galactic").icrs
    for lon, lat, ra, dec in zip(longitudes, latitudes, truth.ra.deg, truth.dec.deg,
                                 strict=True):
        assert separation(galactic_to_icrs(lon, lat), (ra, dec)) < MAS
        back = icrs_to_galactic(ra, dec)
        assert separation(back, (lon, lat)) < MAS
    position = parse_coordinates("0 0", "galactic")  # the Galactic centre
    assert separation((position.ra, position.dec), (266.40499, -28.93617)) < 1 / 3600


def test_sexagesimal_formatting_rounds_without_sixty() -> None:
    assert format_hours(359.9999999) == "00:00:00.00"
    assert format_hours(150.025) == "10:00:06.00"
    assert format_degrees(-0.5) == "-00:30:00.0"
    assert format_degrees(2.2) == "+02:12:00.0"
    assert format_degrees(89.99999999) == "+90:00:00.0"


# -- times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2024-10-08", "2024-10-08T05:30:00", "2024-10-08 05:30",
                                  "2024-10-08T05:30:00Z", "2024-10-08T07:30:00+02:00"])
def test_calendar_times_are_utc_mjd(text: str) -> None:
    expected = Time(text.replace("Z", "").replace("+02:00", "").replace(" ", "T"),
                    scale="utc").mjd
    if "+02:00" in text:
        expected -= 2 / 24
    assert parse_time(text) == pytest.approx(expected, abs=1e-9)


def test_numbers_are_mjd_or_jd_and_dates_end_at_the_end_of_the_day() -> None:
    assert parse_time("60591.25") == 60591.25
    assert parse_time("2460591.75") == pytest.approx(60591.25)
    assert parse_time("2024-10-08", end_of_day=True) == pytest.approx(
        Time("2024-10-09").mjd)
    assert parse_time("   ") is None
    with pytest.raises(ValueError, match="outside the years 1900 to 2100"):
        parse_time("12")
    with pytest.raises(ValueError, match="is not a date"):
        parse_time("yesterday")


def test_a_time_range_names_the_field_at_fault() -> None:
    with pytest.raises(FieldTimeError) as raised:
        parse_time_range("2024-10-09", "2024-10-07")
    assert raised.value.field == "time_to"
    with pytest.raises(FieldTimeError) as raised:
        parse_time_range("2024-02-30", "")
    assert raised.value.field == "time_from"
    assert parse_time_range("2024-10-08", "2024-10-08")[1] - parse_time("2024-10-08") == 1.0


# -- forms ----------------------------------------------------------------------------------------


def test_image_form_collects_every_problem_next_to_its_field() -> None:
    form, errors = parse_image_form(MultiDict({
        "position": "10:61:00 +00:00:00", "radius": "-1", "time_from": "2024-99-01",
        "ccd": "17", "quadrant": "x", "programid": "1.5", "seeing_max": "0",
        "maglimit_min": "99", "field": "601"}))
    assert set(errors) == {"position", "radius", "time_from", "ccd", "quadrant", "programid",
                           "seeing_max", "maglimit_min"}
    assert errors["ccd"] == "CCD must be between 1 and 16"
    assert errors["quadrant"] == "Quadrant must be a whole number, not 'x'"
    assert form.search.field == 601


def test_image_form_reads_a_complete_search() -> None:
    form, errors = parse_image_form(MultiDict([
        ("position", "field 601"), ("shape", "box"), ("width", "2"), ("height", "1"),
        ("box_unit", "deg"), ("time_from", "60591"), ("time_to", "2024-10-09"),
        ("filter", "zr"), ("filter", "zi"), ("filter", "zz"), ("product", "sci"),
        ("product", "diff"), ("seeing_max", "2.5"), ("maglimit_min", "20"), ("sort", "seeing"),
        ("order", "desc"), ("page", "3"), ("per_page", "25")]))
    assert errors == {}
    assert form.position is not None and form.position.name == "field 601"
    search = form.search
    assert (search.filters, search.products) == (("zr", "zi"), ("sci", "diff"))
    assert (search.time_from, search.sort, search.descending) == (60591.0, "seeing", True)
    assert (search.page, search.per_page, search.seeing_max) == (3, 25, 2.5)
    assert (form.width, form.height) == (2.0, 1.0)


def test_radius_limits_and_defaults() -> None:
    form, errors = parse_image_form(MultiDict({"position": "10 20", "radius": "11",
                                               "radius_unit": "deg"}))
    assert errors == {"radius": "Radius must be at most 10 degrees"}
    form, errors = parse_image_form(MultiDict({"position": "10 20"}))
    assert errors == {} and form.radius == pytest.approx(1 / 60)
    assert isinstance(form.with_position(form.position.position).shape, Circle)
    assert form.search.sort == "distance"  # a positional search is sorted by distance first
    _, errors = parse_cone_form(MultiDict({"position": "", "radius": "700"}))
    assert set(errors) == {"position", "radius"}


def test_boxes_become_ranges_that_wrap_and_cover_the_poles() -> None:
    from skyvault.server.web.coords import SkyPosition

    # The width holds at the box's edge farthest from the equator, so it covers the box.
    half = 1.0 / math.cos(math.radians(1.0))
    wrapped = box_range(SkyPosition(0.5, 0.0), 2.0, 2.0)
    assert isinstance(wrapped, Range) and wrapped.ra_min == pytest.approx(360.5 - half)
    assert wrapped.ra_max == pytest.approx(0.5 + half)
    polar = box_range(SkyPosition(10.0, 89.5), 2.0, 2.0)
    assert (polar.ra_min, polar.ra_max, polar.dec_max) == (0.0, 360.0, 90.0)
    wide = box_range(SkyPosition(100.0, 60.0), 1.0, 1.0)
    assert wide.ra_max - wide.ra_min == pytest.approx(1 / math.cos(math.radians(60.5)))


# -- bundles --------------------------------------------------------------------------------------


@pytest.fixture
def some_files(tmp_path: Path) -> list[BundleFile]:
    generator = np.random.default_rng(3)
    files = []
    for name, size in (("sci/a_sciimg.fits", 2_500_000), ("raw/b.fits.fz", 100),
                       ("empty.txt", 0)):
        path = tmp_path / "store" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = generator.integers(0, 256, size, dtype=np.uint8).tobytes()
        path.write_bytes(data)
        files.append(BundleFile(name, size, hashlib.sha256(data).hexdigest(), path))
    return files


def test_zip_and_tar_streams_hold_the_files_and_their_checksums(
        some_files: list[BundleFile]) -> None:
    expected = {f"sel/{f.path}": f.source.read_bytes() for f in some_files}
    sums = "".join(f"{f.sha256}  {f.path}\n" for f in some_files).encode()
    chunks = list(zip_stream(some_files, "sel"))
    assert max(len(c) for c in chunks) < 1_100_000  # streamed, not assembled
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as bundle:
        assert bundle.testzip() is None
        assert {n: bundle.read(n) for n in bundle.namelist() if n != "sel/SHA256SUMS"} == expected
        assert bundle.read("sel/SHA256SUMS") == sums
    raw = b"".join(tar_stream(some_files, "sel"))
    assert len(raw) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(raw)) as bundle:
        found = {m.name: bundle.extractfile(m).read() for m in bundle.getmembers()}
    assert found.pop("sel/SHA256SUMS") == sums
    assert found == expected


def test_download_scripts_are_valid_shell(some_files: list[BundleFile], tmp_path: Path) -> None:
    for tool in ("wget", "curl"):
        script = download_script(tool, some_files, "http://example.org/", "x.sh")
        assert 'BASE="${SKYVAULT_URL:-http://example.org}"' in script
        assert f"{some_files[0].sha256} 2500000 sci/a_sciimg.fits /files/sci/a_sciimg.fits" \
            in script
        path = tmp_path / f"{tool}.sh"
        path.write_text(script)
        check = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


# -- drawings -------------------------------------------------------------------------------------


def test_hammer_projection_is_equal_area_and_oriented_like_the_sky() -> None:
    assert hammer(180.0, 0.0) == pytest.approx((0.0, 0.0), abs=1e-12)
    east, _ = hammer(190.0, 0.0)
    assert east < 0  # larger right ascension to the left
    assert hammer(180.0, 90.0)[1] == pytest.approx(math.sqrt(2))
    # Equal area: a small square near the pole covers as much map as one at the equator.
    def area(ra: float, dec: float, size: float = 0.5) -> float:
        corners = [hammer(ra + dx / math.cos(math.radians(dec)), dec + dy)
                   for dx, dy in ((0, 0), (size, 0), (size, size), (0, size))]
        return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2)
                       in zip(corners, corners[1:] + corners[:1], strict=True))) / 2
    assert area(120.0, 70.0) == pytest.approx(area(120.0, 0.0), rel=0.02)
    x, y = to_pixels(0.0001, 0.0)
    assert x > 680 and abs(y - 180.0) < 1  # just past 0h: the right-hand edge


def test_maps_and_footprints_are_well_formed_svg() -> None:
    square = [(233.0, 12.0), (233.5, 12.0), (233.5, 12.5), (233.0, 12.5)]
    on_0h = [(359.8, -30.0), (0.2, -30.0), (0.2, -29.6), (359.8, -29.6)]
    document = coverage_svg([CoverageCell(square), CoverageCell(on_0h)], "r band <zr>",
                            note="2 cells")
    root = etree.fromstring(document.encode())
    paths = root.findall(".//{http://www.w3.org/2000/svg}g[@class='cells']/"
                         "{http://www.w3.org/2000/svg}path")
    assert len(paths) == 2
    assert "r band &lt;zr&gt;: 2 cells" in document
    # A cell across 0h is drawn whole on one edge of the map, not stretched across it.
    xs = [float(point.split(",")[0]) for point in
          paths[1].get("d").strip("MZ").split("L")]
    assert max(xs) - min(xs) < 5
    square = [(10.0, 20.0), (10.1, 20.0), (10.1, 20.1), (10.0, 20.1)]
    svg = etree.fromstring(footprint_svg(square, (10.05, 20.05), (10.02, 20.02)).encode())
    assert svg.find(".//{http://www.w3.org/2000/svg}polygon") is not None
    xi, eta = gnomonic(10.1, 20.05, 10.05, 20.05)
    assert xi > 0 and abs(eta) < 1e-3  # east is positive xi
