"""The pages over HTTP without a browser: the image search's SQL against an oracle of the
visible rows, paging, name resolution, what the home page counts, downloads and their rules."""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import replace

import pytest
from astropy.io.votable import parse_single_table
from flask.testing import FlaskClient
from web_support import DEC, FIELD, ORBIT, PASSWORD, RA, USERNAME, WebData

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.server.web.coords import SkyPosition
from skyvault.server.web.image_query import PRODUCTS, ImageSearch, count_sql, page_sql
from skyvault.server.web.names import MovingObject, NameNotFound, resolve_name
from skyvault.vo.shapes import Circle

MEMBER = Requester(user_id=-1, username="oracle", programs=frozenset({2}))
NEW_NIGHT_MJD = (60991.0, 60992.0)  # 2026-11-12 .. 13 UTC


@pytest.fixture(scope="module")
def client(web_data: WebData) -> FlaskClient:
    from skyvault.server.app import create_app
    from skyvault.server.web.pages import clear_cache

    clear_cache()
    app = create_app({"TESTING": True, "WEB_SUMMARY_TTL": 0})
    return app.test_client()


def oracle(database: Database, requester: Requester, search: ImageSearch) -> list[str]:
    """The search evaluated row by row in Python over every visible image of field 601."""
    found = []
    with database.reading(requester) as connection:
        for collection in search.products:
            product = PRODUCTS[collection]
            rows = connection.execute(
                f"SELECT i.{product.key}, {product.t_start} - 2400000.5,"
                f" {product.t_end} - 2400000.5, i.filtercode, i.ccdid,"
                f" {product.qid or 'NULL'}, {product.programid or 'NULL'},"
                f" {'i.programids' if collection == 'ref' else 'NULL'},"
                f" {product.seeing or 'NULL'}, {product.maglimit or 'NULL'}"
                f" FROM survey.{product.table} i WHERE i.field = %s AND i.is_current = 1",
                (FIELD,)).fetchall()
            for (ident, start, end, filtercode, ccdid, qid, programid, programids, seeing,
                 maglimit) in rows:
                keep = (
                    (search.time_from is None or end >= search.time_from)
                    and (search.time_to is None or start <= search.time_to)
                    and (not search.filters or filtercode in search.filters)
                    and (search.ccdid is None or ccdid == search.ccdid)
                    and (search.qid is None or qid is None or qid == search.qid)
                    and (search.programid is None or programid == search.programid
                         or (programids is not None and search.programid in programids))
                    and (search.seeing_max is None or (seeing is not None
                                                       and seeing <= search.seeing_max + 1e-6))
                    and (search.maglimit_min is None or (maglimit is not None
                                                         and maglimit >= search.maglimit_min)))
                if keep:
                    found.append(f"{collection}:{ident}")
    return sorted(found)


def run(database: Database, requester: Requester, search: ImageSearch) -> tuple[list[str], int]:
    with database.reading(requester) as connection:
        sql, values = page_sql(search)
        rows = connection.execute(sql, values).fetchall()
        sql, values = count_sql(search)
        total = connection.execute(sql, values).fetchone()[0]
    return [f"{row[0]}:{row[1]}" for row in rows], total


ALL = ("sci", "raw", "ref", "diff")
SEARCHES = {
    "everything": ImageSearch(products=ALL),
    "new night": ImageSearch(products=ALL, time_from=NEW_NIGHT_MJD[0],
                             time_to=NEW_NIGHT_MJD[1]),
    "before the new night": ImageSearch(products=ALL, time_to=NEW_NIGHT_MJD[0]),
    "r band": ImageSearch(products=ALL, filters=("zr",)),
    "quadrant 3": ImageSearch(products=ALL, qid=3),
    "ccd 1 program 2": ImageSearch(products=ALL, ccdid=1, programid=2),
    "program 3": ImageSearch(products=ALL, programid=3),
    "seeing": ImageSearch(products=ALL, seeing_max=2.05),
    "depth": ImageSearch(products=ALL, maglimit_min=20.9),
    "science only": ImageSearch(products=("sci",), filters=("zg", "zr")),
}


@pytest.mark.parametrize("name", SEARCHES)
@pytest.mark.parametrize("requester", [ANONYMOUS, MEMBER], ids=["anonymous", "member"])
def test_image_search_finds_what_the_oracle_finds(database: Database, web_data: WebData,
                                                  name: str, requester: Requester) -> None:
    search = replace(SEARCHES[name], field=FIELD, per_page=100)
    expected = oracle(database, requester, search)
    found, total = run(database, requester, search)
    assert sorted(found) == expected
    assert total == len(expected)


def test_position_constraints_use_the_footprints(database: Database, web_data: WebData) -> None:
    near = ImageSearch(products=ALL, shape=Circle(RA, DEC, 1 / 60), centre=(RA, DEC))
    far = replace(near, shape=Circle(RA + 1, DEC, 1 / 60), centre=(RA + 1, DEC))
    found, _ = run(database, MEMBER, near)
    assert sorted(found) == oracle(database, MEMBER, ImageSearch(products=ALL))
    assert run(database, MEMBER, far) == ([], 0)


def test_pages_cover_the_results_once_in_order(database: Database, web_data: WebData) -> None:
    search = ImageSearch(products=ALL, field=FIELD, sort="time", descending=True, per_page=3)
    everything, total = run(database, MEMBER, replace(search, per_page=100))
    pages = []
    for page in range(1, total // 3 + 2):
        rows, counted = run(database, MEMBER, replace(search, page=page))
        assert counted == total
        pages += rows
    assert pages == everything and len(set(pages)) == total


def test_names_resolve_to_what_the_requester_may_see(database: Database,
                                                     web_data: WebData) -> None:
    with database.reading(ANONYMOUS) as connection:
        field = resolve_name(connection, f"Field {FIELD}")
        assert abs(field.position.ra - RA) < 0.01 and abs(field.position.dec - DEC) < 0.01
        assert f"centre of {len(web_data.public['sci'])} science images" in field.label
        quadrant = resolve_name(connection, f"field {FIELD} ccd 1 q 3")
        # The simulation puts quadrant 3 south-west of the CCD centre.
        assert quadrant.position.dec < DEC and quadrant.position.ra < RA
        hidden = min(web_data.member["sci"])
        with pytest.raises(NameNotFound):
            resolve_name(connection, f"ivo://skyvault.archive/sci?{hidden}")
        with pytest.raises(NameNotFound):
            resolve_name(connection, "field 99999")
        with pytest.raises(MovingObject) as moving:
            resolve_name(connection, ORBIT[1].lower())
        assert moving.value.designation == ORBIT[0]
        # With a time, the archive's ephemeris code says where it was then.
        moment = resolve_name(connection, ORBIT[0], at_mjd=60991.5)
        assert "predicted position at MJD 60991.5000" in moment.label
        later = resolve_name(connection, ORBIT[1], at_mjd=60992.5)
        assert 0 < abs(later.position.ra - moment.position.ra) < 2  # it moved, a little
    with database.reading(MEMBER) as connection:
        found = resolve_name(connection, f"ivo://skyvault.archive/sci?{hidden}")
        assert isinstance(found.position, SkyPosition)
    calibrations = Requester(user_id=-1, username="oracle", programs=frozenset({1}))
    with database.reading(calibrations) as connection:
        # field 0 holds only bias and flat frames, which have no sky position
        frames, positions = connection.execute(
            "SELECT count(*), count(telra) FROM survey.exposures WHERE field = 0").fetchone()
        assert frames > 0 and positions == 0
        with pytest.raises(NameNotFound):
            resolve_name(connection, "field 0")


# -- over HTTP ------------------------------------------------------------------------------------


def test_search_page_answers_bad_input_with_400_and_the_field(client: FlaskClient,
                                                              web_data: WebData) -> None:
    response = client.get("/search", query_string={"position": "1 2 3 4 5"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="error-position"' in page and "Give two coordinates" in page
    response = client.get("/search", query_string={"position": f"{RA} {DEC}", "page": "99"})
    assert response.status_code == 200 and "Page 99 of 1" in response.get_data(as_text=True)


def test_home_counts_equal_what_each_audience_may_see(client: FlaskClient, database: Database,
                                                      web_data: WebData) -> None:
    def shown(page: str, product: str) -> int:
        row = re.search(rf'data-product="{product}">(.*?)</tr>', page, re.S).group(1)
        return int(re.search(r'class="num total">([\d,]+)<', row).group(1).replace(",", ""))

    def truth(requester: Requester, table: str) -> int:
        with database.reading(requester) as connection:
            return connection.execute(
                f"SELECT count(*) FROM survey.{table} WHERE is_current = 1").fetchone()[0]

    page = client.get("/").get_data(as_text=True)
    for product in PRODUCTS.values():
        assert shown(page, product.collection) == truth(ANONYMOUS, product.table)
    login = client.post("/login", data={"username": USERNAME, "password": PASSWORD})
    assert login.status_code == 200
    page = client.get("/").get_data(as_text=True)
    member = Requester(user_id=-1, programs=frozenset({2}))
    for product in PRODUCTS.values():
        assert shown(page, product.collection) == truth(member, product.table)
    assert shown(page, "ref") >= len(web_data.member["ref"]) > 0
    csrf = client.get("/auth/whoami").get_json()["csrf_token"]
    client.post("/logout", data={"csrf_token": csrf})


def test_the_home_pages_pyvo_example_searches_where_images_are(client: FlaskClient,
                                                                web_data: WebData) -> None:
    """The SIA example on the home page points at an image the reader may see, so pasting it
    into Python finds something."""
    page = client.get("/").get_data(as_text=True)
    found = re.search(r"sia\.search\(pos=\(([-\d.]+), ([-\d.]+), 0\.05\)", page)
    assert found, page[-3000:]
    answer = client.get("/sia/query", query_string={
        "POS": f"CIRCLE {found.group(1)} {found.group(2)} 0.05", "RESPONSEFORMAT": "votable"})
    assert answer.status_code == 200 and answer.get_data(as_text=True).count("<TR>") > 0


def test_downloads_follow_the_embargo_and_the_csrf_rule(client: FlaskClient,
                                                        web_data: WebData) -> None:
    public = [f"sci:{i}" for i in sorted(web_data.public["sci"])]
    member = [f"sci:{i}" for i in sorted(web_data.member["sci"])]
    response = client.post("/download", data={"id": member, "format": "tar"})
    assert response.status_code == 400
    assert "Nothing to download" in response.get_data(as_text=True)

    response = client.post("/download", data={"id": public + member, "format": "tar",
                                              "auxiliary": "1"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith('.tar"')
    with tarfile.open(fileobj=io.BytesIO(response.get_data())) as bundle:
        names = [m.name.split("/", 1)[1] for m in bundle.getmembers()]
        sums = bundle.extractfile(bundle.getmembers()[0]).read().decode()
    assert names[0] == "SHA256SUMS"
    # Each public image with its mask and catalogs; nothing of the proprietary ones.
    assert len(names) - 1 == 4 * len(public)
    for line in sums.splitlines():
        checksum, path = line.split("  ")
        assert web_data.sha256[path].strip() == checksum

    client.post("/login", data={"username": USERNAME, "password": PASSWORD})
    refused = client.post("/download", data={"id": member, "format": "wget"})
    assert refused.status_code == 403  # a session's POST needs its CSRF token
    csrf = client.get("/auth/whoami").get_json()["csrf_token"]
    script = client.post("/download", data={"id": member, "format": "wget",
                                            "csrf_token": csrf})
    assert script.status_code == 200 and script.mimetype == "text/x-shellscript"
    text = script.get_data(as_text=True)
    listed = re.findall(r"^([0-9a-f]{64}) (\d+) (\S+) /files/(\S+)$", text, re.M)
    assert len(listed) == len(member)
    for checksum, _, path, url_path in listed:
        assert web_data.sha256[path].strip() == checksum and url_path == path
        assert path.endswith("_sciimg.fits")
    client.post("/logout", data={"csrf_token": csrf})


def test_image_pages_link_what_the_requester_may_see(client: FlaskClient,
                                                    web_data: WebData) -> None:
    """A new-night science image (program 2) is related to its raw frame, calibration,
    difference and reference; the public sees none of it, a member sees them all."""
    pid = min(web_data.member["sci"])
    assert client.get(f"/images/sci/{pid}").status_code == 404
    client.post("/login", data={"username": USERNAME, "password": PASSWORD})
    page = client.get(f"/images/sci/{pid}").get_data(as_text=True)
    semantics = re.findall(r'data-semantics="([^"]+)"', page)
    assert semantics.count("#progenitor") == 3  # raw frame, bias, flat
    assert semantics.count("#derivation") == 1 and semantics.count("#reference") == 1
    assert {"mskimg", "psfcat", "sexcat"} <= set(re.findall(r'download>(\w+)</a>', page))
    for link in re.findall(r'href="(/images/(?:raw|ref|diff)/\d+)"', page):
        assert client.get(link).status_code == 200
    csrf = client.get("/auth/whoami").get_json()["csrf_token"]
    client.post("/logout", data={"csrf_token": csrf})


def test_pages_of_images_with_unknown_values(client: FlaskClient, database: Database,
                                             web_data: WebData) -> None:
    """Issue 13 items 3 and 4: an image whose zero point failed (NULL magzp and maglimit, its
    sources' magnitudes NULL) and frames with no sky position (bias, flat: NULL ra, dec) have
    their pages, DataLink documents, previews and catalog searches like any other."""
    from skyvault.accounts import model as accounts
    from skyvault.vo.publisher_did import COLLECTIONS, ImageKey

    with database.admin() as connection:
        pid, ra, dec = connection.execute(
            "SELECT pid, ra, dec FROM survey.science_images WHERE field = %s"
            " AND magzp IS NULL AND maglimit IS NULL ORDER BY pid LIMIT 1", (FIELD,)).fetchone()
        unknown = connection.execute(
            "SELECT count(*) FROM survey.psf_sources WHERE pid = %s AND mag IS NULL",
            (pid,)).fetchone()[0]
        frames = [row[0] for row in connection.execute(
            "SELECT r.rawid FROM survey.raw_images r JOIN survey.exposures e USING (expid)"
            " WHERE e.imgtypecode <> 'o' AND r.ra IS NULL AND r.dec IS NULL"
            " AND e.nid = (SELECT nid FROM survey.science_images WHERE pid = %s)", (pid,))]
        if connection.execute("SELECT 1 FROM archive.users WHERE username = 'web-p1'"
                              ).fetchone() is None:
            accounts.create_user(connection, "web-p1", accounts.generate_password())
            accounts.grant_programs(connection, "web-p1", [1])
        token = accounts.create_token(connection, "web-p1", "unknown values").token
    assert unknown > 0 and len(frames) == 2  # the night's bias and flat
    did = ImageKey(COLLECTIONS["sci"], pid).did
    assert client.get(f"/images/sci/{pid}").status_code == 200
    assert client.get("/datalink/links", query_string={"ID": did}).status_code == 200
    assert client.get(f"/previews/sci/{pid}.png").status_code == 200
    catalog = client.get("/catalogs", query_string={"position": f"{ra} {dec}", "radius": "30"})
    assert catalog.status_code == 200
    headers = {"Authorization": f"Bearer {token}"}  # calibration frames are program 1's
    for rawid in frames:
        raw_did = ImageKey(COLLECTIONS["raw"], rawid).did
        page = client.get(f"/images/raw/{rawid}", headers=headers)
        assert page.status_code == 200 and "Centre: RA" not in page.get_data(as_text=True)
        assert client.get("/datalink/links", query_string={"ID": raw_did},
                          headers=headers).status_code == 200
        assert client.get(f"/previews/raw/{rawid}.png", headers=headers).status_code == 200
    pole = client.post("/tap/sync", headers=headers, data={
        "LANG": "ADQL", "RESPONSEFORMAT": "csv",
        "QUERY": "SELECT obs_publisher_did FROM ivoa.obscore WHERE "
                 "1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 0, 90, 2))"})
    assert pole.status_code == 200
    assert pole.get_data(as_text=True).split() == ["obs_publisher_did"]  # no row
    sia = client.get("/sia/query", headers=headers, query_string={"POS": "CIRCLE 0 90 2"})
    assert sia.status_code == 200
    assert len(parse_single_table(io.BytesIO(sia.data)).array) == 0


def test_unknown_pages_and_formats_get_friendly_errors(client: FlaskClient,
                                                       web_data: WebData) -> None:
    for path in ("/images/nothing/1", "/images/sci/99999999999", "/coverage/zq.svg"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Not found" in response.get_data(as_text=True)
    response = client.post("/download", data={"id": "sci:1", "format": "rar"})
    assert response.status_code == 400 and "Unknown download format" in response.get_data(
        as_text=True)
    response = client.get("/catalogs/psf_sources.csv", query_string={"ra": "x"})
    assert response.status_code == 400


def test_the_menu_leads_to_every_page(client: FlaskClient, web_data: WebData) -> None:
    """Each menu entry answers; the moving-object search appears once its blueprint is
    registered (it is, in server/app.py)."""
    page = client.get("/").get_data(as_text=True)
    menu = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S).group(1)
    links = dict((label, href) for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>',
                                                             menu))
    assert links["Moving objects"] == "/most"
    for label, href in links.items():
        assert client.get(href).status_code == 200, label


def test_static_files_and_templates_come_from_the_package(client: FlaskClient) -> None:
    for name, kind in (("skyvault.css", "text/css"), ("skyvault.js", "text/javascript"),
                       ("favicon.svg", "image/svg+xml")):
        response = client.get(f"/static/web/{name}")
        assert response.status_code == 200 and response.mimetype == kind
    page = client.get("/tables").get_data(as_text=True)
    assert "http://" not in page.split("<main")[0].replace("http://www.w3.org", "")


@pytest.mark.parametrize("path", ["/releases", "/most"])
def test_release_and_moving_object_pages_are_in_the_sites_frame(client: FlaskClient,
                                                                  path: str) -> None:
    """The release pages and the moving-object search extend the site's base template: the
    menu, the sign-in link and the site's stylesheet, like every web page."""
    response = client.get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<nav aria-label="Main">' in page and 'id="sign-in"' in page
    assert "skyvault.css" in page and page.count("<html") == 1
