"""The parameters of IRSA's ZTF light-curve API (``/cgi-bin/ZTF/nph_light_curves``), parsed.

IRSA's documentation (https://irsa.ipac.caltech.edu/docs/program_interface/ztf_lightcurve_api.html,
and ztfquery's lightcurve.py, which paraphrases it) defines:

- objects by identifier: ``ID`` (repeated, or comma-separated);
- or by position: ``POS=CIRCLE ra dec radius`` or ``CIRCLE=ra dec radius`` (degrees, radius up
  to 0.1667), narrowed by ``BANDNAME`` (g, r, i or 1, 2, 3, comma-separated), ``MAG`` (one
  value or an interval, on the object's median magnitude) and ``NOBS_MIN`` (the object's
  number of epochs). These three select objects found by position: with ``ID`` they are
  refused, as ztfquery refuses them;
- points: ``TIME`` (MJD, one value or an interval, ``-Inf``/``Inf`` open) and
  ``BAD_CATFLAGS_MASK`` (points with any of these catalog flag bits are left out);
- ``COLLECTION``: which light curves (a data release's name, or the live archive, ``ztf``);
- ``FORMAT``: VOTABLE (IRSA's default), IPAC_TABLE, CSV, TSV, HTML (names ignore case).

SkyVault adds ``UPPERLIMITS`` (true/false): whether the images that covered an object's
position without detecting it are rows too (``upperlimit`` true, the image's limiting magnitude
in ``limitmag``, no magnitude).

Names ignore case (Parameters); unknown parameters are ignored, except IRSA's ``BAND``
(wavelengths in metres), which this archive does not answer and says so rather than ignore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skyvault.vo.dali import InvalidParameter, ParameterError, Parameters
from skyvault.vo.shapes import (
    Circle,
    Interval,
    ShapeError,
    circle_from_numbers,
    parse_interval,
    parse_numbers,
)

LIVE_COLLECTIONS = ("ztf", "live")
"""COLLECTION values naming the live archive (IRSA calls its login-only live collection
``ztf``): every epoch the requester may see now."""
FORMATS = ("VOTABLE", "IPAC_TABLE", "CSV", "TSV", "HTML")
DEFAULT_FORMAT = "VOTABLE"
LARGEST_RADIUS_DEG = 0.1667
"""IRSA's limit on a circle's radius (10 arcminutes)."""
MOST_IDS = 10_000
BANDS = {"g": "zg", "1": "zg", "zg": "zg", "r": "zr", "2": "zr", "zr": "zr",
         "i": "zi", "3": "zi", "zi": "zi"}
LARGEST_OID = 2 ** 63 - 1
_TRUE = ("true", "t", "yes", "y", "1", "on")
_FALSE = ("false", "f", "no", "n", "0", "off")
_OBJECT_CONSTRAINTS = ("BANDNAME", "MAG", "NOBS_MIN")


class LightCurveRequestError(InvalidParameter):
    """A light-curve request the service refuses (400); the message says why."""


@dataclass(frozen=True)
class LightCurveRequest:
    oids: tuple[int, ...] = ()
    circle: Circle | None = None
    filtercodes: tuple[str, ...] = ()
    mag: Interval | None = None
    nobs_min: int | None = None
    time: Interval | None = None
    """MJD; open ends are infinite."""
    bad_catflags_mask: int | None = None
    collection: str | None = None
    """A data release's name; None for the live archive."""
    format: str = DEFAULT_FORMAT
    upper_limits: bool = True


def requested_format(params: Parameters) -> str:
    """FORMAT, upper-cased; the default when absent. Read apart from the rest, so that an error
    in any other parameter is answered in the format asked for."""
    try:
        value = params.get("FORMAT")
    except ParameterError as error:
        raise LightCurveRequestError(str(error)) from None
    if value is None or not value.strip():
        return DEFAULT_FORMAT
    chosen = value.strip().upper()
    if chosen not in FORMATS:
        raise LightCurveRequestError(
            f"FORMAT {value!r} is not supported; use one of {', '.join(FORMATS)}")
    return chosen


def _oids(params: Parameters) -> tuple[int, ...]:
    found: list[int] = []
    for value in params.get_all("ID"):
        for token in value.split(","):
            text = token.strip()
            if not text:
                continue
            if not text.isascii() or not text.isdigit() or int(text) > LARGEST_OID:
                raise LightCurveRequestError(f"ID: {text[:40]!r} is not an object identifier"
                                             " (a whole number)")
            found.append(int(text))
            if len(found) > MOST_IDS:
                raise LightCurveRequestError(f"ID: at most {MOST_IDS} identifiers a request")
    if params.get_all("ID") and not found:
        raise LightCurveRequestError("ID: no identifier given")
    return tuple(dict.fromkeys(found))


def _circle(params: Parameters) -> Circle | None:
    pos, circle = params.get("POS"), params.get("CIRCLE")
    if pos is not None and circle is not None:
        raise LightCurveRequestError("Give POS or CIRCLE, not both")
    if pos is not None:
        parts = pos.split(None, 1)
        if not parts or parts[0].upper() != "CIRCLE":
            raise LightCurveRequestError("POS: the only shape supported is CIRCLE"
                                         " (POS=CIRCLE ra dec radius)")
        text, name = parts[1] if len(parts) > 1 else "", "POS"
    elif circle is not None:
        text, name = circle, "CIRCLE"
    else:
        return None
    try:
        numbers = parse_numbers(text, name)
        if len(numbers) == 3 and -360.0 <= numbers[0] < 0.0:
            numbers[0] += 360.0  # IRSA's examples give right ascensions from -180
        found = circle_from_numbers(numbers, name)
    except ShapeError as error:
        raise LightCurveRequestError(str(error)) from None
    if found.radius > LARGEST_RADIUS_DEG:
        raise LightCurveRequestError(f"{name}: the radius may be at most {LARGEST_RADIUS_DEG}"
                                     " degrees")
    return Circle(found.ra % 360.0, found.dec, found.radius)


def _bands(params: Parameters) -> tuple[str, ...]:
    found: list[str] = []
    for value in params.get_all("BANDNAME"):
        for token in value.split(","):
            text = token.strip().lower()
            if text not in BANDS:
                raise LightCurveRequestError(
                    f"BANDNAME: {token.strip()[:20]!r} is not a band; use g, r, i (or 1, 2, 3)")
            found.append(BANDS[text])
    return tuple(dict.fromkeys(found))


def _interval(params: Parameters, name: str) -> Interval | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_interval(value, name)
    except ShapeError as error:
        raise LightCurveRequestError(str(error)) from None


def _whole(params: Parameters, name: str, largest: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) > largest:
        raise LightCurveRequestError(f"{name}: {text[:40]!r} is not a whole number from 0 to"
                                     f" {largest}")
    return int(text)


def _boolean(params: Parameters, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LightCurveRequestError(f"{name}: {value[:20]!r} is neither true nor false")


def _collection(params: Parameters) -> str | None:
    value = params.get("COLLECTION")
    if value is None or not value.strip() or value.strip().lower() in LIVE_COLLECTIONS:
        return None
    return value.strip()


def parse_lightcurve_request(params: Parameters, *,
                             upper_limits_default: bool = True) -> LightCurveRequest:
    """The request, or LightCurveRequestError (the message names the parameter)."""
    try:
        chosen = requested_format(params)
        if "BAND" in params:
            raise LightCurveRequestError("BAND (wavelengths) is not supported here; name the"
                                         " filters with BANDNAME (g, r, i)")
        oids, circle = _oids(params), _circle(params)
        if oids and circle is not None:
            raise LightCurveRequestError("Give objects by ID or by POS/CIRCLE, not both")
        if not oids and circle is None:
            raise LightCurveRequestError("Name the objects: ID=<oid>[,<oid>...] or"
                                         " POS=CIRCLE <ra> <dec> <radius>")
        if oids:
            given = [name for name in _OBJECT_CONSTRAINTS if name in params]
            if given:
                raise LightCurveRequestError(f"{', '.join(given)} select objects found by"
                                             " POS or CIRCLE; with ID, name the objects")
        time = _interval(params, "TIME")
        if time is not None and (math.isinf(time.lo) and math.isinf(time.hi)
                                 and time.lo == time.hi):
            raise LightCurveRequestError("TIME: an instant must be finite")
        return LightCurveRequest(
            oids=oids, circle=circle, filtercodes=_bands(params), mag=_interval(params, "MAG"),
            nobs_min=_whole(params, "NOBS_MIN", 2 ** 31 - 1), time=time,
            bad_catflags_mask=_whole(params, "BAD_CATFLAGS_MASK", 2 ** 31 - 1),
            collection=_collection(params), format=chosen,
            upper_limits=_boolean(params, "UPPERLIMITS", upper_limits_default))
    except ParameterError as error:
        if isinstance(error, LightCurveRequestError):
            raise
        raise LightCurveRequestError(str(error)) from None
