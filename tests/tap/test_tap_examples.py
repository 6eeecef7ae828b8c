"""/tap/examples (DALI 1.1 2.3; TAP 1.1 3.4): examples written around what the requester may
see, each of which finds rows for them.

Issue 13 item 5: the examples used to name a position and a field where the demo has no data.
"""

from __future__ import annotations

import io

import pytest
import requests
import tap_seed
from astropy.io.votable import parse_single_table
from isolated_world import adql_rows, as_requester, only
from lxml import etree

from skyvault.access import ANONYMOUS, Requester
from skyvault.server.tap.examples import examples_document, examples_for, find_landmarks

XHTML = {"h": "http://www.w3.org/1999/xhtml"}


def served_examples(page: bytes) -> list[tuple[str, str]]:
    root = etree.fromstring(page)
    return [(example.findtext(".//h:*[@property='name']", namespaces=XHTML),
             example.findtext(".//h:*[@property='query']", namespaces=XHTML))
            for example in root.findall(".//h:*[@typeof='example']", XHTML)]


def test_every_served_example_finds_rows_for_its_requester(tap) -> None:
    for headers in ({}, tap.alice.headers, tap.bob.headers):
        response = requests.get(f"{tap.url}/examples", headers=headers, timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/xhtml+xml")
        assert "private" in response.headers["Cache-Control"]  # one audience's examples
        examples = served_examples(response.content)
        assert len(examples) >= 9
        for name, query in examples:
            result = requests.post(f"{tap.url}/sync", headers=headers,
                                   data={"LANG": "ADQL", "QUERY": query}, timeout=60)
            assert result.status_code == 200, f"{name}: {result.text}"
            table = parse_single_table(io.BytesIO(result.content)).array
            assert len(table) > 0, f"{name} found nothing"


def test_examples_follow_the_data_and_only_the_visible_data(database, monkeypatch) -> None:
    """A survey that holds only a slice at a field and position no fixed example knows (field
    1885 around 247.3, +40.2, the TAP slice moved there): every example finds rows there, for
    the public and for a member of program 2; the public's examples are not written around
    the embargoed exposures (their sources' positions appear nowhere in the document)."""
    monkeypatch.setattr(tap_seed, "CENTRE_RA", 247.3)
    monkeypatch.setattr(tap_seed, "CENTRE_DEC", 40.2)
    monkeypatch.setattr(tap_seed, "FIELD", 1885)
    member = Requester(user_id=-1, username="member", programs=frozenset({2}))
    with only(database, tap_seed.insert) as connection:
        hidden_pids = [e.pid(rcid) for e in tap_seed.EXPOSURES if not e.public
                       for rcid in tap_seed.RCIDS]
        embargoed = {f"{ra:.6f}, {dec:.6f}" for ra, dec in connection.execute(
            "SELECT ra, dec FROM survey.psf_sources WHERE pid = ANY (%s)", (hidden_pids,))}
        assert embargoed
        for requester in (ANONYMOUS, member):
            with as_requester(connection, requester):
                examples = examples_for(find_landmarks(connection))
            assert len(examples) == 12  # the object example too (objects_released is empty)
            assert "object_light_curve" in {example.id for example in examples}
            for example in examples:
                assert adql_rows(connection, requester, example.query), example.id
            document = examples_document(examples).decode()
            assert "field = 1885" in document and "247.3" in document
            written_around = {p for p in embargoed if p in document}
            if requester is ANONYMOUS:
                assert not written_around
            else:
                assert written_around  # the latest image the member sees is embargoed


@pytest.mark.parametrize("perihelion, limit", [(0.75, "q < 1.3"), (2.54, "q < 2.6")])
def test_the_orbit_example_asks_below_the_smallest_perihelion(perihelion, limit) -> None:
    from skyvault.server.tap.examples import Landmarks

    (orbit, _tables) = examples_for(Landmarks(perihelion=perihelion))
    assert orbit.id == "close_approach_orbits" and limit in orbit.query
