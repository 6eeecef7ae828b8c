"""TAP_UPLOAD: VOTables uploaded inline or by URL, as temporary tables joinable in the query.

TAP 1.1 2.5.4 and DALI 1.1 3.4.4: names are ADQL regular identifiers; inline uploads use the
param: scheme; http(s) must be supported; all valid VOTable content must round-trip.
"""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile
from tap_seed import CENTRE_DEC, CENTRE_RA, visible_exposures

from skyvault.access import ANONYMOUS, Requester
from skyvault.schema.model import DOUBLE
from skyvault.server.tap.config import config_from
from skyvault.server.tap.query import query_session
from skyvault.server.tap.upload import UploadedColumn, UploadedTable, fetch_upload
from skyvault.vo.dali import UploadError, parse_upload

VOTABLE = "application/x-votable+xml"


def votable_bytes(fields: list[dict], rows: list[tuple], tabledata: bool = True) -> bytes:
    document = VOTableFile()
    resource = Resource()
    document.resources.append(resource)
    table = TableElement(document)
    resource.tables.append(table)
    table.fields.extend(Field(document, **spec) for spec in fields)
    table.create_arrays(len(rows))
    for index, row in enumerate(rows):
        table.array[index] = row
    buffer = io.BytesIO()
    document.to_xml(buffer, tabledata_format="tabledata" if tabledata else "binary2")
    return buffer.getvalue()


TARGETS = votable_bytes(
    [{"name": "name", "datatype": "char", "arraysize": "*"},
     {"name": "ra", "datatype": "double", "unit": "deg", "ucd": "pos.eq.ra"},
     {"name": "dec", "datatype": "double", "unit": "deg", "ucd": "pos.eq.dec"}],
    [("centre", CENTRE_RA + 0.0001, CENTRE_DEC), ("empty sky", 10.0, -40.0)],
)

CROSSMATCH = """SELECT u.name, s.sourceid, s.mag, s.obsjd
FROM TAP_UPLOAD.targets AS u
JOIN survey.psf_sources AS s
  ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 0.001))
ORDER BY s.obsjd"""


def post(tap, *pairs, files=None, headers=None):
    return requests.post(f"{tap.url}/sync", data=list(pairs), files=files, headers=headers,
                         timeout=60)


def table_of(response):
    assert response.status_code == 200, response.text
    return parse_single_table(io.BytesIO(response.content)).array


def test_an_inline_upload_joins_a_survey_table(tap) -> None:
    """The join sees exactly the catalog rows the requester may see (row-level security
    applies inside the upload's transaction too)."""
    files = {"t1": ("targets.vot", TARGETS, VOTABLE)}
    pairs = (("LANG", "ADQL"), ("QUERY", CROSSMATCH), ("UPLOAD", "targets,param:t1"))
    anonymous = table_of(post(tap, *pairs, files=files))
    assert set(anonymous["name"]) == {"centre"}
    assert len(anonymous) == len(visible_exposures(set()))
    alice = table_of(post(tap, *pairs, files=files, headers=tap.alice.headers))
    assert len(alice) == len(visible_exposures({2}))


def test_upload_names_follow_adql_case_rules(tap) -> None:
    files = {"part": ("t.vot", TARGETS, VOTABLE)}
    result = table_of(post(tap, ("LANG", "ADQL"),
                           ("QUERY", "SELECT Name FROM tap_upload.TARGETS ORDER BY name"),
                           ("UPLOAD", "Targets,param:part"), files=files))
    assert list(result["name"]) == ["centre", "empty sky"]


@pytest.fixture
def served_votable() -> Iterator[str]:
    """A VOTable on a plain local HTTP server."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1/secret.vot")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", VOTABLE)
            self.end_headers()
            self.wfile.write(TARGETS)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_upload_by_url(tap, served_votable: str) -> None:
    result = table_of(post(tap, ("LANG", "ADQL"), ("QUERY", CROSSMATCH),
                           ("UPLOAD", f"targets,{served_votable}/targets.vot")))
    assert set(result["name"]) == {"centre"}


def test_an_upload_url_may_not_redirect_away_from_http(tap, served_votable: str) -> None:
    response = post(tap, ("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.t"),
                    ("UPLOAD", f"t,{served_votable}/redirect"))
    assert response.status_code == 400
    assert b"not http(s)" in response.content


def test_an_upload_url_on_a_private_network_is_refused_by_default(served_votable: str) -> None:
    """Without SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS (production), a URL that leads to loopback
    or a private network is not fetched: a query must not reach the archive's own hosts."""
    spec = parse_upload([f"t,{served_votable}/targets.vot"])[0]
    for private_networks, refused in ((False, True), (True, False)):
        try:
            data = fetch_upload(spec, lambda part: None, limit=10_000_000, timeout=5,
                                private_networks=private_networks)
        except UploadError as error:
            assert refused and "not on the public internet" in str(error)
        else:
            assert not refused and b"<VOTABLE" in data
    for private in ("http://10.1.2.3/t.vot", "http://[::1]:9/t.vot", "http://169.254.169.254/"):
        with pytest.raises(UploadError, match="not on the public internet"):
            fetch_upload(parse_upload([f"t,{private}"])[0], lambda part: None, limit=100,
                         timeout=5)


def test_the_private_network_switch_reads_yes_and_no() -> None:
    assert config_from({"SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS": "yes"}).upload_private_networks
    assert not config_from({"SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS": "0"}).upload_private_networks
    assert not config_from({}).upload_private_networks
    with pytest.raises(ValueError):
        config_from({"SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS": "maybe"})


ALL_TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="flag" datatype="boolean"/>
<FIELD name="small" datatype="short"/>
<FIELD name="number" datatype="int"/>
<FIELD name="big" datatype="long"/>
<FIELD name="single" datatype="float"/>
<FIELD name="real" datatype="double" unit="deg" ucd="pos.eq.ra"/>
<FIELD name="word" datatype="char" arraysize="*"/>
<FIELD name="wide" datatype="unicodeChar" arraysize="*"/>
<FIELD name="when" datatype="char" arraysize="*" xtype="timestamp"/>
<FIELD name="vector" datatype="double" arraysize="3"/>
<FIELD name="counts" datatype="int" arraysize="*"/>
<FIELD name="where" datatype="double" arraysize="2" xtype="point"/>
<FIELD name="odd name" datatype="int"/>
<DATA><TABLEDATA>
<TR><TD>T</TD><TD>1</TD><TD>100000</TD><TD>1099511627776</TD><TD>1.5</TD><TD>1e-300</TD>
<TD>hello</TD><TD>Ωmega</TD><TD>2024-01-02T03:04:05</TD><TD>1 2 3</TD><TD>4 5</TD>
<TD>10 20</TD><TD>1</TD></TR>
<TR><TD>F</TD><TD>-2</TD><TD>-5</TD><TD>-1099511627776</TD><TD>-2.25</TD><TD>123.456</TD>
<TD>a &lt;b&gt;</TD><TD>x</TD><TD>2020-02-29T00:00:00.500</TD><TD>4 5 6</TD><TD></TD>
<TD>30 -40</TD><TD>2</TD></TR>
<TR><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD><TD></TD>
<TD>NaN NaN NaN</TD><TD>7</TD><TD>0 0</TD><TD>3</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>""".encode()


def test_every_votable_type_round_trips(tap) -> None:
    """TAP 1.1 2.5.4: a client can upload and then query a valid table and round-trip all
    values (nulls included), with the FIELD metadata kept."""
    response = post(tap, ("LANG", "ADQL"),
                    ("QUERY", 'SELECT * FROM TAP_UPLOAD.everything ORDER BY "odd name"'),
                    ("UPLOAD", "everything,param:doc"),
                    files={"doc": ("e.vot", ALL_TYPES, VOTABLE)})
    assert response.status_code == 200, response.text
    table = parse_single_table(io.BytesIO(response.content))
    fields = {f.name: f for f in table.fields}
    assert list(fields) == ["flag", "small", "number", "big", "single", "real", "word", "wide",
                            "when", "vector", "counts", "where", "odd name"]
    assert fields["when"].xtype == "timestamp" and fields["where"].xtype == "point"
    assert str(fields["real"].unit) == "deg" and fields["real"].ucd == "pos.eq.ra"
    assert fields["wide"].datatype == "unicodeChar"
    data = table.array
    scalars = ("flag", "small", "number", "big", "single", "real")
    assert [data[name][0] for name in scalars] == [True, 1, 100000, 2**40, 1.5, 1e-300]
    assert [data[name][1] for name in scalars] == [False, -2, -5, -(2**40), -2.25, 123.456]
    assert all(np.ma.is_masked(data[name][2]) for name in scalars)
    assert (data["word"][0], data["wide"][0], data["word"][1]) == ("hello", "Ωmega", "a <b>")
    assert not data["word"][2] and not data["when"][2]
    assert str(data["when"][0]).startswith("2024-01-02T03:04:05")
    assert str(data["when"][1]).startswith("2020-02-29T00:00:00.5")
    assert list(data["vector"][0]) == [1, 2, 3] and list(data["counts"][0]) == [4, 5]
    assert list(data["counts"][2]) == [7]
    assert list(data["where"][1]) == [30, -40]


def test_nulls_round_trip(tap) -> None:
    document = b"""<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="i" datatype="int"><VALUES null="-1"/></FIELD><FIELD name="d" datatype="double"/>
<FIELD name="s" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>-1</TD><TD></TD><TD></TD></TR><TR><TD>4</TD><TD>2.5</TD><TD>x</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"""
    response = post(tap, ("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.n ORDER BY d"),
                    ("UPLOAD", "n,param:p"), ("RESPONSEFORMAT", "csv"),
                    files={"p": ("n.vot", document, VOTABLE)})
    assert response.status_code == 200, response.text
    # An empty TD of a char column is the empty string (VOTable cannot tell it from null).
    assert response.text.splitlines() == ["i,d,s", "4,2.5,x", ',,""']


@pytest.mark.parametrize("upload, files, words", [
    ("t,param:missing", {}, "no part named missing"),
    ("t,param:p", {"p": ("x.vot", b"not a votable", VOTABLE)}, "not a readable VOTable"),
    ("9t,param:p", {"p": ("x.vot", TARGETS, VOTABLE)}, "must start with a letter"),
    ("t,vos://x/y", {}, "only inline"),
])
def test_bad_uploads_are_errors(tap, upload, files, words) -> None:
    response = post(tap, ("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.t"),
                    ("UPLOAD", upload), files=files)
    assert response.status_code == 400
    assert words in response.text


def test_an_upload_is_visible_to_its_query_only(tap) -> None:
    files = {"t1": ("targets.vot", TARGETS, VOTABLE)}
    assert post(tap, ("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.targets"),
                ("UPLOAD", "targets,param:t1"), files=files).status_code == 200
    later = post(tap, ("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.targets"))
    assert later.status_code == 400


def test_the_upload_size_limit(tap, database, monkeypatch) -> None:
    """TAP 1.1 2.5.4: a service may limit uploads, and must then answer with an error."""
    from skyvault.server.app import create_app

    monkeypatch.setenv("SKYVAULT_TAP_UPLOAD_LIMIT_BYTES", str(len(TARGETS) - 1))
    client = create_app().test_client()
    response = client.post("/tap/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:p",
        "p": (io.BytesIO(TARGETS), "t.vot")})
    assert response.status_code == 413
    assert b"larger than the limit" in response.data


def test_the_upload_session_is_the_reading_session(database) -> None:
    """query_session with uploads sets up the transaction as Database.reading() does: reader
    role, read-only, the requester's programs, the base URL and the time limit."""
    probe = ("SELECT current_user, current_setting('transaction_read_only'),"
             " current_setting('skyvault.programs'), current_setting('skyvault.base_url'),"
             " current_setting('statement_timeout')")
    upload = UploadedTable("u", "pg_temp.tap_upload_0",
                           (UploadedColumn("x", DOUBLE, None, None, None, None),), ((1.0,),))
    for requester in (ANONYMOUS, Requester(user_id=7, username="u", programs=frozenset({2, 3}))):
        states = []
        for uploads in ((), (upload,)):
            with query_session(requester, base_url="http://h", timeout_ms=4321,
                               uploads=uploads) as connection:
                states.append(connection.execute(probe).fetchone())
                if uploads:
                    assert connection.execute(
                        "SELECT x FROM pg_temp.tap_upload_0").fetchall() == [(1.0,)]
                    with pytest.raises(Exception, match="read-only"):
                        connection.execute("CREATE TEMP TABLE sneaky (a int)")
        assert states[0] == states[1]
        assert states[0][:2] == ("skyvault_reader", "on")
