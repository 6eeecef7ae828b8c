"""The moving-object search: ``/most`` (API and results page), ``/most/form``, thumbnails.

``/most`` without any parameter is the search form; with parameters it answers in the
``format`` asked for: ``votable`` (default; pyvo reads it as a DAL
result), ``csv``, ``html`` (the results page, the form filled in above it), ``ds9`` (a region
file of the path). Errors come back in that same format with a fitting status: 400 for a bad
request (with the orbit columns that are wrong), 404 for an unknown object, never a trace.
Parameters: see ``skyvault.sso.most_request``.

Every read goes through ``context.reading()``: a match in an image the requester may not see
is never found, and thumbnails of such images answer 404 like unknown ones.
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
from flask import Blueprint, Response, render_template, request

from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.http.context import reading, service_url
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images import products
from skyvault.server.images.common import file_url, public_url
from skyvault.server.web.pages import site_page
from skyvault.sso import most_irsa
from skyvault.sso.ephemeris import Ephemeris
from skyvault.sso.errors import SsoError
from skyvault.sso.most_output import (
    EPHEMERIS_FIELDS,
    MATCH_FIELDS,
    Links,
    Table,
    csv_document,
    ephemeris_rows,
    iso,
    match_row,
    votable_document,
)
from skyvault.sso.most_request import (
    MostRequest,
    ObjectName,
    OrbitGiven,
    RequestError,
    parse_request,
    requested_format,
)
from skyvault.sso.orbits import Orbit, OrbitError
from skyvault.sso.planets import DE440_LAST_MJD, EphemerisRangeError
from skyvault.sso.regions import RegionImage, ds9_regions
from skyvault.sso.search_db import (
    AmbiguousObjectError,
    SearchCriteria,
    SearchRequestError,
    SearchResult,
    UnknownObjectError,
    archive_span,
    ephemeris_table,
    find_orbit,
    mjd_to_datetime,
    search_images,
)
from skyvault.sso.skyplot import PlotImage, sky_plot_svg
from skyvault.sso.timescales import TimeRangeError
from skyvault.vo.cutout import CutoutError, PixelBox, open_image
from skyvault.vo.ipac_table import MEDIA_TYPE as IPAC_TYPE
from skyvault.vo.ipac_table import write_ipac
from skyvault.vo.preview import render_png
from skyvault.vo.publisher_did import COLLECTIONS, ImageKey, publisher_did
from skyvault.vo.votable import VOTABLE_MIME, ColumnBatch, error_votable

# Its pages are rendered by the application's one Jinja environment: the search page extends
# the site's frame (web/base.html); IRSA's pages keep IRSA's look, which its clients parse.
blueprint = Blueprint("most", __name__, template_folder="templates")
log = logging.getLogger(__name__)

FORM_URL = "/most/form"

DEFAULT_STEP_DAYS = 1.0
PATH_POINTS = 400
THUMBNAIL_PIXELS = 96
THUMBNAIL_HALF_SIZE = 40
CSV_TYPE = "text/csv;header=present"
DS9_TYPE = "text/plain"


class SearchFailure(Exception):
    """What to tell the user, and with which HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- links


def _links() -> Links:
    base = service_url()

    def cutout(did: str, ra: float, dec: float, radius: float) -> str:
        return (f"{base}/soda/sync?" + urlencode({"ID": did,
                                                   "CIRCLE": f"{ra:.7f} {dec:.7f} {radius:.5f}"}))

    return Links(
        image_did=lambda pid: publisher_did("sci", pid),
        file=file_url,
        cutout=cutout,
        datalink=lambda did: f"{base}/datalink/links?ID={quote(did, safe='')}",
        preview=lambda pid: f"{base}/previews/sci/{pid}.png?size=small",
    )


def _thumbnail_url(pid: int, ra: float, dec: float) -> str:
    return public_url(f"/most/thumbnail/{pid}.png?" + urlencode(
        {"ra": f"{ra:.7f}", "dec": f"{dec:.7f}"}))


# --------------------------------------------------------------------------- the search


def _orbit(connection, most: MostRequest) -> Orbit:
    target = most.target
    if isinstance(target, ObjectName):
        return find_orbit(connection, target.text)
    assert isinstance(target, OrbitGiven)
    return target.orbit


COVERAGE_FIRST_MJD = 36934.0
"""1960-01-01: UTC has no leap-second table before it (sso.timescales)."""
COVERAGE_LAST_MJD = DE440_LAST_MJD - 1.0
"""The end of JPL DE440 (January 2650), less a day for light time."""


def _check_coverage(most: MostRequest) -> None:
    for name, value in (("obs_begin", most.begin_mjd), ("obs_end", most.end_mjd)):
        if value is not None and not COVERAGE_FIRST_MJD <= value <= COVERAGE_LAST_MJD:
            raise SearchFailure(
                f"{name} {_date_or_mjd(value)} is outside the ephemeris coverage: from 1960 (UTC"
                " with leap seconds) to 2650 (the end of JPL DE440)", 400)


def _date_or_mjd(mjd: float) -> str:
    """The calendar date, or the MJD where there is none (Python's dates end in 9999)."""
    try:
        return iso(mjd_to_datetime(mjd))[:10]
    except (OverflowError, ValueError):
        return f"MJD {mjd:.6g}"


class Outcome:
    """What one request found: the orbit, the images, the ephemeris table."""

    def __init__(self, most: MostRequest, orbit: Orbit, result: SearchResult | None,
                 ephemeris: Ephemeris | None, uncertainty: np.ndarray | None,
                 note: str | None) -> None:
        self.most = most
        self.orbit = orbit
        self.result = result
        self.ephemeris = ephemeris
        self.uncertainty = uncertainty
        self.note = note

    @property
    def label(self) -> str:
        return self.orbit.label


def run(most: MostRequest) -> Outcome:
    _check_coverage(most)
    criteria = SearchCriteria(most.begin_mjd, most.end_mjd, most.filtercodes, most.programids,
                              most.fields)
    note = None
    with reading() as connection:
        orbit = _orbit(connection, most)
        result = search_images(connection, orbit, criteria) if most.mode != "ephemeris" else None
        ephemeris = uncertainty = None
        if most.mode != "images":
            begin, end = most.begin_mjd, most.end_mjd
            if begin is None or end is None:
                span = archive_span(connection)
                if span is None:
                    raise SearchFailure("the archive holds no exposures you may see: give "
                                        "obs_begin and obs_end for the ephemeris", 400)
                begin = span[0] if begin is None else begin
                end = span[1] if end is None else end
            step = most.step_days or DEFAULT_STEP_DAYS
            ephemeris, uncertainty = ephemeris_table(orbit, begin, end, step)
    if result is not None and result.stats.exposures == 0:
        note = "no exposures you may see lie in this time span"
    return Outcome(most, orbit, result, ephemeris, uncertainty, note)


def _failure(error: Exception) -> SearchFailure:
    if isinstance(error, SearchFailure):
        return error
    if isinstance(error, UnknownObjectError):
        return SearchFailure(str(error), 404)
    if isinstance(error, OrbitError):
        return SearchFailure(f"orbit: {error}", 400)
    if isinstance(error, EphemerisRangeError | TimeRangeError):
        return SearchFailure(f"time range outside the ephemeris coverage: {error}", 400)
    if isinstance(error, RequestError | SearchRequestError | AmbiguousObjectError):
        return SearchFailure(str(error), 400)
    return SearchFailure(f"the ephemeris cannot be computed: {error}", 422)


@blueprint.route("/most", methods=["GET", "POST"])
def most() -> Response:
    items = list(request.values.items(multi=True))
    if not items:
        # A browser following a link to the service: the form (API calls carry parameters).
        return _page(None, None, None)
    if most_irsa.is_irsa_request(items):
        return _irsa(items)
    output = requested_format(items)
    most_request = None
    try:
        most_request = parse_request(items)
        if most_request.target is None:
            if output == "html":
                return _page(most_request, None, None)
            raise SearchFailure(
                "give an object (object=designation or name), an MPC orbit line (orbit=...) "
                "or orbital elements (epoch, e, incl, node, peri, a and m or q and tp)", 400)
        outcome = run(most_request)
    except (SsoError, SearchFailure) as error:
        failure = _failure(error)
        return _error(output, failure, most_request)
    return _render(output, outcome)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    # The format parameter itself may be what holds the NUL: then the default, VOTable.
    output = requested_format(request.values.items(multi=True))
    return _error(output, SearchFailure(error.description or "", 400), None)


@blueprint.get(FORM_URL)
def form() -> Response:
    return _page(None, None, None)


# --------------------------------------------------------------------------- outputs


def _tables(outcome: Outcome) -> list[Table]:
    tables = []
    if outcome.result is not None:
        links = _links()
        rows = [match_row(outcome.label, m, links) for m in outcome.result.matches]
        tables.append(Table("matches", f"Images holding {outcome.label} at mid-exposure",
                            MATCH_FIELDS, rows))
    if outcome.ephemeris is not None:
        assert outcome.uncertainty is not None
        tables.append(Table("ephemeris", f"Ephemeris of {outcome.label} from Palomar (I41)",
                            EPHEMERIS_FIELDS,
                            ephemeris_rows(outcome.label, outcome.ephemeris,
                                           outcome.uncertainty)))
    return tables


def _infos(outcome: Outcome) -> list[tuple[str, str, str | None]]:
    orbit = outcome.orbit
    infos = [("object", outcome.label, None),
             ("orbit_source", orbit.source or "unknown", None),
             ("orbit_epoch_mjd_tdb", f"{orbit.epoch_mjd_tdb:.5f}", None),
             ("observatory", "I41", "Palomar, ZTF camera")]
    if outcome.result is not None:
        stats = outcome.result.stats
        infos.append(("candidates", str(stats.candidate_images),
                      f"{stats.exposures} exposures in the span, {stats.candidate_exposures} "
                      "near the path, images checked exactly"))
    if outcome.note:
        infos.append(("note", outcome.note, None))
    return infos


def _render(output: str, outcome: Outcome) -> Response:
    if output == "html":
        return _page(outcome.most, outcome, None)
    if output == "ds9":
        return Response(_regions(outcome), mimetype=DS9_TYPE, headers={
            "Content-Disposition": 'inline; filename="most_path.reg"'})
    tables = _tables(outcome)
    if output == "csv":
        if len(tables) != 1:
            return _error(output, SearchFailure(
                "CSV holds one table: ask for mode=images or mode=ephemeris, or use VOTable",
                400), outcome.most)
        return Response(csv_document(tables[0]), content_type=CSV_TYPE)
    return Response(votable_document(tables, _infos(outcome)), content_type=VOTABLE_MIME)


def _path_points(outcome: Outcome) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """RA, Dec and MJD of the path to draw: the ephemeris table, else the coarse path."""
    if outcome.ephemeris is not None:
        source = outcome.ephemeris
    elif outcome.result is not None and outcome.result.path is not None:
        source = outcome.result.path.ephemeris
    else:
        return np.empty(0), np.empty(0), []
    every = max(1, math.ceil(len(source) / PATH_POINTS))
    picked = np.arange(0, len(source), every)
    return source.ra[picked], source.dec[picked], [float(t) for t in source.mjd_utc[picked]]


def _image_label(match) -> str:
    return (f"pid {match.pid} ({match.filtercode} ccd {match.ccdid} q{match.qid}) "
            f"{iso(match.obsdate_mid)[:19]}")


def _regions(outcome: Outcome) -> str:
    ra, dec, mjd = _path_points(outcome)
    matches = outcome.result.matches if outcome.result is not None else []
    return ds9_regions(
        f"SkyVault moving-object search: {outcome.label}", ra, dec,
        [iso(mjd_to_datetime(t))[:16] for t in mjd],
        [RegionImage(m.ra, m.dec, m.corners, _image_label(m)) for m in matches])


def _query_url(most: MostRequest, output: str) -> str:
    params = {k: v for k, v in most.given.items() if k not in ("format", "responseformat")}
    params["format"] = output
    return public_url("/most?" + urlencode(params))


def _page(most: MostRequest | None, outcome: Outcome | None, error: SearchFailure | None,
          status: int = 200) -> Response:
    context: dict = {"given": most.given if most else {}, "error": str(error) if error else None,
                     "form_action": public_url("/most"), "outcome": outcome}
    if outcome is not None:
        matches = outcome.result.matches if outcome.result is not None else []
        ra, dec, _ = _path_points(outcome)
        context["svg"] = sky_plot_svg(
            ra, dec, [PlotImage(m.ra, m.dec, m.corners, _image_label(m)) for m in matches],
            outcome.label)
        links = _links()
        context["matches"] = [
            {"m": m, "row": dict(zip([f.name for f in MATCH_FIELDS],
                                     match_row(outcome.label, m, links), strict=True)),
             "date": iso(m.obsdate_mid)[:19].replace("T", " "),
             "thumbnail": _thumbnail_url(m.pid, m.ra, m.dec)}
            for m in matches]
        if outcome.ephemeris is not None:
            assert outcome.uncertainty is not None
            context["ephemeris"] = [
                dict(zip([f.name for f in EPHEMERIS_FIELDS], row, strict=True))
                | {"date": iso(row[1])[:16].replace("T", " ")}
                for row in ephemeris_rows(outcome.label, outcome.ephemeris,
                                          outcome.uncertainty)]
        assert most is not None
        context["downloads"] = {name: _query_url(most, name)
                                for name in ("votable", "csv", "ds9")}
        context["infos"] = _infos(outcome)
    return site_page("most_page.html", status, **context)


def _error(output: str, failure: SearchFailure, most: MostRequest | None) -> Response:
    message = str(failure)
    if output == "html":
        return _page(most, None, failure, failure.status)
    if output == "votable":
        return Response(error_votable(message), status=failure.status,
                        content_type=VOTABLE_MIME)
    if output == "ds9":
        return Response(f"# Region file format: DS9 version 4.1\n# error: {message}\n",
                        status=failure.status, mimetype=DS9_TYPE)
    return Response(f"error: {message}\n", status=failure.status, mimetype="text/plain")


# --------------------------------------------------------------------------- IRSA's MOST


IRSA_APPLICATION_URL = "/most/irsa"


def _irsa(items: list[tuple[str, str]]) -> Response:
    """IRSA's parameters and answers (sso/most_irsa.py). Errors are IRSA's text with status
    200, as IRSA's MOST answers them: astroquery raises its ``InvalidQueryError`` with the
    message only then (it checks the status first, and a 4xx would hide the message)."""
    try:
        irsa = most_irsa.translate(items)
        most_request = parse_request(irsa.items)
        if most_request.target is None:
            raise SearchFailure("give obj_name, mpc_data or the orbital elements", 400)
        outcome = run(most_request)
    except (SsoError, SearchFailure) as error:
        return Response(most_irsa.error_text(str(_failure(error))), mimetype="text/plain")
    assert outcome.result is not None
    names = [f.name for f in MATCH_FIELDS]
    links = _links()
    rows = [dict(zip(names, match_row(outcome.label, m, links), strict=True))
            for m in outcome.result.matches]
    count = most_irsa.NO_MATCHES.format(count=len(rows))
    mode = irsa.output_mode
    if mode == "DS9":
        return Response(_regions(outcome), mimetype=DS9_TYPE)
    if mode == "VOTable":
        table = Table("imgframes_matched_final_table", f"Images holding {outcome.label}",
                      most_irsa.metadata_fields(MATCH_FIELDS), [tuple(r.values()) for r in rows])
        return Response(votable_document([table], [*_infos(outcome), ("matched", count, None)]),
                        content_type=VOTABLE_MIME)
    if mode in ("Brief", "Gator", "Metadata"):
        fields, table_rows = {
            "Brief": (most_irsa.RESULT_FIELDS, most_irsa.result_rows(rows)),
            "Gator": (most_irsa.GATOR_FIELDS, most_irsa.gator_rows(rows)),
            "Metadata": (most_irsa.metadata_fields(MATCH_FIELDS),
                         [tuple(r.values()) for r in rows]),
        }[mode]
        infos = [("catalog", "ztf", None), ("object_name", outcome.label, None)]
        body = b"".join(write_ipac(fields, [ColumnBatch.from_rows(fields, table_rows)],
                                   infos=infos))
        return Response(f"\\ {count}\n".encode() + body, mimetype=IPAC_TYPE)
    def download(output_mode: str) -> str:
        params = {k: v for k, v in irsa.given.items() if k != "fits_region_files"}
        return public_url("/most?" + urlencode(params | {"output_mode": output_mode}))

    html = render_template("irsa_results.html",
        label=outcome.label, count=count, rows=rows, downloads=[
            ("Download Results Table (above)", download("Brief")),
            ("Download Image Metadata with a Matched Object Position Table",
             download("Metadata")),
            ("Download DS9 Region File with the Orbital Path", download("DS9"))])
    return Response(html, mimetype="text/html")


@blueprint.get(IRSA_APPLICATION_URL)
def irsa_application() -> Response:
    """IRSA's MOST application page, whose first menu lists the catalogs (astroquery's
    ``Most.list_catalogs`` reads it, with ``conf.most_interface_url`` pointed here)."""
    html = render_template("irsa_application.html",
        catalogs=most_irsa.CATALOGS, output_modes=most_irsa.OUTPUT_MODES,
        form_action=public_url("/most"))
    return Response(html, mimetype="text/html")


# --------------------------------------------------------------------------- thumbnails


def _not_found() -> Response:
    return Response("Not found.\n", status=404, mimetype="text/plain")


def _coordinate(name: str, low: float, high: float) -> float | None:
    try:
        value = float(request.args.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


@blueprint.get("/most/thumbnail/<int:pid>.png")
def thumbnail(pid: int) -> Response:
    """A small zscale PNG of the science image around (ra, dec), the position ringed."""
    ra, dec = _coordinate("ra", -360.0, 720.0), _coordinate("dec", -90.0, 90.0)
    if ra is None or dec is None:
        return Response("ra and dec (degrees) are required\n", status=400,
                        mimetype="text/plain")
    key = ImageKey(COLLECTIONS["sci"], pid)
    with reading() as connection:
        row = products.main_file(connection, key)
    if row is None:
        return _not_found()
    try:
        png = _thumbnail_png(local_file(row.path), ra % 360.0, dec)
    except (CutoutError, InvalidStorePath, OSError, ValueError) as error:
        log.error("no thumbnail for %s: %s", row.path, error)
        return _not_found()
    return Response(png, mimetype="image/png", headers={"Cache-Control": "max-age=86400"})


def _thumbnail_png(path: Path, ra: float, dec: float) -> bytes:
    from PIL import Image, ImageDraw

    with open_image(path) as image:
        header = image.header
        x, y = header.projection().world_to_pixel(np.array([ra]), np.array([dec]))
        if not (np.isfinite(x[0]) and np.isfinite(y[0])):
            raise ValueError("the position does not project onto the image")
        cx, cy = round(float(x[0])), round(float(y[0]))
        half = THUMBNAIL_HALF_SIZE
        box = PixelBox(cx - half, cx + half + 1, cy - half, cy + half + 1).intersect(
            PixelBox(0, header.naxis1, 0, header.naxis2))
        if box.is_empty:
            raise ValueError("the position is off the image")
        data = np.full((2 * half + 1, 2 * half + 1), np.nan, dtype=np.float32)
        data[box.y0 - (cy - half):box.y1 - (cy - half),
             box.x0 - (cx - half):box.x1 - (cx - half)] = image.read(box)
    picture = Image.open(io.BytesIO(render_png(data, 2 * half + 1))).convert("RGB")
    picture = picture.resize((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS), Image.NEAREST)
    scale = THUMBNAIL_PIXELS / (2 * half + 1)
    # render_png draws row 0 at the bottom; the position is at the centre (offset by rounding).
    px = (half + float(x[0]) - cx + 0.5) * scale
    py = THUMBNAIL_PIXELS - (half + float(y[0]) - cy + 0.5) * scale
    ring = 8
    ImageDraw.Draw(picture).ellipse((px - ring, py - ring, px + ring, py + ring),
                                    outline=(255, 60, 60), width=1)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
