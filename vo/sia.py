"""SIA 2.0 {query} parameters translated to SQL over ``ivoa.obscore``.

Pure: ``parse_sia_query`` turns request parameters into a ``SiaQuery``; ``sia_select`` gives
the SQL text and its bound values. Rules (SIA 2.0 section 2.1):

- every value of one parameter is a constraint; constraints of one parameter are OR'ed,
  different parameters AND'ed;
- a NULL field never satisfies a constraint (SQL comparison semantics do this for us: every
  constraint is a comparison on the field, never ``IS NULL`` or ``COALESCE``);
- strings match exactly and case-sensitively, except ID (an IVOID, case-insensitive).

Spatial constraints test the footprint (``s_region``, the pgsphere polygon of the image's four
corners) with ``&&`` (overlaps), which the footprint GiST index of every image table serves,
since the view passes the constraint down to each branch of its UNION ALL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from skyvault.vo.publisher_did import parse_publisher_did
from skyvault.vo.shapes import (
    Circle,
    Interval,
    Polygon,
    Range,
    Shape,
    ShapeError,
    parse_interval,
    parse_pos,
)
from skyvault.vo.votable.mediatypes import NotVotable, requested_votable, votable_content_type

SIA_STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
OBSCORE_VIEW = "ivoa.obscore"
DEFAULT_MAXREC = 10_000
MAX_MAXREC = 1_000_000

POLARIZATION_STATES = frozenset({
    "I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX", "POLI", "POLA",
})


class SiaUsageError(ValueError):
    """A request SIA cannot run; the message goes after ``UsageFault: ``."""


class ParameterSource(Protocol):
    def get_all(self, name: str) -> list[str]: ...


@dataclass(frozen=True)
class Constraint:
    """One parameter's constraint: its values' conditions OR'ed, as SQL with bound values."""

    parameter: str
    sql: str
    values: tuple[object, ...] = ()


@dataclass(frozen=True)
class SiaQuery:
    constraints: tuple[Constraint, ...]
    maxrec: int
    response_format: str = "application/x-votable+xml;serialization=TABLEDATA"
    polygons: tuple[str, ...] = field(default=())
    """pgsphere polygon literals used, which the caller checks before running the query
    (pgsphere rejects self-intersecting polygons with an error, not with an empty answer)."""

    @property
    def is_metadata_only(self) -> bool:
        return self.maxrec == 0


# -- spatial --------------------------------------------------------------------------------------


def spoly_literal(vertices: Sequence[tuple[float, float]]) -> str:
    return "{" + ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in vertices) + "}"


def shape_condition(shape: Shape, column: str = "s_region") -> tuple[str, tuple[object, ...]]:
    """``column && <shape>`` with bound values; pgsphere works in radians."""
    if isinstance(shape, Circle):
        if shape.radius >= 180.0:
            return f"{column} IS NOT NULL", ()
        if shape.radius > 90.0:
            # pgsphere's circles stop at 90 degrees. A larger one is the sky less the open
            # circle of 180 - r about the antipode: a footprint overlaps it unless it lies in
            # there (on the boundary circle itself the two differ; its area is zero).
            return (f"NOT ({column} @ scircle(spoint(radians(%s), radians(%s)),"
                    " radians(%s)))",
                    ((shape.ra + 180.0) % 360.0, -shape.dec, 180.0 - shape.radius))
        return (f"{column} && scircle(spoint(radians(%s), radians(%s)), radians(%s))",
                (shape.ra, shape.dec, shape.radius))
    if isinstance(shape, Range):
        if shape.is_whole_sky:
            return f"{column} IS NOT NULL", ()
        # sbox keeps 360 apart from 0, so (0, 360) is every longitude; ra_min > ra_max wraps.
        ra_min, ra_max = shape.ra_min, shape.ra_max
        if shape.covers_all_longitudes:
            ra_min, ra_max = 0.0, 360.0
        return (f"{column} && sbox(spoint(radians(%s), radians(%s)),"
                f" spoint(radians(%s), radians(%s)))",
                (ra_min, shape.dec_min, ra_max, shape.dec_max))
    if isinstance(shape, Polygon):
        return f"{column} && %s::spoly", (spoly_literal(shape.vertices),)
    raise TypeError(shape)


# -- parameter kinds ------------------------------------------------------------------------------


def _or(parameter: str, parts: list[tuple[str, tuple[object, ...]]]) -> Constraint:
    sql = parts[0][0] if len(parts) == 1 else "(" + " OR ".join(f"({p[0]})" for p in parts) + ")"
    values: tuple[object, ...] = tuple(v for part in parts for v in part[1])
    return Constraint(parameter, sql, values)


def _interval(name: str, text: str) -> Interval:
    try:
        return parse_interval(text, name)
    except ShapeError as error:
        raise SiaUsageError(str(error)) from None


def _overlap(lo_column: str, hi_column: str):
    """Interval parameters that intersect [lo_column, hi_column] (BAND, TIME)."""
    def build(name: str, text: str) -> tuple[str, tuple[object, ...]]:
        interval = _interval(name, text)
        # PostgreSQL's double precision takes infinities: open ends need no special SQL.
        return f"({lo_column} <= %s AND {hi_column} >= %s)", (interval.hi, interval.lo)
    return build


def _within(column: str, scale: float = 1.0):
    """Interval parameters that contain the value of ``column`` (FOV, EXPTIME, ...)."""
    def build(name: str, text: str) -> tuple[str, tuple[object, ...]]:
        interval = _interval(name, text)
        return (f"({column} >= %s AND {column} <= %s)",
                (interval.lo * scale, interval.hi * scale))
    return build


def _equals(column: str, kind: type = str):
    def build(name: str, text: str) -> tuple[str, tuple[object, ...]]:
        if kind is int:
            stripped = text.strip()
            try:
                value: object = int(stripped)
            except ValueError:
                raise SiaUsageError(f"{name} must be an integer, not {text!r}") from None
            return f"{column} = %s", (value,)
        return f"{column} = %s", (text,)
    return build


def _position(name: str, text: str) -> tuple[str, tuple[object, ...]]:
    try:
        shape = parse_pos(text, name)
    except ShapeError as error:
        raise SiaUsageError(str(error)) from None
    return shape_condition(shape)


def _polarization(name: str, text: str) -> tuple[str, tuple[object, ...]]:
    state = text.strip()
    if state not in POLARIZATION_STATES:
        raise SiaUsageError(f"{name}: unknown polarization state {text!r}")
    # ObsCore writes pol_states as /I/Q/U/: a state matches between its slashes.
    return "pol_states LIKE %s", (f"%/{state}/%",)


def _identifier(name: str, text: str) -> tuple[str, tuple[object, ...]]:
    # obs_publisher_did is computed by the view from (image_table, image_id); comparing those
    # instead finds the one row by primary key in one branch, where comparing the computed
    # DID would read every image. A value that is not one of our DIDs can match nothing.
    key = parse_publisher_did(text)
    if key is None:
        return "false", ()
    return "(image_table = %s AND image_id = %s)", (key.collection.table, key.image_id)


# Parameter name -> builder of one value's condition; order is the order of constraints.
PARAMETERS = {
    "POS": _position,
    "BAND": _overlap("em_min", "em_max"),
    "TIME": _overlap("t_min", "t_max"),
    "POL": _polarization,
    "FOV": _within("s_fov"),
    "SPATRES": _within("s_resolution"),
    "EXPTIME": _within("t_exptime"),
    "TIMERES": _within("t_resolution"),
    "SPECRP": _within("em_res_power"),
    "ID": _identifier,
    "COLLECTION": _equals("obs_collection"),
    "FACILITY": _equals("facility_name"),
    "INSTRUMENT": _equals("instrument_name"),
    "DPTYPE": _equals("dataproduct_type"),
    "CALIB": _equals("calib_level", int),
    "TARGET": _equals("target_name"),
    "FORMAT": _equals("access_format"),
    # Survey-specific filters on the view's extra columns.
    "FIELD": _equals("field", int),
    "CCDID": _equals("ccdid", int),
    "QID": _equals("qid", int),
    "FILTERCODE": _equals("filtercode"),
    "PROGRAMID": _equals("programid", int),
}

# Unit and xtype of each parameter, for the service's self-description (SIA 2.0 3.1.2).
PARAMETER_METADATA: dict[str, tuple[str, str | None, str | None, str | None, str]] = {
    # name: (datatype, arraysize, xtype, unit, description)
    "BAND": ("double", "2", "interval", "m", "Wavelength interval (vacuum, metres)"),
    "TIME": ("double", "2", "interval", "d", "Time interval (MJD, UTC)"),
    "POL": ("char", "*", None, None, "Polarization state"),
    "FOV": ("double", "2", "interval", "deg", "Range of the field of view (diameter)"),
    "SPATRES": ("double", "2", "interval", "arcsec", "Range of spatial resolution"),
    "EXPTIME": ("double", "2", "interval", "s", "Range of exposure time"),
    "TIMERES": ("double", "2", "interval", "s", "Range of time resolution"),
    "SPECRP": ("double", "2", "interval", None, "Range of spectral resolving power"),
    "ID": ("char", "*", None, None, "Publisher dataset identifier (obs_publisher_did)"),
    "COLLECTION": ("char", "*", None, None, "Collection: SkyVault/raw, /sci, /ref or /diff"),
    "FACILITY": ("char", "*", None, None, "Facility (telescope) name"),
    "INSTRUMENT": ("char", "*", None, None, "Instrument name"),
    "DPTYPE": ("char", "*", None, None, "Data product type (image)"),
    "CALIB": ("int", None, None, None, "Calibration level (1 raw, 2 calibrated, 3 derived)"),
    "TARGET": ("char", "*", None, None, "Target name ('field <n>')"),
    "FORMAT": ("char", "*", None, None, "Format of access_url (access_format)"),
    "FIELD": ("int", None, None, None, "Survey field identifier"),
    "CCDID": ("int", None, None, None, "CCD number (1-16)"),
    "QID": ("int", None, None, None, "Readout quadrant (1-4)"),
    "FILTERCODE": ("char", "*", None, None, "Filter code: zg, zr or zi"),
    "PROGRAMID": ("int", None, None, None, "Program identifier"),
    "MAXREC": ("int", None, None, None, "Maximum number of records returned"),
    "RESPONSEFORMAT": ("char", "*", None, None, "Output format (VOTable)"),
}


def _single(params: ParameterSource, name: str) -> str | None:
    values = params.get_all(name)
    if len(values) > 1:
        raise SiaUsageError(f"{name} may be given only once")
    return values[0] if values else None


def parse_response_format(text: str | None) -> str:
    """The Content-Type to answer with. Only TABLEDATA VOTables are written: a RESPONSEFORMAT
    asking for another serialization is refused rather than answered with something else."""
    try:
        wanted = requested_votable(text)
    except NotVotable:
        raise SiaUsageError(f"RESPONSEFORMAT {text!r} is not supported; use votable") from None
    if wanted.serialization not in (None, "TABLEDATA"):
        raise SiaUsageError(f"RESPONSEFORMAT {text!r} is not supported: this service writes "
                            "VOTables in the TABLEDATA serialization only")
    return votable_content_type(wanted.media_type, "TABLEDATA")


def parse_maxrec(text: str | None, default: int = DEFAULT_MAXREC,
                 limit: int = MAX_MAXREC) -> int:
    if text is None:
        return default
    stripped = text.strip()
    if not stripped.lstrip("+").isdigit():
        raise SiaUsageError(f"MAXREC must be a non-negative integer, not {text!r}")
    return min(int(stripped), limit)


def parse_sia_query(params: ParameterSource, *, default_maxrec: int = DEFAULT_MAXREC,
                    max_maxrec: int = MAX_MAXREC) -> SiaQuery:
    constraints: list[Constraint] = []
    polygons: list[str] = []
    for name, build in PARAMETERS.items():
        values = params.get_all(name)
        if not values:
            continue
        parts = [build(name, value) for value in values]
        constraints.append(_or(name, parts))
        if name == "POS":
            polygons += [str(v) for sql, vs in parts if "::spoly" in sql for v in vs]
    return SiaQuery(
        constraints=tuple(constraints),
        maxrec=parse_maxrec(_single(params, "MAXREC"), default_maxrec, max_maxrec),
        response_format=parse_response_format(_single(params, "RESPONSEFORMAT")),
        polygons=tuple(polygons),
    )


def sia_select(query: SiaQuery, select_list: str) -> tuple[str, tuple[object, ...]]:
    """SQL for up to ``maxrec + 1`` rows (the extra row tells of an overflow)."""
    where = " AND ".join(c.sql for c in query.constraints) or "true"
    values = tuple(v for c in query.constraints for v in c.values)
    limit = query.maxrec + 1
    return f"SELECT {select_list} FROM {OBSCORE_VIEW} WHERE {where} LIMIT {limit:d}", values
