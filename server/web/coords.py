"""Sky positions as people type them: decimal or sexagesimal, equatorial (ICRS) or galactic.

Pure functions. ``parse_coordinates`` returns ICRS degrees or raises ``CoordinateError`` with a
message meant to be shown next to the field; ``looks_like_coordinates`` tells a position from a
name (``field 601``, ``(433) Eros``), so one input box takes both.

Accepted forms (commas and the symbols ° ′ ″ may separate parts):

- ``150.025 2.2`` or ``150.025, +2.2`` (degrees);
- ``10:00:06 +02:12:00``, ``10h00m06s +02d12m00s``, ``10 00 06 +02 12 00`` (equatorial: right
  ascension in hours, declination in degrees);
- galactic ``l b`` in degrees, decimal or ``d:m:s``.

Galactic coordinates are rotated to ICRS with astropy's convention (the IAU 1958 system
defined on FK5 J2000, then the FK5 -> ICRS frame bias), so positions agree with what users get
from astropy and TOPCAT; the Hipparcos matrix (ESA 1997), which takes the same pole as ICRS
directly, differs from it by up to ~20 mas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum


class CoordinateError(ValueError):
    """Text that was meant as coordinates but cannot be read as a valid position."""


class Frame(StrEnum):
    ICRS = "icrs"
    GALACTIC = "galactic"


@dataclass(frozen=True)
class SkyPosition:
    """A position in ICRS degrees."""

    ra: float
    dec: float

    def sexagesimal(self) -> str:
        return f"{format_hours(self.ra)} {format_degrees(self.dec)}"

    def decimal(self) -> str:
        return f"{self.ra:.5f} {self.dec:+.5f}"


# ICRS -> galactic rotation (rows: galactic x, y, z in ICRS axes), from astropy 6.1's
# Galactic <-> ICRS transformation.
_ICRS_TO_GALACTIC = (
    (-0.05487565771259163, -0.8734370519556159, -0.48383507361671546),
    (0.4941094371927268, -0.4448297212232952, 0.7469821839866676),
    (-0.8676661375596576, -0.19807633727300053, 0.4559838136873016),
)

_NORMALISE = str.maketrans({"\u2212": "-", "\u2013": "-", "\u00b0": "d", "\u2032": "m",
                            "\u2033": "s", "'": "m", '"': "s", ",": " ", "\u00a0": " "})
_COORDINATE_CHARACTERS = re.compile(r"^[\s0-9+\-.:hmsd]+$", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SEXAGESIMAL = re.compile(
    r"^(?P<sign>[+-]?)(?P<a>\d+(?:\.\d*)?)(?:[:hd](?P<b>\d+(?:\.\d*)?)?)?"
    r"(?:[:m](?P<c>\d+(?:\.\d*)?)?)?s?$", re.IGNORECASE)


def _normalised(text: str) -> str:
    return " ".join(text.translate(_NORMALISE).split())


def looks_like_coordinates(text: str) -> bool:
    """True when the text is made of numbers and sexagesimal separators only, with more than
    one number: a lone number (``433``) is a name, e.g. a minor planet's."""
    normal = _normalised(text)
    if not normal or not _COORDINATE_CHARACTERS.match(normal):
        return False
    return len(re.findall(r"\d+(?:\.\d*)?", normal)) >= 2


def rotate(matrix, x: float, y: float, z: float) -> tuple[float, float, float]:
    return tuple(row[0] * x + row[1] * y + row[2] * z for row in matrix)  # type: ignore[return-value]


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    lon_r, lat_r = math.radians(lon), math.radians(lat)
    return (math.cos(lat_r) * math.cos(lon_r), math.cos(lat_r) * math.sin(lon_r),
            math.sin(lat_r))


def _angles(x: float, y: float, z: float) -> tuple[float, float]:
    lon = math.degrees(math.atan2(y, x)) % 360.0
    lat = math.degrees(math.atan2(z, math.hypot(x, y)))
    return lon, lat


def galactic_to_icrs(l_deg: float, b_deg: float) -> tuple[float, float]:
    transposed = tuple(zip(*_ICRS_TO_GALACTIC, strict=True))
    return _angles(*rotate(transposed, *_unit(l_deg, b_deg)))


def icrs_to_galactic(ra: float, dec: float) -> tuple[float, float]:
    return _angles(*rotate(_ICRS_TO_GALACTIC, *_unit(ra, dec)))


# -- parsing --------------------------------------------------------------------------------------


def _sexagesimal(token: str, what: str, unit: str) -> tuple[float, bool]:
    """(value, whether it is in ``unit``): a decimal number or one written with a ``d``
    (``150d01m``) is in degrees; ``10:00:06`` and ``10h00m06s`` are in ``unit``."""
    if _NUMBER.match(token):
        return float(token), False
    match = _SEXAGESIMAL.match(token)
    if match is None:
        raise CoordinateError(f"{what}: {token!r} is neither a number nor {unit}:mm:ss")
    in_degrees = "d" in token.lower()
    value = _combine(match.group("sign"), match.group("a"), match.group("b"),
                     match.group("c"), what, "degrees" if in_degrees else unit)
    return value, not in_degrees


def _combine(sign: str, a: str, b: str | None, c: str | None, what: str, unit: str) -> float:
    whole = float(a)
    minutes = float(b) if b else 0.0
    seconds = float(c) if c else 0.0
    if (b or c) and whole != int(whole):
        raise CoordinateError(f"{what}: {unit} must be a whole number when minutes follow")
    if minutes >= 60:
        raise CoordinateError(f"{what}: minutes ({minutes:g}) must be below 60")
    if c and minutes != int(minutes):
        raise CoordinateError(f"{what}: minutes must be a whole number when seconds follow")
    if seconds >= 60:
        raise CoordinateError(f"{what}: seconds ({seconds:g}) must be below 60")
    value = whole + minutes / 60 + seconds / 3600
    return -value if sign == "-" else value


def _split(normal: str) -> tuple[str, str] | tuple[list[str], list[str]]:
    tokens = normal.split()
    if len(tokens) == 2:
        return tokens[0], tokens[1]
    if len(tokens) == 6 and all(_NUMBER.match(t) for t in tokens):
        return tokens[:3], tokens[3:]
    if len(tokens) == 4 and all(_NUMBER.match(t) for t in tokens):
        return tokens[:2], tokens[2:]
    raise CoordinateError(
        "Give two coordinates, e.g. '150.025 +2.2' (degrees) or '10:00:06 +02:12:00' "
        f"(hours and degrees); found {len(tokens)} parts")


def _from_parts(part: str | list[str], what: str, unit: str) -> tuple[float, bool]:
    if isinstance(part, str):
        return _sexagesimal(part, what, unit)
    sign = "-" if part[0].startswith("-") else ""
    first = part[0].lstrip("+-")
    if any(p.startswith(("+", "-")) for p in part[1:]):
        raise CoordinateError(f"{what}: only the first part may carry a sign")
    return _combine(sign, first, part[1], part[2] if len(part) > 2 else None, what, unit), True


def parse_coordinates(text: str, frame: Frame | str = Frame.ICRS) -> SkyPosition:
    """ICRS position of the text; raises CoordinateError with a message for the user."""
    frame = Frame(frame)
    normal = _normalised(text)
    if not normal:
        raise CoordinateError("Give a position or a name")
    first, second = _split(normal)
    if frame is Frame.GALACTIC:
        lon, _ = _from_parts(first, "Galactic longitude", "degrees")
        lat, _ = _from_parts(second, "Galactic latitude", "degrees")
        _check_range(lon, lat, "Galactic longitude", "Galactic latitude")
        ra, dec = galactic_to_icrs(lon, lat)
        return SkyPosition(ra, dec)
    lon, hours = _from_parts(first, "Right ascension", "hours")
    if hours:
        if not 0 <= lon < 24:
            raise CoordinateError(f"Right ascension: {lon:g} hours is outside 0 to 24 hours")
        lon *= 15.0
    lat, _ = _from_parts(second, "Declination", "degrees")
    _check_range(lon, lat, "Right ascension", "Declination")
    return SkyPosition(lon % 360.0, lat)


def _check_range(lon: float, lat: float, lon_name: str, lat_name: str) -> None:
    if not (math.isfinite(lon) and 0 <= lon <= 360):
        raise CoordinateError(f"{lon_name}: {lon:g} degrees is outside 0 to 360")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise CoordinateError(f"{lat_name}: {lat:g} degrees is outside -90 to +90")


# -- formatting -----------------------------------------------------------------------------------


def format_hours(ra: float) -> str:
    total = round((ra % 360.0) / 15.0 * 3600 * 100)  # hundredths of a second of time
    hours, rest = divmod(total, 3600 * 100)
    minutes, rest = divmod(rest, 60 * 100)
    return f"{hours % 24:02d}:{minutes:02d}:{rest / 100:05.2f}"


def format_degrees(dec: float) -> str:
    sign = "-" if dec < 0 else "+"
    total = round(abs(dec) * 3600 * 10)  # tenths of an arcsecond
    degrees, rest = divmod(total, 3600 * 10)
    minutes, rest = divmod(rest, 60 * 10)
    return f"{sign}{degrees:02d}:{minutes:02d}:{rest / 10:04.1f}"
