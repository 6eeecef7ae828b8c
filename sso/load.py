"""Loading orbit files into ``survey.solar_system_objects``.

Input: MPCORB.DAT-style lines (also NEA.txt, Distant.txt...) and the MPC's comet format
(CometEls.txt), mixed in any order; plain or gzip-compressed. MPCORB.DAT's preamble (everything
up to its line of dashes), blank lines and '#' comments are skipped. A line that does not parse
stops the load with its line number and the columns that are wrong, unless invalid lines are to
be skipped (then they are counted and the first few reported).

Rows are upserted by designation: loading a newer MPCORB replaces the orbits it carries and
keeps the others. One transaction: a failed load changes nothing.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .orbit_rows import COLUMNS, orbit_row
from .orbits import Orbit, OrbitError, load_demo_orbits, parse_orbit_lines

PREAMBLE_SCAN_LINES = 200
REPORTED_ERRORS = 20


class OrbitFileError(OrbitError):
    """A line of an orbit file that does not parse; names the line and the columns."""

    def __init__(self, source: str, line_number: int, error: OrbitError) -> None:
        self.line_number = line_number
        self.error = error
        super().__init__(f"{source}, line {line_number}: {error}")


@dataclass
class ParsedFile:
    orbits: list[Orbit] = field(default_factory=list)
    invalid: list[OrbitFileError] = field(default_factory=list)
    invalid_count: int = 0


def _data_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of the lines that hold orbits."""
    buffered: list[tuple[int, str]] = []
    iterator = iter(enumerate(lines, start=1))
    # MPCORB.DAT starts with a prose preamble that ends with a line of dashes.
    for number, line in iterator:
        buffered.append((number, line))
        if line.startswith("-----"):
            buffered = []
            break
        if len(buffered) >= PREAMBLE_SCAN_LINES:
            break
    for number, line in [*buffered, *iterator]:
        text = line.rstrip("\r\n")
        if text.strip() and not text.lstrip().startswith("#"):
            yield number, text


def parse_orbit_file(
    lines: Iterable[str], *, source: str, skip_invalid: bool = False
) -> ParsedFile:
    """Every orbit of a file; the first bad line raises ``OrbitFileError`` unless skipped."""
    parsed = ParsedFile()
    for number, line in _data_lines(lines):
        try:
            parsed.orbits.extend(parse_orbit_lines([line], source=source))
        except OrbitError as error:
            wrapped = OrbitFileError(source, number, error)
            if not skip_invalid:
                raise wrapped from None
            parsed.invalid_count += 1
            if len(parsed.invalid) < REPORTED_ERRORS:
                parsed.invalid.append(wrapped)
    return parsed


def open_text(path: Path) -> io.TextIOBase:
    """A text stream of the file, decompressed if it is gzip (by content, not by name)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="latin-1")
    # The MPC's files are ASCII; latin-1 never fails, so a stray byte becomes a parse error
    # with its line number instead of a decoding error without one.
    return path.open("r", encoding="latin-1")


@dataclass(frozen=True)
class LoadSummary:
    loaded: int
    inserted: int
    updated: int
    removed: int


def store_orbits(
    connection: psycopg.Connection, orbits: list[Orbit], *, replace_all: bool = False
) -> LoadSummary:
    """Upsert ``orbits`` (the last of repeated designations wins) in the caller's transaction;
    ``replace_all`` first removes every orbit the list does not hold."""
    columns = ", ".join(COLUMNS)
    # A caller's transaction may load twice (ON COMMIT DROP has not dropped it yet).
    connection.execute("DROP TABLE IF EXISTS pg_temp.sso_load")
    connection.execute(
        "CREATE TEMPORARY TABLE sso_load (LIKE survey.solar_system_objects) ON COMMIT DROP")
    connection.execute("ALTER TABLE sso_load ADD COLUMN ordinal integer")
    with connection.cursor() as cursor, cursor.copy(
        f"COPY sso_load ({columns}, ordinal) FROM STDIN"
    ) as copy:
        for ordinal, orbit in enumerate(orbits):
            copy.write_row((*orbit_row(orbit), ordinal))
    removed = 0
    if replace_all:
        removed = connection.execute(
            "DELETE FROM survey.solar_system_objects o WHERE NOT EXISTS"
            " (SELECT 1 FROM sso_load l WHERE l.designation = o.designation)").rowcount
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in COLUMNS[1:])
    rows = connection.execute(
        f"INSERT INTO survey.solar_system_objects ({columns})"
        f" SELECT DISTINCT ON (designation) {columns} FROM sso_load"
        " ORDER BY designation, ordinal DESC"
        f" ON CONFLICT (designation) DO UPDATE SET {updates}"
        " RETURNING (xmax = 0) AS inserted").fetchall()
    inserted = sum(1 for (flag,) in rows if flag)
    return LoadSummary(len(rows), inserted, len(rows) - inserted, removed)


def load_file(
    connection: psycopg.Connection, path: Path, *, skip_invalid: bool = False,
    replace_all: bool = False,
) -> tuple[LoadSummary, ParsedFile]:
    with open_text(path) as stream:
        parsed = parse_orbit_file(stream, source=path.name, skip_invalid=skip_invalid)
    with connection.transaction():
        summary = store_orbits(connection, parsed.orbits, replace_all=replace_all)
    return summary, parsed


def load_demo(connection: psycopg.Connection) -> LoadSummary:
    """The demo orbits (sso/data/demo_orbits.txt): the objects the simulator puts in the sky."""
    with connection.transaction():
        return store_orbits(connection, load_demo_orbits())
