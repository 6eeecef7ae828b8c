"""A TAN-SIP world coordinate system, vectorised, and its FITS keywords.

Conventions are those of the SIP paper (Shupe et al. 2005) as astropy.wcs reads them: with
u = x - CRPIX1, v = y - CRPIX2 (FITS 1-based pixels), the intermediate coordinates are
CD (u + f(u, v), v + g(u, v)), f = sum A_p_q u^p v^q over 2 <= p + q <= order, and the
inverse u = U + AP(U, V) for (U, V) = CD^-1 (xi, eta).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skyvault.pipeline.skygeom import tan_deproject, tan_project


def monomials(order: int, minimum: int = 0) -> list[tuple[int, int]]:
    return [(p, total - p) for total in range(minimum, order + 1) for p in range(total, -1, -1)]


def _poly(u: np.ndarray, v: np.ndarray, coefficients: dict[tuple[int, int], float]) -> np.ndarray:
    out = np.zeros(np.broadcast(u, v).shape)
    for (p, q), c in coefficients.items():
        out += c * u**p * v**q
    return out


@dataclass
class TanSip:
    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: np.ndarray
    """2 x 2, degrees per pixel."""
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
        return tan_deproject(xi, eta, *self.crval)

    def world_to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xi, eta = tan_project(np.asarray(ra), np.asarray(dec), *self.crval)
        inverse = np.linalg.inv(self.cd)
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
        xi, eta = tan_project(ra, dec, *crval)
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
        new_ra, new_dec = tan_deproject(np.array(offset[0]), np.array(offset[1]), *crval)
        crval = (float(new_ra), float(new_dec))
    cd = np.array([[c_xi[(1, 0)], c_xi[(0, 1)]], [c_eta[(1, 0)], c_eta[(0, 1)]]])
    inverse = np.linalg.inv(cd)
    a: dict[tuple[int, int], float] = {}
    b: dict[tuple[int, int], float] = {}
    for term in monomials(order, 2):
        a[term] = float(inverse[0, 0] * c_xi[term] + inverse[0, 1] * c_eta[term])
        b[term] = float(inverse[1, 0] * c_xi[term] + inverse[1, 1] * c_eta[term])
    return TanSip(crval=crval, crpix=crpix, cd=cd, a=a, b=b, order=order if a else 0)
