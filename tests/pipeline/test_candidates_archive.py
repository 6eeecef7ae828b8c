"""The test survey's candidates through ingest: rows as the diffcats say, dated by the public
alert stream's rule, and the fields ingest adds after the load (objectid, ndethist...) against
the simulator's truth and a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from skyvault.access import ANONYMOUS
from skyvault.geometry import unit_vectors
from skyvault.ingest.candidate_history import OBJECT_RADIUS_ARCSEC, object_name
from skyvault.pipeline.candidate_truth import MATCH_PIXELS, CandidateTruth, read_diffcats
from skyvault.pipeline.process.candidates import EXTERNAL_COLUMNS, REFERENCE_COLUMNS
from skyvault.schema.model import DOUBLE, FLOAT
from skyvault.schema.tables import CANDIDATES

UNKNOWABLE = ("magap", "sigmagap", "magdiff", "diffmaglim", *REFERENCE_COLUMNS,
              *EXTERNAL_COLUMNS, "rb")
"""Candidate fields the pipeline writes as NaN where they cannot be known (no catalog source
within 30 arcsec, an aperture flux that is not positive, no model...)."""
COLUMNS = ("candid", "diffid", "pid", "objectid", "jd", "ra", "dec", "xpos", "ypos", "field",
           "rcid", "programid", "magpsf", "isdiffpos", "rb", "rb_version", "ndethist",
           "jdstarthist", "jdendhist", "ncovhist", "flags", "nid")


@pytest.fixture(scope="module")
def archive(survey_archive) -> dict:
    handle, summary = survey_archive.database, survey_archive.summary
    with handle.admin() as connection:
        rows = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM survey.candidates ORDER BY candid").fetchall()
        science = dict(connection.execute(
            "SELECT pid, obsdate FROM survey.science_images").fetchall())
        stored = connection.execute(
            "SELECT c.candid, c.programid, c.pid, c.jd = i.obsjd FROM survey.candidates c"
            " JOIN survey.science_images i USING (pid)").fetchall()
        floats = [c.name for c in CANDIDATES.columns if c.type in (FLOAT, DOUBLE)]
        *nulls, nan = connection.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {name} IS NULL)"
                                  for name in UNKNOWABLE)
            + ", count(*) FILTER (WHERE " + " OR ".join(f"{name} = 'NaN'" for name in floats)
            + ") FROM survey.candidates").fetchone()
    # What the public sees (row-level security, nothing stored): every candidate of the public
    # survey at once (the public alert stream), any other exactly with its science image.
    with handle.reading(ANONYMOUS, user_query=True) as connection:
        public = {row[0] for row in connection.execute("SELECT candid FROM survey.candidates")}
        images = {row[0] for row in connection.execute("SELECT pid FROM survey.science_images")}
    dated = [(programid, same_time and (candid in public) == (programid == 1 or pid in images))
             for candid, programid, pid, same_time in stored]
    table = {name: [row[k] for row in rows] for k, name in enumerate(COLUMNS)}
    return {"summary": summary, "rows": table, "science": science, "dated": dated,
            "nulls": dict(zip(UNKNOWABLE, nulls, strict=True)), "nan": nan}


def test_every_diffcat_row_is_a_candidate(survey, archive) -> None:
    diffcats = read_diffcats(survey.products, survey.reports[-1].nightdate)
    assert len(archive["rows"]["candid"]) == sum(len(d.columns["x"]) for d in diffcats) > 0
    assert len(set(archive["rows"]["candid"])) == len(archive["rows"]["candid"])
    tree = cKDTree(unit_vectors(np.array(archive["rows"]["ra"]), np.array(archive["rows"]["dec"])))
    for rows in diffcats:
        distance, _ = tree.query(unit_vectors(rows.columns["ra"], rows.columns["dec"]))
        assert np.all(distance < np.radians(0.001 / 3600))
    assert set(archive["rows"]["isdiffpos"]) <= {"t", "f"}
    assert len(set(archive["rows"]["rb_version"])) == 1


def test_what_the_pipeline_could_not_know_is_null(survey, archive) -> None:
    """Issue 13 item 3 for candidates: a NaN in a diffcat (no reference or star-galaxy source
    within 30 arcsec...) is NULL in survey.candidates, column by column; no float column
    holds a NaN, which SQL would order above every number."""
    diffcats = read_diffcats(survey.products, survey.reports[-1].nightdate)
    assert archive["nan"] == 0
    for name in UNKNOWABLE:
        unknown = sum(int(np.isnan(d.columns[name]).sum()) for d in diffcats)
        assert archive["nulls"][name] == unknown, name


def test_candidates_are_dated_by_the_public_alert_stream_rule(archive) -> None:
    assert archive["dated"] and all(ok for _, ok in archive["dated"])
    assert {programid for programid, _ in archive["dated"]} >= {1}


def test_every_real_object_keeps_one_objectid_across_epochs(survey, archive) -> None:
    """Issue 17: the candidates of one injected transient, or of one variable star, share a
    name; two objects never do. Candidates are tied to the truth by their labels and the
    nearest truth object, and to the archive's rows by position and time."""
    truth = CandidateTruth.read(list(survey.raw_dirs))
    rows = archive["rows"]
    tree = cKDTree(unit_vectors(np.array(rows["ra"]), np.array(rows["dec"])))
    names_of: dict[tuple[str, int], set[str]] = {}
    epochs_of: dict[tuple[str, int], set[int]] = {}
    for diffcat in read_diffcats(survey.products, survey.reports[-1].nightdate):
        kinds = truth.label(diffcat)
        stars = truth.nearest_index(truth.truth.stars, diffcat, 3.0)
        transients = _nearest_transient(truth, diffcat)
        _, index = tree.query(unit_vectors(diffcat.columns["ra"], diffcat.columns["dec"]))
        for k in np.flatnonzero(np.isin(kinds, ("transient", "variable"))):
            key = ("transient", transients[k]) if kinds[k] == "transient" else \
                ("star", int(stars[k]))
            names_of.setdefault(key, set()).add(rows["objectid"][index[k]])
            epochs_of.setdefault(key, set()).add(diffcat.difference.expid)
    repeated = [key for key, epochs in epochs_of.items() if len(epochs) >= 2]
    assert len(repeated) >= 3
    assert all(len(names_of[key]) == 1 and None not in names_of[key] for key in repeated)
    firsts = [next(iter(names)) for names in names_of.values()]
    assert len(set(firsts)) == len(firsts), "two objects share an objectid"
    assert all(name.startswith("ZTF26") and len(name) == 12 for name in firsts)


def _nearest_transient(truth: CandidateTruth, diffcat) -> np.ndarray:
    d = diffcat.difference
    table = truth.transients
    here = table[(table["expid"] == d.expid) & (table["ccdid"] == d.ccdid)
                 & (table["qid"] == d.qid)]
    found = np.full(len(diffcat.columns["x"]), -1)
    if len(here):
        distance, index = cKDTree(np.column_stack([here["x"], here["y"]])).query(
            np.column_stack([diffcat.columns["x"] - 1, diffcat.columns["y"] - 1]))
        found = np.where(distance < MATCH_PIXELS, here["id"][index], -1)
    return found


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
