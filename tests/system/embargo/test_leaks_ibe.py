"""IBE (``/ibe/search`` and ``/ibe/data``) in the leak suite: for the public, a member of
another program and a member of the right program, a search returns exactly the seeded rows the
rule says they may see, in every output format, with no hidden state's secrets; a hidden file at
its IRSA path (whole or cut out) is answered exactly as a path of nothing, its twin.
"""

from __future__ import annotations

import pytest
from embargo_seed import BASE, BLOCK, STATE, STATES, State
from leak_probe import ANONYMOUS_WHO, Who, get, hidden, leaked_secrets, twin_difference, who

SEEDED_CALIBRATIONS = f"cid BETWEEN {BASE + BLOCK['calid']} AND {BASE + BLOCK['calid'] + 999}"
"""The leak seed's calibration products (dated by the night of their state's observation)."""

SEARCH = "/ibe/search/ztf/products"
DATA = "/ibe/data/ztf/products"
KEY_COLUMN = {"sci": "pid", "raw": "meta_id", "ref": "rfid", "cal": "cid"}
KIND = {"sci": "pid", "raw": "rawid", "ref": "refid", "cal": "calid"}
FORMATS = ("csv", "ipac_table", "votable", "html", "tsv")


def requesters(world) -> list[Who]:
    return [ANONYMOUS_WHO, who(world["leak-p2"]), who(world["leak-p3"], basic=True),
            who(world["leak-all"])]


def irsa_paths(database, state: State) -> list[tuple[str, str]]:
    """Every seeded product of a state at IRSA's path (filter zr, quadrant 1), and its twin:
    the same path on CCD 16, where nothing was seeded. The keys are read as the owner."""
    with database.admin() as connection:
        ffd, field = connection.execute(
            "SELECT filefracday, field FROM survey.science_images WHERE pid = %s",
            (state.ident("pid"),)).fetchone()
        day, cal_ccd = connection.execute(
            "SELECT to_char(obsdate AT TIME ZONE 'UTC', 'YYYYMMDD'), ccdid FROM"
            " survey.calibration_images WHERE calid = %s", (state.ident("calid"),)).fetchone()
    ffd, field = str(ffd), f"{field:06d}"
    day_folder = f"{ffd[:4]}/{ffd[4:8]}/{ffd[8:]}"
    stem = f"ztf_{ffd}_{field}_zr_c{{ccd}}_o"
    made = [f"sci/{day_folder}/{stem}_q1_{suffix}" for suffix in (
        "sciimg.fits", "psfcat.fits", "scimrefdiffimg.fits.fz", "diffimgpsf.fits")]
    made.append(f"raw/{day_folder}/{stem}.fits.fz")
    made += [f"ref/{field[:3]}/field{field}/zr/ccd{{ccd}}/q1/ztf_{field}_zr_c{{ccd}}_q1_"
             f"{suffix}" for suffix in ("refimg.fits", "refsexcat.fits")]
    pairs = [(path.format(ccd="01"), path.format(ccd="16")) for path in made]
    cal = f"cal/{day[:4]}/{day[4:]}/bias/00/ccd{{ccd}}/q1/ztf_{day}_00_c{{ccd}}_q1_bias.fits"
    pairs.append((cal.format(ccd=f"{cal_ccd:02d}"), cal.format(ccd="16")))
    return pairs


def test_seeded_files_are_reachable_at_irsas_paths(live_server, world, database) -> None:
    """The probes below mean something: each path serves its file to someone who may see it."""
    everyone = who(world["leak-all"])
    for state in STATES:
        for path, _twin in irsa_paths(database, state):
            response = get(live_server, f"{DATA}/{path}", everyone)
            assert response.status_code == 200, path
            assert state.marker.encode() in response.content


def test_hidden_files_are_answered_as_absent_ones(live_server, world, database) -> None:
    problems = []
    for requester in requesters(world):
        secret_states = hidden(requester.programs)
        for state in secret_states:
            if state not in STATES:
                continue
            for path, twin in irsa_paths(database, state):
                for params in ({}, {"center": f"{state.ra},{state.dec}", "size": "20arcsec"},
                               {"center": "32,32px", "size": "8px", "gzip": "false"}):
                    first = get(live_server, f"{DATA}/{path}", requester, params=params)
                    second = get(live_server, f"{DATA}/{twin}", requester, params=params)
                    why = twin_difference(first, path, second, twin)
                    if why or first.status_code != 404:
                        problems.append(f"{requester.name} {path} {params}: "
                                        f"{why or first.status_code}")
                    found = leaked_secrets(first.content, secret_states, [path])
                    if found:
                        problems.append(f"{requester.name} {path}: secrets {found}")
    assert not problems, "\n".join(problems[:20])


def _searches(state: State) -> list[tuple[str, dict[str, str]]]:
    near = {"POS": f"{state.ra},{state.dec}", "SIZE": "0.05"}
    return [("sci", near), ("raw", near), ("ref", near),
            ("sci", {"POS": f"{state.ra},{state.dec}", "mcen": ""}),
            ("sci", {"WHERE": "field BETWEEN 9900 AND 9999"}),
            ("ref", {"WHERE": "field BETWEEN 9900 AND 9999 OR rfid > 0"}),
            ("cal", {"WHERE": SEEDED_CALIBRATIONS}),
            ("raw", {"WHERE": "ipac_pub_date IS NOT NULL OR ipac_gid = 3"})]


@pytest.mark.parametrize("form", FORMATS)
def test_searches_return_exactly_the_visible_rows(live_server, world, form) -> None:
    problems = []
    for requester in requesters(world):
        secret_states = hidden(requester.programs)
        for state in STATES:
            for table, params in _searches(state):
                response = get(live_server, f"{SEARCH}/{table}", requester,
                               params={**params, "ct": form})
                if response.status_code != 200:
                    problems.append(f"{requester.name} {table} {params}: {response.status_code}")
                    continue
                found = leaked_secrets(response.content, secret_states)
                if found:
                    problems.append(f"{requester.name} {table} {params} {form}: {found}")
    assert not problems, "\n".join(problems[:20])


def test_searches_list_every_visible_seeded_row(live_server, world) -> None:
    """Not only nothing hidden: everything the rule lets a requester see is there."""
    from astropy.table import Table

    for requester in requesters(world):
        visible = [s for s in STATES if s not in hidden(requester.programs)]
        for table, where in (("sci", "field BETWEEN 9900 AND 9999"),
                             ("ref", "field BETWEEN 9900 AND 9999"),
                             ("raw", "field BETWEEN 9900 AND 9999"),
                             ("cal", SEEDED_CALIBRATIONS)):
            response = get(live_server, f"{SEARCH}/{table}", requester,
                           params={"WHERE": where, "ct": "csv", "COLUMNS": KEY_COLUMN[table]})
            rows = Table.read(response.text, format="ascii.csv") if response.text.count(
                "\n") > 1 else []
            got = {int(row[KEY_COLUMN[table]]) for row in rows}
            seeded = {s.ident(KIND[table]) for s in STATES}
            assert got & seeded == {s.ident(KIND[table]) for s in visible}, \
                (requester.name, table)
    assert STATE["prop2"] in hidden(frozenset())
