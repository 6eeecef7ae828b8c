"""What the moving-object search accepts: request parameters, orbit files, the orbit table (its
round trip keeps predictions identical) and the ways people write an object's name."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from skyvault.db import Database
from skyvault.sso.ephemeris import predict
from skyvault.sso.load import OrbitFileError, load_file, parse_orbit_file, store_orbits
from skyvault.sso.most_request import (
    ObjectName,
    OrbitGiven,
    RequestError,
    parse_request,
    parse_step,
    parse_time,
)
from skyvault.sso.orbit_rows import COLUMNS, orbit_from_row, orbit_row
from skyvault.sso.orbits import OrbitFormatError, load_demo_orbits
from skyvault.sso.search_db import AmbiguousObjectError, UnknownObjectError, find_orbit

DEMO_FILE = Path(__file__).parents[2] / "sso" / "data" / "demo_orbits.txt"
DEMO_LINES = [line for line in DEMO_FILE.read_text().splitlines()
              if line.strip() and not line.startswith("#")]


def test_times_in_iso_mjd_or_jd() -> None:
    assert parse_time("2026-11-20", "t") == pytest.approx(61364.0)
    assert parse_time("2026-11-20", "t", end_of_day=True) == pytest.approx(61365.0)
    assert parse_time("2026-11-20T06:00:00Z", "t") == pytest.approx(61364.25)
    assert parse_time("2026-11-20T06:00:00+02:00", "t") == pytest.approx(61364.25 - 2 / 24)
    assert parse_time("61364.5", "t") == 61364.5
    assert parse_time("2461364.5", "t") == pytest.approx(61364.0)
    assert parse_time("", "t") is None and parse_time(None, "t") is None
    with pytest.raises(RequestError, match="obs_end: 'soon'"):
        parse_time("soon", "obs_end")


@pytest.mark.parametrize(("text", "days"), [("1d", 1.0), ("6h", 0.25), ("30m", 1 / 48),
                                            ("90s", 90 / 86400), ("0.5", 0.5), ("2 days", 2.0)])
def test_steps(text: str, days: float) -> None:
    assert parse_step(text) == pytest.approx(days)


def test_bad_steps() -> None:
    for text in ("weekly", "1 fortnight", "-1d"):
        with pytest.raises(RequestError, match="step"):
            parse_step(text)
    with pytest.raises(RequestError, match="one minute"):
        parse_step("10s")


def test_parameters_ignore_case_and_accept_lists() -> None:
    request = parse_request([("OBJECT", "Encke"), ("Filter", "g,zr"), ("filter", "i"),
                             ("PROGRAMID", "1"), ("programid", "2,3"), ("field", "700"),
                             ("MODE", "both"), ("RESPONSEFORMAT", "text/csv")])
    assert request.target == ObjectName("Encke")
    assert request.filtercodes == ("zg", "zr", "zi")
    assert request.programids == (1, 2, 3) and request.fields == (700,)
    assert request.mode == "both" and request.format == "csv"


def test_an_orbit_line_with_a_wrong_column_names_it() -> None:
    line = DEMO_LINES[3]  # (433) Eros
    request = parse_request([("orbit", line + "\r\n")])
    assert isinstance(request.target, OrbitGiven) and request.target.orbit.number == 433
    broken = line[:37] + "17x.91814" + line[46:]
    with pytest.raises(OrbitFormatError, match=r"columns 38-46 \(argument of perihelion\)"):
        parse_request([("orbit", broken)])
    with pytest.raises(RequestError, match="exactly one"):
        parse_request([("orbit", line + "\n" + DEMO_LINES[4])])


def test_elements_need_a_pair() -> None:
    base = [("epoch", "61000"), ("e", "0.1"), ("incl", "5"), ("node", "80"), ("peri", "70")]
    asteroid = parse_request([*base, ("a", "2.5"), ("M", "10"), ("H", "15.5"), ("G", "0.2")])
    assert isinstance(asteroid.target, OrbitGiven)
    assert asteroid.target.orbit.a_au == 2.5 and asteroid.target.orbit.h == 15.5
    comet = parse_request([*base, ("q", "1.2"), ("tp", "61010")])
    assert comet.target.orbit.orbit_type == "comet"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="either a and mean anomaly"):
        parse_request(base)
    with pytest.raises(RequestError, match="node must be a number, not 'north'"):
        parse_request([*base[:3], ("node", "north"), ("peri", "1"), ("a", "2"), ("m", "1")])


def test_orbit_files_with_preamble_comments_and_gzip(tmp_path: Path) -> None:
    text = "MPCORB preamble\nmore prose\n" + "-" * 80 + "\n# a comment\n\n" + \
        "\n".join(DEMO_LINES) + "\n"
    parsed = parse_orbit_file(text.splitlines(), source="MPCORB.DAT")
    assert [o.designation for o in parsed.orbits][:4] == ["1", "2", "4", "433"]
    assert len(parsed.orbits) == len(DEMO_LINES)
    bad = text.replace(DEMO_LINES[1][8:13], "3.x1 ")
    with pytest.raises(OrbitFileError, match=r"MPCORB.DAT, line 7: columns 9-13 \(H\)"):
        parse_orbit_file(bad.splitlines(), source="MPCORB.DAT")
    skipped = parse_orbit_file(bad.splitlines(), source="MPCORB.DAT", skip_invalid=True)
    assert skipped.invalid_count == 1 and len(skipped.orbits) == len(DEMO_LINES) - 1
    packed = tmp_path / "MPCORB.DAT.gz"
    packed.write_bytes(gzip.compress(text.encode("ascii")))
    # No preamble at all is fine too.
    plain = tmp_path / "orbits.txt"
    plain.write_text("\n".join(DEMO_LINES[:2]) + "\n")
    assert len(parse_orbit_file(plain.read_text().splitlines(), source="x").orbits) == 2


def test_row_round_trip_keeps_predictions(database: Database) -> None:
    """Orbits stored in survey.solar_system_objects (H and G are real there) and read back
    predict the same positions as the parsed ones, to well under a milliarcsecond."""
    orbits = load_demo_orbits()
    times = np.array([61000.0, 61400.0, 62000.0])
    with database.admin() as connection:
        store_orbits(connection, orbits)
        rows = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM survey.solar_system_objects"
            " WHERE designation = ANY(%s)", ([o.designation for o in orbits],)).fetchall()
        stored = {row[0]: orbit_from_row(row) for row in rows}
        for orbit in orbits:
            again = stored[orbit.designation]
            assert again.orbit_type == orbit.orbit_type
            # A numbered object without a name is stored under its provisional designation.
            assert again.name == (orbit.name or orbit.extra.get("provisional"))
            assert again.label == orbit.label
            a, b = predict(orbit, times), predict(again, times)
            assert np.max(np.hypot((a.ra - b.ra) * np.cos(np.radians(a.dec)),
                                   a.dec - b.dec)) * 3600 < 1e-4
            assert np.allclose(a.vmag, b.vmag, atol=1e-4, equal_nan=True)
        assert orbit_from_row(orbit_row(orbits[0])).uncertainty_u == "0"
        connection.rollback()


def test_loading_upserts_and_can_replace(database: Database, tmp_path: Path) -> None:
    """Repeated designations: the last line wins. --replace removes what the file lacks. All
    inside one transaction that is rolled back: the session's orbit table is shared."""
    first = tmp_path / "first.txt"
    first.write_text("\n".join([*DEMO_LINES[:3], DEMO_LINES[0]]) + "\n")
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.solar_system_objects")
        summary, _ = load_file(connection, first)
        assert (summary.loaded, summary.inserted, summary.updated) == (3, 3, 0)
        second = tmp_path / "second.txt"
        second.write_text("\n".join(DEMO_LINES[2:5]) + "\n")
        summary, _ = load_file(connection, second, replace_all=True)
        assert (summary.inserted, summary.updated, summary.removed) == (2, 1, 2)
        names = connection.execute(
            "SELECT designation FROM survey.solar_system_objects ORDER BY designation"
        ).fetchall()
        assert [n for (n,) in names] == ["4", "433", "944"]
        connection.rollback()


@pytest.mark.parametrize(("text", "designation"), [
    ("433", "433"), ("(433) Eros", "433"), ("Eros", "433"), ("eros", "433"),
    ("(433)", "433"), ("2P", "2P"), ("2P/Encke", "2P"), ("encke", "2P"), ("12p", "12P"),
    ("Pons-Brooks", "12P"), ("2005 CG81", "620057"), ("620057", "620057"), ("  Ceres ", "1"),
    ("2", "2"),  # the asteroid (2) Pallas, not comet 2P
])
def test_names_people_write(database: Database, text: str, designation: str) -> None:
    with database.admin() as connection:
        store_orbits(connection, load_demo_orbits())
        assert find_orbit(connection, text).designation == designation
        connection.commit()


def test_unknown_and_ambiguous_names(database: Database) -> None:
    with database.admin() as connection:
        with pytest.raises(UnknownObjectError, match="unknown object 'Nemo'"):
            find_orbit(connection, "Nemo")
        with connection.transaction():
            connection.execute(
                "INSERT INTO survey.solar_system_objects (designation, name, orbit_type,"
                " epoch_mjd, a, e, incl, node, peri, mean_anomaly)"
                " VALUES ('2099 XA', 'Twin', 'asteroid', 61000, 2, 0.1, 1, 1, 1, 1),"
                " ('2099 XB', 'Twin', 'asteroid', 61000, 2, 0.1, 1, 1, 1, 1)")
        try:
            with pytest.raises(AmbiguousObjectError, match="several objects"):
                find_orbit(connection, "twin")
        finally:
            with connection.transaction():
                connection.execute("DELETE FROM survey.solar_system_objects WHERE name = 'Twin'")
