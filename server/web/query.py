"""The ADQL query page: ``/query``. The form sends the query to the TAP service itself
(``/tap/sync`` for an immediate answer, ``/tap/async`` for a job); the page lists the service's
examples (``server/tap/examples.py``, the same ones ``/tap/examples`` publishes) and, for a
signed-in user, their asynchronous jobs."""

from __future__ import annotations

from flask import Response

from skyvault.db import database
from skyvault.server.auth import current_requester
from skyvault.server.tap.async_jobs import TAP_JOBS
from skyvault.server.tap.examples import visible_examples
from skyvault.server.uws.store import JobStore
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.pages import render
from skyvault.vo.uws import JobListFilter
from skyvault.vo.votable.formats import OUTPUT_FORMATS

LABELS = {"votable": "VOTable (binary)", "votable/td": "VOTable (text)", "csv": "CSV",
          "tsv": "TSV", "fits": "FITS table", "parquet": "Parquet", "ipac": "IPAC table"}
FORMATS = tuple((f.name, LABELS.get(f.name, f.name)) for f in OUTPUT_FORMATS)
LISTED_JOBS = 20


@blueprint.get("/query")
def query_page() -> Response:
    requester = current_requester()
    jobs = []
    if not requester.is_anonymous:
        jobs = JobStore(database(), service=TAP_JOBS.kind).list(
            requester, JobListFilter(last=LISTED_JOBS))
    examples = visible_examples()
    return render("web/query.html", examples=examples, jobs=jobs, formats=FORMATS,
                  default_query=examples[0].query if examples else "")
