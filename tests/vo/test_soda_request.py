"""SODA 1.0 parameters and descriptors, through ``skyvault.vo.soda`` alone (no server).

- Parameters (SODA 1.0 section 3.3): ID, POS, CIRCLE, POLYGON, BAND, TIME, PIXEL_n; names are
  case-insensitive (DALI 1.1 section 3).
- {sync} takes one value per parameter; anything else is MultiValuedParamNotSupported (3.2).
- {async}: "each combination of values produces one result" (section 5), and filters of
  different kinds apply together.
- Errors are text starting with one of the codes of section 5.2's table.
"""

from __future__ import annotations

import io
import itertools

import pytest
from astropy.io.votable import parse
from xsd_support import VOTABLE, assert_valid

from skyvault.vo.dali import Parameters
from skyvault.vo.datalink import descriptors_document
from skyvault.vo.shapes import Circle, Interval, Polygon, Range
from skyvault.vo.soda import (
    FITS_TYPE,
    SODA_SYNC_ID,
    Cutout,
    DatasetBounds,
    MultiValuedParamNotSupported,
    SodaError,
    UsageError,
    overlaps,
    parse_soda_request,
    soda_descriptor,
)

DID = "ivo://skyvault/ztf?sci/ztf_20261120_000500_zr_c01_q1"
SODA_ERROR_CODES = ("Error", "AuthenticationError", "AuthorizationError", "ServiceUnavailable",
                    "UsageError", "MultiValuedParamNotSupported")


def request(*pairs: tuple[str, str], multi_valued: bool = False):
    return parse_soda_request(Parameters(pairs), multi_valued=multi_valued)


def test_each_spatial_parameter_reads_its_own_syntax() -> None:
    """CIRCLE and POLYGON are DALI xtype values (no keyword); POS names its shape (3.3.1)."""
    assert request(("ID", DID), ("CIRCLE", "10.5 -20.25 0.5")).cutouts == (
        Cutout(shapes=(Circle(10.5, -20.25, 0.5),)),)
    assert request(("ID", DID), ("POS", "circle 10.5 -20.25 0.5")).cutouts[0].shapes == (
        Circle(10.5, -20.25, 0.5),)
    polygon = request(("ID", DID), ("POLYGON", "10 10 10.2 10 10.2 10.2")).cutouts[0]
    assert polygon.shapes == (Polygon(((10, 10), (10.2, 10), (10.2, 10.2))),)
    assert request(("ID", DID), ("POS", "RANGE 10 11 -5 -4")).cutouts[0].shapes == (
        Range(10, 11, -5, -4),)
    # Open-ended RANGE bounds reach the ends of the coordinate ranges.
    assert request(("ID", DID), ("POS", "RANGE -Inf +Inf 89 +Inf")).cutouts[0].shapes == (
        Range(0, 360, 89, 90),)


def test_no_filter_is_the_whole_image_and_names_ignore_case() -> None:
    whole = request(("id", f"  {DID} "))
    assert whole.ids == (DID,)
    assert whole.cutouts == (Cutout(),)
    assert whole.cutouts[0].describe() == "whole image"
    assert whole.response_format == FITS_TYPE
    lower = request(("id", DID), ("circle", "1 2 0.1"), ("pixel_1", "1 10"))
    assert lower.cutouts == (Cutout(shapes=(Circle(1, 2, 0.1),), pixel1=(1, 10)),)


def test_blank_values_are_absent_values() -> None:
    """A form that sends ``CIRCLE=`` has not asked for a circle (and not for two values)."""
    assert request(("ID", DID), ("CIRCLE", ""), ("CIRCLE", "1 2 0.1"), ("BAND", " ")).cutouts == (
        Cutout(shapes=(Circle(1, 2, 0.1),)),)


def test_different_filters_make_one_cutout_together() -> None:
    cutouts = request(("ID", DID), ("POLYGON", "1 1 2 1 2 2"), ("CIRCLE", "1.5 1.5 0.2"),
                      ("BAND", "5e-7 6e-7"), ("TIME", "61000"), ("PIXEL_2", "3 30")).cutouts
    assert len(cutouts) == 1
    (cutout,) = cutouts
    assert set(cutout.shapes) == {Circle(1.5, 1.5, 0.2), Polygon(((1, 1), (2, 1), (2, 2)))}
    assert cutout.band == Interval(5e-7, 6e-7)
    assert cutout.time == Interval(61000, 61000)  # one number: a degenerate interval
    assert (cutout.pixel1, cutout.pixel2) == (None, (3, 30))


@pytest.mark.parametrize("name,values", [
    ("ID", [DID, DID + "x"]),
    ("CIRCLE", ["1 2 0.1", "3 4 0.1"]),
    ("POS", ["CIRCLE 1 2 0.1", "RANGE 1 2 3 4"]),
    ("POLYGON", ["1 1 2 1 2 2", "3 3 4 3 4 4"]),
    ("BAND", ["5e-7", "6e-7"]),
    ("TIME", ["60000 60001", "60002 60003"]),
    ("PIXEL_1", ["1 2", "3 4"]),
    ("RESPONSEFORMAT", [FITS_TYPE, FITS_TYPE]),
])
def test_sync_refuses_every_second_value(name: str, values: list[str]) -> None:
    pairs = [("ID", DID)] if name != "ID" else []
    with pytest.raises(MultiValuedParamNotSupported) as caught:
        request(*pairs, *((name, v) for v in values))
    assert caught.value.text().startswith("MultiValuedParamNotSupported: ")


def test_async_makes_one_cutout_per_combination() -> None:
    circles = ["10 20 0.1", "11 21 0.2"]
    bands = ["4e-7 5e-7", "5e-7 6e-7", "6e-7 7e-7"]
    times = ["60000 60001"]
    parsed = request(("ID", DID), ("ID", DID + "b"),
                     *(("CIRCLE", c) for c in circles), *(("BAND", b) for b in bands),
                     *(("TIME", t) for t in times), multi_valued=True)
    assert parsed.ids == (DID, DID + "b")
    expected = {
        (Circle(*map(float, c.split())), Interval(*map(float, b.split())),
         Interval(*map(float, t.split())))
        for c, b, t in itertools.product(circles, bands, times)
    }
    got = [(cutout.shapes[0], cutout.band, cutout.time) for cutout in parsed.cutouts]
    assert len(got) == len(expected) == 6
    assert set(got) == expected


@pytest.mark.parametrize("name,value", [
    ("CIRCLE", "10 20"),                 # two numbers
    ("CIRCLE", "10 20 0"),               # no area
    ("CIRCLE", "10 20 -1"),
    ("CIRCLE", "10 95 1"),               # latitude beyond the pole
    ("CIRCLE", "400 20 1"),
    ("CIRCLE", "NaN 20 1"),
    ("CIRCLE", "10 20 abc"),
    ("POLYGON", "1 1 2 2"),              # two vertices
    ("POLYGON", "1 1 2 2 3"),            # odd count
    ("POLYGON", "1 1 2 1 2 -91"),
    ("POS", "BOX 1 2 3 4"),              # not a SODA shape
    ("POS", "RANGE 1 2 5 4"),            # latitude bounds reversed
    ("POS", "CIRCLE"),
    ("BAND", "6e-7 5e-7"),               # reversed interval
    ("BAND", "1 2 3"),
    ("TIME", "NaN 1"),
    ("PIXEL_1", "10 1"),
    ("PIXEL_1", "1.5 10"),
    ("PIXEL_2", "7"),
    ("RESPONSEFORMAT", "text/csv"),
])
def test_bad_values_are_usage_errors_naming_the_parameter(name: str, value: str) -> None:
    with pytest.raises(UsageError) as caught:
        request(("ID", DID), (name, value))
    text = caught.value.text()
    assert text.startswith("UsageError: ")
    assert name in text
    assert caught.value.http_status == 400


def test_a_missing_id_is_a_usage_error() -> None:
    for pairs in ([], [("ID", " ")], [("CIRCLE", "1 2 0.1")]):
        with pytest.raises(UsageError, match="ID"):
            request(*pairs)


def test_fits_is_the_one_response_format_under_any_spelling() -> None:
    for spelling in ("application/fits", "image/fits", "FITS", "application/fits;version=4"):
        assert request(("ID", DID), ("RESPONSEFORMAT", spelling)).response_format == FITS_TYPE


def test_every_error_starts_with_a_code_soda_lists() -> None:
    """SODA 1.0 section 5.2: the text must begin with one of the table's codes."""
    for error_class in (SodaError, *SodaError.__subclasses__(),
                        *UsageError.__subclasses__()):
        assert error_class("x").text().split(":", 1)[0] in SODA_ERROR_CODES


@pytest.mark.parametrize("lo,hi,expected", [
    (4e-7, 5e-7, True), (5e-7, 6e-7, True),    # touching bounds overlap (inclusive)
    (6.0001e-7, 7e-7, False), (1e-7, 4.9999e-7, False), (1e-7, 1e-6, True),
    (None, 6e-7, False), (5e-7, None, False),  # unknown coverage never matches
])
def test_band_and_time_overlap_is_inclusive(lo, hi, expected) -> None:
    assert overlaps(Interval(5e-7, 6e-7), lo, hi) is expected
    assert overlaps(None, lo, hi) is True


# -- descriptors ----------------------------------------------------------------------------------


def _params(document: bytes) -> dict[str, object]:
    votable = parse(io.BytesIO(document))
    (resource,) = votable.resources
    assert (resource.type, resource.utype) == ("meta", "adhoc:service")
    fixed = {p.name: p.value for p in resource.params}
    assert fixed["standardID"] == SODA_SYNC_ID
    (group,) = [g for g in resource.groups if g.name == "inputParams"]
    return {"fixed": fixed, **{p.name: p for p in group.entries}}


def test_a_dataset_descriptor_fixes_the_id_and_states_the_bounds() -> None:
    """SODA 1.0 section 4.3: a descriptor for one dataset sets ID and may give MIN/MAX."""
    bounds = DatasetBounds(naxis1=3072, naxis2=3080, circle=(150.0, 20.0, 0.6),
                           band=(5.6e-7, 7.3e-7), time=(61000.25, 61000.26))
    document = descriptors_document([soda_descriptor(
        "https://archive.example/soda/sync", descriptor_id="soda-1", id_value=DID,
        bounds=bounds)])
    assert_valid(document, *VOTABLE)
    params = _params(document)
    assert params["fixed"]["accessURL"] == "https://archive.example/soda/sync"
    assert str(params["ID"].value) == DID
    assert {"POS", "CIRCLE", "POLYGON", "BAND", "TIME", "PIXEL_1", "PIXEL_2"} <= set(params)
    assert params["CIRCLE"].values.max == pytest.approx([150.0, 20.0, 0.6])
    assert (params["BAND"].values.min, params["BAND"].values.max) == (5.6e-7, 7.3e-7)
    assert (params["TIME"].values.min, params["TIME"].values.max) == (61000.25, 61000.26)
    assert (params["PIXEL_1"].values.min, params["PIXEL_1"].values.max) == (1, 3072)
    assert (params["PIXEL_2"].values.min, params["PIXEL_2"].values.max) == (1, 3080)
    assert params["BAND"].unit == "m" and params["TIME"].unit == "d"


def test_a_frame_without_sky_coordinates_offers_only_pixels() -> None:
    document = descriptors_document([soda_descriptor(
        "https://archive.example/soda/sync", id_value=DID, bounds=DatasetBounds(
            naxis1=3072, naxis2=3080, sky=False))])
    assert_valid(document, *VOTABLE)
    params = _params(document)
    assert not {"POS", "CIRCLE", "POLYGON"} & set(params)
    assert {"ID", "PIXEL_1", "PIXEL_2"} <= set(params)


def test_a_generic_descriptor_refers_to_the_id_column() -> None:
    """In a discovery response the ID PARAM's ``ref`` names the FIELD with the IDs."""
    descriptor = soda_descriptor("https://archive.example/soda/sync", descriptor_id="soda",
                                 id_ref="obs_publisher_did")
    (id_param,) = [p for p in descriptor.input_params if p.name == "ID"]
    assert (id_param.ref, id_param.value) == ("obs_publisher_did", "")
    no_bounds = {p.name: p for p in descriptor.input_params}
    assert all(p.minimum is None and p.maximum is None for p in no_bounds.values())
