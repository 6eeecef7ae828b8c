"""A hand-written recursive-descent parser for ADQL 2.1 (../shared/ivoa/specs/ADQL-2.1.bnf).

Value expressions use precedence climbing, conditions a function per level (OR, AND, NOT,
predicate), so parsing needs no backtracking: a parenthesis is parsed as a condition or a value
and the result's kind is checked where it is used. Beyond the BNF the parser accepts CASE,
hexadecimal literals (0x1F), bitwise operators (& | ^ ~) and a trailing semicolon.
"""

from __future__ import annotations

import difflib

from skyvault.vo.adql import nodes as n
from skyvault.vo.adql.errors import AdqlSyntaxError, line_and_column
from skyvault.vo.adql.lexer import EOF, FLOAT, HEX, IDENT, INT, OP, QIDENT, STRING, Token, tokenize

_COMPARISON = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_BINARY_PRECEDENCE = {"|": 1, "^": 2, "&": 3, "||": 4, "+": 5, "-": 5, "*": 6, "/": 6}

# name -> (minimum, maximum) number of arguments of the numeric functions (ADQL 2.1 section 2.3)
_NUMERIC_FUNCTIONS = {
    "ABS": (1, 1), "CEILING": (1, 1), "DEGREES": (1, 1), "EXP": (1, 1), "FLOOR": (1, 1),
    "LOG": (1, 1), "LOG10": (1, 1), "MOD": (2, 2), "PI": (0, 0), "POWER": (2, 2),
    "RADIANS": (1, 1), "RAND": (0, 1), "ROUND": (1, 2), "SQRT": (1, 1), "TRUNCATE": (1, 2),
    "ACOS": (1, 1), "ASIN": (1, 1), "ATAN": (1, 1), "ATAN2": (2, 2), "COS": (1, 1),
    "COT": (1, 1), "SIN": (1, 1), "TAN": (1, 1),
}
_AGGREGATES = frozenset({"COUNT", "AVG", "MIN", "MAX", "SUM"})
_CAST_TARGETS = frozenset({
    "SMALLINT", "INTEGER", "BIGINT", "REAL", "DOUBLE", "CHAR", "VARCHAR", "TIMESTAMP", "POINT",
    "CIRCLE", "POLYGON",
})
_JOIN_STARTERS = frozenset({"NATURAL", "INNER", "LEFT", "RIGHT", "FULL", "JOIN"})
_CLAUSE_KEYWORDS = ("FROM", "WHERE", "GROUP", "HAVING", "ORDER", "OFFSET", "UNION", "EXCEPT",
                    "INTERSECT", "SELECT", "JOIN", "ON", "USING", "AND", "OR", "NOT", "BETWEEN",
                    "LIKE", "ILIKE", "NULL", "DISTINCT", "TOP", "WITH")
_MAX_DEPTH = 60
"""Nesting of parentheses and subqueries; deeper queries are refused before Python's own
recursion limit would be reached."""


def parse(text: str) -> n.Statement:
    """Parse an ADQL 2.1 query; raises AdqlSyntaxError naming line, column and reason."""
    return _Parser(text).statement()


def parse_condition(text: str) -> n.Condition:
    """Parse a search condition on its own, what follows WHERE (services that take a filter,
    such as IBE's ``WHERE`` parameter, and build the rest of the query themselves); positions
    in errors are within ``text``."""
    parser = _Parser(text)
    condition = parser.condition("a search condition")
    token = parser.peek()
    if token.kind != EOF:
        raise parser.error("expected AND, OR or the end of the condition", token)
    return condition


class _Parser:
    __slots__ = ("depth", "i", "text", "tokens")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers ----------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else self.tokens[-1]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != EOF:
            self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.tokens[self.i]
        return token.kind == IDENT and token.value in words

    def accept_keyword(self, word: str) -> bool:
        token = self.tokens[self.i]
        if token.kind == IDENT and token.value == word:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str, context: str = "") -> Token:
        token = self.tokens[self.i]
        if token.kind == IDENT and token.value == word:
            self.i += 1
            return token
        raise self.error(f"expected {word}{' ' + context if context else ''}", token,
                         suggest=(word,))

    def at_op(self, op: str) -> bool:
        token = self.tokens[self.i]
        return token.kind == OP and token.value == op

    def accept_op(self, op: str) -> bool:
        token = self.tokens[self.i]
        if token.kind == OP and token.value == op:
            self.i += 1
            return True
        return False

    def expect_op(self, op: str, context: str = "") -> Token:
        token = self.tokens[self.i]
        if token.kind == OP and token.value == op:
            self.i += 1
            return token
        raise self.error(f"expected '{op}'{' ' + context if context else ''}", token)

    def error(self, expected: str, token: Token | None = None,
              suggest: tuple[str, ...] = ()) -> AdqlSyntaxError:
        token = token or self.peek()
        line, column = line_and_column(self.text, token.pos)
        found = token.describe()
        if token.kind == IDENT:
            if token.reserved and expected.startswith("expected a") and "name" in expected:
                found += f" (a reserved word; write \"{token.text}\" to use it as a name)"
            else:
                close = difflib.get_close_matches(str(token.value), suggest or _CLAUSE_KEYWORDS,
                                                  n=1, cutoff=0.75)
                if close and close[0] != token.value:
                    found += f" (did you mean {close[0]}?)"
        return AdqlSyntaxError(expected, line, column, found)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"query nested more than {_MAX_DEPTH} levels deep")

    def leave(self) -> None:
        self.depth -= 1

    # -- statement and query expressions ---------------------------------------------------------

    def statement(self) -> n.Statement:
        ctes: list[n.CommonTable] = []
        if self.accept_keyword("WITH"):
            while True:
                name = self.identifier("a name for the WITH query")
                self.expect_keyword("AS", "after the WITH query name")
                self.expect_op("(", "before the WITH query")
                if self.at_keyword("WITH"):
                    raise self.error("WITH queries cannot be nested; expected SELECT")
                query = self.select_expression()
                self.expect_op(")", "after the WITH query")
                ctes.append(n.CommonTable(name, query, pos=name.pos))
                if not self.accept_op(","):
                    break
        if not (self.at_keyword("SELECT") or self.at_op("(")):
            raise self.error("expected SELECT" if not ctes else "expected SELECT after WITH",
                             suggest=("SELECT", "WITH"))
        query = self.select_expression()
        self.accept_op(";")
        token = self.peek()
        if token.kind != EOF:
            raise self.error("expected end of query", token)
        return n.Statement(query, tuple(ctes), self.text)

    def select_expression(self) -> n.SelectExpression:
        start = self.peek().pos
        body = self.set_expression()
        order_by: tuple[n.OrderItem, ...] = ()
        offset = None
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY", "after ORDER")
            order_by = self.order_by_list()
        if self.accept_keyword("OFFSET"):
            offset = self.unsigned_integer("after OFFSET")
        return n.SelectExpression(body, order_by, offset, pos=start)

    def set_expression(self) -> n.SetExpr:
        left = self.set_term()
        while self.at_keyword("UNION", "EXCEPT"):
            token = self.advance()
            all_rows = self.accept_keyword("ALL")
            right = self.set_term()
            left = n.SetOperation(str(token.value), all_rows, left, right, pos=token.pos)
        return left

    def set_term(self) -> n.SetExpr:
        left = self.set_primary()
        while self.at_keyword("INTERSECT"):
            token = self.advance()
            all_rows = self.accept_keyword("ALL")
            right = self.set_primary()
            left = n.SetOperation("INTERSECT", all_rows, left, right, pos=token.pos)
        return left

    def set_primary(self) -> n.SetExpr:
        if self.at_op("("):
            self.advance()
            self.enter()
            if self.at_keyword("WITH"):
                raise self.error("expected SELECT (WITH is only allowed at the start of the "
                                 "main query)")
            inner = self.select_expression()
            self.expect_op(")", "to close the parenthesised query")
            self.leave()
            return inner
        return self.select_query()

    def subquery(self, context: str) -> n.SelectExpression:
        """``( select_expression )`` where the caller knows a query follows."""
        self.expect_op("(", context)
        self.enter()
        if self.at_keyword("WITH"):
            raise self.error("expected SELECT (WITH is only allowed at the start of the main "
                             "query, not in subqueries)")
        query = self.select_expression()
        self.expect_op(")", "to close the subquery")
        self.leave()
        return query

    def query_follows(self) -> bool:
        """At '(': does a query (possibly parenthesised) follow rather than an expression?"""
        ahead = 0
        while self.peek(ahead).kind == OP and self.peek(ahead).value == "(":
            ahead += 1
        token = self.peek(ahead)
        return token.kind == IDENT and token.value in ("SELECT", "WITH")

    def select_query(self) -> n.SelectQuery:
        start = self.expect_keyword("SELECT").pos
        distinct = False
        if self.accept_keyword("DISTINCT"):
            distinct = True
        else:
            self.accept_keyword("ALL")
        top = None
        if self.accept_keyword("TOP"):
            top = self.unsigned_integer("after TOP")
        items = self.select_list()
        if not self.at_keyword("FROM"):
            raise self.error("expected FROM after select list", suggest=("FROM",))
        self.advance()
        from_items = [self.table_reference()]
        while self.accept_op(","):
            from_items.append(self.table_reference())
        where = None
        if self.accept_keyword("WHERE"):
            where = self.condition("a search condition after WHERE")
        group_by: list[n.Expr] = []
        if self.accept_keyword("GROUP"):
            self.expect_keyword("BY", "after GROUP")
            group_by.append(self.value("a grouping column or expression after GROUP BY"))
            while self.accept_op(","):
                group_by.append(self.value("a grouping column or expression after ','"))
        having = None
        if self.accept_keyword("HAVING"):
            having = self.condition("a search condition after HAVING")
        return n.SelectQuery(tuple(items), tuple(from_items), where, tuple(group_by), having,
                             distinct, top, pos=start)

    def unsigned_integer(self, context: str) -> int:
        token = self.peek()
        if token.kind != INT:
            raise self.error(f"expected an unsigned integer {context}", token)
        self.advance()
        return int(token.value)  # type: ignore[arg-type]

    # -- select list ----------------------------------------------------------------------------

    def select_list(self) -> list[n.SelectItem | n.StarItem]:
        token = self.peek()
        if token.kind == IDENT and token.value == "FROM":
            raise self.error("expected a select list (a column, an expression or *) after SELECT",
                             token)
        items = [self.select_item()]
        while self.accept_op(","):
            if self.at_keyword("FROM"):
                raise self.error("expected a select item after ','")
            items.append(self.select_item())
        return items

    def select_item(self) -> n.SelectItem | n.StarItem:
        start = self.peek()
        if start.kind == OP and start.value == "*":
            # The BNF allows * only alone; "SELECT a, *" is common and PostgreSQL's too.
            self.advance()
            return n.StarItem(None, pos=start.pos)
        star = self.qualified_star()
        if star is not None:
            return star
        expr = self.value("a select item (a column, an expression or *)")
        alias = None
        if self.accept_keyword("AS"):
            alias = self.identifier("a column name after AS")
        elif self.peek().kind == QIDENT or (self.peek().kind == IDENT and not self.peek().reserved):
            alias_token = self.peek()
            alias = self.identifier("a column alias")
            following = self.peek()
            if not (following.kind == OP and following.value in (",", ")")) and not (
                    following.kind == IDENT and following.value == "FROM"):
                # "SELECT ra FORM t" reads FORM as an alias; say what was really meant.
                raise self.error("expected FROM after select list", alias_token,
                                 suggest=("FROM",))
        return n.SelectItem(expr, alias, pos=start.pos)

    def qualified_star(self) -> n.StarItem | None:
        """``a.b.*`` if the tokens ahead are a name chain ending in ``.*``; else None."""
        ahead = 0
        if self.peek().kind not in (IDENT, QIDENT):
            return None
        while True:
            token = self.peek(ahead)
            if token.kind not in (IDENT, QIDENT):
                return None
            following = self.peek(ahead + 1)
            if not (following.kind == OP and following.value == "."):
                return None
            after = self.peek(ahead + 2)
            if after.kind == OP and after.value == "*":
                break
            ahead += 2
        start = self.peek().pos
        parts = [self.identifier("a table name")]
        while True:
            self.expect_op(".")
            if self.accept_op("*"):
                break
            parts.append(self.identifier("a table name"))
        if len(parts) > 3:
            raise self.error("a table name has at most three parts (catalog.schema.table)",
                             self.tokens[self.i - 1])
        return n.StarItem(tuple(parts), pos=start)

    # -- FROM ---------------------------------------------------------------------------------

    def table_reference(self) -> n.FromItem:
        left = self.table_primary()
        while self.at_keyword(*_JOIN_STARTERS):
            start = self.peek().pos
            natural = self.accept_keyword("NATURAL")
            kind = "INNER"
            if self.accept_keyword("INNER"):
                kind = "INNER"
            elif self.at_keyword("LEFT", "RIGHT", "FULL"):
                kind = str(self.advance().value)
                self.accept_keyword("OUTER")
            self.expect_keyword("JOIN", "in the join")
            right = self.table_primary()
            on = None
            using = None
            if self.at_keyword("ON", "USING") and natural:
                raise self.error("a NATURAL join takes neither ON nor USING; expected", self.peek())
            if self.accept_keyword("ON"):
                on = self.condition("a join condition after ON")
            elif self.accept_keyword("USING"):
                self.expect_op("(", "after USING")
                columns = [self.identifier("a column name in USING")]
                while self.accept_op(","):
                    columns.append(self.identifier("a column name in USING"))
                self.expect_op(")", "after the USING columns")
                using = tuple(columns)
            left = n.Join(kind, natural, left, right, on, using, pos=start)
        return left

    def table_primary(self) -> n.FromItem:
        token = self.peek()
        if token.kind == OP and token.value == "(":
            if self.query_follows():
                query = self.subquery("before the subquery")
                self.accept_keyword("AS")
                if not (self.peek().kind == QIDENT or
                        (self.peek().kind == IDENT and not self.peek().reserved)):
                    raise self.error("expected a name (correlation name) for the subquery in "
                                     "FROM")
                alias = self.identifier("a name for the subquery")
                return n.DerivedTable(query, alias, pos=token.pos)
            self.advance()
            self.enter()
            inner = self.table_reference()
            if not isinstance(inner, n.Join):
                raise self.error("expected JOIN in the parenthesised table reference")
            self.expect_op(")", "to close the parenthesised join")
            self.leave()
            return inner
        if token.kind not in (IDENT, QIDENT) or token.reserved:
            raise self.error("expected a table name or a subquery", token)
        parts = [self.identifier("a table name")]
        while self.accept_op("."):
            parts.append(self.identifier("a table name after '.'"))
        if len(parts) > 3:
            raise self.error("a table name has at most three parts (catalog.schema.table)",
                             token)
        alias = None
        if self.accept_keyword("AS"):
            alias = self.identifier("a correlation name after AS")
        elif self.peek().kind == QIDENT or (self.peek().kind == IDENT and not self.peek().reserved):
            if self.peek().value == "LIMIT" and self.peek(1).kind == INT:
                raise self.error("expected end of query (ADQL has no LIMIT: write SELECT TOP n)")
            alias = self.identifier("a correlation name")
        return n.TableRef(tuple(parts), alias, pos=token.pos)

    # -- ORDER BY ---------------------------------------------------------------------------------

    def order_by_list(self) -> tuple[n.OrderItem, ...]:
        items = [self.order_item()]
        while self.accept_op(","):
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> n.OrderItem:
        start = self.peek().pos
        expr = self.value("a column, a column number or an expression after ORDER BY")
        descending = False
        if self.accept_keyword("DESC"):
            descending = True
        else:
            self.accept_keyword("ASC")
        return n.OrderItem(expr, descending, pos=start)

    # -- names ------------------------------------------------------------------------------------

    def identifier(self, what: str) -> n.Ident:
        token = self.peek()
        if token.kind == QIDENT:
            self.advance()
            return n.Ident(str(token.value), True, pos=token.pos)
        if token.kind == IDENT and not token.reserved:
            self.advance()
            return n.Ident(token.text, False, pos=token.pos)
        raise self.error(f"expected {what}", token)

    # -- conditions -----------------------------------------------------------------------------

    def condition(self, what: str) -> n.Condition:
        start = self.peek()
        node = self.disjunction()
        if not isinstance(node, n.CONDITIONS):
            raise self.incomplete_predicate(what, start)
        return node

    def incomplete_predicate(self, what: str, start: Token) -> AdqlSyntaxError:
        token = self.peek()
        if token.kind == EOF or token.pos > start.pos:
            return self.error(f"expected a comparison (=, <>, <, >, <=, >=) or a predicate "
                              f"(BETWEEN, IN, LIKE, IS NULL) to complete {what}", token)
        return self.error(f"expected {what}", token)

    def disjunction(self) -> n.Expr | n.Condition:
        left = self.conjunction()
        while self.at_keyword("OR"):
            token = self.advance()
            right = self.conjunction()
            left = n.BoolOp("OR", self.need_condition(left, token, "before OR"),
                            self.need_condition(right, token, "after OR"), pos=token.pos)
        return left

    def conjunction(self) -> n.Expr | n.Condition:
        left = self.negation()
        while self.at_keyword("AND"):
            token = self.advance()
            right = self.negation()
            left = n.BoolOp("AND", self.need_condition(left, token, "before AND"),
                            self.need_condition(right, token, "after AND"), pos=token.pos)
        return left

    def need_condition(self, node: n.Expr | n.Condition, at: Token, where: str) -> n.Condition:
        if isinstance(node, n.CONDITIONS):
            return node
        if where.startswith("before"):
            raise self.error(f"expected a comparison or predicate {where}", at)
        raise self.error(f"expected a comparison (=, <>, <, >, <=, >=) or a predicate {where}",
                         self.peek())

    def negation(self) -> n.Expr | n.Condition:
        if self.at_keyword("NOT"):
            token = self.advance()
            operand = self.negation()
            return n.Not(self.need_condition(operand, token, "after NOT"), pos=token.pos)
        return self.predicate()

    def predicate(self) -> n.Expr | n.Condition:
        token = self.peek()
        if token.kind == IDENT and token.value == "EXISTS":
            self.advance()
            if not (self.at_op("(") and self.query_follows()):
                raise self.error("expected a subquery in parentheses after EXISTS")
            return n.Exists(self.subquery("after EXISTS"), pos=token.pos)
        left = self.value_or_condition()
        if isinstance(left, n.CONDITIONS):
            return left
        op_token = self.peek()
        if op_token.kind == OP and op_token.value in _COMPARISON:
            self.advance()
            right = self.value("a value after the comparison operator")
            if self.peek().kind == OP and self.peek().value in _COMPARISON:
                raise self.error("expected AND, OR or the end of the condition (comparisons "
                                 "cannot be chained)")
            return n.Comparison(_COMPARISON[str(op_token.value)], left, right, pos=token.pos)
        negated = False
        if op_token.kind == IDENT and op_token.value == "NOT":
            following = self.peek(1)
            if following.kind == IDENT and following.value in ("BETWEEN", "IN", "LIKE", "ILIKE"):
                self.advance()
                negated = True
                op_token = self.peek()
        if op_token.kind != IDENT:
            return left
        word = op_token.value
        if word == "BETWEEN":
            self.advance()
            low = self.value("a lower bound after BETWEEN")
            self.expect_keyword("AND", "between the bounds of BETWEEN")
            high = self.value("an upper bound after BETWEEN ... AND")
            return n.Between(left, low, high, negated, pos=token.pos)
        if word == "IN":
            self.advance()
            if not self.at_op("("):
                raise self.error("expected '(' with a list of values or a subquery after IN")
            if self.query_follows():
                return n.InSubquery(left, self.subquery("after IN"), negated, pos=token.pos)
            self.advance()
            items = [self.value("a value in the IN list")]
            while self.accept_op(","):
                items.append(self.value("a value after ',' in the IN list"))
            self.expect_op(")", "to close the IN list")
            return n.InList(left, tuple(items), negated, pos=token.pos)
        if word in ("LIKE", "ILIKE"):
            self.advance()
            self.no_geometry(left, "LIKE")
            pattern = self.value(f"a pattern after {word}")
            self.no_geometry(pattern, "LIKE")
            return n.Like(left, pattern, negated, word == "ILIKE", pos=token.pos)
        if word == "IS" and not negated:
            self.advance()
            is_not = self.accept_keyword("NOT")
            self.expect_keyword("NULL", "after IS" + (" NOT" if is_not else ""))
            return n.IsNull(left, is_not, pos=token.pos)
        return left

    # -- value expressions ----------------------------------------------------------------------

    def value(self, what: str) -> n.Expr:
        """A value expression; a parenthesised condition here is an error."""
        start = self.peek()
        if start.kind == EOF or (start.kind == OP and start.value in (")", ",")) or (
                start.kind == IDENT and start.value in ("FROM", "WHERE", "AND", "OR", "ORDER",
                                                        "GROUP", "HAVING")):
            raise self.error(f"expected {what}", start)
        node = self.binary(1)
        if isinstance(node, n.CONDITIONS):
            raise self.error(f"expected {what}, not a condition", start)
        return node

    def value_or_condition(self) -> n.Expr | n.Condition:
        start = self.peek()
        if start.kind == EOF or (start.kind == OP and start.value in (")", ",")) or (
                start.kind == IDENT and start.value in ("AND", "OR", "ORDER", "GROUP", "HAVING",
                                                        "FROM")):
            raise self.error("expected a search condition", start)
        return self.binary(1)

    def binary(self, min_precedence: int) -> n.Expr | n.Condition:
        left = self.unary()
        while True:
            token = self.tokens[self.i]
            if token.kind != OP:
                return left
            precedence = _BINARY_PRECEDENCE.get(str(token.value))
            if precedence is None or precedence < min_precedence:
                return left
            self.i += 1
            right = self.binary(precedence + 1)
            op = str(token.value)
            self.operand(left, op, token)
            self.operand(right, op, token)
            left = n.Binary(op, left, right, pos=token.pos)  # type: ignore[arg-type]

    def operand(self, node: n.Expr | n.Condition, op: str, at: Token) -> None:
        if isinstance(node, n.CONDITIONS):
            raise self.error(f"expected a value as operand of '{op}', not a condition", at)
        self.no_geometry(node, f"'{op}'")  # type: ignore[arg-type]

    def no_geometry(self, node: n.Expr, context: str) -> None:
        if isinstance(node, n.GEOMETRY_CONSTRUCTORS):
            line, column = line_and_column(self.text, node.pos)
            raise AdqlSyntaxError(f"expected a number or a string with {context}", line, column,
                                  "a geometry value")

    def unary(self) -> n.Expr | n.Condition:
        token = self.tokens[self.i]
        if token.kind == OP and token.value in ("-", "+", "~"):
            self.i += 1
            operand = self.unary()
            self.operand(operand, str(token.value), token)
            if token.value == "+":
                return operand
            if token.value == "-" and isinstance(operand, n.NumberLit):
                value = -operand.value
                return n.NumberLit("-" + operand.text, value, operand.is_integer, pos=token.pos)
            return n.Unary(str(token.value), operand, pos=token.pos)  # type: ignore[arg-type]
        return self.primary()

    def primary(self) -> n.Expr | n.Condition:
        token = self.tokens[self.i]
        kind = token.kind
        if kind in (INT, HEX):
            self.i += 1
            return n.NumberLit(token.text, int(token.value), True,  # type: ignore[arg-type]
                               pos=token.pos)
        if kind == FLOAT:
            self.i += 1
            return n.NumberLit(token.text, float(token.value), False,  # type: ignore[arg-type]
                               pos=token.pos)
        if kind == STRING:
            self.i += 1
            return n.StringLit(str(token.value), pos=token.pos)
        if kind == OP and token.value == "(":
            if self.peek(1).kind == IDENT and self.peek(1).value in ("SELECT", "WITH"):
                return n.ScalarSubquery(self.subquery("before the subquery"), pos=token.pos)
            self.i += 1
            self.enter()
            inner = self.disjunction()
            self.expect_op(")", "to close the parenthesis")
            self.leave()
            return inner
        if kind == QIDENT:
            return self.column_reference()
        if kind == IDENT:
            following = self.peek(1)
            is_call = following.kind == OP and following.value == "("
            if token.reserved:
                return self.keyword_expression(token, is_call)
            if is_call:
                return self.function_call(token)
            return self.column_reference()
        raise self.error("expected a value (a column, a literal, a function or '(')", token)

    def column_reference(self) -> n.ColumnRef:
        start = self.peek().pos
        parts = [self.identifier("a column name")]
        while self.at_op(".") and self.peek(1).kind in (IDENT, QIDENT):
            self.advance()
            parts.append(self.identifier("a column name after '.'"))
        if len(parts) > 4:
            raise self.error("a column reference has at most four parts "
                             "(catalog.schema.table.column)", self.tokens[self.i - 1])
        return n.ColumnRef(tuple(parts[:-1]), parts[-1], pos=start)

    def arguments(self, name: str) -> list[n.Expr]:
        self.expect_op("(", f"after {name}")
        self.enter()
        args: list[n.Expr] = []
        if not self.at_op(")"):
            args.append(self.value(f"an argument of {name}"))
            while self.accept_op(","):
                args.append(self.value(f"an argument of {name} after ','"))
        self.expect_op(")", f"to close the arguments of {name}")
        self.leave()
        return args

    def function_call(self, token: Token) -> n.FuncCall:
        self.advance()
        args = self.arguments(token.text)
        return n.FuncCall(token.text, tuple(args), True, pos=token.pos)

    def keyword_expression(self, token: Token, is_call: bool) -> n.Expr:
        word = str(token.value)
        if word == "NULL":
            self.advance()
            return n.NullLit(pos=token.pos)
        if word == "CASE":
            return self.case_expression()
        if not is_call:
            if word in _NUMERIC_FUNCTIONS or word in _GEOMETRY_FUNCTIONS or word in _AGGREGATES \
                    or word in ("LOWER", "UPPER", "COALESCE", "CAST", "IN_UNIT"):
                raise self.error(f"expected a value: {word} is a reserved word (a function, "
                                 f"called as {word}(...)); write \"{token.text}\" to use it as "
                                 "a name", token)
            raise self.error("expected a value (a column, a literal, a function or '('); "
                             "reserved words must be written in double quotes to be names",
                             token)
        if word in _AGGREGATES:
            return self.aggregate(token)
        if word == "CAST":
            return self.cast(token)
        if word in _NUMERIC_FUNCTIONS:
            self.advance()
            args = self.arguments(word)
            low, high = _NUMERIC_FUNCTIONS[word]
            if not low <= len(args) <= high:
                raise self.arity_error(word, low, high, len(args), token)
            for arg in args:
                self.no_geometry(arg, f"{word}()")
            if word in ("ROUND", "TRUNCATE") and len(args) == 2:
                digits = args[1]
                if not (isinstance(digits, n.NumberLit) and digits.is_integer):
                    line, column = line_and_column(self.text, digits.pos)
                    raise AdqlSyntaxError(f"expected an integer number of decimal places in "
                                          f"{word}", line, column, "an expression")
            return n.FuncCall(word, tuple(args), False, pos=token.pos)
        if word in ("LOWER", "UPPER"):
            self.advance()
            args = self.arguments(word)
            if len(args) != 1:
                raise self.arity_error(word, 1, 1, len(args), token)
            self.no_geometry(args[0], f"{word}()")
            return n.FuncCall(word, tuple(args), False, pos=token.pos)
        if word == "COALESCE":
            self.advance()
            args = self.arguments(word)
            if not args:
                raise self.arity_error(word, 1, None, 0, token)
            return n.Coalesce(tuple(args), pos=token.pos)
        if word == "IN_UNIT":
            self.advance()
            args = self.arguments(word)
            if len(args) != 2:
                raise self.arity_error(word, 2, 2, len(args), token)
            self.no_geometry(args[0], "IN_UNIT()")
            if not isinstance(args[1], n.StringLit):
                line, column = line_and_column(self.text, args[1].pos)
                raise AdqlSyntaxError("expected a unit as a string literal in IN_UNIT", line,
                                      column, "an expression")
            return n.InUnit(args[0], args[1].value, pos=token.pos)
        if word in _GEOMETRY_FUNCTIONS:
            self.advance()
            args = self.arguments(word)
            return self.geometry(word, args, token)
        raise self.error(f"expected a value; {word} is a reserved word, not a function", token)

    def arity_error(self, name: str, low: int, high: int | None, got: int,
                    token: Token) -> AdqlSyntaxError:
        if high is None:
            wanted = f"at least {low} argument{'s' if low != 1 else ''}"
        elif low == high:
            wanted = f"{low} argument{'s' if low != 1 else ''}"
        else:
            wanted = f"{low} to {high} arguments"
        line, column = line_and_column(self.text, token.pos)
        return AdqlSyntaxError(f"expected {wanted} for {name}", line, column,
                               f"{got} argument{'s' if got != 1 else ''}")

    def aggregate(self, token: Token) -> n.Aggregate:
        word = str(token.value)
        self.advance()
        self.expect_op("(", f"after {word}")
        if word == "COUNT" and self.accept_op("*"):
            self.expect_op(")", "after COUNT(*")
            return n.Aggregate("COUNT", None, False, pos=token.pos)
        distinct = self.accept_keyword("DISTINCT")
        if not distinct:
            self.accept_keyword("ALL")
        self.enter()
        arg = self.value(f"an argument of {word}")
        self.leave()
        self.no_geometry(arg, f"{word}()")
        self.expect_op(")", f"to close {word}(")
        return n.Aggregate(word, arg, distinct, pos=token.pos)

    def cast(self, token: Token) -> n.Cast:
        self.advance()
        self.expect_op("(", "after CAST")
        self.enter()
        operand = self.value("a value to CAST")
        self.leave()
        self.expect_keyword("AS", "in CAST")
        type_token = self.peek()
        if type_token.kind != IDENT or type_token.value not in _CAST_TARGETS:
            raise self.error("expected a CAST target type (SMALLINT, INTEGER, BIGINT, REAL, "
                             "DOUBLE PRECISION, CHAR, VARCHAR, TIMESTAMP, POINT, CIRCLE, "
                             "POLYGON)", type_token)
        self.advance()
        name = str(type_token.value)
        length = None
        if name == "DOUBLE":
            self.expect_keyword("PRECISION", "after DOUBLE")
            name = "DOUBLE PRECISION"
        elif name in ("CHAR", "VARCHAR") and self.accept_op("("):
            length = self.unsigned_integer(f"as the length of {name}")
            if length == 0:
                raise self.error(f"expected a positive length for {name}",
                                 self.tokens[self.i - 1])
            self.expect_op(")", f"after the length of {name}")
        self.expect_op(")", "to close CAST")
        return n.Cast(operand, n.CastTarget(name, length), pos=token.pos)

    def case_expression(self) -> n.Case:
        token = self.advance()
        self.enter()
        operand = None
        if not self.at_keyword("WHEN"):
            operand = self.value("a value or WHEN after CASE")
        whens: list[tuple[n.Expr | n.Condition, n.Expr]] = []
        while self.accept_keyword("WHEN"):
            when: n.Expr | n.Condition
            if operand is None:
                when = self.condition("a condition after WHEN")
            else:
                when = self.value("a value after WHEN")
            self.expect_keyword("THEN", "after the WHEN condition")
            whens.append((when, self.value("a value after THEN")))
        if not whens:
            raise self.error("expected WHEN in CASE")
        otherwise = None
        if self.accept_keyword("ELSE"):
            otherwise = self.value("a value after ELSE")
        self.expect_keyword("END", "to close CASE")
        self.leave()
        return n.Case(operand, tuple(whens), otherwise, pos=token.pos)

    # -- geometry -------------------------------------------------------------------------------

    def geometry(self, word: str, args: list[n.Expr], token: Token) -> n.Expr:
        pos = token.pos
        if word in ("POINT", "CIRCLE", "BOX", "POLYGON"):
            coosys, coordinates = self.split_coosys(word, args)
            return self.geometry_constructor(word, coosys, coordinates, token)
        if word == "REGION":
            if len(args) != 1 or not isinstance(args[0], n.StringLit):
                raise self.arity_error("REGION (a string literal)", 1, 1, len(args), token)
            return n.RegionExpr(args[0].value, pos=pos)
        if word in ("CONTAINS", "INTERSECTS"):
            if len(args) != 2:
                raise self.arity_error(word, 2, 2, len(args), token)
            return n.GeoPredicate(word, args[0], args[1], pos=pos)
        if word == "DISTANCE":
            if len(args) == 2:
                for arg in args:
                    self.coord_value(arg, "DISTANCE")
                return n.DistanceExpr(args[0], args[1], pos=pos)
            if len(args) == 4:
                for arg in args:
                    self.no_geometry(arg, "the coordinates of DISTANCE")
                return n.DistanceExpr(n.PointExpr(None, args[0], args[1], pos=args[0].pos),
                                      n.PointExpr(None, args[2], args[3], pos=args[2].pos),
                                      pos=pos)
            raise self.arity_error("DISTANCE (two points or four numbers)", 2, 4, len(args),
                                   token)
        if len(args) != 1:
            raise self.arity_error(word, 1, 1, len(args), token)
        if word in ("COORD1", "COORD2"):
            self.coord_value(args[0], word)
            return n.CoordExpr(1 if word == "COORD1" else 2, args[0], pos=pos)
        if word == "AREA":
            return n.AreaExpr(args[0], pos=pos)
        if word == "CENTROID":
            return n.CentroidExpr(args[0], pos=pos)
        return n.CoordsysExpr(args[0], pos=pos)  # COORDSYS

    def split_coosys(self, word: str, args: list[n.Expr]) -> tuple[str | None, list[n.Expr]]:
        """Take the deprecated coordinate system off the front (a string literal or NULL)."""
        longest = {"POINT": 3, "CIRCLE": 4, "BOX": 5}.get(word)
        first = args[0] if args else None
        is_coosys = isinstance(first, n.StringLit | n.NullLit)
        if word == "POLYGON":
            # POLYGON('sys', ...) always; the vertex count decides nothing here.
            if is_coosys:
                return (first.value if isinstance(first, n.StringLit) else None), args[1:]
            return None, args
        assert longest is not None
        # CIRCLE('fk5', 2, 3) is a coordinate system and a centre without radius (invalid in
        # the IVOA corpus), not a circle around ('fk5', 2): one short of the longest form
        # still counts as carrying a coordinate system.
        if is_coosys and (len(args) == longest or (word != "POINT" and len(args) == longest - 1)):
            return (first.value if isinstance(first, n.StringLit) else None), args[1:]
        return None, args

    @staticmethod
    def point_valued(node: n.Expr) -> bool:
        return isinstance(node, n.PointExpr | n.CentroidExpr | n.ColumnRef) or (
            isinstance(node, n.FuncCall) and node.udf)

    def coord_value(self, node: n.Expr, context: str) -> None:
        if not self.point_valued(node):
            line, column = line_and_column(self.text, node.pos)
            raise AdqlSyntaxError(f"expected a POINT or a column holding points in {context}",
                                  line, column, "another kind of value")

    def geometry_constructor(self, word: str, coosys: str | None, args: list[n.Expr],
                             token: Token) -> n.Expr:
        pos = token.pos
        if word == "POINT":
            if len(args) != 2:
                raise self.arity_error("POINT (two coordinates)", 2, 2, len(args), token)
            for arg in args:
                self.no_geometry(arg, "the coordinates of POINT")
            return n.PointExpr(coosys, args[0], args[1], pos=pos)
        if word == "CIRCLE":
            if len(args) == 3:
                for arg in args:
                    self.no_geometry(arg, "the coordinates of CIRCLE")
                center: n.Expr = n.PointExpr(None, args[0], args[1], pos=args[0].pos)
                return n.CircleExpr(coosys, center, args[2], pos=pos)
            if len(args) == 2:
                self.coord_value(args[0], "CIRCLE")
                self.no_geometry(args[1], "the radius of CIRCLE")
                return n.CircleExpr(coosys, args[0], args[1], pos=pos)
            raise self.arity_error("CIRCLE (centre and radius)", 2, 3, len(args), token)
        if word == "BOX":
            if len(args) == 4:
                for arg in args:
                    self.no_geometry(arg, "the coordinates of BOX")
                center = n.PointExpr(None, args[0], args[1], pos=args[0].pos)
                return n.BoxExpr(coosys, center, args[2], args[3], pos=pos)
            if len(args) == 3:
                self.coord_value(args[0], "BOX")
                return n.BoxExpr(coosys, args[0], args[1], args[2], pos=pos)
            raise self.arity_error("BOX (centre, width and height)", 3, 4, len(args), token)
        # POLYGON: either three or more POINTs, or six or more coordinates in pairs
        if args and all(self.point_valued(arg) for arg in args) and (
                any(isinstance(arg, n.PointExpr | n.CentroidExpr) for arg in args)
                or len(args) % 2 == 1 or len(args) < 6):
            if len(args) < 3:
                raise self.arity_error("POLYGON (at least three vertices)", 3, None, len(args),
                                       token)
            return n.PolygonExpr(coosys, tuple(args), pos=pos)
        for arg in args:
            self.no_geometry(arg, "the coordinates of POLYGON (POINTs and numbers cannot mix)")
        if len(args) < 6 or len(args) % 2:
            line, column = line_and_column(self.text, pos)
            raise AdqlSyntaxError("expected at least three vertices as pairs of coordinates in "
                                  "POLYGON", line, column, f"{len(args)} coordinates")
        vertices = tuple(n.PointExpr(None, args[k], args[k + 1], pos=args[k].pos)
                         for k in range(0, len(args), 2))
        return n.PolygonExpr(coosys, vertices, pos=pos)


_GEOMETRY_FUNCTIONS = frozenset({
    "AREA", "BOX", "CENTROID", "CIRCLE", "CONTAINS", "COORD1", "COORD2", "COORDSYS", "DISTANCE",
    "INTERSECTS", "POINT", "POLYGON", "REGION",
})
