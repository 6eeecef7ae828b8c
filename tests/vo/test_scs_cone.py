"""Simple Cone Search 1.03 requests and their SQL (``vo.scs``), without a database."""

from __future__ import annotations

import pytest

from skyvault.schema.tables import SURVEY_SCHEMA
from skyvault.vo.dali import Parameters
from skyvault.vo.scs import (
    DEFAULT_MAXREC,
    MAX_MAXREC,
    Cone,
    ConeError,
    catalogs,
    cone_fields,
    cone_row_sql,
    cone_select,
    parse_cone,
)


def cone(**params: str) -> Cone:
    return parse_cone(Parameters(params.items()))


def test_the_request_is_read_as_section_2_says() -> None:
    assert cone(RA="360", DEC="-90", SR="0.5") == Cone(0.0, -90.0, 0.5, 2, DEFAULT_MAXREC)
    assert cone(RA="10", DEC="5", SR="0", VERB="3", MAXREC="7") == Cone(10.0, 5.0, 0.0, 3, 7)
    assert cone(RA="10", DEC="5", SR="1", VERB="9").verb == 2  # unknown VERB: the default
    assert cone(RA="10", DEC="5", SR="1", MAXREC="99999999").maxrec == MAX_MAXREC
    assert not cone(RA="10", DEC="5", SR="0").has_rows
    assert not cone(RA="10", DEC="5", SR="1", MAXREC="0").has_rows


@pytest.mark.parametrize("params, message", [
    ({"DEC": "1", "SR": "1"}, "RA is required"),
    ({"RA": "x", "DEC": "1", "SR": "1"}, "RA must be a number"),
    ({"RA": "nan", "DEC": "1", "SR": "1"}, "RA must be a finite number"),
    ({"RA": "361", "DEC": "1", "SR": "1"}, "outside"),
    ({"RA": "1", "DEC": "91", "SR": "1"}, "outside"),
    ({"RA": "1", "DEC": "1", "SR": "-1"}, "negative"),
    ({"RA": "1", "DEC": "1", "SR": "11"}, "limit"),
    ({"RA": "1", "DEC": "1", "SR": "1e-12"}, "SR"),
    ({"RA": "1", "DEC": "1", "SR": "1", "MAXREC": "-1"}, "MAXREC"),
])
def test_bad_requests_are_cone_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(ConeError, match=message):
        cone(**params)


def test_every_catalog_answers_with_the_three_required_fields_and_its_sql() -> None:
    found = catalogs(SURVEY_SCHEMA)
    assert {"psf_sources", "science_images", "exposures"} <= set(found)
    for catalog in found.values():
        for verb in (1, 2, 3):
            fields = cone_fields(catalog, verb)
            assert [f.ucd for f in fields[:3]] == ["ID_MAIN", "POS_EQ_RA_MAIN",
                                                   "POS_EQ_DEC_MAIN"]
            sql, values = cone_select(catalog, Cone(10.0, 5.0, 0.5, verb, 100))
            rows = cone_row_sql(catalog, verb)
            assert sql.startswith(f"SELECT {rows.select_list} FROM ")
            assert "q3c_join(%s, %s," in sql and sql.endswith("LIMIT 101")
            assert values == (10.0, 5.0, 0.5)
    # Footprints come as pgsphere text, written in degrees by Python.
    rows = cone_row_sql(found["science_images"], 3)
    assert [kind for _, kind, _ in rows.geometry] == ["spoly"]
