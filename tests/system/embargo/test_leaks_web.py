"""The web interface, asked as a browser would, as every kind of requester: image pages,
searches, catalog cones, downloads and coverage maps show members their program's data and
nobody anything hidden (existence included).  Defined when the web blueprint is registered."""

from __future__ import annotations

import pytest
from embargo_seed import CENTRE_DEC, CENTRE_RA, PRODUCTS, STATES
from leak_probe import (
    ANONYMOUS_WHO,
    Who,
    get,
    has_rule,
    hidden,
    leaked_secrets,
    post,
    shown,
    twin_difference,
    who,
)

IMAGES = [(p, t, k, c) for p, t, k, c in PRODUCTS if c]


@pytest.fixture
def requesters(world) -> list[Who]:
    return [ANONYMOUS_WHO, who(world["leak-p1"]), who(world["leak-p2"], basic=True),
            who(world["leak-p3"]), who(world["leak-all"])]


if has_rule("/images/<collection>/<int:image_id>"):

    def test_image_pages(live_server, requesters) -> None:
        for requester in requesters:
            for state in STATES:
                for _product, _table, kind, collection in IMAGES:
                    url = f"/images/{collection}/{state.ident(kind)}"
                    response = get(live_server, url, requester)
                    if state in shown(requester.programs):
                        assert response.status_code == 200, (requester.name, url)
                        assert str(state.ident(kind)).encode() in response.content
                    else:
                        twin = get(live_server, f"/images/{collection}/{state.twin(kind)}",
                                   requester)
                        why = twin_difference(response, str(state.ident(kind)), twin,
                                              str(state.twin(kind)))
                        assert why is None, (requester.name, url, why)
                        found = leaked_secrets(response.content, hidden(requester.programs),
                                               [str(state.ident(kind))])
                        assert not found, (requester.name, url, found)


if has_rule("/search"):

    def test_image_search_lists_visible_images_only(live_server, requesters) -> None:
        params = {"position": f"{CENTRE_RA + 0.5} {CENTRE_DEC}", "radius": "1.5",
                  "radius_unit": "deg", "product": ["raw", "sci", "ref", "diff"],
                  "per_page": "200"}
        for requester in requesters:
            response = get(live_server, "/search", requester, params=params)
            assert response.status_code == 200, response.text[:300]
            for state in shown(requester.programs):
                assert str(state.ident("pid")).encode() in response.content, \
                    (requester.name, state.key)
            found = leaked_secrets(response.content, hidden(requester.programs))
            assert not found, (requester.name, found)


if has_rule("/catalogs"):

    def test_catalog_cones_return_visible_sources_only(live_server, requesters) -> None:
        for requester in requesters:
            for state in STATES:
                response = get(live_server, "/catalogs", requester, params={
                    "position": f"{state.ra} {state.dec}", "radius": "10",
                    "catalog": "psf_sources"})
                assert response.status_code == 200, response.text[:300]
                present = str(state.source_ids()[0]).encode() in response.content
                assert present == (state in shown(requester.programs)), \
                    (requester.name, state.key)
                found = leaked_secrets(response.content, hidden(requester.programs))
                assert not found, (requester.name, state.key, found)


if has_rule("/download"):

    def test_download_bundles_hold_visible_files_only(live_server, requesters) -> None:
        for requester in requesters:
            for state in STATES:
                selection = {"format": "curl", "id": f"sci:{state.ident('pid')}"}
                response = post(live_server, "/download", requester, data=selection)
                if state in shown(requester.programs):
                    assert response.status_code == 200, (requester.name, response.text[:200])
                    assert state.file_path("sciimg").encode() in response.content
                else:
                    twin = post(live_server, "/download", requester,
                                data={**selection, "id": f"sci:{state.twin('pid')}"})
                    why = twin_difference(response, str(state.ident("pid")), twin,
                                          str(state.twin("pid")))
                    assert why is None, (requester.name, state.key, why)


if has_rule("/coverage/<filtercode>.svg"):

    def test_coverage_map_draws_only_what_the_requester_sees(live_server, world) -> None:
        """The map of everything (a member of every program) differs from the public's map
        by the hidden seeded exposures; two requesters who see the same rows get the same."""
        everyone = get(live_server, "/coverage/zr.svg", who(world["leak-all"]))
        public = get(live_server, "/coverage/zr.svg", ANONYMOUS_WHO)
        assert everyone.status_code == public.status_code == 200
        assert everyone.content != public.content
        found = leaked_secrets(public.content, hidden(frozenset()))
        assert not found, found
