"""The pure parts of the TAP service: DALI parameters, UWS rules and documents, VOSI documents.

Documents are validated against the IVOA schemas (../shared/ivoa/xsd) offline.
"""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree
from xsd_support import AVAILABILITY, CAPABILITIES, TABLES, UWS, assert_valid

from skyvault.schema.tables import PUBLISHED_SCHEMAS, table_by_name
from skyvault.server.tap.capabilities import capabilities
from skyvault.server.tap.config import TapConfig, config_from
from skyvault.server.tap.examples import Landmarks, examples_document, examples_for
from skyvault.vo import uws, vosi
from skyvault.vo.dali import (
    InvalidParameter,
    MissingParameter,
    Parameters,
    QueryLimits,
    RepeatedParameter,
    UploadError,
    parse_tap_query,
    parse_upload,
)
from skyvault.vo.moc import MOC_STANDARD_ID
from skyvault.vo.uws import Phase

LIMITS = QueryLimits(default_maxrec=1000, hard_maxrec=5000)


def query(*pairs: tuple[str, str]):
    return parse_tap_query(Parameters(pairs), LIMITS)


# -- DALI / TAP parameters ----------------------------------------------------------------------


def test_parameter_names_are_case_insensitive() -> None:
    """DALI 1.1 3.1: 'a DAL service must treat upper-, lower-, and mixed-case parameter names
    as equal'."""
    parsed = query(("lang", "ADQL"), ("Query", "SELECT 1 FROM x"), ("maxREC", "7"),
                   ("responseformat", "csv"))
    assert (parsed.lang, parsed.query, parsed.maxrec, parsed.response_format) == (
        "2.1", "SELECT 1 FROM x", 7, "csv")


def test_a_repeated_single_valued_parameter_is_an_error() -> None:
    """DALI 1.1 3.1: 'Services must respond with an error if the request includes multiple
    values for parameters defined to be single-valued'."""
    with pytest.raises(RepeatedParameter, match="MAXREC"):
        query(("LANG", "ADQL"), ("QUERY", "SELECT 1 FROM x"), ("MAXREC", "1"),
              ("maxrec", "2"))


def test_one_value_given_twice_is_one_value() -> None:
    """What astroquery's TapPlus sends with every upload: FORMAT=votable and format=votable."""
    parsed = query(("LANG", "ADQL"), ("QUERY", "SELECT 1 FROM x"), ("FORMAT", "votable"),
                   ("format", "votable"), ("MAXREC", "1"), ("maxrec", "1"))
    assert (parsed.response_format, parsed.maxrec) == ("votable", 1)


def test_unknown_parameters_are_ignored() -> None:
    parsed = query(("LANG", "ADQL"), ("QUERY", "q"), ("FOO", "bar"), ("FOO", "baz"))
    assert parsed.query == "q"


@pytest.mark.parametrize("lang, version", [("ADQL", "2.1"), ("adql-2.0", "2.0"),
                                           ("ADQL-2.1", "2.1")])
def test_lang_values(lang: str, version: str) -> None:
    assert query(("LANG", lang), ("QUERY", "q")).lang == version


@pytest.mark.parametrize("pairs, error", [
    ([("QUERY", "q")], MissingParameter),
    ([("LANG", "ADQL")], MissingParameter),
    ([("LANG", "PQL"), ("QUERY", "q")], InvalidParameter),
    ([("LANG", "ADQL"), ("QUERY", "q"), ("REQUEST", "getCapabilities")], InvalidParameter),
    ([("LANG", "ADQL"), ("QUERY", "q"), ("MAXREC", "-1")], InvalidParameter),
    ([("LANG", "ADQL"), ("QUERY", "q"), ("MAXREC", "ten")], InvalidParameter),
    ([("LANG", "ADQL"), ("QUERY", "q"), ("RESPONSEFORMAT", "csv"), ("FORMAT", "tsv")],
     InvalidParameter),
])
def test_invalid_query_parameters(pairs, error) -> None:
    with pytest.raises(error):
        query(*pairs)


def test_maxrec_default_and_hard_limit() -> None:
    assert query(("LANG", "ADQL"), ("QUERY", "q")).maxrec == 1000
    assert query(("LANG", "ADQL"), ("QUERY", "q"), ("MAXREC", "99999")).maxrec == 5000
    assert query(("LANG", "ADQL"), ("QUERY", "q"), ("MAXREC", "0")).maxrec == 0


def test_format_is_an_alias_of_responseformat() -> None:
    """TAP 1.1 2.3.7: FORMAT is accepted as equivalent to RESPONSEFORMAT."""
    assert query(("LANG", "ADQL"), ("QUERY", "q"), ("FORMAT", "tsv")).response_format == "tsv"


def test_upload_parameter() -> None:
    specs = parse_upload(["a,param:part1;b,https://example.org/t.xml", "c,http://x/y"])
    assert [(s.table_name, s.inline_part, s.is_http) for s in specs] == [
        ("a", "part1", False), ("b", None, True), ("c", None, True)]


@pytest.mark.parametrize("value", ["1abc,param:x", "a b,param:x", "t,file:///etc/passwd",
                                   "t,ftp://host/x", "t", "t,param:", "t,param:x;T,param:y"])
def test_bad_uploads_are_refused(value: str) -> None:
    with pytest.raises(UploadError):
        parse_upload([value])


# -- UWS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("current, action, after", [
    (Phase.PENDING, "RUN", Phase.QUEUED), (Phase.HELD, "run", Phase.QUEUED),
    (Phase.QUEUED, "RUN", Phase.QUEUED), (Phase.EXECUTING, "RUN", Phase.EXECUTING),
    (Phase.PENDING, "ABORT", Phase.ABORTED), (Phase.EXECUTING, "ABORT", Phase.ABORTED),
    (Phase.COMPLETED, "ABORT", Phase.COMPLETED), (Phase.ERROR, "ABORT", Phase.ERROR),
])
def test_phase_changes(current: Phase, action: str, after: Phase) -> None:
    assert uws.phase_after(current, action) == after


def test_a_finished_job_cannot_run_again() -> None:
    with pytest.raises(uws.PhaseConflict):
        uws.phase_after(Phase.COMPLETED, "RUN")
    with pytest.raises(InvalidParameter):
        uws.phase_after(Phase.PENDING, "SUSPEND")


def test_times_are_iso8601_utc_with_z() -> None:
    """UWS 1.1 2.2.1: 'T' between date and time, UTC with the 'Z' designator."""
    instant = dt.datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert uws.format_time(instant) == "2026-03-04T03:06:07.891Z"
    assert uws.parse_time("X", "2026-03-04T03:06:07.891Z") == dt.datetime(
        2026, 3, 4, 3, 6, 7, 891000, tzinfo=dt.UTC)
    assert uws.parse_time("X", "2026-03-04T05:06:07+02:00").hour == 3
    assert uws.parse_time("X", "2026-03-04").tzinfo == dt.UTC
    with pytest.raises(InvalidParameter):
        uws.parse_time("X", "yesterday")


def test_job_list_filters() -> None:
    filters = uws.parse_job_list_filter(Parameters(
        [("PHASE", "EXECUTING"), ("phase", "queued"), ("AFTER", "2026-01-01T00:00:00Z"),
         ("LAST", "5")]))
    assert filters.phases == {Phase.EXECUTING, Phase.QUEUED}
    assert filters.after == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert filters.last == 5
    for bad in ([("PHASE", "DONE")], [("LAST", "0")], [("AFTER", "soon")]):
        with pytest.raises(InvalidParameter):
            uws.parse_job_list_filter(Parameters(bad))


def _job(**changes) -> uws.Job:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    values = dict(job_id="abcdefghijklmnopqrstuv", phase=Phase.ERROR, creation_time=now,
                  execution_duration=60, destruction_time=now + dt.timedelta(days=1),
                  owner_id="alice", run_id="run <1>", start_time=now, end_time=now,
                  parameters=(uws.JobParameter("query", "SELECT a < b"),
                              uws.JobParameter("t1", "http://x/p/t1", by_reference=True)),
                  results=(uws.ResultRef("result", "http://x/r", "text/csv", 12),),
                  error=uws.ErrorSummary("bad \x01 thing"))
    values.update(changes)
    return uws.Job(**values)


def test_job_documents_are_valid_uws_1_1() -> None:
    assert_valid(uws.job_document(_job()), *UWS)
    assert_valid(uws.job_document(_job(owner_id=None, run_id=None, error=None, results=(),
                                       start_time=None, end_time=None, parameters=())), *UWS)
    assert_valid(uws.job_list_document([_job(), _job(job_id="x" * 22, owner_id=None)],
                                       lambda job_id: f"http://x/async/{job_id}"), *UWS)
    assert_valid(uws.results_document(_job().results), *UWS)
    assert_valid(uws.parameters_document(_job().parameters), *UWS)
    root = etree.fromstring(uws.job_document(_job()))
    assert root.get("version") == "1.1"


def test_the_schema_check_catches_a_broken_job_document() -> None:
    broken = uws.job_document(_job()).replace(b"<uws:phase>ERROR", b"<uws:phase>DONE")
    with pytest.raises(AssertionError):
        assert_valid(broken, *UWS)


# -- VOSI ---------------------------------------------------------------------------------------


def test_capabilities_are_valid_and_declare_the_service() -> None:
    """TAP 1.1 section 2 and TAPRegExt: languages, formats, uploads, limits."""
    config = TapConfig()
    document = vosi.capabilities_document(capabilities("http://h/tap", config))
    assert_valid(document, *CAPABILITIES)
    root = etree.fromstring(document)
    tap = root.find("capability[@standardID='ivo://ivoa.net/std/TAP']")
    assert tap.find("interface").get("version") == "1.1"
    versions = [v.text for v in tap.findall("language/version")]
    assert versions == ["2.0", "2.1"]
    udfs = [f.findtext("form") for f in tap.findall(
        "language/languageFeatures[@type='ivo://ivoa.net/std/TAPRegExt#features-udf']/feature")]
    assert any(form.startswith("ivo_healpix_index(") for form in udfs)
    assert any(form.startswith("ivo_nocasematch(") for form in udfs)
    mimes = [m.text for m in tap.findall("outputFormat/mime")]
    assert "application/x-votable+xml;serialization=BINARY2" in mimes
    assert {"text/csv;header=present", "text/tab-separated-values", "application/fits",
            "application/vnd.apache.parquet"} <= set(mimes)
    assert tap.findtext("outputLimit/hard") == str(config.hard_maxrec)
    assert tap.findtext("retentionPeriod/default") == str(config.default_retention)
    assert len(tap.findall("uploadMethod")) == 3
    standard_ids = {c.get("standardID") for c in root.findall("capability")}
    assert {vosi.AVAILABILITY_ID, vosi.CAPABILITIES_ID, vosi.TABLES_ID,
            vosi.EXAMPLES_ID} <= standard_ids
    # Where the coverage MOC is (issue 19), beside the TAP service.
    (coverage,) = root.findall(f"capability[@standardID='{MOC_STANDARD_ID}']")
    assert coverage.findtext("interface/accessURL") == "http://h/moc"


def test_tables_documents_are_valid_with_and_without_detail() -> None:
    full = vosi.tableset_document(PUBLISHED_SCHEMAS)
    assert_valid(full, *TABLES)
    assert_valid(vosi.tableset_document(PUBLISHED_SCHEMAS, detail=False), *TABLES)
    assert_valid(vosi.table_document(table_by_name("ivoa.obscore"), PUBLISHED_SCHEMAS), *TABLES)
    names = etree.fromstring(full).xpath("//table/name/text()")
    assert "survey.psf_sources" in names and "tap_schema.columns" in names
    columns = etree.fromstring(full).xpath(
        "//table[name='tap_schema.columns']/column/name/text()")
    assert '"size"' in columns


def test_availability_is_valid() -> None:
    assert_valid(vosi.availability_document(True, dt.datetime.now(dt.UTC)), *AVAILABILITY)
    assert_valid(vosi.availability_document(False, None, ["down"]), *AVAILABILITY)


def test_examples_are_well_formed_rdfa() -> None:
    """DALI 1.1 2.3: vocab on an ancestor; id, resource, name and query on each example."""
    examples = examples_for(Landmarks(image=(1885, "zr", 247.3, 40.2),
                                      source=(247.31, 40.21, 16.2, 85.0), perihelion=0.75))
    root = etree.fromstring(examples_document(examples))
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    assert root.find("h:body", ns).get("vocab") == "http://www.ivoa.net/rdf/examples#"
    blocks = root.findall(".//h:div[@typeof='example']", ns)
    assert len(blocks) == len(examples) == 11
    for block in blocks:
        assert block.get("resource") == "#" + block.get("id")
        assert len(block.findall(".//*[@property='name']", ns)) == 1
        assert len(block.findall(".//*[@property='query']", ns)) == 1
        for table in block.findall(".//*[@property='table']", ns):
            table_by_name(table.text)


def test_configuration_from_the_environment() -> None:
    config = config_from({"SKYVAULT_TAP_HARD_MAXREC": "12", "SKYVAULT_TAP_WAIT_LIMIT": "3"})
    assert (config.hard_maxrec, config.wait_limit) == (12, 3)
    assert config_from({}, {"inprocess_workers": 2}).inprocess_workers == 2
