"""A small sky plot of an object's path and the images that caught it, as SVG text.

Made on the server so the results page needs no script: an equirectangular view centred on
the path (RA increasing to the left, as on the sky), scaled by cos(dec) at the centre, with
the path as a line, each matched image's footprint as an outline and the predicted position
in it as a dot (hover shows the image and time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from numpy.typing import ArrayLike

WIDTH = 520
HEIGHT = 360
PAD = 44


@dataclass(frozen=True)
class PlotImage:
    ra: float
    dec: float
    corners: tuple[tuple[float, float], ...]
    label: str


def _wrap(ra: np.ndarray, centre: float) -> np.ndarray:
    return (ra - centre + 180.0) % 360.0 - 180.0


def _centre_ra(ra: np.ndarray) -> float:
    angles = np.radians(ra)
    return float(np.degrees(math.atan2(np.sin(angles).mean(), np.cos(angles).mean())) % 360.0)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw),
               default=10 * magnitude)
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) / step + 1e-9) + 1)]


def sky_plot_svg(
    path_ra: ArrayLike, path_dec: ArrayLike, images: Sequence[PlotImage], title: str
) -> str:
    """The SVG document (a string) of the path and the images."""
    ra = np.asarray(path_ra, dtype=float)
    dec = np.asarray(path_dec, dtype=float)
    all_ra = np.concatenate([ra, [c[0] for i in images for c in i.corners]])
    all_dec = np.concatenate([dec, [c[1] for i in images for c in i.corners]])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>']
    if all_ra.size == 0:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     'font-size="13">nothing to draw</text></svg>')
        return "".join(parts)
    ra0 = _centre_ra(all_ra)
    dec0 = float(np.clip((all_dec.min() + all_dec.max()) / 2, -89.0, 89.0))
    cos0 = max(math.cos(math.radians(dec0)), 0.05)
    u_all = -_wrap(all_ra, ra0) * cos0
    u_lo, u_hi = float(u_all.min()), float(u_all.max())
    v_lo, v_hi = float(all_dec.min()), float(all_dec.max())
    span = max(u_hi - u_lo, v_hi - v_lo, 0.01) * 1.08
    scale = min(WIDTH - 2 * PAD, HEIGHT - 2 * PAD) / span
    u_mid, v_mid = (u_lo + u_hi) / 2, (v_lo + v_hi) / 2

    def xy(r: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = -_wrap(np.asarray(r, dtype=float), ra0) * cos0
        return (WIDTH / 2 + (u - u_mid) * scale, HEIGHT / 2 - (np.asarray(d) - v_mid) * scale)

    # Axes: Dec ticks on the left, RA ticks at the bottom (labels in degrees).
    half_u = (WIDTH / 2 - PAD) / scale
    half_v = (HEIGHT / 2 - PAD) / scale
    parts.append(f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" '
                 f'height="{HEIGHT - 2 * PAD}" fill="none" stroke="#999"/>')
    for d in _ticks(v_mid - half_v, v_mid + half_v):
        y = HEIGHT / 2 - (d - v_mid) * scale
        parts.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="10">{d:g}°</text>')
    u_ticks = _ticks(u_mid - half_u, u_mid + half_u)
    for u in u_ticks:
        x = WIDTH / 2 + (u - u_mid) * scale
        label = (ra0 - u / cos0) % 360.0
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle" '
                     f'font-size="10">{label:.4g}°</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle" '
                 'font-size="11">RA (increasing to the left)</text>')
    parts.append(f'<text x="12" y="{HEIGHT / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {HEIGHT / 2})">Dec</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">'
                 f"{escape(title)}</text>")
    if ra.size:
        x, y = xy(ra, dec)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1f5fbf" '
                     'stroke-width="1.5"/>')
    for image in images:
        cx, cy = xy(np.array([c[0] for c in image.corners]), np.array([c[1] for c in
                                                                         image.corners]))
        outline = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(cx, cy, strict=True))
        px, py = xy(np.array([image.ra]), np.array([image.dec]))
        parts.append(f'<g><title>{escape(image.label)}</title>'
                     f'<polygon points="{outline}" fill="#f4a30022" stroke="#d47a00"/>'
                     f'<circle cx="{px[0]:.1f}" cy="{py[0]:.1f}" r="3" fill="#c00"/></g>')
    parts.append("</svg>")
    return "".join(parts)
