"""ADQL 2.1 tokens (section 2.1): identifiers, delimited identifiers, literals, operators.

One compiled regular expression does the work, so lexing a typical query costs a few
microseconds. Keywords are not a token kind of their own: a regular identifier whose upper-case
spelling is reserved is a keyword, and the parser decides what it may be in each place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skyvault.vo.adql.errors import AdqlSyntaxError, line_and_column

SQL_RESERVED = frozenset("""
ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG BEGIN
BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH
CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION
CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE
CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT
DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE
DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH
FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY
IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL
INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE
MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY
OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION PRECISION PREPARE PRESERVE
PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT
ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME
SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP
TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION
UNIQUE UNKNOWN UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER
WHERE WITH WORK WRITE YEAR ZONE
""".split())  # noqa: SIM905 - the standard's list as printed
"""SQL-92 reserved words, ADQL 2.1 section 2.1.3."""

ADQL_RESERVED = frozenset("""
ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS
COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD OFFSET PI POINT POLYGON
POWER RADIANS REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE
""".split())  # noqa: SIM905
"""ADQL reserved words, ADQL 2.1 section 2.1.4."""

RESERVED = SQL_RESERVED | ADQL_RESERVED

IDENT, QIDENT, STRING, INT, FLOAT, HEX, OP, EOF = (
    "identifier", "delimited identifier", "string", "integer", "number", "hexadecimal", "op",
    "end",
)


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    """The source text (for identifiers, literals and operators as written)."""
    value: object
    """Upper-case spelling for identifiers, the unescaped body for delimited identifiers and
    strings, the number for numeric literals, the operator itself for operators."""
    pos: int

    @property
    def reserved(self) -> bool:
        return self.kind == IDENT and self.value in RESERVED

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of query"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"'{shown}'" if self.kind not in (STRING, QIDENT) else shown


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*)
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>\d+)
  | (?P<ident>[A-Za-z][A-Za-z0-9_]*)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<op><>|!=|<=|>=|\|\||[-+*/(),.=<>&|^~;])
""", re.VERBOSE)


def _fail(text: str, pos: int, expected: str, found: str) -> AdqlSyntaxError:
    line, column = line_and_column(text, pos)
    return AdqlSyntaxError(expected, line, column, found)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an EOF token.

    String literals separated only by whitespace or comments that include a line break are
    one literal (SQL-92 5.3), as the IVOA corpus expects.
    """
    tokens: list[Token] = []
    append = tokens.append
    match = _TOKEN.match
    pos = 0
    end = len(text)
    newline_since_token = False
    while pos < end:
        found = match(text, pos)
        if found is None:
            char = text[pos]
            if char == "'":
                raise _fail(text, pos, "string literal is not closed", "end of query")
            if char == '"':
                raise _fail(text, pos, "delimited identifier is not closed", "end of query")
            raise _fail(text, pos, "expected an ADQL token", f"character {char!r}")
        kind = found.lastgroup
        token_text = found.group()
        if kind == "ws" or kind == "comment":
            if kind == "ws" and "\n" in token_text:
                newline_since_token = True
            pos = found.end()
            continue
        if kind == "ident":
            append(Token(IDENT, token_text, token_text.upper(), pos))
        elif kind == "op":
            append(Token(OP, token_text, token_text, pos))
        elif kind == "int":
            append(Token(INT, token_text, int(token_text), pos))
        elif kind == "float":
            append(Token(FLOAT, token_text, float(token_text), pos))
        elif kind == "hex":
            following = text[found.end():found.end() + 1]
            if following and (following.isalnum() or following == "_"):
                raise _fail(text, pos, "malformed hexadecimal literal",
                            f"'{token_text}{following}'")
            append(Token(HEX, token_text, int(token_text[2:], 16), pos))
        elif kind == "qident":
            body = token_text[1:-1].replace('""', '"')
            if not body:
                raise _fail(text, pos, "a delimited identifier cannot be empty", '""')
            append(Token(QIDENT, token_text, body, pos))
        else:  # string
            body = token_text[1:-1].replace("''", "'")
            previous = tokens[-1] if tokens else None
            if previous is not None and previous.kind == STRING and newline_since_token:
                previous.value = str(previous.value) + body
                previous.text = previous.text + " " + token_text
            else:
                append(Token(STRING, token_text, body, pos))
        newline_since_token = False
        pos = found.end()
    tokens.append(Token(EOF, "", None, end))
    return tokens
