"""Step 4: astrometric calibration against the reference catalog.

The first guess comes from the telescope's pointing and the nominal camera layout; the true
pointing differs by tens of arcseconds and the camera by a small rotation, and the optics add
radial distortion. The offset is found by voting over all pairs of bright detections and
reference stars, then matches are refined in rounds of shrinking radius while a TAN-SIP
solution is fitted with outlier clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import chi2 as chi2_distribution

from skyvault.geometry import gnomonic, gnomonic_inverse
from skyvault.pipeline.camera import CameraGeometry
from skyvault.pipeline.process.wcs import TanSip, fit_tan_sip, monomials
from skyvault.pipeline.skygeom import Optics, Pointing

MAX_OFFSET_ARCSEC = 150.0
VOTE_BIN_PIXELS = 3.0
VOTE_BIN_MAG = 0.5
DEFAULT_POSITION_ERROR = 0.1
MIN_POSITION_ERROR = 0.02
"""pixels: centroids of bright stars are limited by the PSF model and the flat, not by noise."""
VOTING_DETECTIONS = 150
REFERENCES_PER_DETECTION = 2.0
"""Reference stars offered to the vote per detection at least as bright as the faintest voter,
per image area of the search region: a catalog deeper than the image only adds chance pairs."""
REFERENCE_SLACK = 10


class AstrometryError(RuntimeError):
    """No consistent match between detections and the reference catalog."""


@dataclass(frozen=True)
class AstrometricSolution:
    wcs: TanSip
    rms: float
    """arcsec, sqrt(rms_ra^2 + rms_dec^2)."""
    rms_ra: float
    rms_dec: float
    nmatch: int
    order: int


def nominal_wcs(
    geometry: CameraGeometry, ccdid: int, qid: int, telra: float, teldec: float
) -> TanSip:
    """The WCS the pipeline would have with a perfect pointing, no rotation, no distortion."""
    ideal = CameraGeometry(
        quadrant_nx=geometry.quadrant_nx,
        quadrant_ny=geometry.quadrant_ny,
        overscan=geometry.overscan,
        pixel_scale=geometry.pixel_scale,
        distortion=0.0,
    )
    optics = Optics(ideal, Pointing(telra, teldec, 0.0))
    cx, cy = (geometry.quadrant_nx - 1) / 2, (geometry.quadrant_ny - 1) / 2
    ra, dec = optics.pixel_to_sky(
        ccdid, qid, np.array([cx, cx + 1, cx]), np.array([cy, cy, cy + 1])
    )
    crval = (float(ra[0]), float(dec[0]))
    xi, eta = gnomonic(ra, dec, *crval)
    cd = np.array([[xi[1] - xi[0], xi[2] - xi[0]], [eta[1] - eta[0], eta[2] - eta[0]]])
    return TanSip(crval=crval, crpix=(cx + 1, cy + 1), cd=cd)


def _vote_offset(
    det_x: np.ndarray,
    det_y: np.ndarray,
    det_mag: np.ndarray,
    ref_x: np.ndarray,
    ref_y: np.ndarray,
    ref_mag: np.ndarray,
    reach: float,
) -> tuple[float, float, int]:
    """Most common (ref - det) offset among all pairs within ``reach`` pixels whose zero points
    (catalog minus instrumental magnitude) also agree.

    The zero point is unknown but one for the whole image, while a chance pairing of a
    detection with a reference star takes any value: voting in (dx, dy, zero point) keeps a
    sparse quadrant's two or three true pairs from being outvoted by coincidences.
    """
    dx = (ref_x[None, :] - det_x[:, None]).ravel()
    dy = (ref_y[None, :] - det_y[:, None]).ravel()
    dm = (ref_mag[None, :] - det_mag[:, None]).ravel()
    near = (np.abs(dx) < reach) & (np.abs(dy) < reach) & np.isfinite(dm)
    dx, dy, dm = dx[near], dy[near], dm[near]
    if dx.size == 0:
        raise AstrometryError("no reference star near any detection")
    bins = np.arange(-reach, reach + VOTE_BIN_PIXELS, VOTE_BIN_PIXELS)
    mag_bins = np.arange(dm.min() - VOTE_BIN_MAG, dm.max() + 2 * VOTE_BIN_MAG, VOTE_BIN_MAG)
    histogram, (xe, ye, me) = np.histogramdd((dx, dy, dm), bins=[bins, bins, mag_bins])
    # Sum 2 x 2 x 2 neighbouring bins so a peak split across a bin edge still wins.
    nx, ny, nm = (n - 1 for n in histogram.shape)
    summed = sum(
        histogram[i : nx + i, j : ny + j, k : nm + k]
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    )
    i, j, k = np.unravel_index(np.argmax(summed), summed.shape)
    votes = int(summed[i, j, k])
    close = (
        (np.abs(dx - xe[i + 1]) < 1.5 * VOTE_BIN_PIXELS)
        & (np.abs(dy - ye[j + 1]) < 1.5 * VOTE_BIN_PIXELS)
        & (np.abs(dm - me[k + 1]) < 1.5 * VOTE_BIN_MAG)
    )
    return float(np.median(dx[close])), float(np.median(dy[close])), votes


def _match(
    det_x: np.ndarray, det_y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours within ``radius`` pixels: (detection index, reference index)."""
    if det_x.size == 0 or ref_x.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    tree = cKDTree(np.column_stack([ref_x, ref_y]))
    distance, nearest = tree.query(np.column_stack([det_x, det_y]), distance_upper_bound=radius)
    ok = np.isfinite(distance)
    det_index = np.flatnonzero(ok)
    ref_index = nearest[ok]
    # Keep one detection per reference star: the closest.
    order = np.argsort(distance[ok])
    _, first = np.unique(ref_index[order], return_index=True)
    keep = order[first]
    return det_index[keep], ref_index[keep]


def sip_order_for(nmatch: int) -> int:
    """The highest SIP order the matches may support, at least two matches (four equations)
    per parameter (12 for order 2, 20 for order 3): a polynomial fitted to barely more stars
    than it has terms bends the quadrant's corners to follow their noise."""
    if nmatch < 24:
        return 1
    if nmatch < 40:
        return 2
    return 3


HIGHER_ORDER_FALSE_ALARM = 0.01
SIMILARITY_SCALE_PRIOR = 0.01
"""How far the local scale may stray from the nominal (radial distortion at the field's edge)."""
SIMILARITY_ROTATION_PRIOR = 1e-3
"""rad: the camera's rotation is known to a few hundredths of a degree."""


def fit_similarity(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    guess: TanSip,
    error: np.ndarray,
) -> TanSip:
    """Shift, rotation and scale of the nominal solution: what a sparse field's few reference
    stars can support. ``error`` is each star's centroid error in pixels.

    Rotation and scale carry priors (the camera's known rotation and scale, as pseudo-
    measurements): two stars a few pixels apart say little about either, and an unconstrained
    rotation would swing the far corners of the quadrant by pixels.
    """
    xi, eta = gnomonic(ra, dec, *guess.crval)
    u, v = x - guess.crpix[0], y - guess.crpix[1]
    p = guess.cd[0, 0] * u + guess.cd[0, 1] * v
    q = guess.cd[1, 0] * u + guess.cd[1, 1] * v
    n = x.size
    # Rows in units of their errors: star positions (degrees), then the two priors.
    sigma = error * guess.pixel_scale() / 3600
    design = np.zeros((2 * n + 2, 4))
    design[0 : 2 * n : 2] = np.column_stack([p, -q, np.ones(n), np.zeros(n)]) / sigma[:, None]
    design[1 : 2 * n : 2] = np.column_stack([q, p, np.zeros(n), np.ones(n)]) / sigma[:, None]
    values = np.zeros(2 * n + 2)
    values[0 : 2 * n : 2], values[1 : 2 * n : 2] = xi / sigma, eta / sigma
    design[-2, 0] = values[-2] = 1 / SIMILARITY_SCALE_PRIOR
    design[-1, 1] = 1 / SIMILARITY_ROTATION_PRIOR
    (a, b, c, d), *_ = np.linalg.lstsq(design, values, rcond=None)
    cd = np.array([[a, -b], [b, a]]) @ guess.cd
    ra0, dec0 = gnomonic_inverse(np.array(c), np.array(d), *guess.crval)
    return TanSip(crval=(float(ra0), float(dec0)), crpix=guess.crpix, cd=cd)


def _fit(
    x, y, ra, dec, error, solution: TanSip, guess: TanSip, max_order: int
) -> tuple[TanSip, int]:
    """The simplest solution the stars ask for, and its order (0 for the similarity).

    Each step up (similarity, linear, SIP of order 2 and 3) must lower the chi-square by more
    than its extra parameters would by chance at 1%, the chi-square scaled up where the
    centroid errors prove too small (never down): a dozen faint stars bunched in one part of
    a sparse quadrant, fitted with a skew or a polynomial they cannot pin down, swing its
    corners by pixels; a full quadrant's hundreds of stars still demand the distortion.
    """
    best, best_order = fit_similarity(x, y, ra, dec, guess, error), 0
    error_arcsec = error * guess.pixel_scale()
    best_chi2 = _chi2(best, x, y, ra, dec, error_arcsec)
    for order in range(1, max_order + 1):
        dof = 2 * x.size - _parameters(order)
        if dof <= 0:
            break
        candidate = fit_tan_sip(
            x, y, ra, dec, guess.crpix, solution.crval, order, weight=error**-2.0
        )
        chi2 = _chi2(candidate, x, y, ra, dec, error_arcsec)
        extra = _parameters(order) - _parameters(best_order)
        threshold = chi2_distribution.ppf(1 - HIGHER_ORDER_FALSE_ALARM, extra)
        if (best_chi2 - chi2) / max(chi2 / dof, 1.0) > threshold:
            best, best_order, best_chi2 = candidate, order, chi2
    return best, best_order


def _parameters(order: int) -> int:
    """Free parameters of a solution: 4 for the similarity, both axes' polynomials else."""
    return 4 if order == 0 else 2 * len(monomials(order, 0))


def _chi2(solution: TanSip, x, y, ra, dec, error_arcsec) -> float:
    d_ra, d_dec = _residuals(solution, x, y, ra, dec)
    return float(np.sum((d_ra**2 + d_dec**2) / error_arcsec**2))


def order_for(nmatch: int, max_order: int) -> int:
    """The highest order the matches may support: 0 (similarity) below 4 matches, linear below
    24, then SIP; ``_fit`` takes a lower one where the stars do not ask for it."""
    if nmatch < 4:
        return 0
    return min(max_order, sip_order_for(nmatch))


def _voting_reference_count(
    flux: np.ndarray, faintest: float, nx: int, ny: int, reach: float
) -> int:
    """How many of the brightest reference stars can pair with the voting detections.

    Every detection at least as bright as the faintest voter counts (saturated or flagged
    ones too: their stars are in the catalog), scaled from the image to the search region.
    """
    n_bright = int(np.count_nonzero(flux >= faintest))
    area_ratio = (nx + 2 * reach) * (ny + 2 * reach) / (nx * ny)
    return int(np.ceil(REFERENCES_PER_DETECTION * n_bright * area_ratio)) + REFERENCE_SLACK


def solve(
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    usable: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    ref_mag: np.ndarray,
    guess: TanSip,
    shape: tuple[int, int],
    max_order: int = 3,
    position_error: np.ndarray | None = None,
) -> AstrometricSolution:
    """Fit TAN-SIP to detections at FITS pixel positions (x, y) with the reference stars.

    ``usable`` selects detections fit for astrometry (unsaturated, unflagged, point-like);
    ``position_error`` (pixels, per detection) weights them, faint stars less than bright.
    Sparse fields get the solution their stars can support: SIP with many matches, linear
    with a dozen or more, a similarity transform of the nominal solution with fewer.
    """
    ny, nx = shape
    error = (
        np.full(x.size, DEFAULT_POSITION_ERROR)
        if position_error is None
        else np.maximum(position_error, MIN_POSITION_ERROR)
    )
    det = np.flatnonzero(usable)
    if det.size < 2:
        raise AstrometryError(f"{det.size} usable detections")
    det = det[np.argsort(-flux[det])]
    rx, ry = guess.world_to_pixel(ref_ra, ref_dec)
    scale = guess.pixel_scale()
    reach = MAX_OFFSET_ARCSEC / scale
    inside = (rx > -reach) & (rx < nx + reach) & (ry > -reach) & (ry < ny + reach)
    ref = np.flatnonzero(inside)
    ref = ref[np.argsort(ref_mag[ref])]
    bright_det = det[:VOTING_DETECTIONS]
    bright_ref = ref[: _voting_reference_count(flux, flux[bright_det[-1]], nx, ny, reach)]
    dx, dy, votes = _vote_offset(
        x[bright_det],
        y[bright_det],
        -2.5 * np.log10(np.maximum(flux[bright_det], 1e-30)),
        rx[bright_ref],
        ry[bright_ref],
        ref_mag[bright_ref],
        reach,
    )
    # Two coinciding pairs are already unlikely by chance in the 3-pixel bins; the final fit
    # must then also leave every match within an arcsecond.
    if votes < 2:
        raise AstrometryError(f"no consistent offset ({votes} votes)")

    match_d, match_r = _match(x[det] + dx, y[det] + dy, rx[ref], ry[ref], 4.0)
    if match_d.size < 2:
        raise AstrometryError(f"{match_d.size} matches after the offset")
    order = min(order_for(match_d.size, max_order), 1)
    solution, order = _fit(
        x[det][match_d],
        y[det][match_d],
        ref_ra[ref][match_r],
        ref_dec[ref][match_r],
        error[det][match_d],
        guess,
        guess,
        order,
    )
    for radius_arcsec in (2.5, 1.5, 1.0):
        rx2, ry2 = solution.world_to_pixel(ref_ra[ref], ref_dec[ref])
        match_d, match_r = _match(x[det], y[det], rx2, ry2, radius_arcsec / scale)
        if match_d.size < 2:
            raise AstrometryError(f"{match_d.size} matches within {radius_arcsec} arcsec")
        order = order_for(match_d.size, max_order)
        mx, my = x[det][match_d], y[det][match_d]
        mra, mdec = ref_ra[ref][match_r], ref_dec[ref][match_r]
        merr = error[det][match_d]
        keep = np.ones(match_d.size, dtype=bool)
        for _ in range(3):
            solution, fitted_order = _fit(
                mx[keep], my[keep], mra[keep], mdec[keep], merr[keep], solution, guess, order
            )
            # Clip in units of each star's own error (bright stars are held to a tighter
            # standard than faint ones), at 3 sigma or 3 errors, whichever is wider.
            normalised = np.hypot(*_residuals(solution, mx, my, mra, mdec)) / (merr * scale)
            sigma = 1.4826 * np.median(normalised[keep])
            new_keep = normalised < 3.0 * max(sigma, 1.0)
            if new_keep.sum() < max(2, keep.sum() // 2) or np.array_equal(new_keep, keep):
                break
            keep = new_keep
    residual = _residuals(solution, mx[keep], my[keep], mra[keep], mdec[keep])
    if keep.sum() < 4 and np.max(np.hypot(*residual)) > 1.0:
        raise AstrometryError(f"{int(keep.sum())} matches that do not agree")
    solution.fit_inverse(shape)
    rms_ra = float(np.sqrt(np.mean(residual[0] ** 2)))
    rms_dec = float(np.sqrt(np.mean(residual[1] ** 2)))
    return AstrometricSolution(
        wcs=solution,
        rms=float(np.hypot(rms_ra, rms_dec)),
        rms_ra=rms_ra,
        rms_dec=rms_dec,
        nmatch=int(keep.sum()),
        order=fitted_order,
    )


def _residuals(solution: TanSip, x, y, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """(along RA, along Dec) residuals in arcsec, reference minus fitted position."""
    fit_ra, fit_dec = solution.pixel_to_world(x, y)
    d_ra = ((ra - fit_ra + 180) % 360 - 180) * np.cos(np.radians(dec)) * 3600
    return d_ra, (dec - fit_dec) * 3600
