"""Names typed in a position box, resolved offline from the archive itself.

- Survey fields: ``field 601``, optionally with a CCD and quadrant (``field 601 ccd 2 q 3``):
  the centre of the science images of that field (or of its exposures' pointings) the
  requester can see, so a field known only from embargoed data stays unknown.
- Image identifiers: ``ivo://skyvault.archive/sci?123`` (an ObsCore publisher DID): the centre
  of that image, if visible.
- Solar-system objects from ``survey.solar_system_objects``, by designation, name or number
  (``2004 PC112``, ``Eros``, ``433``, ``(433) Eros``, ``2P/Encke``): they move, so they resolve
  to a position only for a moment (the middle of the searched time range), with the archive's
  ephemeris code; without a time they raise ``MovingObject`` so the page can say why and point
  to the moving-object search.

Every lookup runs on the requester's connection (``context.reading()``).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import psycopg

from skyvault.server.images import products
from skyvault.server.web.coords import SkyPosition
from skyvault.vo.publisher_did import parse_publisher_did

log = logging.getLogger(__name__)

_FIELD = re.compile(
    r"^(?:ztf\s*)?field\s*[:#]?\s*(?P<field>\d{1,8})"
    r"(?:\s*(?:,\s*)?(?:ccd|c)\s*(?P<ccd>\d{1,2}))?"
    r"(?:\s*(?:,\s*)?(?:quadrant|qid|q)\s*(?P<qid>\d))?$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\(?(?P<number>\d{1,7})\)?(?:\s+(?P<name>.+))?$")


class NameNotFound(LookupError):
    """No visible object of the archive has this name."""


class MovingObject(LookupError):
    """The name is a solar-system object, whose position depends on the time."""

    def __init__(self, label: str, designation: str) -> None:
        super().__init__(f"{label} is a solar-system object and moves")
        self.label = label
        self.designation = designation


@dataclass(frozen=True)
class Resolved:
    position: SkyPosition
    label: str
    """What the name was resolved as, for the page ("field 601: 12 science images")."""


def _mean_position(row: tuple | None) -> SkyPosition | None:
    """The direction of the mean unit vector (x, y, z means and a count)."""
    if row is None or not row[3]:
        return None
    x, y, z = float(row[0]), float(row[1]), float(row[2])
    if math.hypot(x, y, z) < 1e-12:
        return None
    return SkyPosition(math.degrees(math.atan2(y, x)) % 360.0,
                       math.degrees(math.atan2(z, math.hypot(x, y))))


def _vector_mean_sql(ra: str, dec: str) -> str:
    """Means over the rows with a position (bias and flat frames have none: NULL)."""
    return (f"avg(cos(radians({dec})) * cos(radians({ra}))),"
            f" avg(cos(radians({dec})) * sin(radians({ra}))), avg(sin(radians({dec}))),"
            f" count({ra})")


def resolve_field(connection: psycopg.Connection, field: int, ccdid: int | None = None,
                  qid: int | None = None) -> Resolved | None:
    conditions, values = ["field = %s", "is_current = 1"], [field]
    if ccdid is not None:
        conditions.append("ccdid = %s")
        values.append(ccdid)
    if qid is not None:
        conditions.append("qid = %s")
        values.append(qid)
    where = " AND ".join(conditions)
    row = connection.execute(
        f"SELECT {_vector_mean_sql('ra', 'dec')} FROM survey.science_images WHERE {where}",
        values).fetchone()
    label = f"field {field}" + (f" CCD {ccdid}" if ccdid else "") + (f" q{qid}" if qid else "")
    position = _mean_position(row)
    if position is not None:
        return Resolved(position, f"{label}: centre of {row[3]} science images")
    if ccdid is None and qid is None:
        row = connection.execute(
            f"SELECT {_vector_mean_sql('telra', 'teldec')} FROM survey.exposures"
            " WHERE field = %s", (field,)).fetchone()
        position = _mean_position(row)
        if position is not None:
            return Resolved(position, f"{label}: mean pointing of {row[3]} exposures")
    return None


def resolve_did(connection: psycopg.Connection, text: str) -> Resolved | None:
    key = parse_publisher_did(text)
    if key is None:
        return None
    image = products.find_image(connection, key)
    if image is None or image.s_ra is None or image.s_dec is None:
        return None
    return Resolved(SkyPosition(image.s_ra, image.s_dec), f"centre of {key.did}")


def _orbit_columns() -> str:
    from skyvault.sso.orbit_rows import COLUMNS

    return ", ".join(COLUMNS)


def find_solar_system_object(connection: psycopg.Connection, text: str) -> tuple | None:
    """The orbit row whose designation, name or number the text gives."""
    candidates = {text.strip()}
    number = None
    numbered = _NUMBERED.match(text.strip())
    if numbered:
        number = int(numbered.group("number"))
        if numbered.group("name"):
            candidates.add(numbered.group("name").strip())
    lowered = [c.lower() for c in candidates]
    return connection.execute(
        f"SELECT {_orbit_columns()} FROM survey.solar_system_objects"
        " WHERE lower(designation) = ANY(%s) OR lower(name) = ANY(%s) OR number = %s"
        " ORDER BY (number = %s) DESC NULLS LAST, designation LIMIT 1",
        (lowered, lowered, number, number)).fetchone()


def _label(row: tuple) -> str:
    designation, name, number = row[0], row[1], row[2]
    if number is not None:
        return f"({number}) {name}" if name else f"({number}) {designation}"
    return f"{designation} ({name})" if name else designation


def position_of_orbit(row: tuple, mjd_utc: float) -> SkyPosition:
    """Astrometric position seen from Palomar at ``mjd_utc`` (the archive's sso package)."""
    # The sso package's own row reader knows how comets and unnamed objects are stored.
    from skyvault.sso.ephemeris import predict
    from skyvault.sso.orbit_rows import orbit_from_row

    orbit = orbit_from_row(row)
    ephemeris = predict(orbit, [mjd_utc])
    return SkyPosition(float(ephemeris.ra[0]) % 360.0, float(ephemeris.dec[0]))


def resolve_name(connection: psycopg.Connection, text: str,
                 at_mjd: float | None = None) -> Resolved:
    """The position a name stands for; NameNotFound or MovingObject otherwise."""
    name = " ".join(text.split())
    field = _FIELD.match(name)
    if field:
        resolved = resolve_field(connection, int(field.group("field")),
                                 int(field.group("ccd")) if field.group("ccd") else None,
                                 int(field.group("qid")) if field.group("qid") else None)
        if resolved is not None:
            return resolved
        raise NameNotFound(name)
    if name.lower().startswith("ivo://"):
        resolved = resolve_did(connection, name)
        if resolved is not None:
            return resolved
        raise NameNotFound(name)
    row = find_solar_system_object(connection, name)
    if row is None:
        raise NameNotFound(name)
    label = _label(row)
    if at_mjd is None:
        raise MovingObject(label, row[0])
    try:
        position = position_of_orbit(row, at_mjd)
    except Exception:  # the ephemeris code is optional here: say what to do instead
        log.exception("no ephemeris for %s", label)
        raise MovingObject(label, row[0]) from None
    return Resolved(position, f"{label}: predicted position at MJD {at_mjd:.4f} (UTC)")
