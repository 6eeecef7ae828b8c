"""Which images a coverage request means: a filter, a night, a data release. Pure.

Nights are the survey's observing nights (local evening date at Palomar, as ``nid`` counts
them). A data release is cumulative: the images of its programs observed before its cutoff.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from skyvault.vo.moc import MocRequestError

FILTER_CODES = ("zg", "zr", "zi")
NID_EPOCH = dt.date(2017, 1, 1)
MJD_UNIX_EPOCH = 40587.0
_NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def nid_of(night: dt.date) -> int:
    return (night - NID_EPOCH).days


def night_of_nid(nid: int) -> dt.date:
    return NID_EPOCH + dt.timedelta(days=nid)


def mjd_of(moment: dt.datetime) -> float:
    return moment.timestamp() / 86400.0 + MJD_UNIX_EPOCH


def parse_night(text: str) -> dt.date:
    if not _NIGHT.match(text):
        raise MocRequestError(f"night must be a date YYYY-MM-DD, not {text!r}")
    try:
        night = dt.date.fromisoformat(text)
    except ValueError as error:
        raise MocRequestError(f"night {text!r} is not a date") from error
    if night < NID_EPOCH:
        raise MocRequestError(f"night {text} is before the survey's first night ({NID_EPOCH})")
    return night


@dataclass(frozen=True)
class ReleaseWindow:
    """What a data release covers: its programs' observations before the cutoff."""

    name: str
    cutoff: dt.datetime
    programids: tuple[int, ...]


@dataclass(frozen=True)
class CoverageSelection:
    filtercode: str | None = None
    night: dt.date | None = None
    release: str | None = None
    """A release name; resolved to a ReleaseWindow against the database."""

    @property
    def label(self) -> str:
        parts = [f"filter {self.filtercode}" if self.filtercode else "all filters"]
        if self.night:
            parts.append(f"night {self.night}")
        if self.release:
            parts.append(f"release {self.release}")
        return ", ".join(parts)

    def cache_key(self) -> tuple:
        return (self.filtercode, self.night, self.release)


def parse_selection(args: Mapping[str, str]) -> CoverageSelection:
    """The selection of a request's parameters (``filter``, ``night``, ``release``)."""
    known = {"filter", "night", "release", "order", "format"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise MocRequestError(f"unknown parameter {unknown[0]!r}; this service takes "
                              f"{', '.join(sorted(known))}")
    filtercode = args.get("filter") or None
    if filtercode is not None and filtercode not in FILTER_CODES:
        raise MocRequestError(f"filter must be one of {', '.join(FILTER_CODES)}, "
                              f"not {filtercode!r}")
    night = parse_night(args["night"]) if args.get("night") else None
    release = args.get("release") or None
    if release is not None and not _RELEASE.match(release):
        raise MocRequestError(f"{release!r} is not a release name")
    return CoverageSelection(filtercode, night, release)
