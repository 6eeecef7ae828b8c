"""What each difference-image candidate really is, from the simulator's truth.

Real: an injected transient, an asteroid, a variable star (its flux changed since the
reference). Bogus: a cosmic-ray hit, a bad column, a subtraction residual of a constant star or
of a galaxy, or anything else ("noise": most of it flagged residuals in the wings of bright
stars). The labels train and test the real/bogus classifier; ``expected_transients`` says
which transients a difference image should show and at what signal-to-noise, for the
completeness test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from scipy.spatial import cKDTree

from skyvault.geometry import unit_vectors
from skyvault.pipeline.manifest import DifferenceMeta, read_manifest
from skyvault.pipeline.validate import Truth

REAL_KINDS = ("transient", "asteroid", "variable")
BOGUS_KINDS = ("cosmic_ray", "bad_column", "star_residual", "galaxy_residual", "noise")
MATCH_PIXELS = 2.0
"""A candidate within 2 pixels (2") of a truth position is that object."""
ASTEROID_PIXELS = 3.0
"""Asteroids move during the exposure: their centroid sits up to a pixel off mid-exposure."""
STAR_RESIDUAL_ARCSEC = 3.0


@dataclass(frozen=True)
class DiffcatRows:
    """One difference image's candidates, as the diffcat holds them."""

    difference: DifferenceMeta
    columns: dict[str, np.ndarray]
    psf_fwhm: float
    """pixels, of the difference image's PSF (PSFFWHM)."""
    rb_version: str
    """The real/bogus model that scored the ``rb`` column (RBVERSN)."""


def read_diffcats(product_dir: Path, nightdate: str) -> list[DiffcatRows]:
    """Every difference image of a night and its candidates, from the exposure manifests."""
    found = []
    night = nightdate.replace("-", "")
    for path in sorted((Path(product_dir) / "manifests" / night).glob("exp_*.json")):
        for difference in read_manifest(path).differences:
            with fits.open(Path(product_dir) / difference.files["diffcat"]) as hdul:
                data = hdul[1].data
                columns = {name.lower(): np.asarray(data[name]) for name in data.columns.names}
                header = hdul[0].header
                fwhm = float(header.get("PSFFWHM", 2.0))
                version = str(header.get("RBVERSN", "none"))
            found.append(DiffcatRows(difference, columns, fwhm, version))
    return found


def _stacked(raw_dirs: list[Path], name: str) -> np.ndarray | None:
    """One truth table over several nights (expids are unique across nights)."""
    paths = [Path(r) / "truth" / name for r in raw_dirs if (Path(r) / "truth" / name).exists()]
    if not paths:
        return None
    return vstack([Table.read(path) for path in paths]).as_array()


@dataclass
class CandidateTruth:
    """The truth of some nights, ready to label their candidates."""

    truth: Truth
    transients: np.ndarray
    asteroids: np.ndarray
    cosmic_rays: np.ndarray | None
    mjd_mid: dict[int, float]
    """Mid-exposure MJD of every exposure of the nights."""

    @classmethod
    def read(cls, raw_dirs: list[Path]) -> CandidateTruth:
        """The last night's stars and instrument; every night's transients, asteroids and
        cosmic rays (a reference's epochs come from earlier nights)."""
        truth = Truth.read(raw_dirs[-1])
        mjd_mid = {}
        for raw_dir in raw_dirs:
            mjd_mid.update({expid: float(e["mjd_mid"])
                            for expid, e in Truth.read(raw_dir).exposures.items()})
        return cls(truth, _stacked(raw_dirs, "transients.fits"),
                   _stacked(raw_dirs, "asteroids.fits"), _stacked(raw_dirs, "cosmic_rays.fits"),
                   mjd_mid)

    def label(self, rows: DiffcatRows) -> np.ndarray:
        """The kind of every candidate (``REAL_KINDS`` or ``BOGUS_KINDS``)."""
        d = rows.difference
        x = np.asarray(rows.columns["x"], np.float64) - 1
        y = np.asarray(rows.columns["y"], np.float64) - 1
        kinds = np.full(x.size, "noise", dtype=object)
        if x.size == 0:
            return kinds.astype(str)
        points = np.column_stack([x, y])
        near_star = self.nearest_index(self.truth.stars, rows, STAR_RESIDUAL_ARCSEC)
        variable = near_star.copy()
        variable[near_star >= 0] = np.where(
            self.truth.stars["var_amplitude"][near_star[near_star >= 0]] > 0,
            near_star[near_star >= 0], -1)
        kinds[self.nearest_index(self.truth.galaxies, rows, STAR_RESIDUAL_ARCSEC) >= 0] = \
            "galaxy_residual"
        kinds[near_star >= 0] = "star_residual"
        columns = self._bad_columns(d.ccdid, d.qid)
        if columns.size:
            on_column = np.min(np.abs(x[:, None] - columns[None, :]), axis=1) < MATCH_PIXELS
            kinds[on_column] = "bad_column"
        kinds[self._on_cosmic_ray(d, points)] = "cosmic_ray"
        kinds[variable >= 0] = "variable"
        kinds[_within(points, self._truth_xy(self.asteroids, d), ASTEROID_PIXELS)] = \
            "asteroid"
        kinds[_within(points, self._truth_xy(self.transients, d), MATCH_PIXELS)] = \
            "transient"
        return kinds.astype(str)

    def _truth_xy(self, table: np.ndarray, d: DifferenceMeta) -> np.ndarray:
        rows = table[(table["expid"] == d.expid) & (table["ccdid"] == d.ccdid)
                     & (table["qid"] == d.qid)]
        return np.column_stack([rows["x"], rows["y"]]) if len(rows) else np.zeros((0, 2))

    def nearest_index(self, stars: np.ndarray, rows: DiffcatRows,
                      radius_arcsec: float) -> np.ndarray:
        """Index of the nearest truth star (or galaxy) within the radius, or -1."""
        tree = cKDTree(unit_vectors(np.asarray(stars["ra"]), np.asarray(stars["dec"])))
        chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
        distance, index = tree.query(
            unit_vectors(np.asarray(rows.columns["ra"]), np.asarray(rows.columns["dec"])),
            distance_upper_bound=chord)
        return np.where(np.isfinite(distance), index, -1)

    def _bad_columns(self, ccdid: int, qid: int) -> np.ndarray:
        quadrant = self.truth.instrument.get((ccdid, qid), {})
        return np.array(list(quadrant.get("dead_columns", [])) +
                        list(quadrant.get("hot_columns", [])), dtype=float)

    def _on_cosmic_ray(self, d: DifferenceMeta, points: np.ndarray) -> np.ndarray:
        hits = self.cosmic_rays
        if hits is None or len(hits) == 0:
            return np.zeros(len(points), dtype=bool)
        hits = hits[(hits["expid"] == d.expid) & (hits["ccdid"] == d.ccdid)
                    & (hits["qid"] == d.qid)]
        on = np.zeros(len(points), dtype=bool)
        for hit in hits:
            on |= _segment_distance(points, hit["x0"], hit["y0"], hit["x1"], hit["y1"]) \
                < MATCH_PIXELS
        return on

    def expected_transients(self, d: DifferenceMeta, reference_epochs: list[int]) -> list[dict]:
        """The transients on a difference image with their expected difference S/N: the flux
        now minus the mean flux over the reference's epochs, over the 5-sigma limit's."""
        table = self.transients
        now = table[(table["expid"] == d.expid) & (table["ccdid"] == d.ccdid)
                    & (table["qid"] == d.qid)]
        in_reference = table[np.isin(table["expid"], reference_epochs)]
        limit_flux = _limit_flux(d)
        out = []
        for row in now:
            then = in_reference[in_reference["id"] == row["id"]]
            reference_flux = float(np.sum(10 ** (-0.4 * then["mag"]))) / max(
                len(reference_epochs), 1)
            change = 10 ** (-0.4 * row["mag"]) - reference_flux
            out.append({"id": int(row["id"]), "x": float(row["x"]), "y": float(row["y"]),
                        "mag": float(row["mag"]), "snr": abs(change) / limit_flux,
                        "positive": change > 0})
        return out


    def expected_change(self, rows: DiffcatRows, reference_epochs: list[int]) -> np.ndarray:
        """The flux change (in units of 10^(-0.4 mag), signed) the truth expects at each
        candidate labelled ``variable`` or ``transient``: now minus the mean over the
        reference's epochs; NaN for the others."""
        d = rows.difference
        kinds = self.label(rows)
        change = np.full(kinds.size, np.nan)
        now = self.mjd_mid[d.expid]
        stars = self.nearest_index(self.truth.stars, rows, STAR_RESIDUAL_ARCSEC)
        for k in np.flatnonzero((kinds == "variable") & (stars >= 0)):
            star = self.truth.stars[stars[k]:stars[k] + 1]
            mags = [self._star_mag(star, d.filtercode, self.mjd_mid[e]) for e in reference_epochs
                    if e in self.mjd_mid]
            flux_then = np.mean(10 ** (-0.4 * np.array(mags)))
            change[k] = 10 ** (-0.4 * self._star_mag(star, d.filtercode, now)) - flux_then
        x = np.asarray(rows.columns["x"], float) - 1
        y = np.asarray(rows.columns["y"], float) - 1
        for transient in self.expected_transients(d, reference_epochs):
            near = np.flatnonzero((np.hypot(x - transient["x"], y - transient["y"])
                                   < MATCH_PIXELS) & (kinds == "transient"))
            limit_flux = _limit_flux(d)
            sign = 1.0 if transient["positive"] else -1.0
            change[near] = sign * transient["snr"] * limit_flux
        return change

    @staticmethod
    def _star_mag(star: np.ndarray, band: str, mjd: float) -> float:
        period = star["var_period"][0] if star["var_period"][0] > 0 else 1.0
        return float(star[f"mag_{band[1]}"][0] + star["var_amplitude"][0]
                     * np.sin(2 * np.pi * mjd / period + star["var_phase"][0]))


def _limit_flux(d: DifferenceMeta) -> float:
    """The flux (10^(-0.4 mag)) of the difference's 1-sigma point-source noise; NaN where
    its depth is unknown (null), so expected S/Ns are NaN rather than made up."""
    return float("nan") if d.maglimit is None else 10 ** (-0.4 * d.maglimit) / 5.0


def _within(points: np.ndarray, targets: np.ndarray, radius: float) -> np.ndarray:
    if len(targets) == 0 or len(points) == 0:
        return np.zeros(len(points), dtype=bool)
    distance, _ = cKDTree(targets).query(points, distance_upper_bound=radius)
    return np.isfinite(distance)


def _segment_distance(points: np.ndarray, x0: float, y0: float, x1: float,
                      y1: float) -> np.ndarray:
    start, end = np.array([x0, y0]), np.array([x1, y1])
    direction = end - start
    length2 = float(direction @ direction)
    t = np.zeros(len(points)) if length2 == 0 else np.clip(
        (points - start) @ direction / length2, 0, 1)
    closest = start + t[:, None] * direction
    return np.hypot(*(points - closest).T)


def is_real(kinds: np.ndarray) -> np.ndarray:
    return np.isin(kinds, REAL_KINDS)


def reference_epochs(product_dir: Path) -> dict[str, list[int]]:
    """refimg path -> the expids co-added into it, from the reference manifests."""
    epochs = {}
    for path in sorted((Path(product_dir) / "manifests" / "ref").glob("ref_*.json")):
        for reference in read_manifest(path).references:
            epochs[reference.files["refimg"]] = list(reference.input_expids)
    return epochs
