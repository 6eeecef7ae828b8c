"""The moving-object search's request, parsed from HTTP parameters (pure; no Flask here).

Parameter names ignore case (as DALI services do). The object is exactly one of:

- ``object``: a designation or name from survey.solar_system_objects;
- ``orbit``: one MPC line (MPCORB.DAT or CometEls.txt format);
- elements: ``epoch`` (MJD TDB), ``e``, ``incl`` (or ``i``), ``node``, ``peri`` and either
  ``a`` with ``m`` (mean anomaly) or ``q`` with ``tp`` (MJD TDB), optionally ``h``, ``g``.

Then ``obs_begin``/``obs_end`` (ISO 8601 UTC, MJD, or JD; empty = the whole archive; a date
alone as the end means the end of that day), ``step`` (ephemeris step: '1d', '6h', '30m',
'90s' or a number of days), ``filter`` (zg/zr/zi or g/r/i), ``programid``, ``field`` (each
repeatable or comma-separated), ``mode`` (images, ephemeris, both) and ``format`` (votable,
csv, html, ds9; ``responseformat`` is an alias, MIME types are understood).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from skyvault.vo.dali import parse_finite

from .errors import SsoError
from .orbits import Orbit, orbit_from_elements, parse_orbit_lines

Mode = Literal["images", "ephemeris", "both"]
Format = Literal["votable", "csv", "html", "ds9"]

FORMATS: dict[str, Format] = {
    "votable": "votable", "vot": "votable", "xml": "votable",
    "application/x-votable+xml": "votable", "text/xml": "votable",
    "application/x-votable+xml;serialization=tabledata": "votable",
    "csv": "csv", "text/csv": "csv",
    "html": "html", "text/html": "html",
    "ds9": "ds9", "reg": "ds9", "region": "ds9", "text/x-ds9": "ds9",
}
MODES: tuple[Mode, ...] = ("images", "ephemeris", "both")
FILTERS = {"g": "zg", "r": "zr", "i": "zi", "zg": "zg", "zr": "zr", "zi": "zi"}
ELEMENT_NAMES = ("epoch", "e", "incl", "i", "node", "peri", "a", "m", "mean_anomaly", "q", "tp",
                 "h", "g")
MJD_UNIX_EPOCH = 40587.0
MIN_STEP_DAYS = 1.0 / 1440.0


class RequestError(SsoError, ValueError):
    """A parameter that is missing, malformed or out of range; the message names it."""


@dataclass(frozen=True)
class ObjectName:
    text: str


@dataclass(frozen=True)
class OrbitGiven:
    orbit: Orbit
    """From a pasted MPC line or from elements."""


Target = ObjectName | OrbitGiven


@dataclass(frozen=True)
class MostRequest:
    target: Target | None
    begin_mjd: float | None = None
    end_mjd: float | None = None
    step_days: float | None = None
    filtercodes: tuple[str, ...] = ()
    programids: tuple[int, ...] = ()
    fields: tuple[int, ...] = ()
    mode: Mode = "images"
    format: Format = "votable"
    given: dict[str, str] = field(default_factory=dict)
    """The parameters as given (lower-case names, first values): to refill the form."""


class Parameters:
    """Multi-valued parameters with case-insensitive names."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            self._values.setdefault(name.lower(), []).append(value)

    def first(self, name: str) -> str | None:
        values = [v for v in self._values.get(name, []) if v.strip()]
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [part.strip() for value in self._values.get(name, [])
                for part in value.split(",") if part.strip()]

    def given(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._values.items() if values}


# --------------------------------------------------------------------------- values


def parse_time(text: str | None, name: str, *, end_of_day: bool = False) -> float | None:
    """MJD (UTC) from ISO 8601 (UTC), an MJD, or a JD (numbers above 2,400,000)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            raise RequestError(f"{name}: {value!r} is not a finite number")
        return number - 2400000.5 if number > 2400000.0 else number
    date_only = re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            f"{name}: {value!r} is neither an ISO 8601 date/time (UTC) nor an MJD or JD"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    mjd = moment.timestamp() / 86400.0 + MJD_UNIX_EPOCH
    return mjd + 1.0 if date_only and end_of_day else mjd


_STEP = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$")
_STEP_UNITS = {"": 1.0, "d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hr": 1 / 24,
               "hour": 1 / 24, "hours": 1 / 24, "m": 1 / 1440, "min": 1 / 1440,
               "minutes": 1 / 1440, "s": 1 / 86400, "sec": 1 / 86400}


def parse_step(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    match = _STEP.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _STEP_UNITS:
        raise RequestError(f"step: {text!r} is not a step such as 1d, 6h, 30m or 0.5 (days)")
    days = float(match.group(1)) * _STEP_UNITS[unit]
    if days < MIN_STEP_DAYS:
        raise RequestError("step: the smallest ephemeris step is one minute")
    return days


PROGRAMID_RANGE = (0, 32_767)
"""survey tables hold programid as smallint."""
FIELD_RANGE = (0, 2_147_483_647)
"""... and field as integer."""


def _integers(values: list[str], name: str, low: int, high: int) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in values)
    except ValueError:
        raise RequestError(f"{name}: {', '.join(values)!r} must be integers") from None
    for number in numbers:
        if not low <= number <= high:
            raise RequestError(f"{name}: {number} is outside {low} to {high}")
    return numbers


def _number(params: Parameters, name: str, label: str) -> float | None:
    text = params.first(name)
    if text is None:
        return None
    return parse_finite(text, label, RequestError)


def _elements(params: Parameters) -> Orbit:
    values = {
        "epoch_mjd_tdb": _number(params, "epoch", "epoch"),
        "e": _number(params, "e", "e"),
        "incl_deg": _number(params, "incl", "incl") if params.first("incl") is not None
        else _number(params, "i", "i"),
        "node_deg": _number(params, "node", "node"),
        "peri_deg": _number(params, "peri", "peri"),
    }
    missing = [name for name, value in zip(("epoch", "e", "incl", "node", "peri"),
                                           values.values(), strict=True) if value is None]
    if missing:
        raise RequestError(f"orbital elements: {', '.join(missing)} missing")
    mean_anomaly = (_number(params, "m", "m") if params.first("m") is not None
                    else _number(params, "mean_anomaly", "mean_anomaly"))
    return orbit_from_elements(
        **values,  # type: ignore[arg-type]
        a_au=_number(params, "a", "a"), mean_anomaly_deg=mean_anomaly,
        q_au=_number(params, "q", "q"), tp_mjd_tdb=_number(params, "tp", "tp"),
        h=_number(params, "h", "h"), g=_number(params, "g", "g"),
        designation="elements", source="elements given in the request",
    )


def _target(params: Parameters) -> Target | None:
    name = params.first("object")
    line = params.first("orbit")
    elements = [n for n in ELEMENT_NAMES if params.first(n) is not None]
    given = [kind for kind, present in (("object", name), ("orbit", line),
                                        ("elements", elements)) if present]
    if len(given) > 1:
        raise RequestError(f"give one of object, orbit or elements, not {' and '.join(given)}")
    if name is not None:
        return ObjectName(name.strip())
    if line is not None:
        # Orbit lines are fixed-column: only line ends may be stripped, never leading blanks.
        lines = [part for part in line.replace("\r", "").split("\n") if part.strip()]
        if len(lines) != 1:
            raise RequestError("orbit: paste exactly one MPC orbit line")
        return OrbitGiven(parse_orbit_lines(lines, source="MPC line given in the request")[0])
    if elements:
        return OrbitGiven(_elements(params))
    return None


def parse_request(items: Iterable[tuple[str, str]]) -> MostRequest:
    """Raises ``RequestError`` or the orbit parsers' errors (``OrbitError``, with columns)."""
    params = Parameters(items)
    format_text = (params.first("format") or params.first("responseformat") or "votable")
    output = FORMATS.get(format_text.strip().lower().replace(" ", ""))
    if output is None:
        raise RequestError(f"format: {format_text!r} is not one of votable, csv, html, ds9")
    mode_text = (params.first("mode") or "images").strip().lower()
    if mode_text not in MODES:
        raise RequestError(f"mode: {mode_text!r} is not one of {', '.join(MODES)}")
    filters = []
    for value in params.all("filter"):
        code = FILTERS.get(value.lower())
        if code is None:
            raise RequestError(f"filter: {value!r} is not one of zg, zr, zi (or g, r, i)")
        filters.append(code)
    begin = parse_time(params.first("obs_begin"), "obs_begin")
    end = parse_time(params.first("obs_end"), "obs_end", end_of_day=True)
    if begin is not None and end is not None and end < begin:
        raise RequestError("obs_end is before obs_begin")
    return MostRequest(
        target=_target(params),
        begin_mjd=begin,
        end_mjd=end,
        step_days=parse_step(params.first("step")),
        filtercodes=tuple(dict.fromkeys(filters)),
        programids=_integers(params.all("programid"), "programid", *PROGRAMID_RANGE),
        fields=_integers(params.all("field"), "field", *FIELD_RANGE),
        mode=mode_text,  # type: ignore[arg-type]
        format=output,
        given=params.given(),
    )


def requested_format(items: Iterable[tuple[str, str]]) -> Format:
    """The format errors should be reported in, even when the rest of the request is bad."""
    params = Parameters(items)
    text = params.first("format") or params.first("responseformat") or "votable"
    return FORMATS.get(text.strip().lower().replace(" ", ""), "votable")
