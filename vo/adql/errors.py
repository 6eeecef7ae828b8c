"""The two ways an ADQL query can be refused, each naming where and why.

A syntax error is a query that is not ADQL 2.1; a semantic error is ADQL that cannot run here
(unknown table, column or function, ambiguous name, unsupported feature). The TAP layer turns
both into an ERROR VOTable with the message as it stands, so messages are written for people.
"""

from __future__ import annotations


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class AdqlError(ValueError):
    """Any refusal of an ADQL query; ``reason`` is the message without the position."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None):
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(self._compose())

    def _compose(self) -> str:
        return self.reason if self.line is None else (
            f"{self.reason} (at line {self.line}, column {self.column})")

    @classmethod
    def at(cls, reason: str, text: str, offset: int | None) -> AdqlError:
        if offset is None or offset < 0:
            return cls(reason)
        line, column = line_and_column(text, offset)
        return cls(reason, line, column)


class AdqlSyntaxError(AdqlError):
    """The text is not ADQL 2.1: ``expected X at line L, column C, found 'Y'``."""

    def __init__(self, expected: str, line: int, column: int, found: str):
        self.expected = expected
        self.found = found
        reason = f"{expected} at line {line}, column {column}, found {found}"
        ValueError.__init__(self, reason)
        self.reason = reason
        self.line = line
        self.column = column

    def _compose(self) -> str:  # pragma: no cover - the message is built in __init__
        return self.reason


class AdqlSemanticError(AdqlError):
    """Valid ADQL that cannot be run against this service's tables and functions."""
