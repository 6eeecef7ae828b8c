"""Sky regions and intervals as SIA 2.0, SODA 1.0 and DALI 1.1 write them in parameters.

- ``POS`` (SIA 2.0 section 2.1.1, SODA 1.0 section 3.3.1): a shape keyword and numbers,
  ``CIRCLE ra dec radius``, ``RANGE ra1 ra2 dec1 dec2`` (bounds may be ``-Inf``/``+Inf``),
  ``POLYGON ra1 dec1 ra2 dec2 ...`` (three vertices at least), all in degrees (ICRS).
- ``CIRCLE`` / ``POLYGON`` (SODA 1.0 sections 3.3.2-3.3.3): the DALI xtype serialisations,
  the same numbers without a keyword.
- Intervals (SIA 2.0 section 2.1, DALI 3.3.4): one number or two, in VOTable number syntax,
  with ``-Inf``/``+Inf`` for open ends; bounds are inclusive.

Pure functions; a value that cannot be used raises ``ShapeError`` with a message for the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class ShapeError(ValueError):
    """A region or interval parameter that is malformed or out of range."""


@dataclass(frozen=True)
class Circle:
    ra: float
    dec: float
    radius: float


@dataclass(frozen=True)
class Range:
    """Longitude and latitude bounds (deg). ``ra_min > ra_max`` wraps through ra = 0."""

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    @property
    def is_whole_sky(self) -> bool:
        return self.covers_all_longitudes and self.dec_min <= -90 and self.dec_max >= 90

    @property
    def covers_all_longitudes(self) -> bool:
        return self.ra_max - self.ra_min >= 360


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[float, float], ...]


Shape = Circle | Range | Polygon


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float


def parse_number(text: str, name: str) -> float:
    """A VOTable floating point number, including ``+Inf``, ``-Inf`` and ``NaN``."""
    token = text.strip()
    lowered = token.lower()
    if lowered in ("+inf", "inf", "+infinity", "infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    try:
        return float(token)
    except ValueError:
        raise ShapeError(f"{name}: {token!r} is not a number") from None


def parse_numbers(text: str, name: str) -> list[float]:
    return [parse_number(token, name) for token in text.split()]


SMALLEST_RADIUS_DEG = 1e-10
"""0.36 micro-arcseconds: far below any astrometry, and far enough from the smallest doubles
that the database's spherical arithmetic (which squares radii) cannot underflow (a radius of
1e-320 degrees was a 500)."""


def check_radius(radius: float, name: str, *, largest: float = 180.0) -> float:
    """A circle's radius in degrees, from ``SMALLEST_RADIUS_DEG`` to ``largest``."""
    if not (math.isfinite(radius) and SMALLEST_RADIUS_DEG <= radius <= largest):
        raise ShapeError(f"{name}: radius {radius:g} is outside {SMALLEST_RADIUS_DEG:g} to "
                         f"{largest:g} degrees")
    return radius


def _check_position(ra: float, dec: float, name: str) -> None:
    if not (math.isfinite(ra) and 0 <= ra <= 360):
        raise ShapeError(f"{name}: longitude {ra} is outside [0, 360]")
    if not (math.isfinite(dec) and -90 <= dec <= 90):
        raise ShapeError(f"{name}: latitude {dec} is outside [-90, 90]")


def circle_from_numbers(numbers: list[float], name: str) -> Circle:
    if len(numbers) != 3:
        raise ShapeError(f"{name}: a circle needs 3 numbers (ra dec radius), got {len(numbers)}")
    ra, dec, radius = numbers
    _check_position(ra, dec, name)
    return Circle(ra, dec, check_radius(radius, name))


def polygon_from_numbers(numbers: list[float], name: str) -> Polygon:
    if len(numbers) < 6 or len(numbers) % 2:
        raise ShapeError(
            f"{name}: a polygon needs at least 3 (ra, dec) pairs, got {len(numbers)} numbers"
        )
    vertices = tuple((numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2))
    for ra, dec in vertices:
        _check_position(ra, dec, name)
    return Polygon(vertices)


def range_from_numbers(numbers: list[float], name: str) -> Range:
    if len(numbers) != 4:
        raise ShapeError(f"{name}: a range needs 4 numbers (ra1 ra2 dec1 dec2), got "
                         f"{len(numbers)}")
    ra1, ra2, dec1, dec2 = numbers
    if any(math.isnan(value) for value in numbers):
        raise ShapeError(f"{name}: a range bound is NaN")
    if dec1 > dec2:
        raise ShapeError(f"{name}: latitude bounds {dec1} > {dec2}")
    for value in (ra1, ra2):
        if math.isfinite(value) and not 0 <= value <= 360:
            raise ShapeError(f"{name}: longitude {value} is outside [0, 360]")
    for value in (dec1, dec2):
        if math.isfinite(value) and not -90 <= value <= 90:
            raise ShapeError(f"{name}: latitude {value} is outside [-90, 90]")
    # Open ends reach the edge of the coordinate range.
    ra_min = 0.0 if ra1 == -math.inf else (360.0 if ra1 == math.inf else ra1)
    ra_max = 360.0 if ra2 == math.inf else (0.0 if ra2 == -math.inf else ra2)
    return Range(ra_min, ra_max, max(dec1, -90.0), min(dec2, 90.0))


def parse_pos(text: str, name: str = "POS") -> Shape:
    """A ``POS`` value: CIRCLE, RANGE or POLYGON (keyword case-insensitive)."""
    parts = text.split(None, 1)
    if not parts:
        raise ShapeError(f"{name}: empty value")
    keyword = parts[0].upper()
    numbers = parse_numbers(parts[1] if len(parts) > 1 else "", name)
    if keyword == "CIRCLE":
        return circle_from_numbers(numbers, name)
    if keyword == "RANGE":
        return range_from_numbers(numbers, name)
    if keyword == "POLYGON":
        return polygon_from_numbers(numbers, name)
    raise ShapeError(f"{name}: unknown shape {parts[0]!r}; expected CIRCLE, RANGE or POLYGON")


def parse_circle(text: str, name: str = "CIRCLE") -> Circle:
    """A DALI circle: ``ra dec radius``."""
    return circle_from_numbers(parse_numbers(text, name), name)


def parse_polygon(text: str, name: str = "POLYGON") -> Polygon:
    """A DALI polygon: ``ra1 dec1 ra2 dec2 ra3 dec3 ...``."""
    return polygon_from_numbers(parse_numbers(text, name), name)


def parse_interval(text: str, name: str) -> Interval:
    """One number (a degenerate interval) or two (inclusive bounds, ``-Inf``/``+Inf`` open)."""
    numbers = parse_numbers(text, name)
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2:
        raise ShapeError(f"{name}: expected one number or two (an interval), got "
                         f"{len(numbers)}")
    lo, hi = numbers
    if math.isnan(lo) or math.isnan(hi):
        raise ShapeError(f"{name}: NaN is not an interval bound")
    if lo > hi:
        raise ShapeError(f"{name}: lower bound {lo} is above upper bound {hi}")
    return Interval(lo, hi)


def parse_pixel_interval(text: str, name: str) -> tuple[int, int]:
    """A 1-based, inclusive pixel range along one axis: ``lo hi`` (integers)."""
    tokens = text.split()
    if len(tokens) != 2:
        raise ShapeError(f"{name}: expected two pixel indices, got {len(tokens)} values")
    try:
        lo, hi = int(tokens[0]), int(tokens[1])
    except ValueError:
        raise ShapeError(f"{name}: pixel indices must be integers, not {text!r}") from None
    if lo > hi:
        raise ShapeError(f"{name}: lower pixel {lo} is above upper pixel {hi}")
    return lo, hi
