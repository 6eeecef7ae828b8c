"""Light-curve pages: ``/objects/<oid>`` (one object: its light curve with error bars, flagged
epochs and upper limits drawn apart, its Lomb-Scargle periodogram and the curve folded at the
best period, its collapsed metrics, thumbnails of its epochs, downloads in every format of the
light-curve API) and ``/objects`` (objects by name or position, the way there from anywhere).

Everything is read through the requester's connection (skyvault/lightcurves/access.py): an
object none of whose epochs the requester may see is not found, and the metrics and the
periodogram are those of the visible epochs. The periodogram is
skyvault/lightcurves/periodogram.py, the archive's one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import numpy as np
from flask import Response, abort, request, url_for

from skyvault.lightcurves import access
from skyvault.lightcurves.periodogram import Periodogram, periodogram
from skyvault.lightcurves.periodogram import phase as fold
from skyvault.pipeline.naming import jd_to_datetime
from skyvault.schema.objects_sql import GOOD_FLAGS_MASK, METRIC_NAMES
from skyvault.schema.tables import OBJECTS
from skyvault.server.http.context import reading
from skyvault.server.web import vendor
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.coords import CoordinateError, looks_like_coordinates, parse_coordinates
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.names import MovingObject, NameNotFound, resolve_name
from skyvault.server.web.pages import render
from skyvault.server.web.plots import (
    FILTER_COLOURS,
    Point,
    Series,
    figure,
    light_curve_figure,
)

API_FORMATS = (("VOTABLE", "VOTable"), ("IPAC_TABLE", "IPAC table"), ("CSV", "CSV"),
               ("TSV", "TSV"), ("HTML", "HTML"))
DEFAULT_RADIUS_ARCSEC = 5.0
LARGEST_RADIUS_ARCSEC = 600.0
MOST_OBJECTS_LISTED = 500
THUMBNAILS = 12
METRIC_DESCRIPTIONS = {column.name: column for column in OBJECTS.columns}


def _iso(mjd: float) -> str:
    return jd_to_datetime(mjd + access.MJD_OFFSET).strftime("%Y-%m-%dT%H:%M:%S")


def _image_links(pid: int) -> tuple[str, str]:
    return (url_for("web.image_page", collection="sci", image_id=pid),
            url_for("previews.preview", collection="sci", image_id=pid))


def _point(x: str | float, y: float | None, error: float | None, label: str,
           pid: int) -> Point:
    page, preview = _image_links(pid)
    return Point(x, y, error, label=label, page=page, preview=preview)


def _series(code: str, points: list[dict], limits: list[dict],
            x_of, flagged_mask: int) -> list[Series]:
    colour = FILTER_COLOURS.get(code, "#555")
    name = FILTERS.get(code, code)
    good, flagged = Series(f"{name} ({code})", colour), Series(
        f"{name} ({code}) flagged", colour, symbol="circle-open")
    for p in points:
        target = flagged if int(p["catflags"] or 0) & flagged_mask else good
        label = f"pid {p['pid']} · flags {p['catflags']}"
        target.points.append(_point(x_of(p), p["mag"], p["magerr"], label, p["pid"]))
    upper = Series(f"{name} ({code}) upper limits", colour, symbol="triangle-down-open")
    for limit in limits:
        upper.points.append(_point(x_of(limit), limit["limitmag"], None,
                                   f"pid {limit['pid']} · not detected", limit["pid"]))
    return [good, flagged, upper]


def _periodogram_figure(result: Periodogram) -> dict:
    step = max(1, len(result.frequency) // 4000)  # what a browser draws quickly
    power = Series("Lomb-Scargle power", "#1f5fa8", [
        Point(float(1 / f), float(p)) for f, p in
        zip(result.frequency[::step], result.power[::step], strict=True)])
    chart = figure(f"Periodogram: best period {result.best_period:.5f} d", "Period (days)",
                   "Power", [power], time_axis=False, mode="lines")
    chart["layout"]["xaxis"]["type"] = "log"
    return chart


def _object_context(oid: int) -> dict[str, Any] | None:
    with reading() as connection:
        rows = access.objects_by_oid(connection, [oid])
        if not rows:
            return None
        points = access.lightcurves(connection, [oid]).get(oid, [])
        limits = access.upper_limits(connection, oid)
    row = rows[0]
    mjd = np.array([p["mjd"] for p in points], dtype=float)
    mag = np.array([p["mag"] for p in points], dtype=float)
    magerr = np.array([p["magerr"] for p in points], dtype=float)
    flags = np.array([p["catflags"] or 0 for p in points])
    good = access.good_epochs(flags, mag, magerr)
    result = periodogram(mjd[good], mag[good], magerr[good],
                         np.array([limit["mjd"] for limit in limits], dtype=float),
                         np.array([limit["limitmag"] for limit in limits], dtype=float))
    code = row["filtercode"]
    plots = [("lightcurve", light_curve_figure(
        f"Light curve of {oid}", _series(code, points, limits, lambda p: _iso(p["mjd"]),
                                         GOOD_FLAGS_MASK)))]
    if result is not None:
        plots.append(("periodogram", _periodogram_figure(result)))
        folded = fold(np.array([p["mjd"] for p in points]), result.best_period)
        by_point = {id(p): float(f) for p, f in zip(points, folded, strict=True)}
        plots.append(("folded", light_curve_figure(
            f"Folded at {result.best_period:.5f} d",
            _series(code, points, [], lambda p: by_point[id(p)], GOOD_FLAGS_MASK),
            x_title="Phase", time_axis=False)))
    downloads = [(label, url_for("lightcurves.query") + "?" + urlencode(
        {"ID": oid, "FORMAT": value})) for value, label in API_FORMATS]
    thumbnails = [(p["pid"], *_image_links(p["pid"]), _iso(p["mjd"]))
                  for p in points[:: max(1, len(points) // THUMBNAILS)][:THUMBNAILS]]
    metrics = [(name, row[name], METRIC_DESCRIPTIONS[name]) for name in METRIC_NAMES]
    return {"object": row, "points": points, "limits": limits, "periodogram": result,
            "plots": plots, "downloads": downloads, "thumbnails": thumbnails,
            "metrics": metrics, "good_epochs": int(good.sum())}


@blueprint.get("/objects/<int:oid>")
def object_page(oid: int) -> Response:
    if oid > 2 ** 63 - 1:
        abort(404)
    context = _object_context(oid)
    if context is None:
        abort(404)
    return render("web/object.html", oid=oid, filters=FILTERS,
                  plotly_url=vendor.library_url("plotly", "plotly-basic.min.js"), **context)


def _position(text: str) -> tuple[tuple[float, float] | None, str | None]:
    """The position the text names (coordinates or a name), or an error message."""
    try:
        if looks_like_coordinates(text):
            position = parse_coordinates(text)
            return (position.ra, position.dec), None
        with reading() as connection:
            resolved = resolve_name(connection, text)
        return (resolved.position.ra, resolved.position.dec), None
    except CoordinateError as error:
        return None, str(error)
    except NameNotFound:
        return None, f"No position is known for {text!r}."
    except MovingObject:
        return None, f"{text!r} moves: search its images with the moving-object search."


def _radius(text: str | None) -> tuple[float, str | None]:
    if text is None or not text.strip():
        return DEFAULT_RADIUS_ARCSEC, None
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_RADIUS_ARCSEC, "The radius is a number of arcseconds."
    if not (np.isfinite(value) and 0 < value <= LARGEST_RADIUS_ARCSEC):
        return DEFAULT_RADIUS_ARCSEC, f"The radius is from 0 to {LARGEST_RADIUS_ARCSEC:g}″."
    return value, None


@blueprint.get("/objects")
def objects_page() -> Response:
    """Objects near a position or a name, nearest first; one found by oid opens its page."""
    text = (request.args.get("position") or "").strip()
    radius, error = _radius(request.args.get("radius"))
    found: list[dict] = []
    position = None
    if text and error is None:
        if text.isascii() and text.isdigit() and int(text) < 2 ** 63:
            return Response(status=303, headers={
                "Location": url_for("web.object_page", oid=int(text))})
        position, error = _position(text)
        if position is not None:
            with reading() as connection:
                found = access.objects_in_cone(connection, position[0], position[1],
                                               radius / 3600.0)[:MOST_OBJECTS_LISTED]
    status = 400 if error else 200
    return render("web/objects.html", status=status, text=text, radius=radius, error=error,
                  position=position, found=found, filters=FILTERS)
