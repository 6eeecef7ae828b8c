"""Orbits of asteroids and comets: the ``Orbit`` record and its parsers.

An ``Orbit`` holds osculating heliocentric elements referred to the ecliptic and equinox of
J2000 (the MPC and JPL convention), with the epoch on the TDB scale. Asteroids carry a and the
mean anomaly at the epoch; comets q and the time of perihelion. The parsers read the MPC's two
one-line formats (MPCORB.DAT and CometEls.txt) and raise ``OrbitFormatError`` naming the
columns and field that are wrong; ``orbit_from_elements`` checks manually entered elements.
Every orbit made here is also held to physical ranges (``check_physical``: perihelion outside
a thousandth of an au, eccentricity up to 20, within the Oort cloud, epoch and perihelion time
inside the DE440 span), so that nothing absurd reaches the integrator.

The MPC gives epochs and perihelion times in TT; they are converted to TDB here (the
difference is under 2 ms, but it is a real difference and cheap to get right).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from .errors import SsoError
from .packed import (
    PackedFormatError,
    split_readable,
    unpack_comet_provisional,
    unpack_date,
    unpack_number,
    unpack_provisional,
)
from .planets import DE440_FIRST_MJD, DE440_LAST_MJD
from .timescales import calendar_to_mjd, tt_to_tdb

OrbitType = Literal["asteroid", "comet"]

# Gaussian gravitational constant squared is the MPC's GM_sun; DE440's value differs by 1e-10
# relative. Only used to turn q,tp <-> a,M for display, never in the dynamics.
GM_SUN_AU3_D2 = 2.9591220828411951e-04


class OrbitError(SsoError, ValueError):
    """Base class of everything wrong with an orbit."""


class OrbitFormatError(OrbitError):
    """A one-line orbit whose field at the given columns does not parse.

    ``str(err)`` reads e.g. "columns 21-25 (epoch): 'K24AX' is not a packed date".
    """

    def __init__(self, first: int, last: int, field_name: str, value: str, reason: str) -> None:
        self.columns = (first, last)
        self.field = field_name
        self.value = value
        self.reason = reason
        where = f"column {first}" if first == last else f"columns {first}-{last}"
        super().__init__(f"{where} ({field_name}): {value!r} {reason}")


class OrbitElementError(OrbitError):
    """Elements that are individually readable but do not make an orbit (e.g. e < 0)."""


class OrbitRangeError(OrbitElementError):
    """An element outside the physical range ``check_physical`` allows; ``element`` names it
    as the ``Orbit`` field does (``a_au``, ``e``...), so a line parser can add its columns."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element

    def __reduce__(self):  # pickled across the integration guard's process boundary
        return (type(self), (self.element, str(self)))


@dataclass(frozen=True, slots=True)
class Orbit:
    """Osculating heliocentric ecliptic J2000 elements of one object.

    Asteroids: ``a_au`` and ``mean_anomaly_deg`` at ``epoch_mjd_tdb``. Comets (and any
    hyperbolic or parabolic orbit): ``q_au`` and ``tp_mjd_tdb``. ``h``/``g`` are the IAU H,G
    magnitude parameters; for comets ``h`` is the total absolute magnitude M1 and ``k1`` the
    coefficient of log10(r) in m = M1 + 5 log10(delta) + k1 log10(r).
    ``nongrav_a1..a3`` are Marsden-model non-gravitational accelerations (au/d^2, the JPL
    convention) applied with the standard water-ice g(r); zero for purely gravitational orbits.
    ``uncertainty_u`` is the MPC's U parameter (a character: '0'-'9', or a letter flag).
    """

    designation: str
    name: str | None
    number: int | None
    orbit_type: OrbitType
    epoch_mjd_tdb: float
    e: float
    incl_deg: float
    node_deg: float
    peri_deg: float
    a_au: float | None = None
    mean_anomaly_deg: float | None = None
    q_au: float | None = None
    tp_mjd_tdb: float | None = None
    h: float | None = None
    g: float | None = None
    k1: float | None = None
    source: str = ""
    uncertainty_u: str | None = None
    nongrav_a1: float = 0.0
    nongrav_a2: float = 0.0
    nongrav_a3: float = 0.0
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        """How people write it: '(433) Eros', '2004 PC112', '2P/Encke', 'C/2012 S1 (ISON)'."""
        if self.orbit_type == "comet":
            if self.name and self.designation.endswith(("P", "D", "I")) and self.number:
                return f"{self.designation}/{self.name}"
            return f"{self.designation} ({self.name})" if self.name else self.designation
        if self.number is not None:
            rest = self.name or self.extra.get("provisional")
            return f"({self.number}) {rest}" if rest else f"({self.number})"
        return self.designation

    @property
    def perihelion_distance_au(self) -> float:
        if self.q_au is not None:
            return self.q_au
        assert self.a_au is not None
        return self.a_au * (1.0 - self.e)

    @property
    def has_nongrav(self) -> bool:
        return bool(self.nongrav_a1 or self.nongrav_a2 or self.nongrav_a3)

    def cometary(self) -> tuple[float, float]:
        """(q in au, time of perihelion as MJD TDB), from whichever pair the orbit carries."""
        if self.q_au is not None and self.tp_mjd_tdb is not None:
            return self.q_au, self.tp_mjd_tdb
        assert self.a_au is not None and self.mean_anomaly_deg is not None
        mean_motion = math.sqrt(GM_SUN_AU3_D2 / self.a_au**3)  # rad/day
        mean_anomaly = math.remainder(math.radians(self.mean_anomaly_deg), 2 * math.pi)
        return self.a_au * (1.0 - self.e), self.epoch_mjd_tdb - mean_anomaly / mean_motion


# --------------------------------------------------------------------------- physical ranges

Q_MIN_AU = 1e-3
"""Perihelion distance floor: a fifth of the Sun's radius. Sungrazing comets reach 0.005 au."""
E_MAX = 20.0
"""'Oumuamua has e = 1.20 and 2I/Borisov 3.36; e = 20 at q = 1 au is 130 km/s at infinity."""
DISTANCE_MAX_AU = 1e5
"""The outer edge of the Oort cloud: bound for a, q and the distance at the epoch."""
MAGNITUDE_RANGE = (-30.0, 40.0)
"""H (or a comet's M1): the Sun itself would be -30; 40 is fainter than anything observed."""
K1_RANGE = (-100.0, 100.0)
"""Comet activity slope; the MPC's values are 5-40."""
NONGRAV_MAX_AU_D2 = 1e-5
"""Marsden A1..A3; measured comets have 1e-10..1e-7 au/d^2."""


def _outside(element: str, message: str) -> OrbitRangeError:
    return OrbitRangeError(element, message)


def check_physical(orbit: Orbit) -> Orbit:
    """The orbit itself if every element lies in a physical range, else ``OrbitRangeError``.

    These are the limits inside which the integrator is known to behave (tests/sso probe
    them); values beyond them describe no solar-system body anyway. The epoch and the time of
    perihelion must lie in DE440's span, where the planets' positions are known.
    """
    for element in ("epoch_mjd_tdb", "e", "incl_deg", "node_deg", "peri_deg", "a_au",
                    "mean_anomaly_deg", "q_au", "tp_mjd_tdb", "h", "g", "k1", "nongrav_a1",
                    "nongrav_a2", "nongrav_a3"):
        value = getattr(orbit, element)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            raise _outside(element, f"{element} must be a finite number, got {value!r}")
    for element, label in (("epoch_mjd_tdb", "epoch"), ("tp_mjd_tdb", "time of perihelion")):
        value = getattr(orbit, element)
        if value is not None and not DE440_FIRST_MJD <= value <= DE440_LAST_MJD:
            raise _outside(element, f"{label} MJD {value:g} is outside the planetary ephemeris "
                           f"(DE440, MJD {DE440_FIRST_MJD:g} to {DE440_LAST_MJD:g}: 1550-2650)")
    if not 0.0 <= orbit.e <= E_MAX:
        raise _outside("e", f"eccentricity {orbit.e:g} is outside 0 to {E_MAX:g}")
    if not 0.0 <= orbit.incl_deg <= 180.0:
        raise _outside("incl_deg", f"inclination {orbit.incl_deg:g} is outside 0-180 degrees")
    if orbit.a_au is not None:
        if orbit.e >= 1.0:
            raise _outside("e", f"eccentricity {orbit.e:g} >= 1 has no semimajor axis")
        if not 0.0 < orbit.a_au <= DISTANCE_MAX_AU:
            raise _outside("a_au", f"semimajor axis {orbit.a_au:g} au is outside 0 to "
                           f"{DISTANCE_MAX_AU:g} au")
    q = orbit.a_au * (1.0 - orbit.e) if orbit.q_au is None and orbit.a_au is not None \
        else orbit.q_au
    element = "q_au" if orbit.q_au is not None else "a_au"
    if q is None:
        raise _outside("q_au", "an orbit needs a semimajor axis or a perihelion distance")
    if not Q_MIN_AU <= q <= DISTANCE_MAX_AU:
        raise _outside(element, f"perihelion distance {q:g} au is outside {Q_MIN_AU:g} to "
                       f"{DISTANCE_MAX_AU:g} au")
    low, high = MAGNITUDE_RANGE
    if orbit.h is not None and not low <= orbit.h <= high:
        raise _outside("h", f"absolute magnitude {orbit.h:g} is outside {low:g} to {high:g}")
    if orbit.g is not None and not -1.0 <= orbit.g <= 2.0:
        raise _outside("g", f"slope parameter G = {orbit.g:g} is outside -1..2")
    low, high = K1_RANGE
    if orbit.k1 is not None and not low <= orbit.k1 <= high:
        raise _outside("k1", f"activity slope K1 = {orbit.k1:g} is outside {low:g} to {high:g}")
    for element in ("nongrav_a1", "nongrav_a2", "nongrav_a3"):
        if abs(getattr(orbit, element)) > NONGRAV_MAX_AU_D2:
            raise _outside(element, f"{element} is above {NONGRAV_MAX_AU_D2:g} au/d^2")
    return orbit


def _checked_line(orbit: Orbit, line: str, columns: dict[str, tuple[int, int, str]]) -> Orbit:
    """``check_physical`` for an orbit read from a fixed-column line: the columns at fault."""
    try:
        return check_physical(orbit)
    except OrbitRangeError as error:
        if error.element not in columns:
            raise
        first, last, name = columns[error.element]
        raise OrbitFormatError(first, last, name, _field(line, first, last).strip(),
                               f"is out of range: {error}") from None


_MPCORB_COLUMNS = {"epoch_mjd_tdb": (21, 25, "epoch"), "e": (71, 79, "eccentricity"),
                   "a_au": (93, 103, "semimajor axis"), "h": (9, 13, "H"), "g": (15, 19, "G")}
_COMET_COLUMNS = {"tp_mjd_tdb": (15, 29, "perihelion date"),
                  "q_au": (31, 39, "perihelion distance"), "e": (42, 49, "eccentricity"),
                  "epoch_mjd_tdb": (82, 89, "epoch"), "h": (92, 95, "absolute magnitude"),
                  "k1": (97, 100, "slope parameter")}


# --------------------------------------------------------------------------- MPCORB.DAT


def _field(line: str, first: int, last: int) -> str:
    """Columns first..last (1-based, inclusive, as the MPC documents them)."""
    return line[first - 1 : last]


def _number(line: str, first: int, last: int, name: str, *, required: bool = True) -> float | None:
    text = _field(line, first, last).strip()
    if not text:
        if required:
            raise OrbitFormatError(first, last, name, _field(line, first, last), "is blank")
        return None
    try:
        value = float(text)
    except ValueError:
        raise OrbitFormatError(first, last, name, text, "is not a number") from None
    if not math.isfinite(value):
        raise OrbitFormatError(first, last, name, text, "is not a finite number")
    return value


def _angle(line: str, first: int, last: int, name: str, *, upper: float = 360.0) -> float:
    value = _number(line, first, last, name)
    assert value is not None
    if not 0.0 <= value <= upper:
        raise OrbitFormatError(
            first, last, name, _field(line, first, last).strip(), f"is outside 0-{upper:g} degrees"
        )
    return value


def parse_mpcorb_line(line: str, *, source: str = "MPCORB") -> Orbit:
    """One line of MPCORB.DAT (or NEA.txt, Distant.txt...), in the MPC's fixed columns.

    Format: https://minorplanetcenter.net/iau/info/MPOrbitFormat.html
    """
    line = line.rstrip("\r\n")
    if len(line) < 103:
        raise OrbitFormatError(
            1,
            len(line),
            "line",
            line[:20] + ("..." if len(line) > 20 else ""),
            f"is {len(line)} characters long; an MPCORB line has at least 103",
        )
    packed = _field(line, 1, 7).strip()
    number: int | None = None
    provisional: str | None = None
    try:
        if len(packed) == 5:
            number = unpack_number(packed)
        elif len(packed) == 7:
            provisional = unpack_provisional(packed)
        else:
            raise PackedFormatError("is not a packed designation")
    except PackedFormatError as err:
        raise OrbitFormatError(1, 7, "designation", packed, str(err)) from None

    name: str | None = None
    readable = _field(line, 167, 194).strip()
    if readable:
        readable_number, name, readable_provisional = split_readable(readable)
        if readable_number is not None and number is not None and readable_number != number:
            raise OrbitFormatError(
                167,
                194,
                "readable designation",
                readable,
                f"does not match the packed number {number} in columns 1-7",
            )
        provisional = provisional or readable_provisional

    h = _number(line, 9, 13, "H", required=False)
    g = _number(line, 15, 19, "G", required=False)
    epoch_text = _field(line, 21, 25)
    try:
        year, month, day = unpack_date(epoch_text)
        epoch_tt = calendar_to_mjd(year, month, day)
    except (PackedFormatError, ValueError):
        raise OrbitFormatError(21, 25, "epoch", epoch_text, "is not a packed date") from None
    mean_anomaly = _angle(line, 27, 35, "mean anomaly")
    peri = _angle(line, 38, 46, "argument of perihelion")
    node = _angle(line, 49, 57, "longitude of the ascending node")
    incl = _angle(line, 60, 68, "inclination", upper=180.0)
    e = _number(line, 71, 79, "eccentricity")
    assert e is not None
    if not 0.0 <= e < 1.0:
        raise OrbitFormatError(
            71, 79, "eccentricity", _field(line, 71, 79).strip(), "is outside 0 <= e < 1"
        )
    a = _number(line, 93, 103, "semimajor axis")
    assert a is not None
    if a <= 0.0:
        raise OrbitFormatError(
            93, 103, "semimajor axis", _field(line, 93, 103).strip(), "is not positive"
        )
    u = _field(line, 106, 106).strip() or None

    designation = str(number) if number is not None else (provisional or packed)
    return _checked_line(Orbit(
        designation=designation,
        name=name,
        number=number,
        orbit_type="asteroid",
        epoch_mjd_tdb=float(tt_to_tdb(epoch_tt)),
        e=e,
        incl_deg=incl,
        node_deg=node,
        peri_deg=peri,
        a_au=a,
        mean_anomaly_deg=mean_anomaly,
        h=h,
        g=g,
        source=source,
        uncertainty_u=u,
        extra={"packed": packed, **({"provisional": provisional} if provisional else {})},
    ), line, _MPCORB_COLUMNS)


# --------------------------------------------------------------------------- CometEls.txt


def _comet_designation(line: str) -> tuple[str, int | None]:
    number_text = _field(line, 1, 4).strip()
    orbit_kind = _field(line, 5, 5)
    packed = _field(line, 6, 12).strip()
    if orbit_kind not in "CPDXIA" or orbit_kind == " ":
        raise OrbitFormatError(5, 5, "orbit type", orbit_kind, "is not one of C, P, D, X, I, A")
    if number_text:
        if not number_text.isdigit():
            raise OrbitFormatError(1, 4, "periodic comet number", number_text, "is not a number")
        number = int(number_text)
        return f"{number}{orbit_kind}", number
    try:
        return f"{orbit_kind}/{unpack_comet_provisional(packed)}", None
    except PackedFormatError as err:
        raise OrbitFormatError(6, 12, "provisional designation", packed, str(err)) from None


def _comet_name(text: str, designation: str) -> str | None:
    """'2P/Encke' -> 'Encke'; 'C/2012 S1 (ISON)' -> 'ISON'; 'C/2023 A3' -> None."""
    text = text.strip()
    if "(" in text and text.endswith(")"):
        return text[text.index("(") + 1 : -1].strip() or None
    if text.startswith(designation + "/"):
        return text[len(designation) + 1 :].strip() or None
    return None


def parse_mpc_comet_line(line: str, *, source: str = "MPC CometEls") -> Orbit:
    """One line of the MPC's CometEls.txt ("Ephemerides and Orbital Elements" format).

    Format: https://minorplanetcenter.net/iau/info/CometOrbitFormat.html
    """
    line = line.rstrip("\r\n")
    if len(line) < 79:
        raise OrbitFormatError(
            1,
            len(line),
            "line",
            line[:20] + ("..." if len(line) > 20 else ""),
            f"is {len(line)} characters long; a comet line has at least 79",
        )
    designation, number = _comet_designation(line)

    year_text, month_text = _field(line, 15, 18), _field(line, 20, 21)
    if not year_text.strip().lstrip("-").isdigit():
        raise OrbitFormatError(15, 18, "perihelion year", year_text, "is not a year")
    if not month_text.strip().isdigit() or not 1 <= int(month_text) <= 12:
        raise OrbitFormatError(20, 21, "perihelion month", month_text, "is not a month 1-12")
    day = _number(line, 23, 29, "perihelion day")
    assert day is not None
    if not 1.0 <= day < 32.0:
        raise OrbitFormatError(
            23, 29, "perihelion day", _field(line, 23, 29).strip(), "is not a day of the month"
        )
    try:
        tp_tt = calendar_to_mjd(int(year_text), int(month_text), day)
    except ValueError:
        raise OrbitFormatError(
            15, 29, "perihelion date", _field(line, 15, 29), "is not a calendar date"
        ) from None
    q = _number(line, 31, 39, "perihelion distance")
    assert q is not None
    if q <= 0.0:
        raise OrbitFormatError(
            31, 39, "perihelion distance", _field(line, 31, 39).strip(), "is not positive"
        )
    e = _number(line, 42, 49, "eccentricity")
    assert e is not None
    if e < 0.0:
        raise OrbitFormatError(42, 49, "eccentricity", _field(line, 42, 49).strip(), "is negative")
    peri = _angle(line, 52, 59, "argument of perihelion")
    node = _angle(line, 62, 69, "longitude of the ascending node")
    incl = _angle(line, 72, 79, "inclination", upper=180.0)

    epoch_text = _field(line, 82, 89).strip()
    if epoch_text:
        if len(epoch_text) != 8 or not epoch_text.isdigit():
            raise OrbitFormatError(82, 89, "epoch", epoch_text, "is not a date YYYYMMDD")
        try:
            epoch_tt = calendar_to_mjd(
                int(epoch_text[:4]), int(epoch_text[4:6]), float(epoch_text[6:])
            )
        except ValueError:
            raise OrbitFormatError(82, 89, "epoch", epoch_text, "is not a calendar date") from None
    else:
        # Unperturbed elements carry no epoch: they osculate at perihelion.
        epoch_tt = tp_tt
    m1 = _number(line, 92, 95, "absolute magnitude", required=False) if len(line) >= 92 else None
    slope = _number(line, 97, 100, "slope parameter", required=False) if len(line) >= 97 else None
    name_field = _field(line, 103, 158)
    return _checked_line(Orbit(
        designation=designation,
        name=_comet_name(name_field, designation),
        number=number,
        orbit_type="comet",
        epoch_mjd_tdb=float(tt_to_tdb(epoch_tt)),
        e=e,
        incl_deg=incl,
        node_deg=node,
        peri_deg=peri,
        q_au=q,
        tp_mjd_tdb=float(tt_to_tdb(tp_tt)),
        h=m1,
        # MPC: m = H + 5 log(delta) + 2.5 G log(r), so the log(r) coefficient K1 is 2.5 G.
        k1=None if slope is None else 2.5 * slope,
        source=source,
        extra={"reference": _field(line, 160, 168).strip()} if len(line) >= 160 else {},
    ), line, _COMET_COLUMNS)


# --------------------------------------------------------------------------- manual entry


def orbit_from_elements(
    *,
    epoch_mjd_tdb: float,
    e: float,
    incl_deg: float,
    node_deg: float,
    peri_deg: float,
    a_au: float | None = None,
    mean_anomaly_deg: float | None = None,
    q_au: float | None = None,
    tp_mjd_tdb: float | None = None,
    h: float | None = None,
    g: float | None = None,
    k1: float | None = None,
    designation: str = "manual",
    name: str | None = None,
    number: int | None = None,
    orbit_type: OrbitType | None = None,
    nongrav_a1: float = 0.0,
    nongrav_a2: float = 0.0,
    nongrav_a3: float = 0.0,
    source: str = "manual",
) -> Orbit:
    """Elements typed in by a person: exactly one of (a, M) or (q, tp), checked for sense."""
    values = {
        "epoch_mjd_tdb": epoch_mjd_tdb,
        "e": e,
        "incl_deg": incl_deg,
        "node_deg": node_deg,
        "peri_deg": peri_deg,
    }
    optional = {
        "a_au": a_au,
        "mean_anomaly_deg": mean_anomaly_deg,
        "q_au": q_au,
        "tp_mjd_tdb": tp_mjd_tdb,
        "h": h,
        "g": g,
        "k1": k1,
    }
    for key, value in {**values, **{k: v for k, v in optional.items() if v is not None}}.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise OrbitElementError(f"{key} must be a finite number, got {value!r}")
    with_a = a_au is not None or mean_anomaly_deg is not None
    with_q = q_au is not None or tp_mjd_tdb is not None
    if with_a == with_q:
        raise OrbitElementError("give either a and mean anomaly, or q and time of perihelion")
    if with_a and (a_au is None or mean_anomaly_deg is None):
        raise OrbitElementError("a and mean anomaly go together: one of them is missing")
    if with_q and (q_au is None or tp_mjd_tdb is None):
        raise OrbitElementError("q and time of perihelion go together: one of them is missing")
    if e < 0.0:
        raise OrbitElementError(f"eccentricity {e} is negative")
    if not 0.0 <= incl_deg <= 180.0:
        raise OrbitElementError(f"inclination {incl_deg} is outside 0-180 degrees")
    if with_a:
        assert a_au is not None
        if a_au <= 0.0:
            raise OrbitElementError(f"semimajor axis {a_au} au is not positive")
        if e >= 1.0:
            raise OrbitElementError(
                f"eccentricity {e} >= 1 has no semimajor axis and mean anomaly: "
                "give q and the time of perihelion instead"
            )
    else:
        assert q_au is not None
        if q_au <= 0.0:
            raise OrbitElementError(f"perihelion distance {q_au} au is not positive")
    if g is not None and not -1.0 <= g <= 2.0:
        raise OrbitElementError(f"slope parameter G = {g} is outside -1..2")
    kind: OrbitType = orbit_type or ("asteroid" if with_a else "comet")
    return check_physical(Orbit(
        designation=designation,
        name=name,
        number=number,
        orbit_type=kind,
        epoch_mjd_tdb=float(epoch_mjd_tdb),
        e=float(e),
        incl_deg=float(incl_deg),
        node_deg=float(node_deg) % 360.0,
        peri_deg=float(peri_deg) % 360.0,
        a_au=None if a_au is None else float(a_au),
        mean_anomaly_deg=None if mean_anomaly_deg is None else float(mean_anomaly_deg) % 360.0,
        q_au=None if q_au is None else float(q_au),
        tp_mjd_tdb=None if tp_mjd_tdb is None else float(tp_mjd_tdb),
        h=h,
        g=g,
        k1=k1,
        source=source,
        nongrav_a1=nongrav_a1,
        nongrav_a2=nongrav_a2,
        nongrav_a3=nongrav_a3,
    ))


# --------------------------------------------------------------------------- files


def _data_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            yield line


def parse_orbit_lines(lines: Iterable[str], *, source: str) -> list[Orbit]:
    """MPCORB and CometEls lines mixed: a comet line has a blank or 'P'/'C'... at column 5
    and a date at columns 15-21, which an MPCORB line never has."""
    orbits = []
    for line in lines:
        is_comet = (
            len(line) > 21
            and line[4] in "CPDXIA"
            and line[14:18].strip().isdigit()
            and line[18] == " "
            and line[21] == " "
        )
        orbits.append(
            parse_mpc_comet_line(line, source=source)
            if is_comet
            else parse_mpcorb_line(line, source=source)
        )
    return orbits


def load_demo_orbits() -> list[Orbit]:
    """Real elements of a few numbered asteroids and comets (see sso/data/demo_orbits.txt)."""
    text = resources.files("skyvault.sso").joinpath("data/demo_orbits.txt").read_text("utf-8")
    return parse_orbit_lines(_data_lines(text), source="MPC (demo set, sso/data/demo_orbits.txt)")
