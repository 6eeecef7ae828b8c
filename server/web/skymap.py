"""Sky coverage maps as SVG: the Hammer-Aitoff (equal-area) projection of the whole sky.

Pure. Right ascension grows to the left (the sky seen from inside), 180 deg at the centre, so the
0h line is the map's edge. Coverage is drawn as the HEALPix cells of a MOC (at an order of
about a pixel, each with a stroke so that a small field stays visible), the Galactic plane as
a dashed line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from skyvault.server.web.coords import galactic_to_icrs

WIDTH, HEIGHT = 720.0, 360.0
MARGIN = 14.0
FILTER_COLOURS = {"zg": "#2e8b57", "zr": "#c0392b", "zi": "#8e44ad"}


@dataclass(frozen=True)
class CoverageCell:
    """One HEALPix cell of a coverage map (MOC) to draw: its outline, ra and dec in degrees."""

    outline: Sequence[tuple[float, float]]


def hammer(ra: float, dec: float, centre_ra: float = 180.0) -> tuple[float, float]:
    """Map coordinates in [-2*sqrt(2), 2*sqrt(2)] x [-sqrt(2), sqrt(2)]."""
    longitude = math.radians(((ra - centre_ra + 180.0) % 360.0) - 180.0)
    latitude = math.radians(dec)
    denominator = math.sqrt(1.0 + math.cos(latitude) * math.cos(longitude / 2.0))
    x = 2.0 * math.sqrt(2.0) * math.cos(latitude) * math.sin(longitude / 2.0) / denominator
    y = math.sqrt(2.0) * math.sin(latitude) / denominator
    return -x, y  # east (growing RA) to the left


def to_pixels(ra: float, dec: float) -> tuple[float, float]:
    x, y = hammer(ra, dec)
    scale_x = (WIDTH / 2 - MARGIN) / (2.0 * math.sqrt(2.0))
    scale_y = (HEIGHT / 2 - MARGIN) / math.sqrt(2.0)
    return WIDTH / 2 + x * scale_x, HEIGHT / 2 - y * scale_y


def _path(points: Iterable[tuple[float, float]], max_jump: float = WIDTH / 3) -> str:
    """An SVG path through the points, broken where the line wraps around the map's edge."""
    commands: list[str] = []
    previous = None
    for x, y in points:
        jump = previous is None or abs(x - previous[0]) > max_jump
        commands.append(f"{'M' if jump else 'L'}{x:.1f},{y:.1f}")
        previous = (x, y)
    return "".join(commands)


def _graticule() -> list[str]:
    parts = []
    # Meridians every 2h; the 0h meridian is the map's outline.
    for ra in range(30, 360, 30):
        samples = [to_pixels(ra, dec) for dec in range(-90, 91, 3)]
        parts.append(f'<path class="grid" d="{_path(samples)}"/>')
    for dec in range(-60, 61, 30):
        samples = [to_pixels(0.0001 + ra * 359.9998 / 120, dec) for ra in range(121)]
        parts.append(f'<path class="grid" d="{_path(samples)}"/>')
    for ra in range(30, 360, 60):
        x, y = to_pixels(ra, 0)
        parts.append(f'<text class="label" x="{x:.1f}" y="{y - 3:.1f}">{ra // 15}h</text>')
    for dec in (-60, -30, 30, 60):
        x, y = to_pixels(180.0, dec)  # along the central meridian, inside the map
        parts.append(f'<text class="label" x="{x + 4:.1f}" y="{y - 3:.1f}" '
                     f'text-anchor="start">{dec:+d}°</text>')
    return parts


def _galactic_plane() -> str:
    points = [to_pixels(*galactic_to_icrs(l_deg, 0.0)) for l_deg in range(0, 361, 2)]
    return f'<path class="galactic" d="{_path(points)}"/>'


CELL_STROKE_PX = 3.0
"""Cells are drawn with a stroke of their colour this wide, so that a cell smaller than a pixel
(a single field at whole-sky scale) still shows."""


def _cell_path(cell: CoverageCell) -> str:
    """The cell's outline in map pixels. A cell on the 0h meridian (the map's edge) is drawn
    whole on the side of its centre rather than split across the map."""
    ras = [ra % 360.0 for ra, _ in cell.outline]
    centre = math.degrees(math.atan2(sum(math.sin(math.radians(r)) for r in ras),
                                     sum(math.cos(math.radians(r)) for r in ras))) % 360.0
    points = []
    for ra, (_, dec) in zip(ras, cell.outline, strict=True):
        if abs(ra - centre) > 180.0:
            ra = 0.0001 if centre < 180.0 else 359.9999
        points.append(to_pixels(ra, dec))
    return "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points) + "Z"


def coverage_svg(cells: Sequence[CoverageCell], title: str, colour: str = "#1f5fa8",
                 note: str | None = None) -> str:
    """A standalone SVG document of the coverage cells on the whole sky."""
    shapes = "".join(f'<path d="{_cell_path(cell)}"/>' for cell in cells)
    outline = [to_pixels(0.0001, dec) for dec in range(-90, 91, 2)] + \
        [to_pixels(359.9999, dec) for dec in range(90, -91, -2)]
    frame = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in outline) + "Z"
    caption = note or f"{len(cells)} cell{'s' if len(cells) != 1 else ''}"
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {HEIGHT + 24:.0f}" \
role="img" aria-label="{escape(title)}">
<title>{escape(title)}</title>
<style>
.sky {{ fill: #0d1b2a; stroke: #5c6f82; stroke-width: 1; }}
.grid {{ fill: none; stroke: #2f4458; stroke-width: 0.7; }}
.galactic {{ fill: none; stroke: #b08d3c; stroke-width: 1; stroke-dasharray: 4 3; }}
.label {{ fill: #9fb3c8; font: 15px sans-serif; text-anchor: middle; }}
.cells path {{ fill: {colour}; stroke: {colour}; stroke-width: {CELL_STROKE_PX}; \
stroke-linejoin: round; }}
.caption {{ fill: #333; font: 17px sans-serif; }}
</style>
<path class="sky" d="{frame}"/>
{"".join(_graticule())}
{_galactic_plane()}
<g class="cells">{shapes}</g>
<text class="caption" x="{MARGIN:.0f}" y="{HEIGHT + 18:.0f}">{escape(title)}: {escape(caption)}\
</text>
</svg>
"""
