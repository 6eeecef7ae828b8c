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

from skyvault.pipeline.camera import CameraGeometry
from skyvault.pipeline.process.wcs import TanSip, fit_tan_sip
from skyvault.pipeline.skygeom import Optics, Pointing, tan_deproject, tan_project

MAX_OFFSET_ARCSEC = 150.0
VOTE_BIN_PIXELS = 3.0


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
    xi, eta = tan_project(ra, dec, *crval)
    cd = np.array([[xi[1] - xi[0], xi[2] - xi[0]], [eta[1] - eta[0], eta[2] - eta[0]]])
    return TanSip(crval=crval, crpix=(cx + 1, cy + 1), cd=cd)


def _vote_offset(
    det_x: np.ndarray, det_y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, reach: float
) -> tuple[float, float, int]:
    """Most common (ref - det) offset among all pairs within ``reach`` pixels."""
    dx = (ref_x[None, :] - det_x[:, None]).ravel()
    dy = (ref_y[None, :] - det_y[:, None]).ravel()
    near = (np.abs(dx) < reach) & (np.abs(dy) < reach)
    dx, dy = dx[near], dy[near]
    if dx.size == 0:
        raise AstrometryError("no reference star near any detection")
    bins = np.arange(-reach, reach + VOTE_BIN_PIXELS, VOTE_BIN_PIXELS)
    histogram, xe, ye = np.histogram2d(dx, dy, bins=[bins, bins])
    # Sum 2 x 2 neighbouring bins so a peak split across a bin edge still wins.
    summed = histogram[:-1, :-1] + histogram[1:, :-1] + histogram[:-1, 1:] + histogram[1:, 1:]
    i, j = np.unravel_index(np.argmax(summed), summed.shape)
    votes = int(summed[i, j])
    centre_x, centre_y = xe[i + 1], ye[j + 1]
    close = (np.abs(dx - centre_x) < 1.5 * VOTE_BIN_PIXELS) & (
        np.abs(dy - centre_y) < 1.5 * VOTE_BIN_PIXELS
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
    if nmatch < 12:
        return 1
    if nmatch < 40:
        return 2
    return 3


def fit_similarity(
    x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray, guess: TanSip
) -> TanSip:
    """Shift, rotation and scale of the nominal solution (4 parameters; a shift alone for a
    single star): what a sparse field with two or three reference stars can support."""
    xi, eta = tan_project(ra, dec, *guess.crval)
    u, v = x - guess.crpix[0], y - guess.crpix[1]
    p = guess.cd[0, 0] * u + guess.cd[0, 1] * v
    q = guess.cd[1, 0] * u + guess.cd[1, 1] * v
    if x.size >= 2:
        design = np.zeros((2 * x.size, 4))
        design[0::2] = np.column_stack([p, -q, np.ones_like(p), np.zeros_like(p)])
        design[1::2] = np.column_stack([q, p, np.zeros_like(p), np.ones_like(p)])
        values = np.empty(2 * x.size)
        values[0::2], values[1::2] = xi, eta
        (a, b, c, d), *_ = np.linalg.lstsq(design, values, rcond=None)
    else:
        a, b, c, d = 1.0, 0.0, float(np.mean(xi - p)), float(np.mean(eta - q))
    cd = np.array([[a, -b], [b, a]]) @ guess.cd
    ra0, dec0 = tan_deproject(np.array(c), np.array(d), *guess.crval)
    return TanSip(crval=(float(ra0), float(dec0)), crpix=guess.crpix, cd=cd)


def _fit(x, y, ra, dec, crpix, solution: TanSip, guess: TanSip, order: int) -> TanSip:
    if order == 0:
        return fit_similarity(x, y, ra, dec, guess)
    return fit_tan_sip(x, y, ra, dec, crpix, solution.crval, order)


def order_for(nmatch: int, max_order: int) -> int:
    """0 (similarity) below 4 matches, linear below 12, then SIP as the matches allow."""
    if nmatch < 4:
        return 0
    return min(max_order, sip_order_for(nmatch))


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
) -> AstrometricSolution:
    """Fit TAN-SIP to detections at FITS pixel positions (x, y) with the reference stars.

    ``usable`` selects detections fit for astrometry (unsaturated, unflagged, point-like).
    Sparse fields get the solution their stars can support: SIP with many matches, linear
    with a few, a similarity transform of the nominal solution with two or three.
    """
    ny, nx = shape
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
    bright_det = det[:150]
    bright_ref = ref[: max(300, 2 * bright_det.size)]
    dx, dy, votes = _vote_offset(
        x[bright_det], y[bright_det], rx[bright_ref], ry[bright_ref], reach
    )
    # Two coinciding pairs are already unlikely by chance in the 3-pixel bins; the final fit
    # must then also leave every match within an arcsecond.
    if votes < 2:
        raise AstrometryError(f"no consistent offset ({votes} votes)")

    crpix = guess.crpix
    match_d, match_r = _match(x[det] + dx, y[det] + dy, rx[ref], ry[ref], 4.0)
    if match_d.size < 2:
        raise AstrometryError(f"{match_d.size} matches after the offset")
    order = min(order_for(match_d.size, max_order), 1)
    solution = _fit(
        x[det][match_d],
        y[det][match_d],
        ref_ra[ref][match_r],
        ref_dec[ref][match_r],
        crpix,
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
        keep = np.ones(match_d.size, dtype=bool)
        for _ in range(3):
            solution = _fit(
                mx[keep], my[keep], mra[keep], mdec[keep], crpix, solution, guess, order
            )
            residual = _residuals(solution, mx, my, mra, mdec)
            total = np.hypot(*residual)
            sigma = 1.4826 * np.median(total[keep]) + 1e-6
            new_keep = total < max(3.0 * sigma, 0.05)
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
        order=order,
    )


def _residuals(solution: TanSip, x, y, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """(along RA, along Dec) residuals in arcsec, reference minus fitted position."""
    fit_ra, fit_dec = solution.pixel_to_world(x, y)
    d_ra = ((ra - fit_ra + 180) % 360 - 180) * np.cos(np.radians(dec)) * 3600
    return d_ra, (dec - fit_dec) * 3600
