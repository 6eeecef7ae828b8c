"""The ADQL 2.1 parser: the tree it builds and the errors it names (specs/ADQL-2.1.tex)."""

from __future__ import annotations

import pytest

from skyvault.vo.adql import AdqlSyntaxError, parse
from skyvault.vo.adql import nodes as n


def where(adql: str):
    return parse(adql).query.body.where


def items(adql: str):
    return parse(adql).query.body.items


def syntax_error(adql: str) -> AdqlSyntaxError:
    with pytest.raises(AdqlSyntaxError) as caught:
        parse(adql)
    return caught.value


def test_error_names_line_column_reason_and_what_was_found():
    error = syntax_error("SELECT ra, dec\nFORM survey.psf_sources")
    assert str(error) == ("expected FROM after select list at line 2, column 1, "
                          "found 'FORM' (did you mean FROM?)")
    assert (error.line, error.column) == (2, 1)


def test_error_at_end_of_query():
    error = syntax_error("SELECT a FROM t WHERE")
    assert "found end of query" in str(error)
    assert (error.line, error.column) == (1, 22)


def test_predicate_without_comparison_is_refused():
    """Section 4.2.3: CONTAINS returns a number that must be compared with 0 or 1."""
    error = syntax_error("SELECT * FROM t WHERE CONTAINS(POINT(1, 2), CIRCLE(1, 2, 3))")
    assert "expected a comparison" in error.reason


def test_reserved_word_as_column_needs_quotes():
    """Section 2.1.5: reserved words are names only when delimited."""
    error = syntax_error("SELECT distance FROM stars")
    assert "reserved" in error.reason
    select = items('SELECT "distance", "SIZE" FROM stars')
    assert [item.expr.name for item in select] == [n.Ident("distance", True),
                                                    n.Ident("SIZE", True)]


def test_keywords_are_case_insensitive_and_identifiers_keep_spelling():
    statement = parse("sElEcT Ra As MyRa fRoM Survey.Psf_Sources WhErE Mag < 20")
    item = statement.query.body.items[0]
    assert item.alias == n.Ident("MyRa")
    assert item.alias.key == "myra"
    assert statement.query.body.from_[0].parts == (n.Ident("Survey"), n.Ident("Psf_Sources"))


def test_delimited_identifiers_with_doubled_quotes():
    select = items('SELECT "some ""weird"" column" FROM t')
    assert select[0].expr.name == n.Ident('some "weird" column', True)


def test_string_escaping_and_continuation_over_lines():
    """Section 2.1.7: a quote in a literal is doubled; SQL-92 joins literals split over lines."""
    condition = where("SELECT a FROM t WHERE b = 'Earth''s satellite' "
                      "AND c = 'qua' -- note\n'tsch'")
    assert condition.left.right == n.StringLit("Earth's satellite")
    assert condition.right.right == n.StringLit("quatsch")


def test_comments_are_whitespace():
    statement = parse("-- heading\nSELECT -- the columns\n a --\nFROM t -- end")
    assert statement.query.body.items[0].expr.name == n.Ident("a")


def test_numeric_literals():
    select = items("SELECT 42, 3.14, .5, 10e-5, 1.5E3, 0x1F, 0xff FROM t")
    values = [item.expr.value for item in select]
    assert values == [42, 3.14, 0.5, 1e-4, 1500.0, 31, 255]
    assert [item.expr.is_integer for item in select] == [True, False, False, False, False,
                                                         True, True]


def test_malformed_hexadecimal():
    assert "hexadecimal" in syntax_error("SELECT 0x1G FROM t").reason


def test_operator_precedence():
    expr = items("SELECT 1 + 2 * 3 - 4 / 2 FROM t")[0].expr
    assert expr == n.Binary("-", n.Binary("+", n.NumberLit("1", 1, True),
                                          n.Binary("*", n.NumberLit("2", 2, True),
                                                   n.NumberLit("3", 3, True))),
                            n.Binary("/", n.NumberLit("4", 4, True), n.NumberLit("2", 2, True)))


def test_bitwise_operators_bind_looser_than_arithmetic():
    expr = items("SELECT flags & 1 + 2 | ~mask ^ 4 FROM t")[0].expr
    assert expr.op == "|"
    assert expr.left.op == "&" and expr.left.right.op == "+"
    assert expr.right.op == "^" and isinstance(expr.right.left, n.Unary)


def test_not_and_or_precedence():
    condition = where("SELECT a FROM t WHERE NOT a = 1 AND b = 2 OR c = 3")
    assert condition.op == "OR"
    assert condition.left.op == "AND"
    assert isinstance(condition.left.left, n.Not)


def test_parenthesised_conditions_and_values():
    condition = where("SELECT a FROM t WHERE (a + 1) * 2 > 3 AND (b < 2 OR (c > 1))")
    assert isinstance(condition.left, n.Comparison)
    assert condition.right.op == "OR"


def test_predicates():
    assert where("SELECT a FROM t WHERE x NOT BETWEEN 1 AND 2").negated
    assert where("SELECT a FROM t WHERE x NOT IN (1, 2)").items[1].value == 2
    assert isinstance(where("SELECT a FROM t WHERE x IN (SELECT y FROM u)"), n.InSubquery)
    like = where("SELECT a FROM t WHERE name NOT ILIKE 'ngc%'")
    assert like.negated and like.case_insensitive
    assert where("SELECT a FROM t WHERE x IS NOT NULL").negated
    assert isinstance(where("SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u)"), n.Exists)
    assert where("SELECT a FROM t WHERE x != 1").op == "<>"


def test_comparisons_do_not_chain():
    assert "chained" in syntax_error("SELECT a FROM t WHERE 1 < x < 3").reason


def test_case_coalesce_cast():
    expr = items("SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END FROM t")[0].expr
    assert isinstance(expr, n.Case) and expr.operand is None and expr.otherwise.value == "small"
    simple = items("SELECT CASE a WHEN 1 THEN 'one' END FROM t")[0].expr
    assert simple.operand.name == n.Ident("a")
    cast = items("SELECT CAST(x AS DOUBLE PRECISION), CAST(y AS VARCHAR(12)) FROM t")
    assert cast[0].expr.target == n.CastTarget("DOUBLE PRECISION")
    assert cast[1].expr.target == n.CastTarget("VARCHAR", 12)
    assert "CAST target" in syntax_error("SELECT CAST(x AS FLOAT) FROM t").reason
    assert isinstance(items("SELECT COALESCE(a, b, 0) FROM t")[0].expr, n.Coalesce)


def test_geometry_forms_are_normalised():
    """Section 4.2: coordinate and POINT forms of CIRCLE, BOX and DISTANCE mean the same."""
    circle = items("SELECT CIRCLE('ICRS', 10, 20, 1) FROM t")[0].expr
    assert circle.coosys == "ICRS"
    assert circle.center == n.PointExpr(None, n.NumberLit("10", 10, True),
                                        n.NumberLit("20", 20, True))
    assert items("SELECT CIRCLE(POINT(10, 20), 1) FROM t")[0].expr.center == circle.center
    distance = items("SELECT DISTANCE(1, 2, 3, 4) FROM t")[0].expr
    assert isinstance(distance.first, n.PointExpr) and isinstance(distance.second, n.PointExpr)
    polygon = items("SELECT POLYGON(1, 2, 3, 4, 5, 6) FROM t")[0].expr
    assert len(polygon.vertices) == 3
    points = items("SELECT POLYGON(POINT(1, 2), POINT(3, 4), p) FROM t")[0].expr
    assert len(points.vertices) == 3
    box = items("SELECT BOX(NULL, 10, 20, 1, 2) FROM t")[0].expr
    assert box.coosys is None and box.height.value == 2


def test_geometry_argument_errors():
    assert "POINT" in syntax_error("SELECT CIRCLE('fk5', 2, 3) FROM t").reason
    assert "pairs" in syntax_error("SELECT POLYGON(1, 2, 3, 4, 5, 6, 7) FROM t").reason
    assert "geometry" in syntax_error("SELECT POINT(1, 2) + 1 FROM t").found
    assert "geometry" in syntax_error("SELECT 'a' || POINT(1, 2) FROM t").found


def test_function_arity():
    assert "1 argument" in syntax_error("SELECT ABS(1, 2) FROM t").reason
    assert "integer number of decimal places" in syntax_error(
        "SELECT ROUND(x, y) FROM t").reason
    assert "at least 1" in syntax_error("SELECT COALESCE() FROM t").reason


def test_udfs_are_parsed_as_calls():
    expr = items("SELECT ivo_healpix_index(6, ra, dec) FROM t")[0].expr
    assert expr == n.FuncCall("ivo_healpix_index", expr.args, True)


def test_select_clauses():
    select = parse("SELECT DISTINCT TOP 10 a, b AS c FROM t WHERE a > 1 GROUP BY a, b "
                   "HAVING COUNT(*) > 2 ORDER BY 1 DESC, c OFFSET 5")
    query = select.query
    assert query.body.distinct and query.body.top == 10
    assert len(query.body.group_by) == 2
    assert query.order_by[0].descending and not query.order_by[1].descending
    assert query.offset == 5
    assert "unsigned integer" in syntax_error("SELECT TOP -1 a FROM t").reason
    assert "unsigned integer" in syntax_error("SELECT a FROM t OFFSET 1.5").reason


def test_joins():
    join = parse("SELECT * FROM a NATURAL LEFT OUTER JOIN b JOIN c USING (x, y) "
                 "RIGHT JOIN (d JOIN e ON d.k = e.k) ON c.z = d.z").query.body.from_[0]
    assert join.kind == "RIGHT" and isinstance(join.right, n.Join)
    assert join.left.using == (n.Ident("x"), n.Ident("y"))
    assert join.left.left.natural and join.left.left.kind == "LEFT"
    assert "NATURAL" in syntax_error("SELECT * FROM a NATURAL JOIN b ON a.x = b.x").reason


def test_derived_tables_need_a_name():
    assert "name" in syntax_error("SELECT * FROM (SELECT * FROM x)").reason
    derived = parse("SELECT * FROM (SELECT * FROM x) q").query.body.from_[0]
    assert derived.alias == n.Ident("q")


def test_set_operations_intersect_binds_tighter():
    """Section 4.6.5: INTERSECT first, then UNION and EXCEPT from left to right."""
    body = parse("SELECT a FROM t1 UNION SELECT a FROM t2 INTERSECT SELECT a FROM t3 "
                 "EXCEPT SELECT a FROM t4").query.body
    assert body.op == "EXCEPT"
    assert body.left.op == "UNION" and body.left.right.op == "INTERSECT"
    assert parse("SELECT a FROM t UNION ALL SELECT a FROM u").query.body.all


def test_with_only_at_the_top():
    """Section 4.5: common table expressions belong to the main query only."""
    statement = parse("WITH a AS (SELECT x FROM t), b AS (SELECT x FROM a) SELECT * FROM b")
    assert [cte.name.name for cte in statement.ctes] == ["a", "b"]
    assert "WITH" in syntax_error("SELECT * FROM (WITH a AS (SELECT 1 FROM t) "
                                  "SELECT * FROM a) AS q").reason


def test_trailing_semicolon_and_garbage():
    parse("SELECT a FROM t;")
    assert "SELECT TOP n" in syntax_error("SELECT a FROM t LIMIT 10").reason
    assert "end of query" in syntax_error("SELECT a FROM t; DROP TABLE t").reason


def test_deep_nesting_is_refused_cleanly():
    deep = "SELECT " + "(" * 200 + "1" + ")" * 200 + " FROM t"
    assert "nested" in syntax_error(deep).reason


def test_characters_outside_adql():
    assert "character" in syntax_error("SELECT a FROM t WHERE a = 1 % 2").found
    assert "not closed" in syntax_error("SELECT 'abc FROM t").reason
