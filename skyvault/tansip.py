"""The TAN-SIP world coordinate system, vectorised, and its FITS keywords.

Conventions are those of the SIP paper (Shupe et al. 2005) as astropy.wcs reads them: with
u = x - CRPIX1, v = y - CRPIX2 (FITS 1-based pixels), the intermediate coordinates are
CD (u + f(u, v), v + g(u, v)), f = sum A_p_q u^p v^q over 2 <= p + q <= order, and the
inverse u = U + AP(U, V) for (U, V) = CD^-1 (xi, eta).

The one WCS type of the numpy code: the pipeline fits it (``pipeline.process.wcs``) and writes
its keywords; the moving-object search evaluates the linear WCSs stored for thousands of images
at once (CRVAL and CRPIX arrays, CD of shape (2, 2, N): the parameters broadcast against the
points, point i in image i). Reading the WCS of any served file's header is wcslib's job
(``vo.skyproj.SkyProjection``): SODA cutouts take whatever projection and distortion keywords
a file holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyvault.geometry import gnomonic, gnomonic_inverse


def monomials(order: int, minimum: int = 0) -> list[tuple[int, int]]:
    return [(p, total - p) for total in range(minimum, order + 1) for p in range(total, -1, -1)]


def _poly(u: np.ndarray, v: np.ndarray, coefficients: dict[tuple[int, int], float]) -> np.ndarray:
    out = np.zeros(np.broadcast(u, v).shape)
    for (p, q), c in coefficients.items():
        out += c * u**p * v**q
    return out


def _inverse_2x2(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 2, ...) stack of matrices; NaN where one is singular or unknown."""
    det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([[matrix[1, 1], -matrix[0, 1]], [-matrix[1, 0], matrix[0, 0]]]) / det


@dataclass
class TanSip:
    crval: tuple[Any, Any]
    """Degrees: floats, or arrays for many images."""
    crpix: tuple[Any, Any]
    cd: np.ndarray
    """2 x 2 (or 2 x 2 x N for many images), degrees per pixel."""
    a: dict[tuple[int, int], float] = field(default_factory=dict)
    b: dict[tuple[int, int], float] = field(default_factory=dict)
    ap: dict[tuple[int, int], float] = field(default_factory=dict)
    bp: dict[tuple[int, int], float] = field(default_factory=dict)
    order: int = 0

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FITS 1-based pixels to (ra, dec) degrees."""
        u = np.asarray(x, dtype=float) - self.crpix[0]
        v = np.asarray(y, dtype=float) - self.crpix[1]
        uu, vv = u + _poly(u, v, self.a), v + _poly(u, v, self.b)
        xi = self.cd[0, 0] * uu + self.cd[0, 1] * vv
        eta = self.cd[1, 0] * uu + self.cd[1, 1] * vv
        return gnomonic_inverse(xi, eta, *self.crval)

    def world_to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) degrees to FITS 1-based pixels; NaN for a position 90 degrees or more
        from CRVAL, or an image whose WCS is unknown (NaN)."""
        xi, eta = gnomonic(np.asarray(ra), np.asarray(dec), *self.crval)
        inverse = _inverse_2x2(self.cd)
        uu = inverse[0, 0] * xi + inverse[0, 1] * eta
        vv = inverse[1, 0] * xi + inverse[1, 1] * eta
        u, v = uu + _poly(uu, vv, self.ap), vv + _poly(uu, vv, self.bp)
        # Two Newton-like refinements on the forward model make the inverse exact to ~1e-6 px.
        for _ in range(2):
            fu, fv = u + _poly(u, v, self.a), v + _poly(u, v, self.b)
            u, v = u - (fu - uu), v - (fv - vv)
        return u + self.crpix[0], v + self.crpix[1]

    def pixel_scale(self) -> float:
        """arcsec per pixel (geometric mean)."""
        return float(np.sqrt(abs(np.linalg.det(self.cd))) * 3600)

    def fit_inverse(self, shape: tuple[int, int]) -> None:
        """AP/BP by least squares on a grid covering the image, one order above A/B."""
        if not self.a:
            self.ap, self.bp = {}, {}
            return
        ny, nx = shape
        gy, gx = np.mgrid[1 : ny : complex(0, 25), 1 : nx : complex(0, 25)]
        u, v = gx.ravel() - self.crpix[0], gy.ravel() - self.crpix[1]
        big_u, big_v = u + _poly(u, v, self.a), v + _poly(u, v, self.b)
        order = self.order + 1
        terms = monomials(order, 1)
        scale = max(nx, ny)
        design = np.stack([(big_u / scale) ** p * (big_v / scale) ** q for p, q in terms], 1)
        cu, *_ = np.linalg.lstsq(design, u - big_u, rcond=None)
        cv, *_ = np.linalg.lstsq(design, v - big_v, rcond=None)
        self.ap = {t: float(c / scale ** (t[0] + t[1])) for t, c in zip(terms, cu, strict=True)}
        self.bp = {t: float(c / scale ** (t[0] + t[1])) for t, c in zip(terms, cv, strict=True)}

    def header(self) -> dict[str, float | int | str]:
        sip = bool(self.a)
        cards: dict[str, float | int | str] = {
            "WCSAXES": 2,
            "CTYPE1": "RA---TAN-SIP" if sip else "RA---TAN",
            "CTYPE2": "DEC--TAN-SIP" if sip else "DEC--TAN",
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "CRPIX1": float(self.crpix[0]),
            "CRPIX2": float(self.crpix[1]),
            "CRVAL1": float(self.crval[0]),
            "CRVAL2": float(self.crval[1]),
            "CD1_1": float(self.cd[0, 0]),
            "CD1_2": float(self.cd[0, 1]),
            "CD2_1": float(self.cd[1, 0]),
            "CD2_2": float(self.cd[1, 1]),
            "RADESYS": "ICRS",
            "EQUINOX": 2000.0,
        }
        if sip:
            for name, coefficients, order in (
                ("A", self.a, self.order),
                ("B", self.b, self.order),
                ("AP", self.ap, self.order + 1),
                ("BP", self.bp, self.order + 1),
            ):
                cards[f"{name}_ORDER"] = order
                for (p, q), value in sorted(coefficients.items()):
                    cards[f"{name}_{p}_{q}"] = float(value)
        return cards

    @classmethod
    def from_header(cls, header) -> TanSip:
        def coefficients(name: str) -> tuple[dict[tuple[int, int], float], int]:
            order = int(header.get(f"{name}_ORDER", 0) or 0)
            found = {}
            for p, q in monomials(order, 0):
                key = f"{name}_{p}_{q}"
                if key in header:
                    found[(p, q)] = float(header[key])
            return found, order

        a, order = coefficients("A")
        b, _ = coefficients("B")
        ap, _ = coefficients("AP")
        bp, _ = coefficients("BP")
        if "CD1_1" in header:
            cd = np.array(
                [
                    [header["CD1_1"], header.get("CD1_2", 0.0)],
                    [header.get("CD2_1", 0.0), header["CD2_2"]],
                ],
                dtype=float,
            )
        else:
            cdelt = np.array([header["CDELT1"], header["CDELT2"]], dtype=float)
            pc = np.array(
                [
                    [header.get("PC1_1", 1.0), header.get("PC1_2", 0.0)],
                    [header.get("PC2_1", 0.0), header.get("PC2_2", 1.0)],
                ],
                dtype=float,
            )
            cd = pc * cdelt[:, None]
        return cls(
            crval=(float(header["CRVAL1"]), float(header["CRVAL2"])),
            crpix=(float(header["CRPIX1"]), float(header["CRPIX2"])),
            cd=cd,
            a=a,
            b=b,
            ap=ap,
            bp=bp,
            order=order,
        )

    def corners(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Sky positions of pixel centres (1,1), (nx,1), (nx,ny), (1,ny)."""
        ny, nx = shape
        return self.pixel_to_world(np.array([1.0, nx, nx, 1.0]), np.array([1.0, 1.0, ny, ny]))

    def centre(self, shape: tuple[int, int]) -> tuple[float, float]:
        ny, nx = shape
        ra, dec = self.pixel_to_world(np.array([(nx + 1) / 2]), np.array([(ny + 1) / 2]))
        return float(ra[0]), float(dec[0])
