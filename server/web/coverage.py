"""Coverage as IVOA MOC: ``/moc`` (space) and ``/stmoc`` (space and time), and the home page's
sky maps drawn from the same MOCs.

Parameters: ``filter`` (zg, zr, zi), ``night`` (YYYY-MM-DD), ``release`` (a data release's
name), ``order`` (0-16, default 13), ``format`` (fits, json, ascii). The MOC covers the
footprints (ObsCore ``s_region``) of the science images the requester may see: row-level
security chooses them, so the public gets the public coverage and members their programs' too.
Every answer is cached for a minute per audience (requesters who see the same rows).
"""

from __future__ import annotations

from flask import Response, abort, request

from skyvault.coverage import queries
from skyvault.coverage.selection import CoverageSelection, parse_selection
from skyvault.server.http.context import reading
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.pages import per_audience
from skyvault.server.web.skymap import FILTER_COLOURS, CoverageCell, coverage_svg
from skyvault.vo import moc as mocs

MOC_TIMEOUT_MS = 60_000
MAP_ORDER = 7
"""About 0.46 deg: a pixel or so of the 720-pixel whole-sky map."""


class MocNotFound(LookupError):
    """The selection names something that does not exist (a release)."""


def _footprint_groups(selection: CoverageSelection) -> list[mocs.TimedFootprints]:
    with reading(statement_timeout_ms=MOC_TIMEOUT_MS) as connection:
        try:
            return queries.science_exposures(connection, selection)
        except queries.UnknownRelease as error:
            raise MocNotFound(str(error)) from error


def space_moc(selection: CoverageSelection, order: int) -> mocs.MOC:
    groups = _footprint_groups(selection)
    return mocs.footprint_moc([p for group in groups for p in group.polygons], order)


def _document(kind: str, selection: CoverageSelection, order: int, form: str) -> bytes:
    if kind == "stmoc":
        return mocs.serialise(mocs.space_time_moc(_footprint_groups(selection), order), form)
    return mocs.serialise(space_moc(selection, order), form)


def _moc_response(kind: str) -> Response:
    selection = parse_selection(request.args)
    order = mocs.parse_order(request.args.get("order"))
    form = mocs.parse_format(request.args.get("format"))
    body = per_audience(kind, lambda: _document(kind, selection, order, form),
                        selection.cache_key(), order, form)
    response = Response(body, mimetype=mocs.FORMATS[form].split(";")[0])
    name = "-".join(str(part) for part in (f"skyvault-{kind}", *selection.cache_key())
                    if part is not None)
    extension = {"fits": "fits", "json": "json", "ascii": "txt"}[form]
    response.headers["Content-Disposition"] = f'inline; filename="{name}.{extension}"'
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@blueprint.get("/moc")
def moc_document() -> Response:
    """The spatial coverage (MOC 2.0) of the selected science images."""
    return _moc_response("moc")


@blueprint.get("/stmoc")
def stmoc_document() -> Response:
    """The space-time coverage (ST-MOC, MOC 2.0): each exposure's footprints during it."""
    return _moc_response("stmoc")


@blueprint.errorhandler(mocs.MocRequestError)
def bad_moc_request(error: mocs.MocRequestError) -> Response:
    return Response(f"Bad request: {error}\n", status=400, mimetype="text/plain")


@blueprint.errorhandler(MocNotFound)
def moc_not_found(error: MocNotFound) -> Response:
    return Response(f"Not found: {error}\n", status=404, mimetype="text/plain")


# -- the home page's maps -------------------------------------------------------------------------


def coverage_map_document(filtercode: str) -> str:
    coverage = space_moc(CoverageSelection(filtercode=filtercode), mocs.DEFAULT_ORDER)
    cells = [CoverageCell([tuple(v) for v in outline])
             for outline in mocs.cell_outlines(coverage, MAP_ORDER)]
    area = mocs.sky_area_deg2(coverage)
    note = f"{area:.3g} square degrees" if area else "no coverage"
    return coverage_svg(cells, f"{FILTERS[filtercode]} band ({filtercode})",
                        FILTER_COLOURS[filtercode], note)


@blueprint.get("/coverage/<filtercode>.svg")
def coverage_map(filtercode: str) -> Response:
    if filtercode not in FILTERS:
        abort(404)
    document = per_audience("coverage", lambda: coverage_map_document(filtercode), filtercode)
    response = Response(document, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
