"""/tap/examples: every example, read from the served XHTML+RDFa page, runs and finds rows in
the seeded survey slice (DALI 1.1 2.3; TAP 1.1 3.4)."""

from __future__ import annotations

import io

import requests
from astropy.io.votable import parse_single_table
from lxml import etree

XHTML = {"h": "http://www.w3.org/1999/xhtml"}


def test_every_example_runs_and_finds_rows(tap) -> None:
    response = requests.get(f"{tap.url}/examples", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xhtml+xml")
    page = etree.fromstring(response.content)
    examples = page.findall(".//h:*[@typeof='example']", XHTML)
    assert len(examples) >= 8
    for example in examples:
        name = example.findtext(".//h:*[@property='name']", namespaces=XHTML)
        query = example.findtext(".//h:*[@property='query']", namespaces=XHTML)
        result = requests.post(f"{tap.url}/sync", data={"LANG": "ADQL", "QUERY": query},
                               timeout=60)
        assert result.status_code == 200, f"{name}: {result.text}"
        table = parse_single_table(io.BytesIO(result.content)).array
        assert len(table) > 0, f"{name} found nothing"
