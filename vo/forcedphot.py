"""The forced-photometry service's request: a position, optionally a time range and filters.

The parameters are ZTF's forced-photometry service's (ZFPS): ``RA`` and ``DEC`` in decimal
degrees (ICRS), ``JDSTART`` and ``JDEND`` (Julian dates of the exposures' start, inclusive),
and ``FILTER`` (``zg``, ``zr``, ``zi``, or ``g``, ``r``, ``i``; repeated or comma-separated;
all filters when absent), with DALI's ``RESPONSEFORMAT`` (VOTable by default; CSV, TSV, FITS,
Parquet, IPAC table as TAP writes them). Names ignore case and unknown parameters are ignored
(DALI 1.1 section 3). A value the service cannot use raises ``InvalidParameter``, which every entry
point answers as a DALI error document: on sync and on creating an async job, before anything
runs.

Pure functions: the sync endpoint, the async job's creation and the worker parse alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.vo.dali import InvalidParameter, Parameters, parse_finite, response_format_parameter
from skyvault.vo.votable.formats import OutputFormat, UnknownFormat, lookup_format

FILTERCODES = {"zg": "zg", "zr": "zr", "zi": "zi", "g": "zg", "r": "zr", "i": "zi"}
"""FILTER values (lower-cased) and the filter code each names."""
FILTER_IDS = {"zg": 1, "zr": 2, "zi": 3}
JD_FIRST = 2400000.5
"""1858-11-17 (MJD 0): no survey epoch is older."""
JD_LAST = 2488069.5
"""2100-01-01: beyond the archive's calendar."""


@dataclass(frozen=True)
class ForcedRequest:
    """A forced-photometry request as its parameters describe it, checked."""

    ra: float
    """Degrees, [0, 360)."""
    dec: float
    jd_start: float | None = None
    jd_end: float | None = None
    filtercodes: tuple[str, ...] = ()
    """Filter codes asked for, in the order first named; empty for all."""
    response_format: str | None = None

    def output(self) -> tuple[OutputFormat, str]:
        """The writer and the Content-Type of the answer (checked when parsed)."""
        return lookup_format(self.response_format)


def parse_forced_request(params: Parameters) -> ForcedRequest:
    """The request, or ``InvalidParameter`` saying what cannot be used."""
    ra = _number(params, "RA")
    dec = _number(params, "DEC")
    if not 0 <= ra <= 360:
        raise InvalidParameter(f"RA {ra:g} is outside [0, 360] degrees")
    if not -90 <= dec <= 90:
        raise InvalidParameter(f"DEC {dec:g} is outside [-90, 90] degrees")
    jd_start = _julian_date(params, "JDSTART")
    jd_end = _julian_date(params, "JDEND")
    if jd_start is not None and jd_end is not None and jd_start > jd_end:
        raise InvalidParameter(f"JDSTART {jd_start:.6f} is later than JDEND {jd_end:.6f}")
    chosen = response_format_parameter(params)
    try:
        lookup_format(chosen)
    except UnknownFormat:
        raise InvalidParameter(f"RESPONSEFORMAT {chosen!r} is not supported") from None
    return ForcedRequest(ra % 360.0, dec, jd_start, jd_end, _filters(params), chosen)


def _number(params: Parameters, name: str) -> float:
    text = params.get(name)
    if text is None or not text.strip():
        raise InvalidParameter(f"Parameter {name} is required")
    return parse_finite(text, name)


def _julian_date(params: Parameters, name: str) -> float | None:
    text = params.get(name)
    if text is None or not text.strip():
        return None
    value = _number(params, name)
    if not JD_FIRST <= value <= JD_LAST:
        raise InvalidParameter(f"{name} {value:g} is outside the Julian dates {JD_FIRST} to"
                               f" {JD_LAST} (1858 to 2100)")
    return value


def _filters(params: Parameters) -> tuple[str, ...]:
    codes: list[str] = []
    for value in params.get_all("FILTER"):
        for item in value.split(","):
            name = item.strip().lower()
            if not name:
                continue
            code = FILTERCODES.get(name)
            if code is None:
                raise InvalidParameter(f"FILTER {item.strip()!r} is not one of zg, zr, zi"
                                       " (or g, r, i)")
            if code not in codes:
                codes.append(code)
    return tuple(codes)
