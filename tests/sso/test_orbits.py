"""Orbit parsing: MPCORB.DAT and CometEls.txt one-line formats, manual elements, the demo set.

The MPCORB lines and the Encke line are verbatim MPC records (quoted in public repositories,
MPC file generations of 2025-2026); the ISON line is written in CometEls columns from the MPC's
own elements of C/2012 S1 (astroquery's mpc test data, comet_object_C2012S1.json). Expected
values are read off the same columns by eye.
"""

from __future__ import annotations

import math

import pytest

from skyvault.sso.orbits import (
    Orbit,
    OrbitElementError,
    OrbitFormatError,
    load_demo_orbits,
    orbit_from_elements,
    parse_mpc_comet_line,
    parse_mpcorb_line,
    parse_orbit_lines,
)
from skyvault.sso.packed import (
    PackedFormatError,
    unpack_comet_provisional,
    unpack_date,
    unpack_number,
    unpack_provisional,
)
from skyvault.sso.timescales import calendar_to_mjd, tt_to_tdb

EROS = (
    "00433   10.39  0.15 K2669  62.51145  178.91814  304.26797   10.82855  0.2228780  0.55970463"
    "   1.4582437  0 E2026-R13 18046  59 1893-2026 0.61 M-v 3Ek MPCORBFIT  1804    (433) Eros     "
    "          20260902"
)
NO_MAGNITUDE = (
    "K04PB2C             K048N   0.03358  277.30161   69.53412    2.35778  0.0417836  0.00333727"
    "  44.3481040  E MPO 70391     4   1   29 days 0.23         MPCM       200A          2004 PC112"
    "         20040911"
)
BASE62 = (
    "~000v    6.39  0.15 K2669 345.61933   56.19354  134.59964   26.11425  0.2400784  0.00247747"
    "  54.0916422  4 MPO733961    93  13 2005-2023 0.19 M-v 3Ek Pan        000A (620057) 2005 CG81"
    "          20230318"
)
ENCKE = (
    "0002P         2027 02 10.2288  0.338638  0.847306  187.2858  334.0194   11.3479  20260727"
    "  11.5  6.0  2P/Encke                                                 MPC191592"
)
ISON = (
    "    CK12S010  2013 11 28.7419  0.012856  1.000267  345.6014  295.7407   62.1879  20141209"
    "   8.5  8.0  C/2012 S1 (ISON)                                         MPC 91595"
)


def test_mpcorb_line_reads_every_field() -> None:
    orbit = parse_mpcorb_line(EROS)
    assert (orbit.designation, orbit.number, orbit.name, orbit.label) == (
        "433",
        433,
        "Eros",
        "(433) Eros",
    )
    assert orbit.orbit_type == "asteroid"
    assert orbit.h == 10.39 and orbit.g == 0.15
    assert orbit.mean_anomaly_deg == 62.51145
    assert orbit.peri_deg == 178.91814
    assert orbit.node_deg == 304.26797
    assert orbit.incl_deg == 10.82855
    assert orbit.e == 0.2228780
    assert orbit.a_au == 1.4582437
    assert orbit.uncertainty_u == "0"
    # K2669 = 2026-06-09.0 TT = MJD 61200 TT; TDB is ahead by about a millisecond then.
    assert orbit.epoch_mjd_tdb == pytest.approx(61200.0, abs=2e-8)
    assert orbit.epoch_mjd_tdb == float(tt_to_tdb(61200.0))


def test_mpcorb_provisional_designation_and_blank_magnitude() -> None:
    orbit = parse_mpcorb_line(NO_MAGNITUDE)
    assert orbit.designation == "2004 PC112" and orbit.number is None and orbit.name is None
    assert orbit.h is None and orbit.g is None
    assert orbit.uncertainty_u == "E"
    assert orbit.epoch_mjd_tdb == pytest.approx(calendar_to_mjd(2004, 8, 23), abs=1e-7)


def test_mpcorb_base62_number_keeps_the_provisional_designation() -> None:
    orbit = parse_mpcorb_line(BASE62)
    assert orbit.number == 620057 and orbit.designation == "620057"
    assert orbit.label == "(620057) 2005 CG81"
    assert orbit.uncertainty_u == "4"


def test_mpcorb_without_the_readable_columns_decodes_the_packed_designation() -> None:
    orbit = parse_mpcorb_line(NO_MAGNITUDE[:160])
    assert orbit.designation == "2004 PC112"
    assert parse_mpcorb_line(EROS[:160]).number == 433


@pytest.mark.parametrize(
    ("columns", "replacement", "message"),
    [
        ((21, 25), "K24AX", "columns 21-25 (epoch): 'K24AX' is not a packed date"),
        ((21, 25), "L2669", "columns 21-25 (epoch): 'L2669' is not a packed date"),
        ((71, 79), "0.22x8780", "columns 71-79 (eccentricity): '0.22x8780' is not a number"),
        ((71, 79), "1.2228780", "columns 71-79 (eccentricity): '1.2228780' is outside 0 <= e < 1"),
        ((60, 68), " 190.0000", "columns 60-68 (inclination): '190.0000' is outside 0-180 degrees"),
        ((27, 35), "         ", "columns 27-35 (mean anomaly): '         ' is blank"),
        ((1, 7), "0043#  ", "columns 1-7 (designation): '0043#' is not a packed number"),
        ((93, 103), " -1.4582437", "columns 93-103 (semimajor axis): '-1.4582437' is not positive"),
    ],
)
def test_mpcorb_errors_name_the_columns(
    columns: tuple[int, int], replacement: str, message: str
) -> None:
    first, last = columns
    assert len(replacement) == last - first + 1
    bad = EROS[: first - 1] + replacement + EROS[last:]
    with pytest.raises(OrbitFormatError) as caught:
        parse_mpcorb_line(bad)
    assert str(caught.value) == message
    assert caught.value.columns == columns


def test_short_line_is_an_error_not_a_crash() -> None:
    with pytest.raises(OrbitFormatError, match="an MPCORB line has at least 103"):
        parse_mpcorb_line("00433   10.39  0.15 K2669")


def test_comet_line_numbered_periodic() -> None:
    orbit = parse_mpc_comet_line(ENCKE)
    assert (orbit.designation, orbit.number, orbit.name, orbit.label) == (
        "2P",
        2,
        "Encke",
        "2P/Encke",
    )
    assert orbit.orbit_type == "comet"
    assert orbit.q_au == 0.338638 and orbit.e == 0.847306
    assert (orbit.peri_deg, orbit.node_deg, orbit.incl_deg) == (187.2858, 334.0194, 11.3479)
    assert orbit.tp_mjd_tdb == pytest.approx(calendar_to_mjd(2027, 2, 10.2288), abs=1e-7)
    assert orbit.epoch_mjd_tdb == pytest.approx(calendar_to_mjd(2026, 7, 27), abs=1e-7)
    assert orbit.h == 11.5 and orbit.k1 == 15.0 and orbit.g is None
    assert orbit.a_au is None and orbit.mean_anomaly_deg is None


def test_comet_line_provisional_with_name() -> None:
    orbit = parse_mpc_comet_line(ISON)
    assert orbit.designation == "C/2012 S1" and orbit.name == "ISON" and orbit.number is None
    assert orbit.e > 1.0 and orbit.label == "C/2012 S1 (ISON)"


def test_comet_line_errors_name_the_columns() -> None:
    with pytest.raises(OrbitFormatError) as caught:
        parse_mpc_comet_line(ENCKE[:19] + "13" + ENCKE[21:])
    assert str(caught.value) == "columns 20-21 (perihelion month): '13' is not a month 1-12"
    with pytest.raises(OrbitFormatError, match=r"^columns 31-39 \(perihelion distance\)"):
        parse_mpc_comet_line(ENCKE[:30] + " 0.33x638" + ENCKE[39:])
    with pytest.raises(OrbitFormatError, match=r"^column 5 \(orbit type\)"):
        parse_mpc_comet_line(ENCKE[:4] + "Q" + ENCKE[5:])


def test_mixed_lines_are_told_apart() -> None:
    orbits = parse_orbit_lines([EROS, ENCKE, NO_MAGNITUDE, ISON], source="test")
    assert [o.orbit_type for o in orbits] == ["asteroid", "comet", "asteroid", "comet"]


@pytest.mark.parametrize(
    ("packed", "expected"),
    [
        ("K2669", (2026, 6, 9)),
        ("K25BL", (2025, 11, 21)),
        ("J949P", (1994, 9, 25)),
        ("I801V", (1880, 1, 31)),
        ("K19C1", (2019, 12, 1)),
    ],
)
def test_packed_dates(packed: str, expected: tuple[int, int, int]) -> None:
    assert unpack_date(packed) == expected


@pytest.mark.parametrize("packed", ["K24AX", "K2609", "K2660", "K266", "L2669", "K2X69", "K26D1"])
def test_bad_packed_dates(packed: str) -> None:
    with pytest.raises(PackedFormatError):
        unpack_date(packed)


def test_packed_numbers_and_designations() -> None:
    assert unpack_number("00433") == 433
    assert unpack_number("A0001") == 100001
    assert unpack_number("a0001") == 360001
    assert unpack_number("~0000") == 620000
    assert unpack_number("~000v") == 620057
    assert unpack_provisional("K04PB2C") == "2004 PC112"
    assert unpack_provisional("J95X00A") == "1995 XA"
    assert unpack_provisional("PLS2040") == "2040 P-L"
    assert unpack_provisional("T1S3138") == "3138 T-1"
    assert unpack_comet_provisional("K12S010") == "2012 S1"
    assert unpack_comet_provisional("J93F02b") == "1993 F2-B"
    assert unpack_comet_provisional("J42E00A") == "1942 EA"


def test_manual_asteroid_elements() -> None:
    orbit = orbit_from_elements(
        epoch_mjd_tdb=61200.0,
        e=0.1,
        incl_deg=5.0,
        node_deg=370.0,
        peri_deg=-10.0,
        a_au=2.5,
        mean_anomaly_deg=10.0,
        h=15.0,
    )
    assert orbit.orbit_type == "asteroid"
    assert orbit.node_deg == pytest.approx(10.0) and orbit.peri_deg == pytest.approx(350.0)
    q, tp = orbit.cometary()
    assert q == pytest.approx(2.25)
    assert tp < orbit.epoch_mjd_tdb  # past perihelion: mean anomaly 10 degrees
    mean_motion_deg = math.degrees(math.sqrt(2.9591220828411951e-04 / 2.5**3))
    assert orbit.epoch_mjd_tdb - tp == pytest.approx(10.0 / mean_motion_deg)


def test_manual_comet_elements() -> None:
    orbit = orbit_from_elements(
        epoch_mjd_tdb=61200.0,
        e=1.2,
        incl_deg=120.0,
        node_deg=10.0,
        peri_deg=20.0,
        q_au=0.9,
        tp_mjd_tdb=61250.0,
    )
    assert orbit.orbit_type == "comet" and orbit.cometary() == (0.9, 61250.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a_au": 2.0}, "a and mean anomaly go together"),
        ({"a_au": 2.0, "mean_anomaly_deg": 1.0, "q_au": 1.0, "tp_mjd_tdb": 1.0}, "either"),
        ({}, "either"),
        ({"a_au": -2.0, "mean_anomaly_deg": 1.0}, "not positive"),
        ({"a_au": 2.0, "mean_anomaly_deg": 1.0, "e": 1.5}, "give q and the time of perihelion"),
        ({"q_au": 1.0, "tp_mjd_tdb": 61000.0, "e": -0.1}, "negative"),
        ({"q_au": 1.0, "tp_mjd_tdb": 61000.0, "incl_deg": 200.0}, "outside 0-180"),
        ({"q_au": 1.0, "tp_mjd_tdb": float("nan")}, "finite"),
    ],
)
def test_manual_elements_are_checked(kwargs: dict[str, float], message: str) -> None:
    base: dict[str, float] = {
        "epoch_mjd_tdb": 61200.0,
        "e": 0.5,
        "incl_deg": 10.0,
        "node_deg": 0.0,
        "peri_deg": 0.0,
    }
    with pytest.raises(OrbitElementError, match=message):
        orbit_from_elements(**{**base, **kwargs})  # type: ignore[arg-type]


def test_demo_orbits_are_real_and_varied() -> None:
    orbits = load_demo_orbits()
    assert all(isinstance(o, Orbit) for o in orbits)
    labels = {o.label for o in orbits}
    assert {"(1) Ceres", "(4) Vesta", "(433) Eros", "2P/Encke"} <= labels
    near_earth = [o for o in orbits if o.perihelion_distance_au < 1.3]
    assert any(o.orbit_type == "asteroid" for o in near_earth)
    assert any(o.orbit_type == "comet" for o in orbits)
    assert len({o.designation for o in orbits}) == len(orbits)
