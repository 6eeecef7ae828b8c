"""Times as people type them in a search form: calendar dates (UTC) or MJD.

Pure functions; a value that cannot be used raises ``TimeInputError`` with a message for the
page. The archive's times are UTC; MJD = JD - 2400000.5.
"""

from __future__ import annotations

import datetime as dt
import math
import re

MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)
JD_OFFSET = 2_400_000.5
EARLIEST_MJD = 15_021.0  # 1900-01-01: nothing older is in a survey archive
LATEST_MJD = 88_069.0  # 2100-01-01

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TimeInputError(ValueError):
    """A time that cannot be read or is out of range."""


def mjd_of(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - MJD_EPOCH).total_seconds() / 86400.0


def datetime_of(mjd: float) -> dt.datetime:
    return MJD_EPOCH + dt.timedelta(days=mjd)


def format_mjd(mjd: float | None) -> str:
    """``2024-10-08 05:12:30`` (UTC), or an empty string."""
    if mjd is None or not math.isfinite(mjd):
        return ""
    return f"{datetime_of(mjd):%Y-%m-%d %H:%M:%S}"


def parse_time(text: str, *, end_of_day: bool = False) -> float | None:
    """MJD (UTC) of ``text``: a number (MJD, or JD when above 2400000.5) or an ISO date and
    time. A bare date means the start of that day, or with ``end_of_day`` its end, so that a
    range "to 2024-10-08" includes that night's observations after midnight UTC."""
    value = " ".join(text.split())
    if not value:
        return None
    if _NUMBER.match(value):
        number = float(value)
        mjd = number - JD_OFFSET if number > JD_OFFSET else number
    else:
        mjd = _calendar(value, end_of_day)
    if not EARLIEST_MJD <= mjd <= LATEST_MJD:
        raise TimeInputError(f"{value} is outside the years 1900 to 2100 "
                             "(give an MJD such as 60591.2 or a date such as 2024-10-08)")
    return mjd


def _calendar(value: str, end_of_day: bool) -> float:
    cleaned = value.replace("/", "-").replace(" UTC", "").replace("Z", "")
    try:
        if _DATE_ONLY.match(cleaned):
            day = dt.date.fromisoformat(cleaned)
            moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            if end_of_day:
                moment += dt.timedelta(days=1)
            return mjd_of(moment)
        moment = dt.datetime.fromisoformat(cleaned.replace(" ", "T", 1))
    except ValueError:
        raise TimeInputError(
            f"{value!r} is not a date: write 2024-10-08, 2024-10-08 05:30 (UTC) or an MJD "
            "such as 60591.23") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return mjd_of(moment)


def parse_time_range(start: str, stop: str) -> tuple[float | None, float | None]:
    """(start, stop) MJD; raises TimeInputError naming the field at fault in ``field``."""
    try:
        low = parse_time(start)
    except TimeInputError as error:
        raise FieldTimeError("time_from", str(error)) from None
    try:
        high = parse_time(stop, end_of_day=True)
    except TimeInputError as error:
        raise FieldTimeError("time_to", str(error)) from None
    if low is not None and high is not None and low > high:
        raise FieldTimeError("time_to", "The end of the time range is before its start")
    return low, high


class FieldTimeError(TimeInputError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
