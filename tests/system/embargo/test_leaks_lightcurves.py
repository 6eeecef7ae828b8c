"""Objects and light curves under the embargo: zero leaks, exact statistics.

Each seeded state's science image holds the epochs of two kinds of object:

- ``single[state]``: three epochs, all in that state's image: it exists for a requester exactly
  when the state is visible to them (no row, no count, no position otherwise);
- ``mixed``: one epoch in every state's image, at one position: a requester sees it with the
  epochs of the states they may see, and its statistics are those of these epochs only.

Expected answers come from embargo_seed.visible (the rule written out), never from the
database's policies. Asked through the data-access module services call
(skyvault/lightcurves/access.py, in ``reading(requester)``), and through ADQL over /tap/sync
(survey.objects, survey.objects_released, the light-curve joins with survey.lightcurves and
with the detections' oid in survey.psf_sources). survey.objects_released follows the release
horizons: a release that passes reaches it at the ensemble step's next run (no command), and
one withdrawn hides at once every row computed with the epochs it had made public.
survey.lightcurves itself, row by row, is in
the generic suite (embargo_seed seeds its points with the other catalogs').
"""

from __future__ import annotations

import io

import numpy as np
import psycopg
import pytest
from astropy.io import votable
from embargo_seed import (
    BASE,
    CENTRE_DEC,
    CENTRE_RA,
    PASSED_RELEASE,
    STATE,
    STATES,
    Person,
    State,
    release_now,
    reset_world,
    visible,
)
from leak_probe import ANONYMOUS_WHO, Who, get, post, who
from release_calendar import SESSION_RELEASE

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.lightcurves import access
from skyvault.lightcurves.association import new_object_ids
from skyvault.lightcurves.ensemble import run_ensemble

SOURCE_BLOCK = BASE + 9_000
MIXED_POSITION = (CENTRE_RA - 0.5, CENTRE_DEC)
MIXED_MAG = {state.key: 17.0 + 0.1 * state.index for state in STATES}


def _single_position(state: State) -> tuple[float, float]:
    return CENTRE_RA - 0.5, CENTRE_DEC + 0.01 * (state.index + 1)


def _oid(position: tuple[float, float]) -> int:
    return int(new_object_ids(np.array([position[0]]), np.array([position[1]]), 2,
                              np.zeros(0, dtype=np.int64))[0])


MIXED_OID = _oid(MIXED_POSITION)
SINGLE_OID = {state.key: _oid(_single_position(state)) for state in STATES}


def _detections(state: State) -> list[dict]:
    epochs = [(SOURCE_BLOCK + 100 * state.index, MIXED_OID, MIXED_POSITION,
               MIXED_MAG[state.key])]
    for j in range(3):
        epochs.append((SOURCE_BLOCK + 100 * state.index + 1 + j, SINGLE_OID[state.key],
                       _single_position(state), 18.0 + 0.2 * j))
    return [{"sourceid": sourceid, "oid": oid, "ra": position[0], "dec": position[1],
             "mag": mag} for sourceid, oid, position, mag in epochs]


def _seed(connection: psycopg.Connection) -> None:
    """Detections in the seeded images, with the image's program and observation time (what
    the release rules date them by), and their objects in the registry."""
    for state in STATES:
        image = connection.execute(
            "SELECT pid, expid, nid, field, rcid, obsjd, programid"
            " FROM survey.science_images WHERE pid = %s", (state.ident("pid"),)).fetchone()
        for row in _detections(state):
            values = (row["sourceid"], *image[:5], row["ra"], row["dec"], row["mag"], image[5],
                      image[6], row["oid"])
            connection.execute(
                "INSERT INTO survey.psf_sources (sourceid, pid, expid, nid, field, rcid, fid,"
                " filtercode, ra, dec, x, y, mag, magerr, flux, fluxerr, flags, snr, obsjd,"
                " programid, oid) VALUES (%s, %s, %s, %s, %s, %s, 2, 'zr', %s,"
                " %s, 32, 32, %s, 0.02, 1000, 10, 0, 50, %s, %s, %s)", values)
            connection.execute(
                "INSERT INTO survey.lightcurves (sourceid, pid, expid, nid, field, rcid, fid,"
                " filtercode, ra, dec, mag, magerr, flags, snr, obsjd, programid,"
                " oid) VALUES (%s, %s, %s, %s, %s, %s, 2, 'zr', %s, %s, %s, 0.02, 0, 50, %s,"
                " %s, %s)", values)
    for oid, (ra, dec), state in [(MIXED_OID, MIXED_POSITION, STATES[0])] + [
            (SINGLE_OID[s.key], _single_position(s), s) for s in STATES]:
        connection.execute(
            "INSERT INTO survey.object_registry (oid, ra, dec, field, ccdid, qid, rcid, fid,"
            " filtercode) VALUES (%s, %s, %s, %s, 1, 1, 0, 2, 'zr')",
            (oid, ra, dec, 9_900 + state.index))
        connection.execute("INSERT INTO archive.ensemble_dirty (oid) VALUES (%s)", (oid,))


@pytest.fixture(scope="module")
def objects_world(database: Database,
                  seeded_people: dict[str, Person]) -> dict[str, Person]:
    with database.admin() as connection:
        reset_world(connection)
        _seed(connection)
    run_ensemble(database)
    yield seeded_people
    with database.admin() as connection:
        for table in ("psf_sources", "lightcurves"):
            connection.execute(f"DELETE FROM survey.{table} WHERE sourceid BETWEEN %s AND %s",
                               (SOURCE_BLOCK, SOURCE_BLOCK + 999))
        connection.execute("DELETE FROM survey.object_registry WHERE oid = ANY(%s)",
                           ([MIXED_OID, *SINGLE_OID.values()],))
        connection.execute("DELETE FROM survey.objects_released WHERE oid = ANY(%s)",
                           ([MIXED_OID, *SINGLE_OID.values()],))


@pytest.fixture
def requesters(database: Database, objects_world: dict[str, Person]) -> list[Requester]:
    with database.admin() as connection:
        reset_world(connection)
    run_ensemble(database)
    return [ANONYMOUS] + [person.requester for person in objects_world.values()]


def _expected_mixed(programs: frozenset[int]) -> list[float]:
    return sorted(MIXED_MAG[s.key] for s in STATES if visible(s, programs))


def test_objects_and_light_curves_hold_only_visible_epochs(database: Database,
                                                         requesters: list[Requester]) -> None:
    """By oid, by cone, their light curves and upper limits: a requester finds the objects of
    the states they may see and the mixed object with exactly their visible epochs; counts,
    positions and statistics come from those epochs."""
    everything = [MIXED_OID, *SINGLE_OID.values()]
    for requester in requesters:
        programs = requester.programs
        shown = {SINGLE_OID[s.key] for s in STATES if visible(s, programs)}
        mixed = _expected_mixed(programs)
        if mixed:
            shown.add(MIXED_OID)
        with database.reading(requester) as connection:
            by_oid = {row["oid"]: row for row in access.objects_by_oid(connection, everything)}
            in_cone = {row["oid"] for row in access.objects_in_cone(
                connection, MIXED_POSITION[0], MIXED_POSITION[1], 0.1)}
            curves = access.lightcurves(connection, everything)
            count = connection.execute("SELECT count(*) FROM survey.objects WHERE oid = ANY(%s)",
                                       (everything,)).fetchone()[0]
            registry = connection.execute(
                "SELECT count(*) FROM survey.object_registry WHERE oid = ANY(%s)",
                (everything,)).fetchone()[0]
            limits = {oid: access.upper_limits(connection, oid) for oid in everything}
        assert set(by_oid) == shown == in_cone == set(curves), requester
        assert count == registry == len(shown)
        for state in STATES:
            oid = SINGLE_OID[state.key]
            if oid in shown:
                assert by_oid[oid]["nobs"] == 3 and len(curves[oid]) == 3
                assert by_oid[oid]["ra"] == pytest.approx(_single_position(state)[0])
            assert limits[oid] == []  # every image it is in holds its detection
        if mixed:
            row = by_oid[MIXED_OID]
            assert sorted(round(p["mag"], 4) for p in curves[MIXED_OID]) == \
                pytest.approx(mixed)
            assert {p["programid"] for p in curves[MIXED_OID]} <= \
                {s.programid for s in STATES if visible(s, programs)}
            assert row["nobs"] == row["ngoodobs"] == len(mixed)
            assert row["meanmag"] == pytest.approx(np.mean(mixed), abs=1e-5)
            assert row["maxmag"] == pytest.approx(max(mixed), abs=1e-5)
            if len(mixed) > 1:
                assert row["magrms"] == pytest.approx(np.std(mixed, ddof=1), abs=1e-5)


def _released(database: Database, requester: Requester, *, user_query: bool
              ) -> dict[int, tuple]:
    everything = [MIXED_OID, *SINGLE_OID.values()]
    with database.reading(requester, user_query=user_query) as connection:
        return {row[0]: row[1:] for row in connection.execute(
            "SELECT oid, nobs, meanmag, programids, lastobsjds FROM survey.objects_released"
            " WHERE oid = ANY(%s)", (everything,))}


def _expected_released(public: frozenset[str], observed: dict[str, float]
                       ) -> dict[int, tuple]:
    """survey.objects_released by the rule written out: the objects of the public states (and
    of ``public``, released since), the mixed one with its public epochs; the programs of
    those epochs and each one's latest observation."""
    shown = [s for s in STATES if s.public or s.key in public]
    rows = {SINGLE_OID[s.key]: (3, [s.programid], [observed[s.key]]) for s in shown}
    programs = sorted({s.programid for s in shown})
    rows[MIXED_OID] = (len(shown), programs,
                       [max(observed[s.key] for s in shown if s.programid == p)
                        for p in programs])
    return rows


def _check_released(database: Database, requesters: list[Requester], public: frozenset[str],
                    observed: dict[str, float]) -> None:
    expected = _expected_released(public, observed)
    mixed = sorted(MIXED_MAG[s.key] for s in STATES if s.public or s.key in public)
    for requester in requesters:
        for user_query in (False, True):
            rows = _released(database, requester, user_query=user_query)
            assert {oid: (row[0], row[2], row[3]) for oid, row in rows.items()} == expected, \
                (requester, user_query)
            assert rows[MIXED_OID][1] == pytest.approx(np.mean(mixed), abs=1e-5)


@pytest.fixture
def observed(database: Database, objects_world: dict) -> dict[str, float]:
    """Each state's observation time (its image's obsjd)."""
    with database.admin() as connection:
        return {state.key: connection.execute(
            "SELECT obsjd FROM survey.science_images WHERE pid = %s",
            (state.ident("pid"),)).fetchone()[0] for state in STATES}


def test_released_statistics_are_the_public_epochs_only(
        database: Database, requesters: list[Requester], observed: dict) -> None:
    """survey.objects_released, the same for everyone, as the service and as a user query:
    the objects of public states and the mixed object with its public epochs, each row naming
    its epochs' programs and their latest observation."""
    _check_released(database, requesters, frozenset(), observed)


def test_released_statistics_follow_the_release_horizons(
        database: Database, requesters: list[Requester], observed: dict) -> None:
    """A release that passes needs no command: the ensemble step's next run (no --all) finds
    the objects observed between the horizons of its last run and today's. A release that is
    withdrawn hides at once, for everyone, every row computed with an epoch it had made public
    (the mixed object's too, whose other epochs stay public), before any recomputation; the
    next run computes them from the epochs still public."""
    waiting = STATE["waiting"]
    single, withdrawn = SINGLE_OID[waiting.key], {SINGLE_OID[waiting.key], MIXED_OID}
    try:
        with database.admin() as connection:
            release_now(connection, [waiting])
        _check_released(database, requesters, frozenset(), observed)  # stale until the step
        marked = run_ensemble(database).objects_with_epochs_released_or_withdrawn
        assert marked >= 2  # the waiting state's objects (and others of program 1 then)
        _check_released(database, requesters, frozenset({waiting.key}), observed)
        with database.admin() as connection:
            reset_world(connection)  # the release is withdrawn
            kept = {row[0] for row in connection.execute(
                "SELECT oid FROM survey.objects_released WHERE oid = ANY(%s)",
                (list(withdrawn),))}
        assert kept == withdrawn  # still stored: the policy is what hides them
        before_run = _expected_released(frozenset(), observed)
        for requester in requesters:
            for user_query in (False, True):
                rows = _released(database, requester, user_query=user_query)
                assert set(rows) == set(before_run) - withdrawn, (requester, user_query)
                assert single not in rows
        run_ensemble(database)
        _check_released(database, requesters, frozenset(), observed)
    finally:
        with database.admin() as connection:
            reset_world(connection)
        run_ensemble(database)


def _adql(base: str, requester: Who, query: str) -> list[tuple]:
    answer = post(base, "/tap/sync", requester, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable", "QUERY": query})
    assert answer.status_code == 200, answer.text
    table = votable.parse_single_table(io.BytesIO(answer.content)).to_table()
    return [tuple(row) for row in table]


def test_adql_sees_objects_and_joins_as_the_requester(live_server: str,
                                                      objects_world: dict[str, Person],
                                                      database: Database) -> None:
    """Through /tap/sync: counts and positions in survey.objects, and the light-curve joins of
    survey.objects with survey.lightcurves and with survey.psf_sources (the detections' oid),
    hold the requester's visible epochs only."""
    with database.admin() as connection:
        reset_world(connection)
    everything = ", ".join(str(oid) for oid in [MIXED_OID, *SINGLE_OID.values()])
    for requester in [ANONYMOUS_WHO] + [who(p) for p in objects_world.values()]:
        programs = requester.programs
        expected = {SINGLE_OID[s.key]: 3 for s in STATES if visible(s, programs)}
        if _expected_mixed(programs):
            expected[MIXED_OID] = len(_expected_mixed(programs))
        objects = _adql(live_server, requester,
                        f"SELECT oid, nobs, ra FROM survey.objects WHERE oid IN ({everything})")
        assert {row[0]: row[1] for row in objects} == expected, requester.name
        points = _adql(live_server, requester, (
            "SELECT o.oid, COUNT(*) FROM survey.objects AS o JOIN survey.lightcurves AS s"
            f" ON s.oid = o.oid WHERE o.oid IN ({everything}) GROUP BY o.oid"))
        assert dict(points) == expected, requester.name
        detections = _adql(live_server, requester, (
            "SELECT o.oid, COUNT(*) FROM survey.objects AS o JOIN survey.psf_sources AS s"
            " ON s.oid = o.oid WHERE 1 = CONTAINS(POINT(s.ra, s.dec),"
            f" CIRCLE(o.ra, o.dec, 2.1 / 3600.0)) AND o.oid IN ({everything})"
            " GROUP BY o.oid"))
        assert dict(detections) == expected, requester.name
        total = _adql(live_server, requester, (
            f"SELECT COUNT(*) FROM survey.objects WHERE 1 = CONTAINS(POINT(ra, dec),"
            f" CIRCLE({MIXED_POSITION[0]}, {MIXED_POSITION[1]}, 0.1))"))
        assert total[0][0] == len(expected)


def test_seed_points_are_dated_as_their_images(database: Database, objects_world: dict) -> None:
    """The seeded detections and points carry their image's program and observation time (the
    premise above)."""
    with database.admin() as connection:
        wrong = connection.execute(
            "SELECT count(*) FROM (SELECT pid, sourceid, obsjd, programid"
            " FROM survey.psf_sources UNION ALL SELECT pid, sourceid, obsjd, programid"
            " FROM survey.lightcurves) s JOIN survey.science_images i USING (pid)"
            " WHERE s.sourceid BETWEEN %s AND %s AND (s.obsjd <> i.obsjd"
            " OR s.programid <> i.programid)", (SOURCE_BLOCK, SOURCE_BLOCK + 999)).fetchone()[0]
        points = connection.execute(
            "SELECT count(*) FROM survey.lightcurves WHERE sourceid BETWEEN %s AND %s",
            (SOURCE_BLOCK, SOURCE_BLOCK + 999)).fetchone()[0]
    assert wrong == 0 and points == 4 * len(STATES)


def _api_points(base: str, requester: Who, **params: str) -> list[tuple]:
    """(oid, mag or None, upperlimit, programid) of the light-curve API's VOTable answer."""
    answer = get(base, "/lightcurves/query", requester, params=params)
    assert answer.status_code == 200, answer.text
    table = votable.parse_single_table(io.BytesIO(answer.content)).to_table()
    return [(int(row["oid"]), None if np.ma.is_masked(row["mag"]) else round(float(row["mag"]), 4),
             bool(row["upperlimit"]), int(row["programid"])) for row in table]


def _in_session_release(state) -> bool:
    """The session's release (tests/release_calendar.py), by its rule written out: program 1
    observed before its cutoff (60 days ago), or a program whose 365 proprietary days had
    passed at its date (30 days ago)."""
    if state.programid == 1:
        return state.observed_days_ago > 60
    return state.programid in (2, 3) and state.observed_days_ago - 365 > 30


def test_lightcurve_api_answers_the_visible_epochs(live_server: str, database: Database,
                                                   objects_world: dict[str, Person]) -> None:
    """/lightcurves/query (and IRSA's path) by ID and by position, anonymous, other program,
    member: the points of the states the requester may see, nothing of the others (no row, no
    upper limit at a hidden image); COLLECTION=<the session's release> holds exactly that
    release's epochs whoever asks, and the live collection (COLLECTION=ztf) the requester's."""
    with database.admin() as connection:
        reset_world(connection)
    everything = ",".join(str(oid) for oid in [MIXED_OID, *SINGLE_OID.values()])
    cone = f"CIRCLE {MIXED_POSITION[0]} {MIXED_POSITION[1]} 0.1"
    for requester in [ANONYMOUS_WHO] + [who(p) for p in objects_world.values()]:
        programs = requester.programs
        expected = sorted(
            [(SINGLE_OID[s.key], round(18.0 + 0.2 * j, 4), False, s.programid)
             for s in STATES if visible(s, programs) for j in range(3)]
            + [(MIXED_OID, round(MIXED_MAG[s.key], 4), False, s.programid)
               for s in STATES if visible(s, programs)])
        for params in ({"ID": everything}, {"POS": cone}, {"ID": everything, "COLLECTION": "ztf"},
                       {"CIRCLE": cone[7:], "UPPERLIMITS": "true"}):
            got = _api_points(live_server, requester, **params)
            assert sorted(p for p in got if not p[2]) == expected, (requester.name, params)
            # Every image holding an object's position holds its detection: no upper limit.
            assert [p for p in got if p[2]] == [], (requester.name, params)
        released = sorted(
            [(SINGLE_OID[s.key], round(18.0 + 0.2 * j, 4), False, s.programid)
             for s in STATES if _in_session_release(s) for j in range(3)]
            + [(MIXED_OID, round(MIXED_MAG[s.key], 4), False, s.programid)
               for s in STATES if _in_session_release(s)])
        assert released  # the release holds some epochs, not all the public ones
        assert len(released) < len([s for s in STATES if s.public]) * 4
        got = _api_points(live_server, requester, ID=everything, COLLECTION=SESSION_RELEASE)
        assert sorted(got) == released, requester.name
        irsa = get(live_server, "/cgi-bin/ZTF/nph_light_curves", requester,
                   params={"ID": everything, "FORMAT": "CSV"})
        assert irsa.status_code == 200
        assert len(irsa.text.strip().splitlines()) - 1 == len(expected), requester.name


def test_lightcurve_api_unknown_or_future_release_is_one_answer(
        live_server: str, database: Database, objects_world: dict[str, Person]) -> None:
    """A release not yet public answers as a release that does not exist (400, same text)."""
    everything = ",".join(str(oid) for oid in [MIXED_OID, *SINGLE_OID.values()])
    with database.admin() as connection:
        reset_world(connection)
        release_now(connection, [STATE["waiting"]], public_from="now() + interval '1 day'")
    try:
        answers = [get(live_server, "/lightcurves/query", ANONYMOUS_WHO,
                       params={"ID": everything, "COLLECTION": name, "FORMAT": "CSV"})
                   for name in (PASSED_RELEASE, "NO-SUCH-RELEASE")]
        assert [a.status_code for a in answers] == [400, 400]
        assert answers[0].text.replace(PASSED_RELEASE, "X") == \
            answers[1].text.replace("NO-SUCH-RELEASE", "X")
    finally:
        with database.admin() as connection:
            reset_world(connection)


def test_datalink_of_objects_and_detections_follows_their_epochs(
        live_server: str, database: Database, objects_world: dict[str, Person]) -> None:
    """/datalink/links for each object and each seeded detection: links to the light curve for
    a requester who may see it, the not-found row (the same as an unknown ID's) otherwise."""
    with database.admin() as connection:
        reset_world(connection)
    for requester in [ANONYMOUS_WHO] + [who(p) for p in objects_world.values()]:
        programs = requester.programs
        for state in STATES:
            pid = state.ident("pid")
            ids = {f"ivo://skyvault.archive/obj?{SINGLE_OID[state.key]}": visible(state, programs),
                   f"ivo://skyvault.archive/src?{pid}-{SOURCE_BLOCK + 100 * state.index + 1}":
                       visible(state, programs)}
            answer = get(live_server, "/datalink/links", requester,
                         params=[("ID", i) for i in ids])
            table = votable.parse_single_table(io.BytesIO(answer.content)).to_table()
            for given, shown in ids.items():
                rows = table[table["ID"] == given]
                urls = [str(u) for u in rows["access_url"] if not np.ma.is_masked(u) and u]
                if shown:
                    assert any("/lightcurves/query?ID=" in u for u in urls), (requester.name,
                                                                              given)
                else:
                    assert len(rows) == 1 and urls == [], (requester.name, given)


def test_object_pages_show_the_visible_epochs_only(live_server: str, database: Database,
                                                   objects_world: dict[str, Person]) -> None:
    """/objects/<oid>: the page of an object the requester may see counts their visible epochs
    (the mixed object's too); any other answers as an unknown object (404, the same page);
    /objects by position lists exactly the visible ones."""
    import re

    with database.admin() as connection:
        reset_world(connection)
    for requester in [ANONYMOUS_WHO] + [who(p) for p in objects_world.values()]:
        programs = requester.programs
        unknown = get(live_server, "/objects/123", requester)
        assert unknown.status_code == 404
        expected = {SINGLE_OID[s.key]: 3 for s in STATES if visible(s, programs)}
        if _expected_mixed(programs):
            expected[MIXED_OID] = len(_expected_mixed(programs))
        for oid in [MIXED_OID, *SINGLE_OID.values()]:
            page = get(live_server, f"/objects/{oid}", requester)
            if oid in expected:
                assert page.status_code == 200, (requester.name, oid)
                shown = re.search(r'<span id="nobs">(\d+)</span>', page.text)
                assert shown is not None and int(shown.group(1)) == expected[oid]
            else:
                assert page.status_code == 404, (requester.name, oid)
                assert page.text.replace("123", str(oid)) == unknown.text.replace(
                    "123", str(oid))
        listing = get(live_server, "/objects", requester, params={
            "position": f"{MIXED_POSITION[0]} {MIXED_POSITION[1]}", "radius": "200"})
        listed = {int(o) for o in re.findall(r'href="/objects/(\d+)"', listing.text)}
        assert listed == set(expected), requester.name
