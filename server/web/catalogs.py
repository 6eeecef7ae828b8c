"""The catalog search page: a cone search on the source catalogs (``/catalogs``), its CSV
download (``/catalogs/<catalog>.csv``), and, for VOTable, a link to the Simple Cone Search
service itself, which answers the same cone with every column.

The rows come from ``skyvault.server.images.scs.search`` (q3c, the requester's connection):
the page, the CSV and the VOTable show the same rows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator

from flask import Response, abort, request, url_for

from skyvault.server.http.context import reading
from skyvault.server.images import scs
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.coords import SkyPosition
from skyvault.server.web.forms import CATALOG_ROWS, CATALOGS, parse_cone_form
from skyvault.server.web.names import MovingObject, NameNotFound, resolve_name
from skyvault.server.web.pages import render
from skyvault.vo.shapes import ShapeError, check_radius

MAX_CSV_ROWS = 200_000


def _distance_arcsec(ra: float, dec: float, at: SkyPosition) -> float:
    a1, d1, a2, d2 = map(math.radians, (ra, dec, at.ra, at.dec))
    cosine = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine)))) * 3600


def _resolve(text: str, errors: dict[str, str]) -> SkyPosition | None:
    with reading() as connection:
        try:
            return resolve_name(connection, text).position
        except NameNotFound:
            errors["position"] = (f"Unknown name {text!r}: give coordinates, a survey field "
                                  "('field 601') or an image identifier")
        except MovingObject as moving:
            errors["position"] = (f"{moving.label} is a solar-system object and moves: use the "
                                  "moving-object search for its detections")
    return None


@blueprint.get("/catalogs")
def catalogs_page() -> Response:
    submitted = bool(request.args)
    form, errors = parse_cone_form(request.args)
    if not submitted:
        errors = {}
    rows = columns = downloads = None
    overflow = False
    position = None
    if submitted and not errors and form.position is not None:
        position = form.position.position or _resolve(form.position.name or "", errors)
    if position is not None and not errors:
        catalog = scs.CATALOGS[form.catalog]
        cone = scs.Cone(position.ra, position.dec, form.radius_arcsec / 3600, verb=2,
                        maxrec=CATALOG_ROWS)
        found, overflow = scs.search(catalog, cone)
        columns = catalog.columns(2)
        names = [c.name for c in columns]
        ra_index, dec_index = names.index(catalog.ra_column.name), names.index(
            catalog.dec_column.name)
        rows = sorted(((_distance_arcsec(r[ra_index], r[dec_index], position), r) for r in found),
                      key=lambda pair: pair[0])
        query = {"ra": f"{position.ra:.7f}", "dec": f"{position.dec:.7f}",
                 "radius": f"{form.radius_arcsec:g}"}
        downloads = {
            "csv": url_for("web.catalog_csv", catalog=form.catalog, **query),
            "votable": url_for("scs.cone_search", catalog_name=form.catalog, RA=query["ra"],
                               DEC=query["dec"], SR=f"{form.radius_arcsec / 3600:.8f}", VERB=3),
        }
    return render("web/catalogs.html", status=400 if errors else 200, values=request.args,
                  errors=errors, catalogs=CATALOGS, form=form, rows=rows, columns=columns,
                  overflow=overflow, downloads=downloads, position=position,
                  submitted=submitted, limit=CATALOG_ROWS)


def _csv_text(value: object) -> object:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    return "" if value is None else value


def csv_lines(names: list[str], rows: list[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for start in range(0, len(rows), 1000):
        for row in rows[start:start + 1000]:
            writer.writerow([_csv_text(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@blueprint.get("/catalogs/<catalog>.csv")
def catalog_csv(catalog: str) -> Response:
    if catalog not in CATALOGS:
        abort(404)
    try:
        ra, dec = float(request.args["ra"]), float(request.args["dec"])
        radius = float(request.args["radius"])
    except (KeyError, ValueError):
        abort(400, "ra, dec (degrees) and radius (arcseconds) are required numbers")
    if not (0 <= ra <= 360 and -90 <= dec <= 90 and 0 < radius <= 600):
        abort(400, "ra, dec or radius out of range (radius: at most 600 arcseconds)")
    try:
        check_radius(radius / 3600, "radius", largest=600 / 3600)
    except ShapeError as error:
        abort(400, str(error))
    chosen = scs.CATALOGS[catalog]
    found, _ = scs.search(chosen, scs.Cone(ra, dec, radius / 3600, verb=3, maxrec=MAX_CSV_ROWS))
    names = [c.name for c in chosen.columns(3)]
    response = Response(csv_lines(names, found), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{catalog}_{ra:.5f}_{dec:+.5f}_{radius:g}arcsec.csv"')
    return response
