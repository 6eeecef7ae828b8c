"""Data releases through ``skyvault.releases`` itself: declaring and listing them (``model``,
``declare``), and the release rules of ``dating``, whose SQL is checked row by row against the
rules as the documentation states them, computed in Python over a small table.

Everything runs in one transaction of the session's database that is rolled back: the programs
and releases made here are never seen by another test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from release_calendar import jd

from skyvault.releases.dating import (
    ALERT_ARCHIVES,
    COADD_TABLE,
    NIGHT_ZERO_JD,
    file_obsjd,
    member_sql,
    release_date_sql,
    released_sql,
    summary_released_sql,
    unknown_programs,
)
from skyvault.releases.declare import data_release_programs, declare_release
from skyvault.releases.model import (
    ReleaseError,
    get_release,
    list_releases,
    parse_instant,
    public_release,
)
from skyvault.schema.model import Embargo

# Programs of this module only (rolled back): one per kind of rule.
BY_RELEASES, PROPRIETARY, NAMED, ALERTS_PUBLIC = 81, 82, 83, 84
UNKNOWN = 99
"""Not in survey.programs: no rule may ever release its rows."""


@pytest.fixture
def connection(rolled_back: psycopg.Connection) -> psycopg.Connection:
    return rolled_back  # tests/conftest.py: rolled back at the end


def _now(connection: psycopg.Connection) -> datetime:
    """The transaction's instant: what ``now()`` is in every statement of the test."""
    return connection.execute("SELECT now()").fetchone()[0]


def _programs(connection: psycopg.Connection) -> None:
    connection.execute(
        "INSERT INTO survey.programs (programid, name, release_rule, proprietary_days,"
        " release_name, public_alerts) VALUES"
        " (%s, 'by releases', 'data_release', NULL, NULL, 0),"
        " (%s, 'proprietary 100 d', 'proprietary_period', 100, NULL, 0),"
        " (%s, 'named', 'proprietary_period', 50, 'T14NAMED', 0),"
        " (%s, 'public alerts', 'data_release', NULL, NULL, 1)",
        (BY_RELEASES, PROPRIETARY, NAMED, ALERTS_PUBLIC))


# -- the model ----------------------------------------------------------------------------------


def test_parse_instant_reads_dates_as_midnight_utc_and_keeps_zones() -> None:
    assert parse_instant("2027-03-01") == datetime(2027, 3, 1, tzinfo=UTC)
    assert parse_instant("2027-03-01T12:30:00") == datetime(2027, 3, 1, 12, 30, tzinfo=UTC)
    local = parse_instant("2027-03-01T12:30:00+02:00")
    assert local == datetime(2027, 3, 1, 10, 30, tzinfo=UTC)
    for bad in ("2027-13-01", "yesterday", "", "2027-03-01T25:00"):
        with pytest.raises(ReleaseError, match="not a date"):
            parse_instant(bad)


def test_declaring_and_listing_releases(connection: psycopg.Connection) -> None:
    _programs(connection)
    now = _now(connection)
    default = data_release_programs(connection)
    assert BY_RELEASES in default and ALERTS_PUBLIC in default and PROPRIETARY not in default
    past = declare_release(connection, "T14PAST", now - timedelta(days=3),
                           now - timedelta(days=30), notes="first")
    assert past.programids == tuple(default)  # no programs named: the data-release programs
    assert (past.release_date, past.observation_cutoff, past.notes) == (
        now - timedelta(days=3), now - timedelta(days=30), "first")
    assert past.is_public
    future = declare_release(connection, "T14FUTURE", now + timedelta(days=3),
                             now - timedelta(days=1), [PROPRIETARY, BY_RELEASES, BY_RELEASES])
    assert future.programids == (BY_RELEASES, PROPRIETARY)
    assert not future.is_public

    names = [r.name for r in list_releases(connection)]
    assert names.index("T14PAST") < names.index("T14FUTURE")  # by release date
    dates = [r.release_date for r in list_releases(connection)]
    assert dates == sorted(dates)
    assert public_release(connection, "T14PAST") == past
    assert public_release(connection, "T14FUTURE") is None  # not yet
    assert public_release(connection, "no such") is None
    assert public_release(connection, "../etc/passwd") is None
    assert public_release(connection, "T14PAST\n") is None
    assert get_release(connection, "T14FUTURE") == future
    assert future.as_json()["programids"] == [BY_RELEASES, PROPRIETARY]


def test_a_corrected_release_keeps_its_programs_notes_and_declaration(
        connection: psycopg.Connection) -> None:
    """Changing a release changes its dates; when it was first declared stays, so a correction
    does not release the co-adds archived since (dating.py, the co-add rule)."""
    _programs(connection)
    now = _now(connection)
    first = declare_release(connection, "T14FIX", now + timedelta(days=5), now,
                            [PROPRIETARY], notes="as planned")
    connection.execute("UPDATE survey.data_releases SET declared_at = %s"
                       " WHERE release_name = 'T14FIX'", (now - timedelta(days=7),))
    fixed = declare_release(connection, "T14FIX", now + timedelta(days=9),
                            now - timedelta(days=1))
    assert fixed.programids == first.programids == (PROPRIETARY,)
    assert fixed.notes == "as planned"
    assert fixed.release_date == now + timedelta(days=9)
    assert fixed.declared_at == now - timedelta(days=7)


@pytest.mark.parametrize("name,shift,programs,match", [
    ("bad name!", 0, [BY_RELEASES], "invalid release name"),
    ("-leading", 0, [BY_RELEASES], "invalid release name"),
    ("T14NL\n", 0, [BY_RELEASES], "invalid release name"),  # $ matched before a newline
    ("T14CUT", 1, [BY_RELEASES], "cutoff"),
    ("T14UNKNOWN", 0, [BY_RELEASES, UNKNOWN], "programs"),
    ("T14EMPTY", 0, [], "programs"),
])
def test_a_release_that_cannot_be_is_refused(connection: psycopg.Connection, name: str,
                                             shift: int, programs: list[int],
                                             match: str) -> None:
    _programs(connection)
    now = _now(connection)
    with pytest.raises(ReleaseError, match=match):
        declare_release(connection, name, now, now + timedelta(days=shift), programs)
    assert get_release(connection, name) is None


def test_ingest_facts_and_unknown_programs(connection: psycopg.Connection) -> None:
    _programs(connection)
    assert unknown_programs(connection, [BY_RELEASES, UNKNOWN, 1, UNKNOWN, 98]) == [98, UNKNOWN]
    assert unknown_programs(connection, []) == []
    assert file_obsjd("science_images", {"obsjd": 2461000.25}) == 2461000.25
    assert file_obsjd("calibration_images", {"nid": 3000}) == 2457754.5 + 3000
    assert file_obsjd(COADD_TABLE, {"obsjd": 1.0}) is None


# -- the dating rules against a brute force -----------------------------------------------------


@dataclass(frozen=True)
class Program:
    days: int | None
    release_name: str | None
    public_alerts: bool


@dataclass(frozen=True)
class Release:
    name: str
    date: datetime
    cutoff: datetime
    programs: frozenset[int]
    declared_at: datetime


@dataclass(frozen=True)
class Rules:
    """The release rules as skyvault/releases/dating.py's docstring states them."""

    programs: dict[int, Program]
    releases: list[Release]

    def observation(self, program: int, obsjd: float, at: datetime) -> bool:
        rules = self.programs.get(program)
        if rules is None:
            return False
        public = [r for r in self.releases if r.date <= at]
        return (
            any(program in r.programs and obsjd < jd(r.cutoff) for r in public)
            or (rules.days is not None and obsjd < jd(at) - rules.days)
            or any(r.name == rules.release_name for r in public)
        )

    def night(self, programs: list[int], nid: int, at: datetime) -> bool:
        return any(self.observation(p, NIGHT_ZERO_JD + nid, at) for p in programs)

    def coadd(self, ingested_at: datetime, at: datetime) -> bool:
        return any(r.date <= at and r.declared_at > ingested_at for r in self.releases)

    def alert(self, program: int, when: float, at: datetime) -> bool:
        rules = self.programs.get(program)
        at_once = rules is not None and rules.public_alerts and when < jd(at)
        return bool(at_once) or self.observation(program, when, at)

    def file(self, table: str, programs: list[int], obsjd: float, ingested_at: datetime,
             at: datetime) -> bool:
        if table == COADD_TABLE:
            return self.coadd(ingested_at, at)
        if table == ALERT_ARCHIVES:
            return self.alert(programs[0], obsjd, at)
        return any(self.observation(p, obsjd, at) for p in programs)


def _rules(connection: psycopg.Connection) -> Rules:
    programs = {row[0]: Program(row[1], row[2], row[3] == 1) for row in connection.execute(
        "SELECT programid, proprietary_days, release_name, public_alerts FROM survey.programs")}
    releases = [Release(row[0], row[1], row[2], frozenset(row[3]), row[4]) for row in
                connection.execute("SELECT release_name, release_date, observation_cutoff,"
                                   " programids, declared_at FROM survey.data_releases")]
    return Rules(programs, releases)


@pytest.fixture
def dated(connection: psycopg.Connection) -> tuple[psycopg.Connection, datetime, list[tuple]]:
    """Test programs and releases around the transaction's instant, and a table of rows of
    every program (and one unknown), observed from 1000 days ago to a day ahead."""
    _programs(connection)
    now = _now(connection)
    day = timedelta(days=1)
    releases = [
        ("T14DR1", now - 10 * day, now - 40 * day, [BY_RELEASES, ALERTS_PUBLIC], now - 12 * day),
        ("T14DR2", now + 20 * day, now - 5 * day, [BY_RELEASES, PROPRIETARY], now - day),
        ("T14NAMED", now + 60 * day, now - 900 * day, [NAMED], now - 2 * day),
        ("T14OLD", now - 300 * day, now - 500 * day, [PROPRIETARY, NAMED], now - 301 * day),
    ]
    connection.cursor().executemany(
        "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
        " programids, declared_at) VALUES (%s, %s, %s, %s, %s)", releases)
    known = [row[0] for row in connection.execute("SELECT programid FROM survey.programs")]
    rng = np.random.default_rng(14)
    count = 800
    choices = np.array([*known, UNKNOWN])
    programid = rng.choice(choices, count)
    second = rng.choice(choices, count)
    obsjd = jd(now) + rng.uniform(-1000, 1, count)
    nid = np.floor(obsjd - NIGHT_ZERO_JD).astype(int)
    ingested = [now + timedelta(days=float(d)) for d in rng.uniform(-400, 1, count)]
    table = rng.choice(["science_images", COADD_TABLE, ALERT_ARCHIVES], count)
    rows = []
    for i in range(count):
        programs = [int(programid[i])] + ([int(second[i])] if i % 3 == 0 else [])
        rows.append((i, int(programid[i]), float(obsjd[i]), int(nid[i]), programs,
                     ingested[i], str(table[i])))
    connection.execute("CREATE TEMP TABLE dated (id int, programid smallint, obsjd float8,"
                       " nid int, programids smallint[], ingested_at timestamptz,"
                       " image_table text, jd float8 GENERATED ALWAYS AS (obsjd) STORED)")
    connection.cursor().executemany(
        "INSERT INTO dated (id, programid, obsjd, nid, programids, ingested_at, image_table)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    return connection, now, rows


def _expected(rules: Rules, dating: str, row: tuple, at: datetime) -> bool:
    _, program, obsjd, nid, programs, ingested_at, table = row
    if dating == "observation":
        return rules.observation(program, obsjd, at)
    if dating == "night":
        return rules.night(programs, nid, at)
    if dating == "coadd":
        return rules.coadd(ingested_at, at)
    if dating == "alert":
        return rules.alert(program, obsjd, at)
    return rules.file(table, programs, obsjd, ingested_at, at)


def _sql_answers(connection: psycopg.Connection, expression: str) -> list[bool]:
    return [row[0] for row in connection.execute(
        f"SELECT coalesce(({expression}), false) FROM dated d ORDER BY id")]


def _embargo(dating: str) -> Embargo:
    """As schema/tables.py declares them: calibration products and files name their programs
    in ``programids``, every other embargoed table its program in ``programid``."""
    array = dating in ("night", "file")
    return Embargo(program_column="programids" if array else "programid", is_array=array,
                   dating=dating)


INSTANTS = (-400, -20, 0, 25, 70, 3650)
"""Days from now: before and after each test release's date, and far ahead."""


@pytest.mark.parametrize("dating", ["observation", "night", "coadd", "alert", "file"])
def test_released_sql_agrees_with_the_rules_row_by_row(dated, dating: str) -> None:
    connection, now, rows = dated
    rules = _rules(connection)
    embargo = _embargo(dating)
    for days in INSTANTS:
        at = now + timedelta(days=days)
        expected = [_expected(rules, dating, row, at) for row in rows]
        got = _sql_answers(connection, released_sql(embargo, f"'{at.isoformat()}'::timestamptz",
                                                    alias="d"))
        wrong = [rows[i] for i in range(len(rows)) if got[i] != expected[i]]
        assert not wrong, (days, len(wrong), wrong[:3])
        # The table exercises both answers at most instants.
        if days in (0, 25):
            assert 0 < sum(expected) < len(expected)
    unknown = [i for i, row in enumerate(rows) if row[1] == UNKNOWN]
    if dating in ("observation", "alert"):
        assert unknown
        far = _sql_answers(connection, released_sql(
            embargo, f"'{(now + timedelta(days=36500)).isoformat()}'::timestamptz", alias="d"))
        assert not any(far[i] for i in unknown)


@pytest.mark.parametrize("dating", ["observation", "night", "coadd", "alert", "file"])
def test_the_release_date_shown_is_when_the_row_becomes_public(dated, dating: str) -> None:
    """``release_date_sql`` (ObsCore's obs_release_date, the image pages) against
    ``released_sql``: a second before the date the row is not public, a second after it is;
    a row without a date is not public at any instant of the releases declared so far."""
    connection, now, rows = dated
    embargo = _embargo(dating)
    dates = [row[0] for row in connection.execute(
        f"SELECT {release_date_sql(embargo, alias='d')} FROM dated d ORDER BY id")]
    assert any(d is not None for d in dates) and any(d is None for d in dates)
    condition = released_sql(embargo, "d.at", alias="d")
    statement = (f"SELECT coalesce(({condition}), false) FROM"
                 f" (SELECT dated.*, %s::timestamptz AS at FROM dated WHERE id = %s) d")
    checked = 0
    for i, date in enumerate(dates):
        if i % 4:  # a quarter of the rows is enough, and keeps the test fast
            continue
        second = timedelta(seconds=1)
        if date is None:
            instants = [(now + timedelta(days=3650), False)]
        else:
            instants = [(date - second, False), (date + second, True)]
        for at, public in instants:
            got = connection.execute(statement, (at, i)).fetchone()[0]
            assert got is public, (dating, rows[i], date, at)
        checked += 1
    assert checked > 100


def test_a_summary_is_shown_while_every_epoch_it_summarises_is_public(dated) -> None:
    """``summary_released_sql`` (survey.objects_released): a row names its epochs' programs and
    each one's latest ``obsjd``; it is public while each of those epochs is."""
    connection, now, rows = dated
    rules = _rules(connection)
    summaries = []
    for i, (_, _, obsjd, _, programs, _, _) in enumerate(rows):
        latest = [obsjd] if len(programs) == 1 else [obsjd, obsjd - 30.0 * (i % 5)]
        summaries.append((i, programs, latest))
    connection.execute("CREATE TEMP TABLE summaries (id int, programids smallint[],"
                       " lastobsjds float8[])")
    connection.cursor().executemany("INSERT INTO summaries VALUES (%s, %s, %s)", summaries)
    for days in INSTANTS:
        at = now + timedelta(days=days)
        expected = [all(rules.observation(p, when, at) for p, when in zip(programs, latest,
                                                                         strict=True))
                    for _, programs, latest in summaries]
        condition = summary_released_sql(f"'{at.isoformat()}'::timestamptz", alias="s")
        got = [row[0] for row in connection.execute(
            f"SELECT coalesce(({condition}), false) FROM summaries s ORDER BY id")]
        wrong = [summaries[i] for i in range(len(got)) if got[i] != expected[i]]
        assert not wrong, (days, wrong[:3])
        if days == 0:
            assert 0 < sum(expected) < len(expected)


def test_members_see_their_programs_rows(dated) -> None:
    connection, _, rows = dated
    for members in ([], [BY_RELEASES], [PROPRIETARY, UNKNOWN], [1, 2, 3]):
        connection.execute("SELECT set_config('skyvault.programs', %s, true)",
                           ("{" + ",".join(map(str, members)) + "}",))
        single = _sql_answers(connection, member_sql(Embargo(), alias="d"))
        assert single == [row[1] in members for row in rows]
        many = _sql_answers(connection, member_sql(
            Embargo(program_column="programids", is_array=True), alias="d"))
        assert many == [bool(set(row[4]) & set(members)) for row in rows]
