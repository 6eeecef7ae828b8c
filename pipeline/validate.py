"""Checking processed products against the simulator's truth.

Used by the tests and by anyone who wants the figures for a simulated night:
astrometric rms of bright unsaturated stars, zero-point errors (the MAGZP against the true
zero point, and each quadrant's catalog magnitudes against the true magnitudes of its stars),
detection completeness near the limiting magnitude, detections on bad columns that match no
real object, saturated stars that the catalogs flag, and the asteroids' detections.

    python -m skyvault.pipeline.validate PRODUCTDIR RAWDIR [RAWDIR ...]

prints every quadrant's zero-point errors and the figures per filter.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.spatial import cKDTree

from skyvault.geometry import separation, unit_vectors
from skyvault.pipeline.manifest import ScienceImageMeta, read_manifest
from skyvault.pipeline.process import maskbits
from skyvault.pipeline.process.photometry import (
    INFO_ASTROMETRY_FAILED,
    INFO_ASTROMETRY_POOR,
    INFO_FEW_ASTROMETRIC_MATCHES,
    ZEROPOINT_UNRELIABLE,
)
from skyvault.pipeline.process.wcs import TanSip
from skyvault.pipeline.psfmodel import moffat_pixels

ARCSEC = 1.0 / 3600.0


@dataclass
class Truth:
    stars: np.ndarray
    galaxies: np.ndarray
    transients: np.ndarray
    asteroids: np.ndarray
    exposures: dict[int, dict]
    instrument: dict[tuple[int, int], dict]

    @classmethod
    def read(cls, raw_dir: Path) -> Truth:
        truth = Path(raw_dir) / "truth"
        return cls(
            stars=fits.getdata(truth / "stars.fits"),
            galaxies=fits.getdata(truth / "galaxies.fits"),
            transients=fits.getdata(truth / "transients.fits"),
            asteroids=fits.getdata(truth / "asteroids.fits"),
            exposures={e["expid"]: e for e in json.loads((truth / "exposures.json").read_text())},
            instrument={
                (q["ccdid"], q["qid"]): q
                for q in json.loads((truth / "instrument.json").read_text())
            },
        )

    def star_mags(self, band: str, mjd: float) -> np.ndarray:
        period = np.where(self.stars["var_period"] > 0, self.stars["var_period"], 1.0)
        phase = 2 * np.pi * (mjd / period)
        return self.stars[f"mag_{band[1]}"] + self.stars["var_amplitude"] * np.sin(
            phase + self.stars["var_phase"]
        )


CHECK_MAGS = (15.0, 19.0)
"""True magnitudes of the stars a quadrant's catalog is checked on: bright enough to be
measured to a few percent, faint enough to be unsaturated."""
CHECK_MATCH_ARCSEC = 1.0
CHECK_ISOLATION_FWHM = 2.5
CHECK_CONTAMINATION = 0.01
"""A checked star's true neighbours (stars, galaxies, transients) within 2.5 FWHM add less than
1% of its light: its catalog magnitude should then be its true magnitude."""
CHECK_FLOOR = 0.005
"""mag, added to each star's magerr when averaging (flat field, unseen faint neighbours)."""


@dataclass(frozen=True)
class ImageZeroPoint:
    """One quadrant's photometric calibration against the truth."""

    expid: int
    ccdid: int
    qid: int
    filtercode: str
    infobits: int
    magzp: float
    """NaN without a zero point (null in the manifest), as the two below."""
    magzpunc: float
    magzprms: float
    nzpcal: int
    error: float
    """MAGZP minus the true zero point of the image; NaN without a zero point."""
    catalog_offset: float
    """Inverse-variance mean of psfcat mag minus true mag over the checked stars (unflagged
    detections of isolated, non-variable stars of 15-19 mag); NaN without any."""
    catalog_offset_error: float
    """Its statistical uncertainty (scaled up where the stars scatter more than their errors)."""
    catalog_stars: int

    @property
    def trusted(self) -> bool:
        """A zero point whose infobits do not say it is unreliable."""
        return bool(np.isfinite(self.magzp)) and not self.infobits & ZEROPOINT_UNRELIABLE


def zero_point_figures(images: list[ImageZeroPoint]) -> dict[str, dict]:
    """Per filter: trusted and flagged quadrants, largest and median |MAGZP error| and
    |catalog offset| of the trusted ones."""
    figures: dict[str, dict] = {}
    for band in sorted({image.filtercode for image in images}):
        rows = [image for image in images if image.filtercode == band]
        trusted = [image for image in rows if image.trusted]
        errors = np.abs([image.error for image in trusted])
        offsets = np.abs([image.catalog_offset for image in trusted])
        offsets = offsets[np.isfinite(offsets)]
        figures[band] = {
            "images": len(rows),
            "trusted": len(trusted),
            "flagged": len(rows) - len(trusted),
            "error_max_abs": float(errors.max()) if errors.size else None,
            "error_median_abs": float(np.median(errors)) if errors.size else None,
            "catalog_offset_max_abs": float(offsets.max()) if offsets.size else None,
            "catalog_offset_median_abs": float(np.median(offsets)) if offsets.size else None,
        }
    return figures


def _tree(ra, dec) -> cKDTree:
    return cKDTree(unit_vectors(np.asarray(ra, float), np.asarray(dec, float)))


def _chord(arcsec: float) -> float:
    return 2 * np.sin(np.radians(arcsec / 3600) / 2)


@dataclass
class ValidationReport:
    images: int = 0
    bright_star_matches: int = 0
    astrometric_rms_bright: float = float("nan")
    """arcsec, bright unsaturated stars (S/N > 50), psfcat against truth."""
    zero_points: list[ImageZeroPoint] = field(default_factory=list)
    """Every quadrant's zero point against the truth, flagged ones included."""
    completeness_bins: dict[str, tuple[int, int]] = field(default_factory=dict)
    """'maglimit-1.0': (detected, total) of isolated truth stars in bins relative to the
    quadrant's 5-sigma limit."""
    bad_column_detections: int = 0
    spurious_on_bad_columns: int = 0
    saturated_expected: int = 0
    saturated_flagged: int = 0
    flagged_saturated_but_faint: int = 0
    asteroid_images: int = 0
    asteroid_measurable: int = 0
    """Images where the asteroid is above the limit, unsaturated, and the astrometry sound."""
    asteroid_detected: int = 0
    asteroid_offsets: list[float] = field(default_factory=list)
    """arcsec, predicted minus detected, for asteroids bright enough to detect."""

    @property
    def zero_point_errors(self) -> list[float]:
        """MAGZP - true zero point, per quadrant whose zero point is not flagged unreliable."""
        return [image.error for image in self.zero_points if image.trusted]

    @property
    def zero_point_uncertainties(self) -> list[float]:
        """The pipeline's MAGZPUNC of the same quadrants."""
        return [image.magzpunc for image in self.zero_points if image.trusted]

    def completeness(self, offset: float) -> float:
        detected, total = self.completeness_bins.get(f"{offset:+.2f}", (0, 0))
        return detected / total if total else float("nan")

    def summary(self) -> dict:
        return {
            "images": self.images,
            "astrometric_rms_bright_arcsec": self.astrometric_rms_bright,
            "bright_star_matches": self.bright_star_matches,
            "zero_point_error_median_abs": float(np.median(np.abs(self.zero_point_errors)))
            if self.zero_point_errors
            else None,
            "zero_point_error_max_abs": float(np.max(np.abs(self.zero_point_errors)))
            if self.zero_point_errors
            else None,
            "zero_points_by_filter": zero_point_figures(self.zero_points),
            "completeness": {
                k: (v[0] / v[1] if v[1] else None, v[1])
                for k, v in sorted(self.completeness_bins.items())
            },
            "bad_column_detections": self.bad_column_detections,
            "spurious_on_bad_columns": self.spurious_on_bad_columns,
            "saturated_expected": self.saturated_expected,
            "saturated_flagged": self.saturated_flagged,
            "asteroid_images": self.asteroid_images,
            "asteroid_measurable": self.asteroid_measurable,
            "asteroid_detected": self.asteroid_detected,
            "asteroid_offset_max_arcsec": max(self.asteroid_offsets, default=None),
        }


ASTROMETRY_UNRELIABLE = INFO_ASTROMETRY_FAILED | INFO_ASTROMETRY_POOR | INFO_FEW_ASTROMETRIC_MATCHES
COMPLETENESS_OFFSETS = (-2.0, -1.5, -1.0, -0.5, 0.0)


def validate_night(product_dir: Path, raw_dir: Path) -> ValidationReport:
    """Compare every science quadrant of the night in ``raw_dir`` with its truth."""
    truth = Truth.read(raw_dir)
    report = ValidationReport()
    star_tree = _tree(truth.stars["ra"], truth.stars["dec"])
    all_ra = np.concatenate(
        [
            truth.stars["ra"],
            truth.galaxies["ra"],
            truth.transients["ra"] if len(truth.transients) else [],
        ]
    )
    all_dec = np.concatenate(
        [
            truth.stars["dec"],
            truth.galaxies["dec"],
            truth.transients["dec"] if len(truth.transients) else [],
        ]
    )
    anything_tree = _tree(all_ra, all_dec)
    bright_offsets: list[float] = []
    night = json.loads((Path(raw_dir) / "night.json").read_text())["nightdate"].replace("-", "")
    for path in sorted((Path(product_dir) / "manifests" / night).glob("exp_*.json")):
        manifest = read_manifest(path)
        for science in manifest.science:
            if science.expid not in truth.exposures:
                continue
            report.images += 1
            _validate_image(
                Path(product_dir), science, truth, star_tree, anything_tree, report, bright_offsets
            )
    if bright_offsets:
        report.astrometric_rms_bright = float(np.sqrt(np.mean(np.square(bright_offsets))))
        report.bright_star_matches = len(bright_offsets)
    return report


def _or_nan(value: float | None) -> float:
    """A manifest's quantity for arithmetic and printing: NaN where it is null (unknown)."""
    return float("nan") if value is None else value


def _image_zero_point(
    science: ScienceImageMeta,
    exposure: dict,
    truth: Truth,
    anything_tree,
    catalog,
    stars,
    mags: np.ndarray,
    distance: np.ndarray,
    which: np.ndarray,
) -> ImageZeroPoint:
    """MAGZP against the true zero point, and the catalog's magnitudes of isolated, constant
    15-19 mag stars against their true magnitudes (see ``ImageZeroPoint``)."""
    band = science.filtercode
    offset, offset_error, count = float("nan"), float("nan"), 0
    candidates = (
        (distance < CHECK_MATCH_ARCSEC)
        & (stars["var_amplitude"] == 0)
        & (mags >= CHECK_MAGS[0])
        & (mags <= CHECK_MAGS[1])
    )
    if len(catalog) and candidates.any():
        cat_flags = catalog["flags"][which] & maskbits.SOURCE_FLAGS
        candidates &= (cat_flags == 0) & np.isfinite(catalog["mag"][which])
        candidates &= catalog["magerr"][which] > 0
        # Light of everything the simulator drew near the star, in this band at this time
        # (the tree holds stars, galaxies, then every image's transients: only this image's
        # rows carry this image's magnitudes).
        transients = truth.transients
        this_image = (
            (
                (transients["expid"] == science.expid)
                & (transients["ccdid"] == science.ccdid)
                & (transients["qid"] == science.qid)
            )
            if len(transients)
            else np.zeros(0, bool)
        )
        light = np.concatenate(
            [
                10 ** (-0.4 * truth.star_mags(band, exposure["mjd_mid"])),
                10 ** (-0.4 * truth.galaxies[f"mag_{band[1]}"]),
                np.where(this_image, 10 ** (-0.4 * transients["mag"]), 0.0)
                if len(transients)
                else np.zeros(0),
            ]
        )
        radius = _chord(CHECK_ISOLATION_FWHM * exposure["fwhm"])
        index = np.flatnonzero(candidates)
        groups = anything_tree.query_ball_point(
            unit_vectors(stars["ra"][index], stars["dec"][index]), radius
        )
        for k, group in zip(index, groups, strict=True):
            own = 10 ** (-0.4 * mags[k])
            neighbours = float(np.sum(light[group])) - own
            candidates[k] = neighbours < CHECK_CONTAMINATION * own
    if len(catalog) and candidates.any():
        differences = catalog["mag"][which[candidates]].astype(float) - mags[candidates]
        weights = 1.0 / (catalog["magerr"][which[candidates]].astype(float) ** 2 + CHECK_FLOOR**2)
        count = int(candidates.sum())
        offset = float(np.sum(weights * differences) / np.sum(weights))
        chi2 = float(np.sum(weights * (differences - offset) ** 2))
        excess = max(chi2 / max(count - 1, 1), 1.0)
        offset_error = float(np.sqrt(excess / np.sum(weights)))
    return ImageZeroPoint(
        expid=science.expid,
        ccdid=science.ccdid,
        qid=science.qid,
        filtercode=band,
        infobits=science.infobits,
        magzp=_or_nan(science.magzp),
        magzpunc=_or_nan(science.magzpunc),
        magzprms=_or_nan(science.magzprms),
        nzpcal=science.nzpcal,
        error=_or_nan(science.magzp) - exposure["magzp"],
        catalog_offset=offset,
        catalog_offset_error=offset_error,
        catalog_stars=count,
    )


def _validate_image(
    product_dir,
    science: ScienceImageMeta,
    truth: Truth,
    star_tree,
    anything_tree,
    report: ValidationReport,
    bright_offsets: list[float],
) -> None:
    exposure = truth.exposures[science.expid]
    mjd = exposure["mjd_mid"]
    band = science.filtercode
    with fits.open(product_dir / science.files["psfcat"]) as hdul:
        catalog = hdul[1].data
        header = hdul[0].header
    wcs = TanSip.from_header(science.wcs)
    nx, ny = science.naxis1, science.naxis2

    # Truth stars on this image.
    cx, cy = wcs.pixel_to_world(np.array([(nx + 1) / 2]), np.array([(ny + 1) / 2]))
    radius = np.hypot(nx, ny) / 2 * wcs.pixel_scale()
    index = np.array(star_tree.query_ball_point(unit_vectors(cx, cy)[0], _chord(radius)), int)
    stars = truth.stars[index]
    mags = truth.star_mags(band, mjd)[index]
    sx, sy = wcs.world_to_pixel(stars["ra"], stars["dec"])
    on_image = (sx > 4) & (sx < nx - 3) & (sy > 4) & (sy < ny - 3)
    stars, mags, sx, sy = stars[on_image], mags[on_image], sx[on_image], sy[on_image]
    cat_tree = _tree(catalog["ra"], catalog["dec"]) if len(catalog) else None

    def nearest(ra, dec, arcsec):
        if cat_tree is None or len(ra) == 0:
            return np.full(len(ra), np.inf), np.zeros(len(ra), int)
        distance, which = cat_tree.query(unit_vectors(ra, dec))
        distance = np.degrees(2 * np.arcsin(np.clip(distance / 2, 0, 1))) * 3600
        return np.where(distance < arcsec, distance, np.inf), which

    distance, which = nearest(stars["ra"], stars["dec"], 1.5)
    found = np.isfinite(distance)
    report.zero_points.append(
        _image_zero_point(
            science, exposure, truth, anything_tree, catalog, stars, mags, distance, which
        )
    )
    # The image's zero point says nothing of positions or saturation.
    catalog_flags = catalog["flags"] & maskbits.SOURCE_FLAGS if len(catalog) else []

    # Astrometry of bright unsaturated, isolated stars.
    if len(catalog):
        # Bright (S/N > 50), unsaturated and unflagged, point-like (a good PSF fit: blends
        # with a galaxy or a neighbour are not what the astrometry is judged on).
        good = found & (catalog["snr"][which] > 50) & (catalog_flags[which] == 0)
        good &= catalog["chi"][which] < 5
        # The detection must be this star's, not a brighter neighbour's within the radius.
        good &= np.abs(catalog["mag"][which] - mags) < 0.3
        bright_offsets.extend(distance[good].tolist())

    # Completeness of isolated stars relative to this image's limiting magnitude.
    if science.maglimit is not None and len(stars):
        all_mags = truth.star_mags(band, mjd)
        _, index_n = star_tree.query(
            unit_vectors(stars["ra"], stars["dec"]), k=8, distance_upper_bound=_chord(5.0)
        )
        present = index_n < len(truth.stars)
        safe = np.where(present, index_n, 0)
        is_self = truth.stars["id"][safe] == stars["id"][:, None]
        brighter = present & ~is_self & (all_mags[safe] <= mags[:, None] + 1.0)
        isolated = ~brighter.any(axis=1)
        instrument = truth.instrument.get((science.ccdid, science.qid), {})
        bad_columns = np.array(
            instrument.get("dead_columns", []) + instrument.get("hot_columns", [])
        )
        if bad_columns.size:
            clear = np.min(np.abs(sx[:, None] - bad_columns[None, :]), axis=1) > 3
        else:
            clear = np.ones(len(stars), bool)
        for offset in COMPLETENESS_OFFSETS:
            in_bin = isolated & clear & (np.abs(mags - (science.maglimit + offset)) < 0.25)
            key = f"{offset:+.2f}"
            detected, total = report.completeness_bins.get(key, (0, 0))
            report.completeness_bins[key] = (
                detected + int((found & in_bin).sum()),
                total + int(in_bin.sum()),
            )

    # Detections on bad columns that correspond to no real object (judged by sky position, so
    # only where the astrometry succeeded).
    instrument = truth.instrument.get((science.ccdid, science.qid), {})
    columns = instrument.get("dead_columns", []) + instrument.get("hot_columns", [])
    if columns and len(catalog) and not science.infobits & ASTROMETRY_UNRELIABLE:
        x0 = catalog["x"] - 1.0
        on_column = np.min(np.abs(x0[:, None] - np.array(columns)[None, :]), axis=1) <= 1.0
        # At the image edge the light of stars just outside comes in; those detections are
        # flagged as edge sources and are not the column's doing.
        on_column &= (catalog["flags"] & maskbits.FLAG_EDGE) == 0
        report.bad_column_detections += int(on_column.sum())
        if on_column.any():
            distance_any, _ = anything_tree.query(
                unit_vectors(catalog["ra"][on_column], catalog["dec"][on_column])
            )
            real = np.degrees(2 * np.arcsin(np.clip(distance_any / 2, 0, 1))) * 3600 < 3.0
            # Moving objects are real too (they are not in the static catalogs).
            moving = truth.asteroids[truth.asteroids["expid"] == science.expid]
            for row in moving:
                real |= (
                    separation(
                        catalog["ra"][on_column], catalog["dec"][on_column], row["ra"], row["dec"]
                    )
                    < 3.0 / 3600
                )
            report.spurious_on_bad_columns += int((~real).sum())

    # Saturation: stars whose brightest pixel exceeds the saturation level wherever the star
    # falls within its pixel (the least favourable place is a pixel corner) must be flagged.
    fwhm, beta = float(header["PSFFWHM"]), float(header["PSFBETA"])
    corner_fraction = float(moffat_pixels(np.array(0.5), np.array(0.5), fwhm, beta))
    centre_fraction = float(moffat_pixels(np.array(0.0), np.array(0.0), fwhm, beta))
    flux = 10 ** (-0.4 * (mags - exposure["magzp"]))
    sky_level = float(header["SKYMED"])
    expected = flux * corner_fraction + sky_level > 1.1 * science.saturate
    report.saturated_expected += int((expected & found).sum())
    if len(catalog):
        flagged = (catalog["flags"][which] & maskbits.FLAG_SATURATED) != 0
        report.saturated_flagged += int((expected & found & flagged).sum())
        faint = found & (flux * centre_fraction + sky_level < 0.5 * science.saturate) & flagged
        # Only when the flagged detection is this faint star's own, not a saturated neighbour's.
        faint &= np.abs(catalog["mag"][which] - mags) < 0.3
        report.flagged_saturated_but_faint += int(faint.sum())

    # Asteroids the simulator put on this image.
    rows = truth.asteroids[
        (truth.asteroids["expid"] == science.expid)
        & (truth.asteroids["ccdid"] == science.ccdid)
        & (truth.asteroids["qid"] == science.qid)
    ]
    for row in rows:
        report.asteroid_images += 1
        if science.infobits & ASTROMETRY_UNRELIABLE:
            continue
        # Judged where a centroid means something: detectable and unsaturated.
        peak = 10 ** (-0.4 * (row["mag"] - exposure["magzp"])) * centre_fraction + sky_level
        if science.maglimit is None or row["mag"] > science.maglimit - 0.5 \
                or peak > 0.8 * science.saturate:
            continue
        report.asteroid_measurable += 1
        distance_a, _ = nearest(np.array([row["ra"]]), np.array([row["dec"]]), 3.0)
        if np.isfinite(distance_a[0]):
            report.asteroid_detected += 1
            report.asteroid_offsets.append(float(distance_a[0]))


def _print_zero_points(product_dir: Path, raw_dirs: list[Path]) -> None:
    images: list[ImageZeroPoint] = []
    for raw_dir in raw_dirs:
        images.extend(validate_night(product_dir, raw_dir).zero_points)
    print(
        "expid      ccd q  filter infobits  magzp    magzpunc magzprms ncal  error    "
        "catalog  +-      stars"
    )
    for image in images:
        print(
            f"{image.expid:<10d} {image.ccdid:2d} {image.qid}  {image.filtercode:6s} "
            f"{image.infobits:8d}  {image.magzp:8.4f} {image.magzpunc:8.4f} "
            f"{image.magzprms:8.4f} {image.nzpcal:4d} {image.error:+8.4f} "
            f"{image.catalog_offset:+8.4f} {image.catalog_offset_error:7.4f} "
            f"{image.catalog_stars:5d}"
        )
    print(json.dumps(zero_point_figures(images), indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m skyvault.pipeline.validate PRODUCTDIR RAWDIR [RAWDIR ...]")
    _print_zero_points(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
