"""Decoding of the MPC's packed designations and packed dates.

Pure functions; each raises ``PackedFormatError`` (a ``ValueError``) with the reason, and the
orbit parsers turn that into an error naming the columns of the line.

References: https://minorplanetcenter.net/iau/info/PackedDes.html and PackedDates.html.
"""

from __future__ import annotations

import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CENTURIES = {"I": 1800, "J": 1900, "K": 2000}
_SURVEYS = {"PLS": "P-L", "T1S": "T-1", "T2S": "T-2", "T3S": "T-3"}


class PackedFormatError(ValueError):
    """A packed designation or date that does not decode."""


def _packed_digit(char: str, maximum: int) -> int:
    """One packed month or day: 1-9 then A=10, B=11, ... (up to ``maximum``)."""
    value = BASE62.find(char) if char else -1
    if not 1 <= value <= maximum:
        raise PackedFormatError(f"{char!r} is not a packed value 1-{maximum}")
    return value


def unpack_date(packed: str) -> tuple[int, int, int]:
    """'K24AM' -> (2024, 10, 22). Century I/J/K, two-digit year, month 1-C, day 1-V."""
    if len(packed) != 5 or packed[0] not in _CENTURIES or not packed[1:3].isdigit():
        raise PackedFormatError("is not a packed date")
    try:
        month = _packed_digit(packed[3], 12)
        day = _packed_digit(packed[4], 31)
    except PackedFormatError as err:
        raise PackedFormatError("is not a packed date") from err
    return _CENTURIES[packed[0]] + int(packed[1:3]), month, day


def unpack_number(packed: str) -> int:
    """A packed minor-planet number: '00433' -> 433, 'A0345' -> 100345, '~000v' -> 620057."""
    if len(packed) != 5:
        raise PackedFormatError("is not a packed number")
    if packed.isdigit():
        return int(packed)
    if packed[0] == "~" and all(c in BASE62 for c in packed[1:]):
        value = 0
        for char in packed[1:]:
            value = value * 62 + BASE62.index(char)
        return 620000 + value
    if packed[0].isalpha() and packed[1:].isdigit():
        return BASE62.index(packed[0]) * 10000 + int(packed[1:])
    raise PackedFormatError("is not a packed number")


def _cycle(two: str) -> int:
    """The cycle count of a provisional designation: '00'..'99', then 'A0' = 100 ... 'z9' = 619."""
    if len(two) != 2 or not two[1].isdigit() or two[0] not in BASE62:
        raise PackedFormatError("is not a packed provisional designation")
    return BASE62.index(two[0]) * 10 + int(two[1])


def unpack_provisional(packed: str) -> str:
    """A packed asteroid provisional designation: 'K04PB2C' -> '2004 PC112'.

    Survey designations too: 'PLS2040' -> '2040 P-L'.
    """
    if len(packed) != 7:
        raise PackedFormatError("is not a packed provisional designation")
    if packed[:3] in _SURVEYS and packed[3:].isdigit():
        return f"{int(packed[3:])} {_SURVEYS[packed[:3]]}"
    if packed[0] not in _CENTURIES or not packed[1:3].isdigit():
        raise PackedFormatError("is not a packed provisional designation")
    half_month, second = packed[3], packed[6]
    if not (half_month.isupper() and second.isupper()):
        raise PackedFormatError("is not a packed provisional designation")
    year = _CENTURIES[packed[0]] + int(packed[1:3])
    cycle = _cycle(packed[4:6])
    return f"{year} {half_month}{second}{cycle if cycle else ''}"


def unpack_comet_provisional(packed: str) -> str:
    """A packed comet provisional designation: 'K12S010' -> '2012 S1', 'J93F02b' -> '1993 F2-B'.

    Comets first designated as asteroids keep the asteroid form ('J42E00A' -> '1942 EA').
    """
    if len(packed) != 7 or packed[0] not in _CENTURIES or not packed[1:3].isdigit():
        raise PackedFormatError("is not a packed comet designation")
    last = packed[6]
    if last.isupper():
        return unpack_provisional(packed)
    year = _CENTURIES[packed[0]] + int(packed[1:3])
    if not packed[3].isupper():
        raise PackedFormatError("is not a packed comet designation")
    number = _cycle(packed[4:6])
    fragment = "" if last == "0" else f"-{last.upper()}"
    if last != "0" and not last.islower():
        raise PackedFormatError("is not a packed comet designation")
    return f"{year} {packed[3]}{number}{fragment}"


_READABLE_NUMBERED = re.compile(r"^\((\d+)\)\s*(.*)$")
_PROVISIONAL_LIKE = re.compile(r"^\d{4} [A-Z]{2}\d*$|^\d+ (P-L|T-[123])$")


def split_readable(readable: str) -> tuple[int | None, str | None, str | None]:
    """MPCORB's readable designation -> (number, name, provisional designation).

    '(433) Eros' -> (433, 'Eros', None); '(620057) 2005 CG81' -> (620057, None, '2005 CG81');
    '2004 PC112' -> (None, None, '2004 PC112').
    """
    text = readable.strip()
    match = _READABLE_NUMBERED.match(text)
    if match:
        rest = match.group(2).strip()
        if not rest:
            return int(match.group(1)), None, None
        if _PROVISIONAL_LIKE.match(rest):
            return int(match.group(1)), None, rest
        return int(match.group(1)), rest, None
    return None, None, text or None
