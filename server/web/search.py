"""The image search page: ``/search`` (GET: the form, and the results when it was submitted).

The form is read by ``forms.parse_image_form``; a name is resolved by ``names.resolve_name``
on the requester's connection; the search itself is ``image_query``'s SQL, run on that same
connection, so embargoed images are neither listed nor counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
from flask import Response, request, url_for

from skyvault.server.http.context import reading
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.coords import SkyPosition, format_degrees, format_hours
from skyvault.server.web.epochs import format_mjd
from skyvault.server.web.forms import FILTERS, PAGE_SIZES, ImageForm, parse_image_form
from skyvault.server.web.image_query import (
    COUNT_CAP,
    PRODUCTS,
    ImageSearch,
    count_sql,
    page_sql,
    searched_products,
)
from skyvault.server.web.names import MovingObject, NameNotFound, resolve_name
from skyvault.server.web.pages import render
from skyvault.vo.publisher_did import publisher_did

STATEMENT_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ResultRow:
    collection: str
    image_id: int
    image_table: str
    product: str
    mjd_start: float | None
    mjd_end: float | None
    field: int | None
    ccdid: int | None
    qid: int | None
    filtercode: str | None
    programid: int | None
    seeing: float | None
    maglimit: float | None
    ra: float
    dec: float
    exptime: float | None
    distance: float | None
    path: str | None
    size_bytes: int | None
    sha256: str | None

    @property
    def selection_id(self) -> str:
        return f"{self.collection}:{self.image_id}"

    @property
    def did(self) -> str:
        return publisher_did(self.collection, self.image_id)

    @property
    def label(self) -> str:
        return PRODUCTS[self.collection].label

    @property
    def has_sky_wcs(self) -> bool:
        return PRODUCTS[self.collection].sky

    @property
    def when(self) -> str:
        if self.collection == "ref":
            return f"{format_mjd(self.mjd_start)[:10]} to {format_mjd(self.mjd_end)[:10]}"
        return format_mjd(self.mjd_start)

    @property
    def detector(self) -> str:
        if self.ccdid is None:
            return ""
        return f"{self.ccdid}" + (f" q{self.qid}" if self.qid is not None else "")


@dataclass(frozen=True)
class Results:
    rows: list[ResultRow]
    total: int
    capped: bool
    search: ImageSearch

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.search.per_page))

    @property
    def first(self) -> int:
        return (self.search.page - 1) * self.search.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def run_search(connection: psycopg.Connection, search: ImageSearch) -> Results:
    if not searched_products(search):
        return Results([], 0, False, search)
    sql, values = count_sql(search)
    total = connection.execute(sql, values).fetchone()[0]
    sql, values = page_sql(search)
    rows = [ResultRow(*row) for row in connection.execute(sql, values).fetchall()]
    return Results(rows, min(total, COUNT_CAP), total > COUNT_CAP, search)


def _middle(search: ImageSearch) -> float | None:
    """The moment a moving object's position is wanted for: the searched range's middle."""
    if search.time_from is not None and search.time_to is not None:
        return (search.time_from + search.time_to) / 2
    return search.time_from if search.time_from is not None else search.time_to


def resolve_position(connection: psycopg.Connection, form: ImageForm,
                     errors: dict[str, str]) -> tuple[SkyPosition | None, str | None, str | None]:
    """(position, how it was resolved, designation of a moving object) of the form's input."""
    given = form.position
    if given is None:
        return None, None, None
    if given.position is not None:
        return given.position, None, None
    try:
        resolved = resolve_name(connection, given.name or "", _middle(form.search))
    except NameNotFound:
        errors["position"] = (
            f"Unknown name {given.name!r}. Names are resolved from this archive only: survey "
            "fields ('field 601'), image identifiers and solar-system objects; anything else "
            "needs coordinates.")
        return None, None, None
    except MovingObject as moving:
        errors["position"] = (
            f"{moving.label} is a solar-system object: its position changes with time. Give a "
            "time range to search around its position at the middle of that range, or use the "
            "moving-object search.")
        return None, None, moving.designation
    return resolved.position, resolved.label, None


def page_link(**changes: object) -> str:
    """This search's URL with some parameters changed (sorting, paging)."""
    arguments = request.args.to_dict(flat=False)
    for key, value in changes.items():
        arguments[key] = [str(value)]
    return url_for("web.search_page") + "?" + urlencode(arguments, doseq=True)


def sort_link(key: str, search: ImageSearch) -> tuple[str, str | None]:
    """(URL, current aria-sort value) of a column header."""
    if search.sort == key:
        order = "asc" if search.descending else "desc"
        state = "descending" if search.descending else "ascending"
    else:
        order, state = "asc", None
    return page_link(sort=key, order=order, page=1), state


@blueprint.get("/search")
def search_page() -> Response:
    form, errors = parse_image_form(request.args)
    submitted = bool(request.args)
    results = resolved_as = moving = position = None
    if submitted and not errors:
        with reading(statement_timeout_ms=STATEMENT_TIMEOUT_MS) as connection:
            position, resolved_as, moving = resolve_position(connection, form, errors)
            if not errors:
                search = form.with_position(position) if position else form.search
                results = run_search(connection, search)
    status = 400 if errors else 200
    cutout_radius = form.cutout_radius
    return render(
        "web/search.html", status=status, form=form, values=request.args, errors=errors,
        submitted=submitted, results=results, resolved_as=resolved_as, position=position,
        moving=moving, filters=FILTERS, products=PRODUCTS, page_sizes=PAGE_SIZES,
        sort_link=sort_link, page_link=page_link,
        cutout_circle=(f"{position.ra:.6f} {position.dec:.6f} {cutout_radius:.6f}"
                       if position else None),
        format_hours=format_hours, format_degrees=format_degrees)
