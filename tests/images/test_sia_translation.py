"""SIA 2.0 parameters to SQL, without a database: shapes, intervals, OR within a parameter,
AND across parameters (SIA 2.0 section 2.1), and the errors a client gets."""

from __future__ import annotations

import math

import pytest

from skyvault.vo.dali import Parameters
from skyvault.vo.shapes import (
    Circle,
    Polygon,
    Range,
    ShapeError,
    parse_interval,
    parse_pos,
)
from skyvault.vo.sia import (
    DEFAULT_MAXREC,
    MAX_MAXREC,
    SiaUsageError,
    parse_sia_query,
    shape_condition,
    sia_select,
)


def query(*pairs: tuple[str, str]):
    return parse_sia_query(Parameters(pairs))


def test_pos_shapes_parse_with_open_ranges() -> None:
    assert parse_pos("CIRCLE 12 34 0.5") == Circle(12.0, 34.0, 0.5)
    assert parse_pos("circle 12 34 0.5") == Circle(12.0, 34.0, 0.5)
    assert parse_pos("RANGE 0 360.0 89.0 +Inf") == Range(0.0, 360.0, 89.0, 90.0)
    whole = parse_pos("RANGE -Inf +Inf -Inf +Inf")
    assert whole == Range(0.0, 360.0, -90.0, 90.0) and whole.is_whole_sky
    assert parse_pos("POLYGON 12 34 14 35 14 36 12 35") == Polygon(
        ((12.0, 34.0), (14.0, 35.0), (14.0, 36.0), (12.0, 35.0)))


@pytest.mark.parametrize("text", [
    "CIRCLE 12 34", "CIRCLE 12 95 1", "CIRCLE 12 34 0", "CIRCLE 400 0 1", "BOX 1 2 3 4",
    "RANGE 1 2 3", "RANGE 0 10 5 -5", "POLYGON 1 1 2 2", "POLYGON 1 1 2 2 3 x", "",
    "CIRCLE NaN 0 1",
])
def test_bad_positions_are_usage_errors(text: str) -> None:
    with pytest.raises(ShapeError):
        parse_pos(text)
    with pytest.raises(SiaUsageError):
        query(("POS", text))


def test_intervals_take_one_or_two_values_and_infinities() -> None:
    assert parse_interval("550e-9", "BAND").lo == parse_interval("550e-9", "BAND").hi == 550e-9
    interval = parse_interval("-Inf 0.21", "BAND")
    assert interval.lo == -math.inf and interval.hi == 0.21
    for bad in ("1 2 3", "2 1", "x", "NaN 1"):
        with pytest.raises(ShapeError):
            parse_interval(bad, "BAND")


def test_values_of_one_parameter_or_and_parameters_and() -> None:
    parsed = query(("POS", "CIRCLE 10 10 1"), ("pos", "CIRCLE 20 20 1"), ("BAND", "5e-7"),
                   ("COLLECTION", "SkyVault/sci"), ("FILTERCODE", "zr"), ("MAXREC", "5"))
    sql, values = sia_select(parsed, "obs_publisher_did")
    where = sql.split(" WHERE ", 1)[1]
    assert where.count(" AND ") >= 3 and "(s_region && " in where and " OR " in where
    assert sql.endswith("LIMIT 6")
    assert values[:6] == (10.0, 10.0, 1.0, 20.0, 20.0, 1.0)
    assert "SkyVault/sci" in values and "zr" in values
    assert sql.count("%s") == len(values)


def test_band_and_time_test_overlap_and_ranges_test_containment() -> None:
    band = query(("BAND", "5e-7 6e-7")).constraints[0]
    assert band.sql == "(em_min <= %s AND em_max >= %s)" and band.values == (6e-7, 5e-7)
    open_time = query(("TIME", "60000 +Inf")).constraints[0]
    assert open_time.values == (math.inf, 60000.0)
    fov = query(("FOV", "0.1 0.3")).constraints[0]
    assert fov.sql == "(s_fov >= %s AND s_fov <= %s)"


def test_identifiers_become_the_key_of_their_image() -> None:
    constraint = query(("ID", "IVO://SkyVault.Archive/SCI?42")).constraints[0]
    assert constraint.values == ("science_images", 42)
    assert query(("ID", "ivo://elsewhere/sci?42")).constraints[0].sql == "false"


def test_range_boxes_wrap_and_cover_every_longitude() -> None:
    sql, values = shape_condition(Range(350.0, 10.0, -1.0, 1.0))
    assert "sbox" in sql and values == (350.0, -1.0, 10.0, 1.0)
    _, values = shape_condition(parse_pos("RANGE -Inf +Inf -2 2"))
    assert values == (0.0, -2.0, 360.0, 2.0)
    assert shape_condition(parse_pos("RANGE -Inf +Inf -Inf +Inf"))[0] == "s_region IS NOT NULL"


def test_maxrec_and_response_format() -> None:
    assert query().maxrec == DEFAULT_MAXREC
    assert query(("MAXREC", "0")).is_metadata_only
    assert query(("MAXREC", str(10 * MAX_MAXREC))).maxrec == MAX_MAXREC
    assert query(("RESPONSEFORMAT", "votable")).response_format == \
        "application/x-votable+xml;serialization=TABLEDATA"
    assert query(("RESPONSEFORMAT", "text/xml; foo=bar")).response_format == "text/xml"
    for bad in (("MAXREC", "-1"), ("MAXREC", "many"), ("RESPONSEFORMAT", "text/csv"),
                ("RESPONSEFORMAT", "application/x-votable+xml;serialization=BINARY2"),
                ("CALIB", "two"), ("POL", "Z"), ("TIME", "2 1")):
        with pytest.raises(SiaUsageError):
            query(bad)
    with pytest.raises(SiaUsageError):
        query(("MAXREC", "1"), ("MAXREC", "2"))
