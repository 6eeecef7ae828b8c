"""Objects and light curves of the light-curve survey against the simulator's truth: matching
purity and completeness, periods of the variables, relative photometry, and the statistics
(SQL of survey.objects, the light-curve package, numpy) against one another.

Figures go to test-artifacts/lightcurves_validation.json.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lightcurve_survey import SurveyArchive
from scipy.spatial import cKDTree

from skyvault.geometry import unit_vectors
from skyvault.lightcurves.access import good_epochs, lightcurve_arrays, upper_limits_of
from skyvault.lightcurves.metrics import Epochs, collapse
from skyvault.lightcurves.periodogram import periodogram
from skyvault.schema.objects_sql import METRIC_NAMES

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TRUTH_RADIUS_ARCSEC = 1.0
"""A detection is of the nearest truth star within this (the astrometric rms is ~0.1")."""
RESOLVED_ARCSEC = 2.5
"""Stars with a detectable neighbour closer than this are one blend at 2" seeing: left out."""
FIGURES: dict[str, object] = {}


def _record(name: str, value: object) -> None:
    FIGURES[name] = value
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "lightcurves_validation.json").write_text(json.dumps(FIGURES, indent=1))


def _detections(archive: SurveyArchive) -> dict[str, np.ndarray]:
    with archive.database.admin() as connection:
        rows = connection.execute(
            "SELECT s.oid, s.ra, s.dec, s.flags, s.mag, s.magerr, s.pid, i.maglimit"
            " FROM survey.psf_sources s JOIN survey.science_images i USING (pid)"
            " WHERE s.filtercode = 'zr'").fetchall()
    columns = list(zip(*rows, strict=True))
    names = ("oid", "ra", "dec", "flags", "mag", "magerr", "pid", "maglimit")
    return {name: np.array(values) for name, values in zip(names, columns, strict=True)}


def _truth_of(archive: SurveyArchive, detections: dict[str, np.ndarray]) -> np.ndarray:
    """Index into the truth stars of each detection's star, or -1."""
    stars = archive.stars
    tree = cKDTree(unit_vectors(stars["ra"], stars["dec"]))
    chord = 2 * np.sin(np.radians(TRUTH_RADIUS_ARCSEC / 3600) / 2)
    distance, index = tree.query(unit_vectors(detections["ra"], detections["dec"]),
                                 distance_upper_bound=chord)
    return np.where(np.isfinite(distance), index, -1)


def _resolved(archive: SurveyArchive, limit: float) -> np.ndarray:
    """Stars with no other star brighter than ``limit`` within RESOLVED_ARCSEC."""
    stars = archive.stars
    vectors = unit_vectors(stars["ra"], stars["dec"])
    visible = np.flatnonzero(stars["mag_r"] < limit)
    tree = cKDTree(vectors[visible])
    chord = 2 * np.sin(np.radians(RESOLVED_ARCSEC / 3600) / 2)
    crowded = np.zeros(len(stars), dtype=bool)
    for k, neighbours in enumerate(tree.query_ball_point(vectors, chord)):
        crowded[k] = any(visible[n] != k for n in neighbours)
    return ~crowded


@pytest.fixture(scope="module")
def matched(survey_archive: SurveyArchive) -> dict[str, np.ndarray]:
    detections = _detections(survey_archive)
    detections["star"] = _truth_of(survey_archive, detections)
    return detections


def test_matching_purity_and_completeness(survey_archive: SurveyArchive,
                                          matched: dict[str, np.ndarray]) -> None:
    """Unflagged detections of (resolved) stars brighter than 1 mag above their image's limit:
    each star's detections carry one oid (completeness), no oid holds two stars (purity), both
    at least 99.5 %."""
    stars = survey_archive.stars
    star = matched["star"]
    resolved = _resolved(survey_archive, float(np.median(matched["maglimit"])) + 0.5)
    bright = (star >= 0) & (matched["flags"] == 0)
    bright[bright] &= stars["mag_r"][star[bright]] < matched["maglimit"][bright] - 1.0
    bright[bright] &= resolved[star[bright]]
    oid, owner = matched["oid"][bright], star[bright]
    majority_oid = {s: Counter(oid[owner == s]).most_common(1)[0][0] for s in np.unique(owner)}
    majority_star = {o: Counter(owner[oid == o]).most_common(1)[0][0] for o in np.unique(oid)}
    completeness = float(np.mean([majority_oid[s] == o for s, o in zip(owner, oid,
                                                                          strict=True)]))
    purity = float(np.mean([majority_star[o] == s for s, o in zip(owner, oid, strict=True)]))
    _record("matching", {"detections": int(bright.sum()), "stars": len(majority_oid),
                         "objects": len(majority_star), "completeness": completeness,
                         "purity": purity})
    assert len(majority_oid) > 200
    assert completeness >= 0.995 and purity >= 0.995


def test_light_curves_hold_every_detection_and_read_one_cell(
        survey_archive: SurveyArchive) -> None:
    """Every detection of the survey is a point of its object's light curve and nothing else
    is (twelve nights in the sky cells, the last in its night partition); an object's light
    curve by oid reads one sky cell and the one night left, not a partition per night."""
    detection = "oid, sourceid, pid, nid, ra, dec, mag, magerr, flags, obsjd"
    with survey_archive.database.admin() as connection:
        differ = connection.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {detection} FROM survey.psf_sources"
            f"   EXCEPT SELECT {detection} FROM survey.lightcurves) a)"
            f" + (SELECT count(*) FROM (SELECT {detection} FROM survey.lightcurves"
            f"   EXCEPT SELECT {detection} FROM survey.psf_sources) b),"
            " (SELECT count(*) FROM survey.lightcurves_sky),"
            " (SELECT count(*) FROM survey.lightcurves_nights)").fetchone()
        oid, nights = connection.execute(
            "SELECT oid, count(DISTINCT nid) FROM survey.lightcurves GROUP BY oid"
            " ORDER BY count(*) DESC LIMIT 1").fetchone()
    with survey_archive.database.reading(user_query=True) as connection:
        plan = "\n".join(row[0] for row in connection.execute(
            f"EXPLAIN SELECT * FROM survey.lightcurves WHERE oid = {oid}"))
    assert differ[0] == 0 and differ[1] > 0 and differ[2] > 0, differ
    assert nights == len(survey_archive.survey.raw_dirs)
    probed = re.findall(r" on (lightcurves_\w+)", plan)
    assert len([p for p in probed if re.fullmatch(r"lightcurves_c\d+_\d+", p)]) == 1, plan
    assert len([p for p in probed if re.fullmatch(r"lightcurves_n\d+", p)]) == 1, plan


def test_periods_of_the_variables_are_recovered(survey_archive: SurveyArchive,
                                                matched: dict[str, np.ndarray]) -> None:
    """Every truth variable of semi-amplitude above 0.1 mag whose object has at least 30
    unflagged epochs: the archive's periodogram (skyvault/lightcurves/periodogram.py, the web
    page's) finds its period within 1 %. For those brighter than 1 mag above the limit (as for
    matching), at least 95 % of them. Fainter ones are recorded too: near the limit the faint
    phases go undetected (the light curve is censored), which the upper limits tell the
    periodogram; with them it finds at least as many periods as from the detections alone."""
    stars = survey_archive.stars
    star = matched["star"]
    limit = float(np.median(matched["maglimit"]))
    variable = (stars["var_amplitude"] > 0.1)
    owners = {}
    for s in np.unique(star[(star >= 0)]):
        if variable[s]:
            owners[s] = Counter(matched["oid"][star == s]).most_common(1)[0][0]
    with survey_archive.database.admin() as connection:
        curves = lightcurve_arrays(connection, list(owners.values()))
        limits = upper_limits_of(connection, list(owners.values()))
    results = []
    for s, oid in owners.items():
        curve = curves[oid]
        good = good_epochs(curve["catflags"], curve["mag"], curve["magerr"])
        if good.sum() < 30:
            continue
        t, m, e = curve["mjd"][good], curve["mag"][good], curve["magerr"][good]
        censored = limits.get(oid, [])
        found = periodogram(t, m, e, np.array([c["mjd"] for c in censored], dtype=float),
                            np.array([c["limitmag"] for c in censored], dtype=float))
        detections_only = periodogram(t, m, e)
        assert found is not None and detections_only is not None
        truth = float(stars["var_period"][s])
        results.append({"period": truth, "found": found.best_period,
                        "found_from_detections": detections_only.best_period,
                        "amplitude": float(stars["var_amplitude"][s]),
                        "mag_r": float(stars["mag_r"][s]), "epochs": int(good.sum()),
                        "upper_limits": len(censored),
                        "ok": bool(abs(found.best_period - truth) / truth < 0.01),
                        "ok_from_detections": bool(
                            abs(detections_only.best_period - truth) / truth < 0.01)})
    bright = [r for r in results if r["mag_r"] < limit - 1.0]
    recovered = float(np.mean([r["ok"] for r in bright]))
    everything = float(np.mean([r["ok"] for r in results]))
    from_detections = float(np.mean([r["ok_from_detections"] for r in results]))
    _record("periods", {"limit": limit, "variables": len(bright),
                        "recovered_within_1pct": recovered,
                        "all_variables_with_30_epochs": len(results),
                        "all_recovered_within_1pct": everything,
                        "all_recovered_from_detections_only": from_detections,
                        "missed": [r for r in results if not r["ok"]]})
    assert len(bright) >= 20
    assert recovered >= 0.95
    assert everything >= from_detections


def test_relative_photometry_lowers_the_scatter_of_constant_stars(
        survey_archive: SurveyArchive, matched: dict[str, np.ndarray]) -> None:
    """Constant stars (no variability in the truth, 20 or more unflagged epochs): the median
    epoch-to-epoch standard deviation of their magnitudes before (the pipeline's) and after the
    relative correction, per magnitude below the limit. Zero-point errors matter where the
    photometric errors are smaller: the bright stars, 3 mag or more above the limit."""
    stars = survey_archive.stars
    star = matched["star"]
    limit = float(np.median(matched["maglimit"]))
    owners = {}
    for s in np.unique(star[star >= 0]):
        if stars["var_amplitude"][s] == 0 and stars["mag_r"][s] < limit - 1.0:
            owners[s] = Counter(matched["oid"][star == s]).most_common(1)[0][0]
    with survey_archive.database.admin() as connection:
        curves = lightcurve_arrays(connection, list(owners.values()))
        corrections = [row[0] for row in connection.execute(
            "SELECT relphot_corr FROM survey.science_images WHERE relphot_corr IS NOT NULL")]
    scatter = []
    for s, oid in owners.items():
        curve = curves[oid]
        good = good_epochs(curve["catflags"], curve["mag"], curve["magerr"])
        if good.sum() >= 20:
            scatter.append((limit - stars["mag_r"][s],
                            np.std(curve["mag_uncorrected"][good], ddof=1),
                            np.std(curve["mag"][good], ddof=1)))
    table = np.array(scatter)
    bins = {}
    for low, high in ((3.0, 9.0), (2.0, 3.0), (1.0, 2.0)):
        inside = (table[:, 0] >= low) & (table[:, 0] < high)
        bins[f"{low:g}-{high:g} mag above the limit"] = {
            "stars": int(inside.sum()), "median_rms_before": float(np.median(table[inside, 1])),
            "median_rms_after": float(np.median(table[inside, 2]))}
    _record("relative_photometry", {"by_brightness": bins,
                                    "corrections_rms": float(np.std(corrections)),
                                    "images_corrected": len(corrections),
                                    "by_quadrant": _by_quadrant(survey_archive, owners)})
    bright = bins["3-9 mag above the limit"]
    assert bright["stars"] >= 15
    assert bright["median_rms_after"] < bright["median_rms_before"]
    for figures in bins.values():
        assert figures["median_rms_after"] <= figures["median_rms_before"] * 1.01


def _by_quadrant(archive: SurveyArchive, owners: dict) -> dict:
    """Per quadrant: the scatter of the pipeline's zero points (against the truth's), and the
    median scatter of its constant stars 2 mag or more above the limit, before and after."""
    truth = {}
    for raw in archive.survey.raw_dirs:
        for exposure in json.loads((raw / "truth" / "exposures.json").read_text()):
            truth[exposure["expid"]] = exposure["magzp"]
    out = {}
    with archive.database.admin() as connection:
        images = connection.execute(
            "SELECT rcid, expid, magzp, relphot_corr FROM survey.science_images").fetchall()
        first = dict(connection.execute(
            "SELECT oid, rcid FROM survey.object_registry WHERE oid = ANY(%s)",
            (list(owners.values()),)))
        curves = lightcurve_arrays(connection, list(owners.values()))
    for rcid in sorted({row[0] for row in images}):
        errors = [zp - truth[expid] for r, expid, zp, _ in images if r == rcid]
        before, after = [], []
        for oid, curve in curves.items():
            good = good_epochs(curve["catflags"], curve["mag"], curve["magerr"])
            if first.get(oid) == rcid and good.sum() >= 20 and np.median(curve["mag"]) < 19:
                before.append(np.std(curve["mag_uncorrected"][good], ddof=1))
                after.append(np.std(curve["mag"][good], ddof=1))
        out[str(rcid)] = {"zero_point_error_rms": float(np.std(errors)), "stars": len(before),
                          "median_rms_before": float(np.median(before)) if before else None,
                          "median_rms_after": float(np.median(after)) if after else None}
    return out


def _numpy_statistics(t: np.ndarray, m: np.ndarray, e: np.ndarray) -> dict[str, float]:
    """Hand-written definitions of a few statistics, to hold the light-curve package to."""
    n = len(m)
    weight = 1 / e ** 2
    wmean = np.sum(weight * m) / np.sum(weight)
    sd = np.std(m, ddof=1)
    return {
        "chisq": float(np.sum(((m - wmean) / e) ** 2) / (n - 1)),
        "vonneumannratio": float(np.sum(np.diff(m) ** 2) / (n - 1) / sd ** 2),
        "magrms": float(sd),
        "skewness": float(n / ((n - 1) * (n - 2)) * np.sum((m - m.mean()) ** 3) / sd ** 3),
        "stetsonk": float(np.sum(np.abs(m - wmean) / e)
                          / np.sqrt(n * np.sum(((m - wmean) / e) ** 2))),
    }


def test_statistics_agree_sql_light_curve_and_numpy(survey_archive: SurveyArchive) -> None:
    """For 60 objects: survey.objects (SQL, computed when asked) equals the light-curve
    package on the same epochs, which equals hand-written numpy where we wrote it."""
    with survey_archive.database.admin() as connection:
        oids = [row[0] for row in connection.execute(
            "SELECT oid FROM survey.object_registry WHERE fid = 2 ORDER BY oid LIMIT 60")]
        sql = {row[0]: dict(zip(("oid", *METRIC_NAMES), row, strict=True))
               for row in connection.execute(
                   f"SELECT oid, {', '.join(METRIC_NAMES)} FROM survey.objects"
                   " WHERE oid = ANY(%s)", (oids,))}
        curves = lightcurve_arrays(connection, oids)
    compared = 0
    for oid in oids:
        curve = curves[oid]
        good = good_epochs(curve["catflags"], curve["mag"], curve["magerr"])
        python = collapse(Epochs(curve["mjd"], curve["mag"], curve["magerr"], good,
                                 curve["ra"], curve["dec"]))
        for name in METRIC_NAMES:
            expected, got = python[name], sql[oid][name]
            if isinstance(expected, float) and not np.isfinite(expected):
                assert got is None, (oid, name, got)
            else:
                assert got == pytest.approx(expected, rel=2e-5, abs=2e-5), (oid, name)
        if good.sum() >= 4:
            order = np.lexsort((curve["mag"][good], curve["mjd"][good]))
            hand = _numpy_statistics(curve["mjd"][good][order], curve["mag"][good][order],
                                     curve["magerr"][good][order])
            for name, value in hand.items():
                assert python[name] == pytest.approx(value, rel=1e-9), (oid, name)
            compared += 1
    assert compared >= 30
