"""An image's footprint drawn as SVG: its corners in the tangent plane at its centre
(``skyvault.geometry.gnomonic``), north up and east to the left as on the sky, with a scale bar.
Pure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from skyvault.geometry import gnomonic

SIZE = 240.0
PAD = 52.0


def _nice_length(degrees: float) -> tuple[float, str]:
    """A round length at most ``degrees`` long, and its label."""
    for value, label in ((10, "10°"), (5, "5°"), (2, "2°"), (1, "1°"), (30 / 60, "30′"),
                         (10 / 60, "10′"), (5 / 60, "5′"), (2 / 60, "2′"), (1 / 60, "1′"),
                         (30 / 3600, "30″"), (10 / 3600, "10″"), (5 / 3600, "5″"),
                         (1 / 3600, "1″")):
        if value <= degrees:
            return value, label
    return degrees, f"{degrees * 3600:.2g}″"


def footprint_svg(vertices: Sequence[tuple[float, float]], centre: tuple[float, float],
                  marker: tuple[float, float] | None = None) -> str:
    """The polygon of ``vertices`` (ra, dec degrees) about ``centre``, and an optional marked
    position (the searched one)."""
    xi, eta = gnomonic([v[0] for v in vertices], [v[1] for v in vertices], *centre)
    if not (np.all(np.isfinite(xi)) and np.all(np.isfinite(eta))):
        raise ValueError("a vertex on the far side of the tangent point")
    points = list(zip(xi.tolist(), eta.tolist(), strict=True))
    extra = []
    if marker is not None:
        marked = gnomonic(*marker, *centre)
        if np.isfinite(marked[0]):  # a searched position a hemisphere away is not drawn
            extra = [(float(marked[0]), float(marked[1]))]
    extent = max(max(abs(x), abs(y)) for x, y in points + extra) or 1e-6
    scale = (SIZE / 2 - PAD) / extent

    def pixel(xi: float, eta: float) -> tuple[float, float]:
        return SIZE / 2 - xi * scale, SIZE / 2 - eta * scale  # east to the left, north up

    outline = " ".join(f"{x:.1f},{y:.1f}" for x, y in (pixel(*p) for p in points))
    bar, label = _nice_length(extent)
    bar_px = bar * scale
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE:.0f} {SIZE:.0f}" '
        'class="footprint" role="img" aria-label="Footprint of the image on the sky">',
        f'<polygon points="{outline}" class="outline"/>',
        f'<line x1="{SIZE - 18:.0f}" y1="34" x2="{SIZE - 18:.0f}" y2="14" class="axis"/>',
        f'<text x="{SIZE - 18:.0f}" y="11" class="axis-label">N</text>',
        f'<line x1="{SIZE - 18:.0f}" y1="34" x2="{SIZE - 38:.0f}" y2="34" class="axis"/>',
        f'<text x="{SIZE - 46:.0f}" y="38" class="axis-label">E</text>',
        f'<line x1="12" y1="{SIZE - 12:.0f}" x2="{12 + bar_px:.1f}" y2="{SIZE - 12:.0f}" '
        'class="scale"/>',
        f'<text x="12" y="{SIZE - 17:.0f}" class="scale-label">{escape(label)}</text>',
    ]
    if extra:
        x, y = pixel(*extra[0])
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="marker">'
                     "<title>Searched position</title></circle>")
    parts.append("</svg>")
    return "".join(parts)
