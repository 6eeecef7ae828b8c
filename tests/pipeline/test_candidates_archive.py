"""The test survey's candidates through ingest: rows as the diffcats say, dated by the public
alert stream's rule, and the fields ingest adds after the load (objectid, ndethist...) against
the simulator's truth and a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.candidate_history import OBJECT_RADIUS_ARCSEC, object_name
from skyvault.ingest.testing import fresh_database
from skyvault.pipeline.candidate_truth import MATCH_PIXELS, CandidateTruth, read_diffcats
from skyvault.pipeline.skygeom import unit_vectors

COLUMNS = ("candid", "diffid", "pid", "objectid", "jd", "ra", "dec", "xpos", "ypos", "field",
           "rcid", "programid", "magpsf", "isdiffpos", "rb", "rb_version", "ndethist",
           "jdstarthist", "jdendhist", "ncovhist", "flags", "nid")


@pytest.fixture(scope="module")
def archive(survey, database: Database, tmp_path_factory) -> dict:
    handle = fresh_database(database.urls.admin, "candidates_archive")
    base = tmp_path_factory.mktemp("candidates-archive")
    summary = ingest_paths([survey.products], database=handle,
                           store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    assert summary.ok, summary.lines()
    with handle.admin() as connection:
        rows = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM survey.candidates ORDER BY candid").fetchall()
        science = dict(connection.execute(
            "SELECT pid, obsdate FROM survey.science_images").fetchall())
        dated = connection.execute(
            "SELECT c.programid, c.release_date = CASE WHEN c.programid = 1 THEN i.obsdate"
            " ELSE i.release_date END FROM survey.candidates c JOIN survey.science_images i"
            " USING (pid)").fetchall()
    table = {name: [row[k] for row in rows] for k, name in enumerate(COLUMNS)}
    return {"summary": summary, "rows": table, "science": science, "dated": dated}


def test_every_diffcat_row_is_a_candidate(survey, archive) -> None:
    diffcats = read_diffcats(survey.products, survey.reports[-1].nightdate)
    assert len(archive["rows"]["candid"]) == sum(len(d.columns["x"]) for d in diffcats) > 0
    assert len(set(archive["rows"]["candid"])) == len(archive["rows"]["candid"])
    positions = unit_vectors(np.array(archive["rows"]["ra"]), np.array(archive["rows"]["dec"]))
    for rows in diffcats[:20]:
        mine = unit_vectors(rows.columns["ra"], rows.columns["dec"])
        nearest = np.max(positions @ mine.T, axis=0)
        assert np.all(nearest > np.cos(np.radians(0.001 / 3600)))
    assert set(archive["rows"]["isdiffpos"]) <= {"t", "f"}
    assert len(set(archive["rows"]["rb_version"])) == 1


def test_candidates_are_dated_by_the_public_alert_stream_rule(archive) -> None:
    assert archive["dated"] and all(ok for _, ok in archive["dated"])
    assert {programid for programid, _ in archive["dated"]} >= {1}


def test_every_transient_keeps_one_objectid_across_epochs(survey, archive) -> None:
    """Issue 17: candidates of one injected transient share its name; two transients never
    do. Matched to the truth by pixel position on each difference image."""
    truth = CandidateTruth.read(list(survey.raw_dirs))
    rows = archive["rows"]
    by_diffid: dict[int, list[int]] = {}
    for index, diffid in enumerate(rows["diffid"]):
        by_diffid.setdefault(diffid, []).append(index)
    names_of: dict[int, set[str]] = {}
    with_sign: dict[tuple[int, int], int] = {}
    for diffcat in read_diffcats(survey.products, survey.reports[-1].nightdate):
        d = diffcat.difference
        table = truth.transients
        here = table[(table["expid"] == d.expid) & (table["ccdid"] == d.ccdid)
                     & (table["qid"] == d.qid)]
        candidates = [i for i in _rows_of(rows, d) if rows["isdiffpos"][i] == "t"]
        for transient in here:
            near = [i for i in candidates if np.hypot(rows["xpos"][i] - 1 - transient["x"],
                                                      rows["ypos"][i] - 1 - transient["y"])
                    < MATCH_PIXELS]
            for i in near:
                names_of.setdefault(int(transient["id"]), set()).add(rows["objectid"][i])
                with_sign[(int(transient["id"]), d.expid)] = i
    repeated = {tid: names for tid, names in names_of.items()
                if sum(1 for (t, _) in with_sign if t == tid) >= 2}
    assert len(repeated) >= 5
    assert all(len(names) == 1 and None not in names for names in repeated.values())
    firsts = [next(iter(names)) for names in names_of.values()]
    assert len(set(firsts)) == len(firsts), "two transients share an objectid"
    assert all(name.startswith("ZTF26") and len(name) == 12 for name in firsts)


def _rows_of(rows: dict, difference) -> list[int]:
    return [i for i, (pid_field, rcid) in enumerate(zip(rows["field"], rows["rcid"],
                                                         strict=True))
            if pid_field == difference.field and rcid == difference.rcid
            and abs(rows["jd"][i] - difference.obsjd) < 1e-6]


def test_detection_histories_match_a_brute_force_count(archive) -> None:
    """ndethist, jdstarthist, jdendhist: detections within 1.5 arcsec on the same field and
    channel up to this one, of the public alert programs or the candidate's own."""
    rows = archive["rows"]
    ra, dec, jd = (np.array(rows[name], float) for name in ("ra", "dec", "jd"))
    field, rcid, program = (np.array(rows[name]) for name in ("field", "rcid", "programid"))
    vectors = unit_vectors(ra, dec)
    limit = np.cos(np.radians(OBJECT_RADIUS_ARCSEC / 3600))
    checked = 0
    for i in np.random.default_rng(3).choice(ra.size, size=min(300, ra.size), replace=False):
        near = (vectors @ vectors[i] >= limit) & (jd <= jd[i]) & (field == field[i]) & \
            (rcid == rcid[i]) & ((program == program[i]) | (program == 1))
        assert rows["ndethist"][i] == near.sum(), i
        assert rows["jdstarthist"][i] == pytest.approx(jd[near].min(), abs=1e-8)
        assert rows["jdendhist"][i] == pytest.approx(jd[near].max(), abs=1e-8)
        assert rows["ncovhist"][i] >= 1
        checked += 1
    assert checked > 0


def test_object_names_count_in_base_26() -> None:
    assert object_name(2026, 0) == "ZTF26aaaaaaa"
    assert object_name(2026, 27) == "ZTF26aaaaabb"
    assert object_name(2018, 26**7 - 1) == "ZTF18zzzzzzz"
    with pytest.raises(OverflowError):
        object_name(2018, 26**7)
