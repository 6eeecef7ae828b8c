"""An IBE search request, and the ADQL query it becomes.

IRSA's ZTF image search (https://irsa.ipac.caltech.edu/docs/program_interface/ztf_api.html):

- ``POS=ra,dec`` (ICRS degrees): the point returned images must contain, or the centre of the
  search region. Required unless ``WHERE`` is given.
- ``SIZE=width[,height]`` (degrees): the full width of the search region along the east axis at
  POS and its full height along the north axis; one value is both. POS and SIZE make a convex
  spherical polygon with great-circle edges, compared with each image's polygon (its four
  corners). Zero (both) is a point; negative sizes are illegal.
- ``INTERSECT`` (with POS), S the search region, X an image (IRSA's definitions, as astroquery's
  Ibe documents them): ``COVERS`` X contains S; ``ENCLOSED`` S contains X (never, for a point);
  ``CENTER`` X contains the centre of S; ``OVERLAPS`` (the default) S and X meet. For a point,
  COVERS, CENTER and OVERLAPS are the same.
- ``mcen``: only the image whose centre is nearest POS (ignored when SIZE is given and
  non-zero).
- ``WHERE``: an SQL-like condition on the table's columns. Function calls and sub-queries are
  not supported (IRSA's rule): columns, literals, arithmetic, comparisons, AND, OR, NOT, IN,
  BETWEEN, LIKE, IS [NOT] NULL. It is parsed as an ADQL search condition and becomes part of an
  ADQL query tree translated like any TAP query: it never reaches the SQL as text.
- ``COLUMNS``: comma-separated names of the columns to return (default: all of them).
- ``ct``: ``ipac_table`` (the default), ``csv``, ``tsv``, ``html`` or ``votable``.
- ``FORMAT=METADATA``: the table's columns instead of images.

Parameter names ignore case (ztfquery writes WHERE and COLUMNS, astroquery where and columns).

The search region is built exactly: its edges are the great circles at width/2 east and west
and height/2 north and south of POS, perpendicular to those axes, i.e. the rectangle
``|x| <= tan(width/2)``, ``|y| <= tan(height/2)`` of the gnomonic (tangent-plane) projection at
POS, where great circles are straight lines. The tests check it against an independent
computation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from skyvault.server.ibe.columns import DISTANCE, SCHEMA, VIEWS, ImageView, view_sql
from skyvault.vo.adql import MappingCatalog, TranslatedQuery, parse_condition, translate_statement
from skyvault.vo.adql import nodes as n
from skyvault.vo.dali import Parameters, RepeatedParameter, parse_finite

INTERSECTS = ("OVERLAPS", "COVERS", "ENCLOSED", "CENTER")
FORMATS = ("ipac_table", "csv", "tsv", "html", "votable")
DEFAULT_FORMAT = "ipac_table"
KNOWN_PARAMETERS = ("POS", "SIZE", "INTERSECT", "MCEN", "WHERE", "COLUMNS", "CT", "FORMAT")
MAX_SIZE = 90.0
"""Largest SIZE value (degrees): the gnomonic rectangle needs half-sizes below 90 degrees."""


class IbeError(Exception):
    """A search request IBE refuses; the message is for the user."""

    http_status = 400


class UnknownTable(IbeError):
    http_status = 404


@dataclass(frozen=True)
class Region:
    """POS and SIZE: a point (both sizes zero) or a great-circle rectangle."""

    ra: float
    dec: float
    width: float = 0.0
    height: float = 0.0

    @property
    def is_point(self) -> bool:
        return self.width == 0.0 and self.height == 0.0

    def corners(self) -> list[tuple[float, float]]:
        """The rectangle's vertices (ra, dec in degrees), around it in order."""
        xi = math.tan(math.radians(self.width / 2))
        eta = math.tan(math.radians(self.height / 2))
        ra0, dec0 = math.radians(self.ra), math.radians(self.dec)
        corners = []
        for x, y in ((-xi, -eta), (xi, -eta), (xi, eta), (-xi, eta)):
            # Inverse gnomonic projection at (ra0, dec0), x east, y north.
            dec = math.asin((math.sin(dec0) + y * math.cos(dec0)) / math.sqrt(1 + x * x + y * y))
            ra = ra0 + math.atan2(x, math.cos(dec0) - y * math.sin(dec0))
            corners.append((math.degrees(ra) % 360.0, math.degrees(dec)))
        return corners


@dataclass(frozen=True)
class Search:
    view: ImageView
    columns: tuple[str, ...]
    region: Region | None = None
    intersect: str = "OVERLAPS"
    most_centred: bool = False
    where: str | None = None
    format: str = DEFAULT_FORMAT
    metadata: bool = False


def _single(params: Parameters, name: str) -> str | None:
    try:
        value = params.get(name)
    except RepeatedParameter:
        raise IbeError(f"{name} may be given once") from None
    return value.strip() if value is not None else None


def _number(text: str, what: str) -> float:
    return parse_finite(text, what, IbeError)


def _region(pos: str, size: str | None) -> Region:
    parts = pos.split(",")
    if len(parts) != 2:
        raise IbeError("POS must be ra,dec in decimal degrees (ICRS)")
    ra, dec = (_number(part.strip(), "POS") for part in parts)
    if not -90.0 <= dec <= 90.0:
        raise IbeError("POS: the declination must be between -90 and 90 degrees")
    width = height = 0.0
    if size:
        values = [_number(part.strip(), "SIZE") for part in size.split(",")]
        if len(values) not in (1, 2):
            raise IbeError("SIZE takes one or two values (width[,height]) in degrees")
        width, height = values[0], values[-1]
        if width < 0 or height < 0:
            raise IbeError("SIZE: negative sizes are illegal")
        if (width == 0) != (height == 0):
            raise IbeError("SIZE: give a width and a height above zero, or zero for a point")
        if max(width, height) > MAX_SIZE:
            raise IbeError(f"SIZE: each value is at most {MAX_SIZE:g} degrees")
    return Region(ra % 360.0, dec, width, height)


def _columns(view: ImageView, text: str | None) -> tuple[str, ...]:
    if not text:
        return view.column_names
    known = {name.lower(): name for name in view.column_names}
    chosen: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in known:
            raise IbeError(f"COLUMNS: {part.strip()!r} is not a column of {view.name}; its "
                           f"columns are {', '.join(view.column_names)}")
        if known[name] not in chosen:
            chosen.append(known[name])
    if not chosen:
        raise IbeError("COLUMNS names no column")
    return tuple(chosen)


def parse_search(table: str, params: Parameters) -> Search:
    """The search a request to ``/ibe/search/ztf/products/<table>`` asks for."""
    view = VIEWS.get(table)
    if view is None:
        raise UnknownTable(f"No table {table!r}: the ZTF tables are {', '.join(VIEWS)}")
    unknown = [name for name in params.names() if name not in KNOWN_PARAMETERS]
    if unknown:
        raise IbeError(f"Unknown parameter {unknown[0]}; the parameters are POS, SIZE, "
                       "INTERSECT, mcen, WHERE, COLUMNS, ct and FORMAT=METADATA")
    form = (_single(params, "CT") or DEFAULT_FORMAT).lower()
    if form not in FORMATS:
        raise IbeError(f"ct={form!r} is not offered; ct is one of {', '.join(FORMATS)}")
    metadata = _single(params, "FORMAT")
    if metadata and metadata.upper() != "METADATA":
        raise IbeError("FORMAT takes one value, METADATA; the output format is ct")
    columns = _columns(view, _single(params, "COLUMNS"))
    where = _single(params, "WHERE") or None
    pos = _single(params, "POS") or None
    size = _single(params, "SIZE") or None
    intersect = (_single(params, "INTERSECT") or "").upper()
    most_centred = "MCEN" in params
    if metadata:
        return Search(view, columns, format=form, metadata=True)
    if pos is None:
        for name, given in (("SIZE", size), ("INTERSECT", intersect), ("mcen", most_centred)):
            if given:
                raise IbeError(f"{name} is only valid with POS")
        if where is None:
            raise IbeError("POS is required in the absence of WHERE")
        return Search(view, columns, where=where, format=form)
    if view.footprint is None:
        raise IbeError(f"{view.name} images have no position on the sky: search them with WHERE")
    if intersect and intersect not in INTERSECTS:
        raise IbeError(f"INTERSECT must be one of {', '.join(INTERSECTS)}")
    region = _region(pos, size)
    return Search(view, columns, region, intersect or "OVERLAPS",
                  most_centred and region.is_point, where, form)


# -- translation ---------------------------------------------------------------------------------

_ALLOWED = (n.Comparison, n.Between, n.InList, n.Like, n.IsNull, n.Not, n.BoolOp, n.Binary,
            n.Unary, n.ColumnRef, n.NumberLit, n.StringLit, n.NullLit, n.Ident)


def _check_condition(node: object) -> None:
    """Only what IRSA's WHERE allows: no function calls, sub-queries or geometry."""
    if isinstance(node, tuple):
        for item in node:
            _check_condition(item)
        return
    if not dataclasses.is_dataclass(node):
        return
    if not isinstance(node, _ALLOWED):
        raise IbeError("WHERE: function calls and sub-queries are not supported; use columns, "
                       "literals, arithmetic, comparisons, AND, OR, NOT, IN, BETWEEN, LIKE "
                       "and IS [NOT] NULL")
    for item in dataclasses.fields(node):
        _check_condition(getattr(node, item.name))


def _point_sql(ra: float, dec: float) -> str:
    return f"spoint({math.radians(ra)!r}, {math.radians(dec)!r})"


def _polygon_sql(corners: list[tuple[float, float]]) -> str:
    return "'{" + ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in corners) + "}'::spoly"


def spatial_condition(search: Search) -> str | None:
    """The INTERSECT test as SQL over the view's footprint, written from numbers only."""
    region, footprint = search.region, search.view.footprint
    if region is None or footprint is None:
        return None
    centre = _point_sql(region.ra, region.dec)
    if region.is_point:
        return "false" if search.intersect == "ENCLOSED" else f"{footprint} @> {centre}"
    if search.intersect == "CENTER":
        return f"{footprint} @> {centre}"
    polygon = _polygon_sql(region.corners())
    operator = {"OVERLAPS": "&&", "COVERS": "@>", "ENCLOSED": "<@"}[search.intersect]
    return f"{footprint} {operator} {polygon}"


def _column(name: str) -> n.ColumnRef:
    return n.ColumnRef((), n.Ident(name))


def translate_search(search: Search, *, max_rows: int | None = None) -> TranslatedQuery:
    """The search as SQL, through the ADQL translator (AdqlError for a WHERE it refuses)."""
    view = search.view
    condition = None
    if search.where:
        condition = parse_condition(search.where)
        _check_condition(condition)
    region = search.region
    centre = _point_sql(region.ra, region.dec) if region and search.most_centred else None
    catalog = MappingCatalog([view.model()], sql_names={
        f"{SCHEMA}.{view.name}": view_sql(view, spatial_condition(search), centre)})
    query = n.SelectQuery(
        items=tuple(n.SelectItem(_column(name)) for name in search.columns),
        from_=(n.TableRef((n.Ident(SCHEMA), n.Ident(view.name))),),
        where=condition, top=1 if search.most_centred else None)
    order = (n.OrderItem(_column(DISTANCE if search.most_centred else view.key)),)
    statement = n.Statement(n.SelectExpression(query, order), (), search.where or "")
    return translate_statement(statement, catalog, max_rows=max_rows)
