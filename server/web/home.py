"""The home page (what the archive holds, where to point VO clients), the coverage maps and the
tables' documentation.

Counts, time span and maps are computed through the requester's connection: someone who may not
see embargoed data gets numbers that do not include it, so nothing hints at what is hidden.
"""

from __future__ import annotations

from flask import Response

from skyvault.schema.bits import BIT_MASKS
from skyvault.schema.docs import tables_html
from skyvault.server.http.context import reading, service_url
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.forms import FILTERS
from skyvault.server.web.image_query import PRODUCTS
from skyvault.server.web.pages import per_audience, render
from skyvault.server.web.summary import Summary, archive_summary

SUMMARY_TIMEOUT_MS = 60_000


def compute_summary() -> Summary:
    with reading(statement_timeout_ms=SUMMARY_TIMEOUT_MS) as connection:
        return archive_summary(connection)


@blueprint.get("/")
def home() -> Response:
    summary = per_audience("summary", compute_summary)
    base = service_url()
    services = [
        ("TAP (ADQL queries)", f"{base}/tap"),
        ("SIA 2.0 (image search)", f"{base}/sia/query"),
        ("Cone search, PSF photometry", f"{base}/scs/psf_sources?"),
        ("Cone search, aperture photometry", f"{base}/scs/aperture_sources?"),
        ("DataLink (files, previews, cutouts of an image)", f"{base}/datalink/links"),
        ("SODA cutouts", f"{base}/soda/sync"),
    ]
    return render("web/home.html", summary=summary, filters=FILTERS, products=PRODUCTS,
                  services=services, base=base)


@blueprint.get("/tables")
def tables_page() -> Response:
    return render("web/tables.html", tables=tables_html())


@blueprint.get("/tables/bits")
def bits_page() -> Response:
    """What each bit of infobits, the catalogs' flags and the mask images means (schema/bits.py,
    the one declaration the pipeline and the column descriptions read too)."""
    return render("web/bits.html", masks=BIT_MASKS)
