"""Fitting a TAN-SIP WCS to matched stars; the type itself is ``skyvault.tansip.TanSip``, the
one WCS type of the numpy code (the moving-object search evaluates it too)."""

from __future__ import annotations

import numpy as np

from skyvault.geometry import gnomonic, gnomonic_inverse
from skyvault.tansip import TanSip, monomials

__all__ = ["TanSip", "fit_tan_sip", "monomials"]


def fit_tan_sip(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    crpix: tuple[float, float],
    crval: tuple[float, float],
    order: int,
    weight: np.ndarray | None = None,
) -> TanSip:
    """Least-squares TAN-SIP through matched pairs (FITS pixels, sky), weighted by ``weight``
    (inverse variances) if given. CRVAL is moved to the sky position of CRPIX so that the
    polynomial has no constant term."""
    root_weight = np.ones(np.size(x)) if weight is None else np.sqrt(weight)
    for _ in range(3):
        xi, eta = gnomonic(ra, dec, *crval)
        u, v = x - crpix[0], y - crpix[1]
        scale = max(np.max(np.abs(u)), np.max(np.abs(v)), 1.0)
        terms = monomials(order, 0)
        design = np.stack([(u / scale) ** p * (v / scale) ** q for p, q in terms], 1)
        design = design * root_weight[:, None]
        c_xi, *_ = np.linalg.lstsq(design, xi * root_weight, rcond=None)
        c_eta, *_ = np.linalg.lstsq(design, eta * root_weight, rcond=None)
        c_xi = {t: c / scale ** (t[0] + t[1]) for t, c in zip(terms, c_xi, strict=True)}
        c_eta = {t: c / scale ** (t[0] + t[1]) for t, c in zip(terms, c_eta, strict=True)}
        offset = (c_xi[(0, 0)], c_eta[(0, 0)])
        if np.hypot(*offset) < 1e-9:
            break
        new_ra, new_dec = gnomonic_inverse(np.array(offset[0]), np.array(offset[1]), *crval)
        crval = (float(new_ra), float(new_dec))
    cd = np.array([[c_xi[(1, 0)], c_xi[(0, 1)]], [c_eta[(1, 0)], c_eta[(0, 1)]]])
    inverse = np.linalg.inv(cd)
    a: dict[tuple[int, int], float] = {}
    b: dict[tuple[int, int], float] = {}
    for term in monomials(order, 2):
        a[term] = float(inverse[0, 0] * c_xi[term] + inverse[0, 1] * c_eta[term])
        b[term] = float(inverse[1, 0] * c_xi[term] + inverse[1, 1] * c_eta[term])
    return TanSip(crval=crval, crpix=crpix, cd=cd, a=a, b=b, order=order if a else 0)
