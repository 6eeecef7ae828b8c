"""Quality-assurance pages: ``/qa`` (the survey, night by night) and ``/qa/nights/<date>``
(one night: exposures by program and filter, seeing, limiting magnitude, zero points and their
scatter, astrometric rms, infobits, quadrants the pipeline left without a science image).

Everything comes through the requester's connection (skyvault/coverage/qa.py says what that
means for embargoed data); a night without anything the requester may see is not found.
"""

from __future__ import annotations

from flask import Response, abort, url_for

from skyvault.coverage import qa, queries
from skyvault.coverage.selection import parse_night
from skyvault.pipeline.naming import jd_to_datetime, nid_of
from skyvault.server.http.context import reading
from skyvault.server.web import vendor
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.epochs import format_mjd
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.pages import per_audience, render
from skyvault.server.web.plots import FILTER_COLOURS, Point, Series, bar_figure, figure
from skyvault.vo.moc import MocRequestError

QA_TIMEOUT_MS = 60_000
NIGHT_METRICS = (
    ("seeing", "Seeing", "FWHM (arcsec)", False),
    ("maglimit", "Limiting magnitude", "5σ limit (mag)", True),
    ("magzp", "Photometric zero point", "Zero point (mag)", False),
    ("astrom_rms", "Astrometric rms", "rms (arcsec)", False),
)


def _iso(jd: float) -> str:
    return jd_to_datetime(jd).strftime("%Y-%m-%dT%H:%M:%S")


def _image_point(image: queries.ImageQuality, value: float | None) -> Point:
    return Point(_iso(image.obsjd), value,
                 label=f"pid {image.pid} · field {image.field} · rcid {image.rcid}"
                       f" · program {image.programid}",
                 page=url_for("web.image_page", collection="sci", image_id=image.pid),
                 preview=url_for("previews.preview", collection="sci", image_id=image.pid))


def night_plots(images: list[queries.ImageQuality],
                figures: qa.NightFigures) -> list[tuple[str, dict]]:
    plots = []
    for attribute, title, axis, reversed_y in NIGHT_METRICS:
        series = [Series(f"{FILTERS.get(code, code)} ({code})", FILTER_COLOURS.get(code, "#555"),
                         [_image_point(i, getattr(i, attribute)) for i in images
                          if i.filtercode == code])
                  for code in sorted({i.filtercode for i in images})]
        plots.append((attribute, figure(title, "Time (UTC)", axis, series,
                                        reversed_y=reversed_y)))
    bits = figures.infobits
    plots.append(("infobits", bar_figure("Images with each infobit set",
                                         [f"bit {b}" for b in bits], list(bits.values()),
                                         "Images")))
    return plots


def _night_context(nid: int) -> dict | None:
    with reading(statement_timeout_ms=QA_TIMEOUT_MS) as connection:
        if not queries.night_exists(connection, nid):
            return None
        exposures = queries.night_exposures(connection, nid)
        images = queries.night_images(connection, nid)
        missing = queries.night_missing_quadrants(connection, nid)
        summaries = {s.nid: s for s in queries.night_summaries(connection)}
    figures = qa.night_figures(exposures, images, missing)
    nids = sorted(summaries)
    index = nids.index(nid) if nid in nids else None
    neighbours = (nids[index - 1] if index else None,
                  nids[index + 1] if index is not None and index + 1 < len(nids) else None)
    return {"figures": figures, "plots": night_plots(images, figures), "images": len(images),
            "neighbours": neighbours}


@blueprint.get("/qa/nights/<night>")
def qa_night_page(night: str) -> Response:
    try:
        date = parse_night(night)
    except MocRequestError:
        abort(404)
    nid = nid_of(date)
    context = per_audience("qa-night", lambda: _night_context(nid), nid)
    if context is None:
        abort(404)
    return render("web/qa_night.html", night=date, nid=nid, filters=FILTERS,
                  plotly_url=vendor.library_url("plotly", "plotly-basic.min.js"),
                  night_url=lambda n: url_for("web.qa_night_page",
                                              night=queries.night_of_nid(n).isoformat()),
                  **context)


def survey_plots(summaries: list[queries.NightSummary]) -> list[tuple[str, dict]]:
    def series(name: str, colour: str, attribute: str) -> Series:
        return Series(name, colour, [
            Point(s.night.isoformat(), getattr(s, attribute),
                  label=f"night {s.night} · {s.images} images",
                  page=url_for("web.qa_night_page", night=s.night.isoformat()))
            for s in summaries])

    return [
        ("images", figure("Science images per night", "Night", "Images",
                          [series("images", "#1f5fa8", "images")], mode="lines+markers")),
        ("seeing", figure("Median seeing per night", "Night", "FWHM (arcsec)",
                          [series("seeing", "#2e8b57", "seeing")], mode="lines+markers")),
        ("maglimit", figure("Median limiting magnitude per night", "Night", "5σ limit (mag)",
                            [series("maglimit", "#c0392b", "maglimit")], reversed_y=True,
                            mode="lines+markers")),
        ("zp_scatter", figure("Zero-point scatter per night", "Night", "σ(zero point) (mag)",
                              [series("zp_scatter", "#8e44ad", "zp_scatter")],
                              mode="lines+markers")),
    ]


def _survey_context() -> dict:
    with reading(statement_timeout_ms=QA_TIMEOUT_MS) as connection:
        summaries = queries.night_summaries(connection)
    return {"summaries": summaries, "plots": survey_plots(summaries)}


@blueprint.get("/qa")
def qa_page() -> Response:
    context = per_audience("qa-survey", _survey_context)
    return render("web/qa.html", format_mjd=format_mjd,
                  plotly_url=vendor.library_url("plotly", "plotly-basic.min.js"), **context)
