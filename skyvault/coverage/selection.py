"""Which images a coverage request means: a filter, a night, a data release. Pure.

Nights are the survey's observing nights (local evening date at Palomar, as ``nid`` counts
them). A data release means what its export holds (skyvault/releases/export.py): the images
public at its release date by the release rules (skyvault/releases/dating.py), so earlier
releases and proprietary periods over by then are in it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from skyvault.pipeline.naming import NID_EPOCH
from skyvault.releases.model import RELEASE_NAME
from skyvault.vo.moc import MocRequestError

FILTER_CODES = ("zg", "zr", "zi")
_NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def night_of_nid(nid: int) -> dt.date:
    return NID_EPOCH + dt.timedelta(days=nid)


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
class CoverageSelection:
    filtercode: str | None = None
    night: dt.date | None = None
    release: str | None = None
    """A data release's name; resolved against ``survey.data_releases`` when queried."""

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
    if release is not None and not RELEASE_NAME.match(release):
        raise MocRequestError(f"{release!r} is not a release name")
    return CoverageSelection(filtercode, night, release)
