"""The IVOA ADQL corpus (../shared/ivoa/adql-corpus): every syntax verdict must match.

The corpus marks each query valid="true" or "false". Most queries name tables that do not exist
here, so this checks the parser's verdict only; semantics are tested against real tables in
test_adql_translate.py. Where our verdict differs on purpose, EXCEPTIONS says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from skyvault.vo.adql import AdqlSyntaxError, parse

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "ivoa" / "adql-corpus"

EXCEPTIONS = {
    ("gavo/simpleunit.xml", "3a38115a-4509-11e6-8c55-592ac18c5eb7"):
        "TAN2(x) has the syntax of a user-defined function (BNF <user_defined_function>); "
        "the translator rejects it as an unknown function (AdqlSemanticError), not the parser",
    ("ivoa/O2_user_defined_functions.xml", "29c75d48-e525-4e92-af3f-c5e8f3e5f26c"):
        "my_undefined_function(...) is syntactically a UDF; only the translator knows which "
        "UDFs exist and rejects it there (the corpus itself marks ivo_foo(6) valid)",
    ("ivoa/2_from.xml", "d4c3a72c-4458-11e6-96e2-28b2bdcff70b"):
        "t1 INNER JOIN t2 without ON/USING: the BNF makes <join_specification> optional and the "
        "gavo part of the corpus marks 't1 JOIN t2' and 't1 INNER JOIN (t2 JOIN t3)' valid; we "
        "follow the BNF (and translate it as a join ON TRUE)",
}


def _corpus() -> list[tuple[str, str, str, bool]]:
    cases = []
    for path in sorted(CORPUS.glob("*/*.xml")):
        relative = f"{path.parent.name}/{path.name}"
        for query in etree.parse(str(path)).iter("query"):
            adql = query.find("adql")
            cases.append((relative, query.get("uuid") or "", adql.text or "",
                          adql.get("valid") == "true"))
    return cases


CASES = _corpus()


def test_the_corpus_is_all_there():
    assert len(CASES) == 495
    for key in EXCEPTIONS:
        assert any((case[0], case[1]) == key for case in CASES), key


@pytest.mark.parametrize(("source", "uuid", "adql", "valid"), CASES,
                         ids=[f"{case[0]}:{case[1][:8]}" for case in CASES])
def test_corpus_verdict(source: str, uuid: str, adql: str, valid: bool):
    expected = valid
    if (source, uuid) in EXCEPTIONS:
        expected = not valid
    try:
        parse(adql)
    except AdqlSyntaxError as error:
        assert not expected, f"valid query refused: {error}"
        assert error.line >= 1 and error.column >= 1
    else:
        assert expected, "invalid query accepted"
