"""IN_UNIT (ADQL 2.1 section 4.9.1): the factor that converts a value from one VOUnit to another.

astropy parses the units (VOUnit syntax first, then its generic syntax for what the schema may
write otherwise) and is imported on first use only, so queries without IN_UNIT never pay for it.
Only multiplicative conversions are offered: temperatures with offsets, logarithmic units to
linear ones and the like are refused, as the standard requires an error when the system cannot
convert.
"""

from __future__ import annotations

import warnings
from functools import lru_cache


class UnitError(ValueError):
    """The unit is not understood or the conversion is impossible."""


def _parse(text: str, role: str):
    import astropy.units as u

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit_format in ("vounit", None):
            try:
                return u.Unit(text, format=unit_format)
            except ValueError:
                continue
    raise UnitError(f"{role} unit '{text}' is not a valid VOUnit")


@lru_cache(maxsize=512)
def conversion_factor(source: str, target: str) -> float:
    """The number to multiply a value in ``source`` units by to get ``target`` units."""
    if not source.strip():
        raise UnitError("the value has no unit, so it cannot be converted "
                        "(IN_UNIT needs a column or expression with a known unit)")
    if not target.strip():
        raise UnitError("conversion into a unitless value is impossible")
    import astropy.units as u

    from_unit = _parse(source, "the value's")
    to_unit = _parse(target, "the requested")
    try:
        factor = from_unit.to(to_unit)
    except u.UnitsError as error:
        raise UnitError(f"cannot convert from '{source}' to '{target}'") from error
    try:
        return float(factor)
    except TypeError as error:  # pragma: no cover - function units give arrays/quantities
        raise UnitError(f"cannot convert from '{source}' to '{target}'") from error
