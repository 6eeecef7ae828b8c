"""The typed syntax tree of an ADQL 2.1 query, as the parser builds it.

Nodes keep the character offset where they start (``pos``) so that later stages can point
at the offending place. Geometry constructors are normalised: the coordinate form and the
POINT form of CIRCLE, BOX and DISTANCE become the same node, and the deprecated coordinate
system argument is kept apart from the coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _pos() -> int:
    return field(default=-1, kw_only=True, compare=False)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Ident:
    """A name as written: regular identifiers compare case-insensitively, delimited ones exactly."""

    name: str
    delimited: bool = False
    pos: int = _pos()

    @property
    def key(self) -> str:
        """The name as matched against a case-insensitive catalog."""
        return self.name if self.delimited else self.name.lower()

    def matches(self, name: str) -> bool:
        return name == self.name if self.delimited else name.lower() == self.name.lower()

    def __str__(self) -> str:
        return '"' + self.name.replace('"', '""') + '"' if self.delimited else self.name


# -- value expressions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberLit:
    text: str
    value: int | float
    is_integer: bool
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class StringLit:
    value: str
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class NullLit:
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class ColumnRef:
    qualifier: tuple[Ident, ...]
    """Up to three parts: [catalog.][schema.]table, or a correlation name."""
    name: Ident
    pos: int = _pos()

    def __str__(self) -> str:
        return ".".join(str(part) for part in (*self.qualifier, self.name))


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    """'-', '+' or '~' (bitwise not)."""
    operand: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    """'+', '-', '*', '/', '||', '&', '|', '^'."""
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class FuncCall:
    """A mathematical, string or user-defined function; ``name`` is upper-case for ADQL's
    own functions and as written for user-defined ones."""

    name: str
    args: tuple[Expr, ...]
    udf: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Aggregate:
    name: str
    """COUNT, AVG, MIN, MAX or SUM."""
    arg: Expr | None
    """None for COUNT(*)."""
    distinct: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class CastTarget:
    name: str
    """SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR, VARCHAR, TIMESTAMP, POINT,
    CIRCLE or POLYGON."""
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Cast:
    operand: Expr
    target: CastTarget
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Coalesce:
    args: tuple[Expr, ...]
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Case:
    """CASE [operand] WHEN .. THEN .. [ELSE ..] END; with an operand the WHENs are values."""

    operand: Expr | None
    whens: tuple[tuple[Expr | Condition, Expr], ...]
    otherwise: Expr | None
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class InUnit:
    operand: Expr
    unit: str
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class ScalarSubquery:
    query: SelectExpression
    pos: int = _pos()


# -- geometry (ADQL 2.1 section 4.2) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointExpr:
    coosys: str | None
    x: Expr
    y: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class CircleExpr:
    coosys: str | None
    center: Expr
    """A PointExpr when given as coordinates, else the POINT-valued expression."""
    radius: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class BoxExpr:
    coosys: str | None
    center: Expr
    width: Expr
    height: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class PolygonExpr:
    coosys: str | None
    vertices: tuple[Expr, ...]
    """POINT-valued expressions, one per vertex (coordinate pairs become PointExpr)."""
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class RegionExpr:
    text: str
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class CentroidExpr:
    arg: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class AreaExpr:
    arg: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class CoordExpr:
    axis: int
    """1 for COORD1 (longitude), 2 for COORD2 (latitude)."""
    arg: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class CoordsysExpr:
    arg: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class DistanceExpr:
    first: Expr
    second: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class GeoPredicate:
    """CONTAINS or INTERSECTS: a number, 1 or 0, usually compared with 1 or 0."""

    name: str
    left: Expr
    right: Expr
    pos: int = _pos()


GEOMETRY_CONSTRUCTORS = (PointExpr, CircleExpr, BoxExpr, PolygonExpr, RegionExpr, CentroidExpr)

# -- conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str
    """'=', '<>', '<', '>', '<=', '>=' ('!=' is read as '<>')."""
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class InSubquery:
    operand: Expr
    query: SelectExpression
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Like:
    operand: Expr
    pattern: Expr
    negated: bool = False
    case_insensitive: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Exists:
    query: SelectExpression
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str
    """'AND' or 'OR'."""
    left: Condition
    right: Condition
    pos: int = _pos()


Expr = (
    NumberLit | StringLit | NullLit | ColumnRef | Unary | Binary | FuncCall | Aggregate | Cast
    | Coalesce | Case | InUnit | ScalarSubquery | PointExpr | CircleExpr | BoxExpr | PolygonExpr
    | RegionExpr | CentroidExpr | AreaExpr | CoordExpr | CoordsysExpr | DistanceExpr | GeoPredicate
)
Condition = Comparison | Between | InList | InSubquery | Like | IsNull | Exists | Not | BoolOp
CONDITIONS = (Comparison, Between, InList, InSubquery, Like, IsNull, Exists, Not, BoolOp)

# -- queries ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: Expr
    alias: Ident | None = None
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class StarItem:
    """``*`` (qualifier None) or ``qualifier.*``."""

    qualifier: tuple[Ident, ...] | None = None
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class TableRef:
    parts: tuple[Ident, ...]
    """[catalog.][schema.]table."""
    alias: Ident | None = None
    pos: int = _pos()

    @property
    def name(self) -> Ident:
        return self.parts[-1]

    @property
    def schema(self) -> Ident | None:
        return self.parts[-2] if len(self.parts) > 1 else None


@dataclass(frozen=True, slots=True)
class DerivedTable:
    query: SelectExpression
    alias: Ident
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Join:
    kind: str
    """INNER, LEFT, RIGHT or FULL."""
    natural: bool
    left: FromItem
    right: FromItem
    on: Condition | None = None
    using: tuple[Ident, ...] | None = None
    pos: int = _pos()


FromItem = TableRef | DerivedTable | Join


@dataclass(frozen=True, slots=True)
class OrderItem:
    expr: Expr
    """A column position (integer NumberLit), a column or an expression."""
    descending: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class SelectQuery:
    items: tuple[SelectItem | StarItem, ...]
    from_: tuple[FromItem, ...]
    where: Condition | None = None
    group_by: tuple[Expr, ...] = ()
    having: Condition | None = None
    distinct: bool = False
    top: int | None = None
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class SetOperation:
    op: str
    """UNION, EXCEPT or INTERSECT."""
    all: bool
    left: SetExpr
    right: SetExpr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class SelectExpression:
    """A query set expression with its ORDER BY and OFFSET; parenthesised operands are these."""

    body: SetExpr
    order_by: tuple[OrderItem, ...] = ()
    offset: int | None = None
    pos: int = _pos()


SetExpr = SelectQuery | SetOperation | SelectExpression


@dataclass(frozen=True, slots=True)
class CommonTable:
    name: Ident
    query: SelectExpression
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Statement:
    """A whole ADQL query: WITH clauses (main query only) and the select expression."""

    query: SelectExpression
    ctes: tuple[CommonTable, ...] = ()
    text: str = field(default="", compare=False, repr=False)
