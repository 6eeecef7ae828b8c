"""ADQL 2.1 to PostgreSQL (with q3c and pgsphere): SQL text plus the output columns' metadata.

The translator resolves every name against the ``TableCatalog`` and every function against the
allow-list in ``functions``; nothing in the query reaches the SQL except through quoting
(``sqltext``). Geometry predicates on the q3c-indexed positions become ``q3c_join``, alone or
in front of pgsphere's exact polygon test (``geometry``); geometry values in the select list
leave as DALI arrays.
"""

from __future__ import annotations

import difflib
import math
import weakref
from dataclasses import dataclass, replace

from skyvault.schema.model import Table
from skyvault.vo.adql import geometry as geom
from skyvault.vo.adql import nodes as n
from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.adql.catalog import TableCatalog
from skyvault.vo.adql.errors import AdqlSemanticError
from skyvault.vo.adql.functions import FunctionError, math_function, string_function, user_function
from skyvault.vo.adql.parser import parse
from skyvault.vo.adql.scope import ColumnInfo, RangeEntry, Scope
from skyvault.vo.adql.sqltext import number, quote_ident, quote_string
from skyvault.vo.adql.units import UnitError, conversion_factor
from skyvault.vo.adql.values import GeoCircle, GeoPoint, GeoPolygon, GeoSphere, Value, shape_of
from skyvault.vo.fields import FieldSpec

_INT_MIN, _INT_MAX = -(2**31) + 1, 2**31 - 1
_LONG_MAX = 2**63 - 1
_JOIN_SQL = {"INNER": "JOIN", "LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN", "FULL": "FULL JOIN"}


@dataclass(frozen=True)
class TranslatedQuery:
    """What the TAP service runs and how it describes the result."""

    sql: str
    """PostgreSQL text. Literals are rendered inline with safe quoting; it has no placeholders."""
    fields: list[FieldSpec]
    """One per output column, in order: names unique, metadata from the schema where the value
    is a column, inferred otherwise; geometry columns are DALI double arrays."""
    overflow_limit: int | None
    """max_rows + 1 when max_rows limits the query: receiving this many rows means the result
    was truncated (drop the last one and report OVERFLOW). None when it cannot happen."""
    params: None = None
    """Always None: pass it along as ``cursor.execute(q.sql, q.params)``."""
    tables: tuple[str, ...] = ()
    """Qualified names of the catalog tables the query reads."""


def translate(adql_text: str, catalog: TableCatalog, *,
              max_rows: int | None = None) -> TranslatedQuery:
    """Parse and translate an ADQL query; the effective row limit is min(TOP, max_rows + 1)."""
    return translate_statement(parse(adql_text), catalog, max_rows=max_rows)


def translate_statement(statement: n.Statement, catalog: TableCatalog, *,
                        max_rows: int | None = None) -> TranslatedQuery:
    if max_rows is not None and max_rows < 0:
        raise ValueError("max_rows cannot be negative")
    try:
        return _Translator(statement.text, catalog).statement(statement, max_rows)
    except RecursionError:
        # Long AND/OR chains are flattened; what still overflows is pathological nesting.
        raise AdqlSemanticError("the query is nested too deeply to translate") from None


@dataclass(slots=True)
class _Output:
    name: str
    sql: str
    value: Value
    field: FieldSpec


@dataclass(slots=True)
class _Result:
    sql: str
    outputs: list[_Output]


@dataclass(slots=True)
class _CommonTable:
    name: n.Ident
    sql_name: str
    outputs: list[_Output]


_TableColumns = list[tuple[str, str, vt.ValueType, FieldSpec]]
_TABLE_COLUMNS: dict[int, tuple[weakref.ref, _TableColumns, bool]] = {}
_ENTRY_COLUMNS: dict[tuple[int, int], list[ColumnInfo]] = {}


def _forget(key: int) -> None:
    """A cached table was garbage-collected (an upload's, say): drop what was kept for it."""
    _TABLE_COLUMNS.pop(key, None)
    for entry in [k for k in _ENTRY_COLUMNS if k[0] == key]:
        _ENTRY_COLUMNS.pop(entry, None)


def _table_columns(table: Table) -> tuple[_TableColumns, bool]:
    """Per-table column metadata, computed once per Table object (weakly held, so the tables
    of uploads do not pile up in a long-running service)."""
    cached = _TABLE_COLUMNS.get(id(table))
    if cached is not None and cached[0]() is table:
        return cached[1], cached[2]
    columns = [(c.name, quote_ident(c.name), vt.from_column_type(c.type), FieldSpec.from_column(c))
               for c in table.columns]
    q3c = any("q3c_ang2ipix" in index.expression for index in table.indexes)
    key = id(table)
    _forget(key)
    _TABLE_COLUMNS[key] = (weakref.ref(table, lambda _ref, key=key: _forget(key)), columns, q3c)
    return columns, q3c


def _entry_columns(table: Table, entry_id: int, alias: str) -> tuple[list[ColumnInfo], bool]:
    """The columns of ``table`` as FROM item ``entry_id``; the first few are cached, since
    queries number their FROM items from 1 and the same tables come back again and again."""
    described, q3c = _table_columns(table)
    key = (id(table), entry_id)
    cached = _ENTRY_COLUMNS.get(key)
    if cached is not None:
        return list(cached), q3c
    columns = [ColumnInfo(name, f"{alias}.{quoted}", kind, spec, entry_id)
               for name, quoted, kind, spec in described]
    if entry_id <= 8:
        _ENTRY_COLUMNS[key] = columns
    return list(columns), q3c


def _is_zero_or_one(node: n.Expr) -> bool:
    return isinstance(node, n.NumberLit) and node.value in (0, 1)


class _Translator:
    def __init__(self, text: str, catalog: TableCatalog) -> None:
        self.text = text
        self.catalog = catalog
        self.next_id = 0
        self.ctes: list[_CommonTable] = []
        self.tables: dict[str, None] = {}
        self.prefer: dict[int, int] = {}
        # FROM items whose sky cells are keyed by an object's pixel (geometry.point_in_circle)
        self.sky_keys: dict[int, tuple[str, float]] = {}
        self._values = {
            n.NumberLit: self.number, n.StringLit: self.string, n.NullLit: self.null,
            n.ColumnRef: self.column, n.Unary: self.unary, n.Binary: self.binary,
            n.FuncCall: self.function, n.Aggregate: self.aggregate, n.Cast: self.cast,
            n.Coalesce: self.coalesce, n.Case: self.case, n.InUnit: self.in_unit,
            n.ScalarSubquery: self.scalar_subquery, n.PointExpr: self.point,
            n.CircleExpr: self.circle, n.BoxExpr: self.box, n.PolygonExpr: self.polygon,
            n.RegionExpr: self.region, n.CentroidExpr: self.centroid, n.AreaExpr: self.area,
            n.CoordExpr: self.coord, n.CoordsysExpr: self.coordsys,
            n.DistanceExpr: self.distance, n.GeoPredicate: self.predicate_value,
        }
        self._conditions = {
            n.Comparison: self.comparison, n.Between: self.between, n.InList: self.in_list,
            n.InSubquery: self.in_subquery, n.Like: self.like, n.IsNull: self.is_null,
            n.Exists: self.exists, n.Not: self.negation, n.BoolOp: self.bool_op,
        }

    def fail(self, message: str, node: object = None) -> AdqlSemanticError:
        pos = getattr(node, "pos", None) if node is not None else None
        return AdqlSemanticError.at(message, self.text, pos)  # type: ignore[return-value]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- statement and queries --------------------------------------------------------------------

    def statement(self, statement: n.Statement, max_rows: int | None) -> TranslatedQuery:
        parts = []
        for cte in statement.ctes:
            if any(other.name.key == cte.name.key for other in self.ctes):
                raise self.fail(f"WITH query {cte.name} is defined twice", cte)
            result = self.select_expression(cte.query, None, False, None)
            sql_name = f"w{len(self.ctes) + 1}"
            parts.append(f"{sql_name} AS ({result.sql})")
            self.ctes.append(_CommonTable(cte.name, sql_name, result.outputs))
        limit = None if max_rows is None else max_rows + 1
        result = self.select_expression(statement.query, None, True, limit)
        sql = result.sql if not parts else f"WITH {', '.join(parts)} {result.sql}"
        overflow = limit
        body = statement.query.body
        if limit is not None and isinstance(body, n.SelectQuery) and body.top is not None \
                and body.top < limit:
            overflow = None
        return TranslatedQuery(sql, [output.field for output in result.outputs], overflow, None,
                               tuple(self.tables))

    def select_expression(self, node: n.SelectExpression, parent: Scope | None,
                          top_level: bool, limit: int | None) -> _Result:
        body = node.body
        if isinstance(body, n.SelectQuery):
            return self.select_query(body, parent, top_level, node.order_by, node.offset, limit)
        sql, outputs = self.set_operand(body, parent, top_level, outer=True)
        order = self.set_order_by(node.order_by, outputs)
        return _Result(sql + order + self.limit_offset(limit, node.offset), outputs)

    @staticmethod
    def limit_offset(limit: int | None, offset: int | None) -> str:
        text = "" if limit is None else f" LIMIT {limit}"
        return text if not offset else f"{text} OFFSET {offset}"

    def set_operand(self, node: n.SetExpr, parent: Scope | None, top_level: bool,
                    outer: bool = False) -> tuple[str, list[_Output]]:
        if isinstance(node, n.SelectQuery):
            result = self.select_query(node, parent, top_level, (), None, None)
            return f"({result.sql})", result.outputs
        if isinstance(node, n.SelectExpression):
            result = self.select_expression(node, parent, top_level, None)
            return f"({result.sql})", result.outputs
        left_sql, left = self.set_operand(node.left, parent, top_level)
        right_sql, right = self.set_operand(node.right, parent, top_level)
        if len(left) != len(right):
            raise self.fail(f"the two sides of {node.op} have different numbers of columns "
                            f"({len(left)} and {len(right)})", node)
        outputs = []
        for index, (a, b) in enumerate(zip(left, right, strict=True), 1):
            ta, tb = a.value.type, b.value.type
            if ta.kind == "null":
                outputs.append(replace(b, name=a.name, field=replace(b.field, name=a.name)))
                continue
            if (tb.kind != "null" and ta.kind != tb.kind) or (
                    ta.kind == "geometry" and ta.xtype != tb.xtype):
                raise self.fail(f"column {index} of {node.op} is {ta.xtype or ta.kind} on one "
                                f"side and {tb.xtype or tb.kind} on the other", node)
            if ta.is_numeric and tb.is_numeric and ta != tb:
                wide = vt.wider(ta, tb)
                value = replace(a.value, type=wide)
                a = replace(a, value=value, field=replace(a.field, datatype=wide.datatype))
            elif ta.kind == tb.kind == "string" and vt.may_hold_unicode(tb) \
                    and not vt.may_hold_unicode(ta):
                # Rows of either side go out under the left side's FIELD.
                a = replace(a, value=replace(a.value, type=vt.UNICODE_TEXT),
                            field=replace(a.field, datatype="unicodeChar", arraysize="*"))
            outputs.append(a)
        sql = f"{left_sql} {node.op}{' ALL' if node.all else ''} {right_sql}"
        return (sql if outer else f"({sql})"), outputs

    def set_order_by(self, items: tuple[n.OrderItem, ...], outputs: list[_Output]) -> str:
        if not items:
            return ""
        parts = []
        for item in items:
            expr = item.expr
            sql = self.output_reference(expr, outputs)
            if sql is None:
                raise self.fail("ORDER BY after UNION, EXCEPT or INTERSECT can only name an "
                                "output column or give its position", item)
            parts.append(sql + (" DESC" if item.descending else ""))
        return " ORDER BY " + ", ".join(parts)

    def output_reference(self, expr: n.Expr, outputs: list[_Output]) -> str | None:
        """SQL for an ORDER BY item that is a column position or an output column name."""
        if isinstance(expr, n.NumberLit) and expr.is_integer:
            position = int(expr.value)
            if not 1 <= position <= len(outputs):
                raise self.fail(f"ORDER BY {position}: there are {len(outputs)} output columns",
                                expr)
            return str(position)
        if isinstance(expr, n.ColumnRef) and not expr.qualifier:
            found = [o for o in outputs if expr.name.matches(o.name)]
            if len(found) == 1:
                return quote_ident(found[0].name)
        return None

    def select_query(self, query: n.SelectQuery, parent: Scope | None, top_level: bool,
                     order_by: tuple[n.OrderItem, ...], offset: int | None,
                     limit: int | None) -> _Result:
        scope = Scope(parent)
        from_sql = ", ".join(self.from_item(item, scope) for item in query.from_)
        where = f" WHERE {self.condition(query.where, scope)}" if query.where is not None else ""
        outputs = self.select_list(query.items, scope, top_level)
        scope.aliases = {output.name.lower(): output.value for output in outputs}
        group = ""
        if query.group_by:
            group = " GROUP BY " + ", ".join(self.plain_value(e, scope, "GROUP BY").sql
                                             for e in query.group_by)
        having = ""
        if query.having is not None:
            having = f" HAVING {self.condition(query.having, scope)}"
        order = ""
        if order_by:
            parts = []
            for item in order_by:
                sql = self.output_reference(item.expr, outputs)
                if sql is None:
                    sql = self.plain_value(item.expr, scope, "ORDER BY").sql
                parts.append(sql + (" DESC" if item.descending else ""))
            order = " ORDER BY " + ", ".join(parts)
        scope.aliases = None
        effective = query.top
        if limit is not None:
            effective = limit if effective is None else min(effective, limit)
        columns = ", ".join(f"{o.sql} AS {quote_ident(o.name)}" for o in outputs)
        sql = (f"SELECT {'DISTINCT ' if query.distinct else ''}{columns} FROM {from_sql}"
               f"{where}{group}{having}{order}{self.limit_offset(effective, offset)}")
        return _Result(sql, outputs)

    def plain_value(self, expr: n.Expr, scope: Scope, clause: str) -> Value:
        value = self.value(expr, scope)
        if value.type.kind == "geometry":
            raise self.fail(f"{clause} cannot use a geometry value", expr)
        return value

    # -- select list -------------------------------------------------------------------------------

    def select_list(self, items: tuple[n.SelectItem | n.StarItem, ...], scope: Scope,
                    top_level: bool) -> list[_Output]:
        outputs: list[_Output] = []
        used: set[str] = set()
        for item in items:
            if isinstance(item, n.StarItem):
                columns = scope.namespace if item.qualifier is None else \
                    self.entry_for(item.qualifier, scope, item).columns
                for column in columns:
                    self.add_output(outputs, used, column.name, column.value(), top_level)
                continue
            value = self.value(item.expr, scope)
            if value.type.kind == "boolean":
                raise self.fail("a condition cannot be a select item", item)
            name = item.alias.name if item.alias is not None else (value.name or "expr")
            self.add_output(outputs, used, name, value, top_level)
        return outputs

    def entry_for(self, qualifier: tuple[n.Ident, ...], scope: Scope, node: object) -> RangeEntry:
        found = [entry for entry in scope.entries if entry.answers_to(qualifier)]
        if len(found) == 1:
            return found[0]
        name = ".".join(str(part) for part in qualifier)
        if found:
            raise self.fail(f"{name} names more than one table in FROM; give them different "
                            "correlation names (AS ...)", node)
        raise self.fail(f"{name} is not a table or correlation name of this FROM clause", node)

    @staticmethod
    def add_output(outputs: list[_Output], used: set[str], name: str, value: Value,
                   top_level: bool) -> None:
        unique = name
        counter = 1
        while unique.lower() in used:
            counter += 1
            unique = f"{name}_{counter}"
        used.add(unique.lower())
        kind = value.type
        sql = value.sql
        if kind.kind == "geometry" and value.geo is not None and value.field is not None \
                and value.field.xtype == "adql:REGION":
            # A column published as an ADQL REGION (ObsCore's s_region) leaves as STC-S text.
            if top_level:
                sql = geom.stcs_text(value.geo)
            field = replace(value.field, name=unique)
        elif kind.kind == "geometry" and value.geo is not None:
            if top_level:
                sql = geom.dali_array(value.geo)
            source = value.field
            field = FieldSpec(unique, "double", kind.arraysize, kind.xtype, unit="deg",
                              ucd=source.ucd if source else None,
                              utype=source.utype if source else None,
                              description=source.description if source else None)
        else:
            if kind.is_numeric and not value.exact:
                sql = f"CAST({sql} AS {kind.pg})"
            if value.field is not None:
                field = value.field if value.field.name == unique else \
                    replace(value.field, name=unique)
            else:
                field = FieldSpec(unique, kind.datatype, kind.arraysize, kind.xtype,
                                  unit=value.unit)
        outputs.append(_Output(unique, sql, value, field))

    # -- FROM -------------------------------------------------------------------------------------

    def from_item(self, item: n.FromItem, scope: Scope) -> str:
        if isinstance(item, n.TableRef):
            return self.table_ref(item, scope)
        if isinstance(item, n.DerivedTable):
            result = self.select_expression(item.query, scope.parent, False, None)
            entry_id = self.new_id()
            alias = f"t{entry_id}"
            columns = [ColumnInfo(o.name, f"{alias}.{quote_ident(o.name)}", o.value.type,
                                  o.field, entry_id) for o in result.outputs]
            entry = RangeEntry(entry_id, alias, columns, alias=item.alias)
            self.add_entry(scope, entry)
            return f"({result.sql}) AS {alias}"
        return self.join(item, scope)

    @staticmethod
    def add_entry(scope: Scope, entry: RangeEntry) -> None:
        scope.entries.append(entry)
        scope.namespace.extend(entry.columns)

    def table_ref(self, ref: n.TableRef, scope: Scope) -> str:
        parts = ref.parts
        if len(parts) == 3:
            raise self.fail(f"catalog names are not supported: write {parts[1]}.{parts[2]}", ref)
        if len(parts) == 1:
            for cte in self.ctes:
                if parts[0].matches(cte.name.name):
                    entry_id = self.new_id()
                    alias = f"t{entry_id}"
                    columns = [ColumnInfo(o.name, f"{alias}.{quote_ident(o.name)}", o.value.type,
                                          o.field, entry_id) for o in cte.outputs]
                    self.add_entry(scope, RangeEntry(entry_id, alias, columns, alias=ref.alias,
                                                     cte_name=cte.name.name))
                    return f"{cte.sql_name} AS {alias}"
        table = self.lookup_table(ref)
        entry_id = self.new_id()
        alias = f"t{entry_id}"
        columns, q3c = _entry_columns(table, entry_id, alias)
        self.add_entry(scope, RangeEntry(entry_id, alias, columns, alias=ref.alias, table=table,
                                         q3c_indexed=q3c))
        self.prefer[entry_id] = 2 if q3c else 1
        layout = table.sky_layout
        if layout is not None and layout.key_margin_deg is not None:
            self.sky_keys[entry_id] = (f"{alias}.{quote_ident(layout.key)}",
                                       layout.key_margin_deg)
        self.tables[table.qualified_name] = None
        return f"{self.catalog.sql_name(table)} AS {alias}"

    def lookup_table(self, ref: n.TableRef) -> Table:
        name, schema = ref.name, ref.schema
        tables = list(self.catalog.lookup(name.name, schema.name if schema else None))
        if name.delimited:
            tables = [t for t in tables if t.name == name.name]
        if schema is not None and schema.delimited:
            tables = [t for t in tables if t.schema == schema.name]
        if len(tables) == 1:
            return tables[0]
        written = ".".join(str(part) for part in ref.parts)
        if tables:
            options = ", ".join(sorted(t.qualified_name for t in tables))
            raise self.fail(f"table {written} is ambiguous; qualify it with its schema: "
                            f"{options}", ref)
        known = [t.qualified_name for t in getattr(self.catalog, "tables", ())]
        close = difflib.get_close_matches(
            written.lower(), known + [k.split(".", 1)[1] for k in known], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise self.fail(f"unknown table {written}{hint}; TAP_SCHEMA.tables lists the tables "
                        "this service publishes", ref)

    def join(self, join: n.Join, scope: Scope) -> str:
        left = Scope(scope.parent)
        right = Scope(scope.parent)
        left_sql = self.from_item(join.left, left)
        right_sql = self.from_item(join.right, right)
        kind = _JOIN_SQL[join.kind]
        entries = left.entries + right.entries
        namespace: list[ColumnInfo]
        if join.natural or join.using is not None:
            if join.natural:
                right_names = {c.name.lower() for c in right.namespace}
                names = []
                for column in left.namespace:
                    if column.name.lower() in right_names and \
                            all(name.key != column.name.lower() for name in names):
                        names.append(n.Ident(column.name, False, pos=join.pos))
            else:
                names = list(join.using or ())
            merged: list[ColumnInfo] = []
            alias = f"j{self.new_id()}"
            for name in names:
                in_left = [c for c in left.namespace if name.matches(c.name)]
                in_right = [c for c in right.namespace if name.matches(c.name)]
                for side, found in (("left", in_left), ("right", in_right)):
                    if len(found) != 1:
                        problem = "no" if not found else "more than one"
                        raise self.fail(f"the {side} side of the join has {problem} column "
                                        f"{name} to join on", name)
                column = in_left[0]
                merged.append(ColumnInfo(column.name, f"{alias}.{quote_ident(column.name)}",
                                         column.type, column.field, None))
            keys = {c.name.lower() for c in merged}
            namespace = merged + [c for c in left.namespace if c.name.lower() not in keys] + \
                [c for c in right.namespace if c.name.lower() not in keys]
            if merged:
                columns = ", ".join(quote_ident(c.name) for c in merged)
                sql = f"{left_sql} {kind} {right_sql} USING ({columns}) AS {alias}"
            else:
                sql = f"{left_sql} {kind} {right_sql} ON TRUE"
        else:
            namespace = left.namespace + right.namespace
            condition = "TRUE"
            if join.on is not None:
                condition = self.condition(join.on, Scope(scope.parent, entries, namespace))
            sql = f"{left_sql} {kind} {right_sql} ON {condition}"
        scope.entries.extend(entries)
        scope.namespace.extend(namespace)
        return f"({sql})"

    # -- names ---------------------------------------------------------------------------------

    def column(self, ref: n.ColumnRef, scope: Scope) -> Value:
        qualifier = ref.qualifier
        if len(qualifier) == 3:
            raise self.fail(f"catalog names are not supported in {ref}", ref)
        current: Scope | None = scope
        while current is not None:
            if qualifier:
                entries = [e for e in current.entries if e.answers_to(qualifier)]
                if len(entries) > 1:
                    raise self.fail(f"{'.'.join(map(str, qualifier))} names more than one "
                                    "table in FROM; give them correlation names", ref)
                if entries:
                    columns = [c for c in entries[0].columns if ref.name.matches(c.name)]
                    if len(columns) == 1:
                        return columns[0].value()
                    if columns:
                        raise self.fail(f"column {ref} is ambiguous", ref)
                    raise self.unknown_column(ref, entries[0].columns,
                                              f" in {entries[0].describe()}")
            else:
                columns = current.unqualified(ref.name)
                if len(columns) == 1:
                    return columns[0].value()
                if columns:
                    owners = sorted({e.describe() for c in columns for e in current.entries
                                     if e.id == c.entry})
                    where = f" (in {', '.join(owners)})" if owners else ""
                    raise self.fail(f"column {ref.name} is ambiguous{where}; qualify it with a "
                                    "table or correlation name", ref)
                if current.aliases is not None:
                    aliased = current.aliases.get(ref.name.name.lower())
                    if aliased is not None:
                        return replace(aliased, sql=f"({aliased.sql})")
            current = current.parent
        if qualifier:
            raise self.fail(f"{'.'.join(map(str, qualifier))} is not a table or correlation "
                            "name in FROM", ref)
        raise self.unknown_column(ref, scope.namespace, "")

    def unknown_column(self, ref: n.ColumnRef, columns: list[ColumnInfo],
                       where: str) -> AdqlSemanticError:
        close = difflib.get_close_matches(ref.name.name.lower(),
                                          [c.name.lower() for c in columns], n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        if ref.name.delimited and not close:
            hint = " (double quotes make a name; a string takes single quotes)"
        return self.fail(f"unknown column {ref.name}{where}{hint}", ref)

    # -- values --------------------------------------------------------------------------------

    def value(self, expr: n.Expr, scope: Scope) -> Value:
        return self._values[type(expr)](expr, scope)  # type: ignore[operator]

    def number(self, node: n.NumberLit, scope: Scope) -> Value:
        if node.is_integer:
            value = int(node.value)
            if abs(value) > _LONG_MAX:
                raise self.fail(f"the integer {node.text} is out of range", node)
            kind = vt.INT if _INT_MIN <= value <= _INT_MAX else vt.LONG
            return Value(number(value), kind, const=value, exact=True, name="expr")
        if not math.isfinite(node.value):
            raise self.fail(f"the number {node.text} is out of range", node)
        return Value(number(float(node.value)), vt.DOUBLE, const=float(node.value), exact=True,
                     name="expr")

    def string(self, node: n.StringLit, scope: Scope) -> Value:
        return Value(quote_string(node.value), vt.string_literal(node.value), exact=True,
                     name="expr")

    def null(self, node: n.NullLit, scope: Scope) -> Value:
        return Value("NULL", vt.NULL, exact=True, name="expr")

    def numeric_operand(self, value: Value, node: object, what: str) -> None:
        if value.type.kind in ("geometry", "timestamp", "array", "boolean"):
            shown = value.type.xtype or value.type.kind
            raise self.fail(f"{what} needs numbers; this is a {shown} value", node)

    def unary(self, node: n.Unary, scope: Scope) -> Value:
        operand = self.value(node.operand, scope)
        self.numeric_operand(operand, node.operand, f"'{node.op}'")
        if node.op == "~":
            if not (operand.type.is_integer or operand.type.kind == "null"):
                raise self.fail("bitwise NOT (~) needs an integer", node)
            return Value(f"(~ {operand.sql})", operand.type, refs=operand.refs,
                         exact=operand.exact, name="expr")
        const = -operand.const if operand.const is not None else None
        kind = operand.type if operand.type.is_numeric else vt.DOUBLE
        # "- " with a space: two minus signs in a row would start an SQL comment
        return Value(f"(- {operand.sql})", kind, operand.unit, refs=operand.refs, const=const,
                     exact=operand.exact, name="expr")

    def binary(self, node: n.Binary, scope: Scope) -> Value:
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        refs = left.refs | right.refs
        op = node.op
        if op == "||":
            for side, operand in ((node.left, left), (node.right, right)):
                if operand.type.kind == "geometry":
                    raise self.fail("'||' joins strings, not geometries", side)
            return Value(f"({left.sql} || {right.sql})", vt.text_of(left.type, right.type),
                         refs=refs, exact=True, name="expr")
        self.numeric_operand(left, node.left, f"'{op}'")
        self.numeric_operand(right, node.right, f"'{op}'")
        kind = vt.wider(left.type, right.type)
        # PostgreSQL has cross-type operators among integers and among floats, and promotes
        # integers to double precision; only real mixed with integers is left to a cast.
        exact = left.exact and right.exact and left.type.is_numeric and right.type.is_numeric \
            and (left.type.is_integer == right.type.is_integer
                 or "double" in (left.type.datatype, right.type.datatype))
        if op in ("&", "|", "^"):
            for side, operand in ((node.left, left), (node.right, right)):
                if not (operand.type.is_integer or operand.type.kind == "null"):
                    raise self.fail(f"bitwise '{op}' needs integers", side)
            sql_op = "#" if op == "^" else op
            return Value(f"({left.sql} {sql_op} {right.sql})", kind, refs=refs, exact=exact,
                         name="expr")
        const = None
        if left.const is not None and right.const is not None:
            const = self.fold(op, left.const, right.const, node)
            if isinstance(const, float) and not math.isfinite(const):
                raise self.fail("the constant expression overflows", node)
        # unit inference (ADQL 2.1 section 4.9.1): sums of like units and scaling by constants
        if left.unit == right.unit or (op in ("*", "/") and right.const is not None):
            unit = left.unit if op in ("+", "-") or right.const is not None else None
        elif left.const is not None and op != "/":
            unit = right.unit
        elif right.const is not None:
            unit = left.unit
        else:
            unit = None
        return Value(f"({left.sql} {op} {right.sql})", kind, unit, refs=refs, const=const,
                     exact=exact, name="expr")

    def fold(self, op: str, a: float | int, b: float | int, node: object) -> float | int | None:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise self.fail("division by zero", node)
        if isinstance(a, int) and isinstance(b, int):
            quotient = abs(a) // abs(b)  # integer division truncates towards zero, as SQL does
            return quotient if (a >= 0) == (b >= 0) else -quotient
        return a / b

    def function(self, node: n.FuncCall, scope: Scope) -> Value:
        args = [self.value(arg, scope) for arg in node.args]
        try:
            if node.udf:
                return user_function(node.name, args)
            if node.name in ("LOWER", "UPPER"):
                return string_function(node.name, args)
            return math_function(node.name, args)
        except FunctionError as error:
            raise self.fail(str(error), node) from None

    def aggregate(self, node: n.Aggregate, scope: Scope) -> Value:
        name = node.name.lower()
        if node.arg is None:
            return Value("count(*)", vt.LONG, exact=True, name="count")
        arg = self.value(node.arg, scope)
        if arg.type.kind == "geometry":
            raise self.fail(f"{node.name} cannot aggregate geometry values", node)
        sql = f"{name}({'DISTINCT ' if node.distinct else ''}{arg.sql})"
        if node.name == "COUNT":
            return Value(sql, vt.LONG, refs=arg.refs, exact=True, name="count")
        if node.name in ("MIN", "MAX"):
            return Value(sql, arg.type, arg.unit, refs=arg.refs, exact=arg.exact, name=name)
        if arg.type.kind not in ("number", "null", "string"):
            raise self.fail(f"{node.name} needs numbers", node)
        if node.name == "AVG":
            exact = arg.exact and arg.type.datatype in ("float", "double")
            return Value(sql, vt.DOUBLE, arg.unit, refs=arg.refs, exact=exact, name=name)
        kind = vt.LONG if arg.type.is_integer else (
            arg.type if arg.type.is_numeric else vt.DOUBLE)
        exact = arg.exact and arg.type.datatype in ("short", "int", "float", "double")
        return Value(sql, kind, arg.unit, refs=arg.refs, exact=exact, name=name)

    def cast(self, node: n.Cast, scope: Scope) -> Value:
        target = node.target.name
        if target in ("POINT", "CIRCLE", "POLYGON"):
            return self.cast_geometry(node)
        operand = self.value(node.operand, scope)
        source = operand.type.kind
        name = operand.name if isinstance(node.operand, n.ColumnRef) else "cast"
        if source in ("geometry", "array", "other"):
            raise self.fail(f"cannot CAST a {operand.type.xtype or source} value to {target}",
                            node)
        if target == "TIMESTAMP":
            if source == "timestamp":
                return replace(operand, name=name)
            if source not in ("string", "null"):
                raise self.fail("only strings can be CAST to TIMESTAMP", node)
            return Value(f"(CAST({operand.sql} AS timestamp) AT TIME ZONE 'UTC')", vt.TIMESTAMP,
                         refs=operand.refs, exact=True, name=name)
        if target in ("CHAR", "VARCHAR"):
            length = node.target.length
            # PostgreSQL counts characters, as unicodeChar's arraysize does; for char the two
            # agree because such values are ASCII.
            datatype = "unicodeChar" if vt.may_hold_unicode(operand.type) else "char"
            if length is None:
                kind = vt.text_of(operand.type)
                sql_type = "text"
            elif target == "CHAR":
                kind = vt.ValueType("string", datatype, f"char({length})", str(length))
                sql_type = kind.pg
            else:
                kind = vt.ValueType("string", datatype, f"varchar({length})", f"{length}*")
                sql_type = kind.pg
            return Value(f"CAST({operand.sql} AS {sql_type})", kind, refs=operand.refs,
                         exact=True, name=name)
        if source == "timestamp":
            raise self.fail(f"a TIMESTAMP cannot be CAST to {target}", node)
        kind = {"SMALLINT": vt.SHORT, "INTEGER": vt.INT, "BIGINT": vt.LONG, "REAL": vt.FLOAT,
                "DOUBLE PRECISION": vt.DOUBLE}[target]
        return Value(f"CAST({operand.sql} AS {kind.pg})", kind, operand.unit, refs=operand.refs,
                     exact=True, name=name)

    def cast_geometry(self, node: n.Cast) -> Value:
        target = node.target.name
        if not isinstance(node.operand, n.StringLit):
            raise self.fail(f"CAST to {target} takes a string literal in DALI form", node)
        try:
            numbers = [float(word) for word in node.operand.value.replace(",", " ").split()]
        except ValueError:
            raise self.fail(f"'{node.operand.value}' is not a DALI {target.lower()} "
                            "(numbers separated by spaces)", node) from None
        wanted = {"POINT": "2 numbers", "CIRCLE": "3 numbers",
                  "POLYGON": "an even number of at least 6 numbers"}[target]
        good = {"POINT": len(numbers) == 2, "CIRCLE": len(numbers) == 3,
                "POLYGON": len(numbers) >= 6 and len(numbers) % 2 == 0}[target]
        if not good:
            raise self.fail(f"a DALI {target.lower()} has {wanted}", node)
        points = [GeoPoint(geom.constant_value(numbers[k]), geom.constant_value(numbers[k + 1]))
                  for k in range(0, len(numbers) - (len(numbers) % 2), 2)]
        if target == "POINT":
            return self.geo_value(points[0], vt.POINT, "cast")
        if target == "CIRCLE":
            self.check_radius(numbers[2], node)
            return self.geo_value(GeoCircle(points[0], geom.constant_value(numbers[2])),
                                  vt.CIRCLE, "cast")
        return self.geo_value(GeoPolygon(tuple(points)), vt.POLYGON, "cast")

    def coalesce(self, node: n.Coalesce, scope: Scope) -> Value:
        args = [self.value(arg, scope) for arg in node.args]
        for arg, expr in zip(args, node.args, strict=True):
            if arg.type.kind == "geometry":
                raise self.fail("COALESCE of geometry values is not supported", expr)
        kind = vt.common([arg.type for arg in args])
        units = {arg.unit for arg in args if arg.type.kind != "null"}
        refs = frozenset().union(*(arg.refs for arg in args))
        return Value(f"COALESCE({', '.join(arg.sql for arg in args)})", kind,
                     units.pop() if len(units) == 1 else None, refs=refs, name="coalesce")

    def case(self, node: n.Case, scope: Scope) -> Value:
        parts = ["CASE"]
        refs: frozenset[int] = frozenset()
        if node.operand is not None:
            operand = self.value(node.operand, scope)
            parts.append(operand.sql)
            refs |= operand.refs
        results = []
        for when, then in node.whens:
            if node.operand is None:
                parts.append(f"WHEN {self.condition(when, scope)}")  # type: ignore[arg-type]
            else:
                when_value = self.value(when, scope)  # type: ignore[arg-type]
                parts.append(f"WHEN {when_value.sql}")
                refs |= when_value.refs
            result = self.value(then, scope)
            parts.append(f"THEN {result.sql}")
            results.append(result)
        if node.otherwise is not None:
            result = self.value(node.otherwise, scope)
            parts.append(f"ELSE {result.sql}")
            results.append(result)
        parts.append("END")
        for result, expr in zip(results, [t for _, t in node.whens] + [node.otherwise],
                                strict=False):
            if result.type.kind == "geometry":
                raise self.fail("CASE cannot give geometry values", expr)
            refs |= result.refs
        kind = vt.common([r.type for r in results])
        return Value(" ".join(parts), kind, refs=refs, name="case")

    def in_unit(self, node: n.InUnit, scope: Scope) -> Value:
        operand = self.value(node.operand, scope)
        self.numeric_operand(operand, node.operand, "IN_UNIT")
        try:
            factor = conversion_factor(operand.unit or "", node.unit)
        except UnitError as error:
            raise self.fail(f"IN_UNIT: {error}", node) from None
        const = operand.const * factor if operand.const is not None else None
        name = operand.name if isinstance(node.operand, n.ColumnRef) else "in_unit"
        return Value(f"({operand.sql} * {number(factor)})", vt.DOUBLE, node.unit,
                     refs=operand.refs, const=const, name=name)

    def scalar_subquery(self, node: n.ScalarSubquery, scope: Scope) -> Value:
        result = self.select_expression(node.query, scope, False, None)
        if len(result.outputs) != 1:
            raise self.fail(f"a subquery used as a value must give one column, not "
                            f"{len(result.outputs)}", node)
        output = result.outputs[0]
        kind = output.value.type
        sql = f"({result.sql})"
        geo = GeoSphere(sql, kind.xtype or "") if kind.kind == "geometry" else None
        return Value(sql, kind, output.value.unit, geo=geo, exact=True, name=output.name)

    # -- geometry values ------------------------------------------------------------------------

    def geo_value(self, geo: GeoPoint | GeoSphere | GeoCircle | GeoPolygon, kind: vt.ValueType,
                  name: str, refs: frozenset[int] = frozenset()) -> Value:
        return Value(geom.to_pgsphere(geo), kind, "deg", geo=geo, refs=refs, exact=True,
                     name=name)

    def check_coosys(self, coosys: str | None, node: object) -> None:
        if coosys is None or not coosys.strip():
            return
        if coosys.split()[0].upper() == "ICRS":
            return
        raise self.fail(f"coordinate system '{coosys}' is not supported: positions here are "
                        "ICRS; write 'ICRS' or leave the coordinate system out", node)

    def coordinate(self, expr: n.Expr, scope: Scope, what: str) -> Value:
        value = self.value(expr, scope)
        if value.type.kind not in ("number", "null"):
            raise self.fail(f"{what} must be a number in degrees, not a "
                            f"{value.type.xtype or value.type.kind} value", expr)
        return value

    def check_radius(self, radius: float | int | None, node: object) -> None:
        if radius is not None and not 0 <= radius <= 180:
            raise self.fail(f"a radius of {radius} degrees is outside 0..180", node)

    def point(self, node: n.PointExpr, scope: Scope) -> Value:
        self.check_coosys(node.coosys, node)
        ra = self.coordinate(node.x, scope, "the longitude of POINT")
        dec = self.coordinate(node.y, scope, "the latitude of POINT")
        if dec.const is not None and not -90 <= dec.const <= 90:
            raise self.fail(f"a latitude of {dec.const} degrees is outside -90..90", node.y)
        return self.geo_value(GeoPoint(ra, dec), vt.POINT, "point", ra.refs | dec.refs)

    def point_of(self, expr: n.Expr, scope: Scope, what: str) -> Value:
        value = self.value(expr, scope)
        if value.geo is None or shape_of(value.geo) != "point":
            shown = value.type.xtype or value.type.kind
            raise self.fail(f"{what} needs a POINT, not a {shown} value", expr)
        return value

    def circle(self, node: n.CircleExpr, scope: Scope) -> Value:
        self.check_coosys(node.coosys, node)
        center = self.point_of(node.center, scope, "the centre of CIRCLE")
        radius = self.coordinate(node.radius, scope, "the radius of CIRCLE")
        self.check_radius(radius.const, node.radius)
        geo = GeoCircle(center.geo, radius)  # type: ignore[arg-type]
        return self.geo_value(geo, vt.CIRCLE, "circle", center.refs | radius.refs)

    def box(self, node: n.BoxExpr, scope: Scope) -> Value:
        self.check_coosys(node.coosys, node)
        center = self.point_of(node.center, scope, "the centre of BOX")
        width = self.coordinate(node.width, scope, "the width of BOX")
        height = self.coordinate(node.height, scope, "the height of BOX")
        geo = center.geo
        if not (isinstance(geo, GeoPoint) and geo.ra.const is not None
                and geo.dec.const is not None and width.const is not None
                and height.const is not None):
            raise self.fail("BOX is supported with constant centre, width and height only "
                            "(BOX is deprecated in ADQL 2.1; POLYGON takes any vertices)", node)
        if not (0 < width.const < 180 and 0 < height.const < 180):
            raise self.fail("BOX width and height must be between 0 and 180 degrees", node)
        corners = geom.box_vertices(float(geo.ra.const), float(geo.dec.const),
                                    float(width.const), float(height.const))
        polygon = GeoPolygon(tuple(GeoPoint(geom.constant_value(ra), geom.constant_value(dec))
                                   for ra, dec in corners))
        return self.geo_value(polygon, vt.POLYGON, "box")

    def polygon(self, node: n.PolygonExpr, scope: Scope) -> Value:
        self.check_coosys(node.coosys, node)
        vertices = []
        refs: frozenset[int] = frozenset()
        for vertex in node.vertices:
            value = self.point_of(vertex, scope, "a vertex of POLYGON")
            vertices.append(value.geo)
            refs |= value.refs
        constant = [(v.ra.const, v.dec.const) for v in vertices if isinstance(v, GeoPoint)
                    and v.ra.const is not None and v.dec.const is not None]
        if len(constant) == len(vertices) and len(set(constant)) < 3:
            raise self.fail("a POLYGON needs at least three distinct vertices", node)
        if len(constant) == len(vertices) and geom.edges_cross(
                [(float(ra), float(dec)) for ra, dec in constant]):  # type: ignore[arg-type]
            raise self.fail("the edges of this POLYGON cross each other: give the vertices in "
                            "order around the polygon", node)
        geo = GeoPolygon(tuple(vertices))  # type: ignore[arg-type]
        return self.geo_value(geo, vt.POLYGON, "polygon", refs)

    def region(self, node: n.RegionExpr, scope: Scope) -> Value:
        raise self.fail("REGION is not supported (an optional ADQL 2.1 feature); use POINT, "
                        "CIRCLE, BOX or POLYGON", node)

    def geometry_of(self, expr: n.Expr, scope: Scope, what: str) -> Value:
        value = self.value(expr, scope)
        if value.geo is None:
            raise self.fail(f"{what} needs a geometry (POINT, CIRCLE, BOX, POLYGON or a "
                            f"geometry column), not a {value.type.kind}", expr)
        return value

    def centroid(self, node: n.CentroidExpr, scope: Scope) -> Value:
        value = self.geometry_of(node.arg, scope, "CENTROID")
        geo = value.geo
        if isinstance(geo, GeoPoint) or (isinstance(geo, GeoSphere) and geo.shape == "point"):
            return replace(value, name="centroid")
        if isinstance(geo, GeoCircle):
            center = geo.center
            return self.geo_value(center, vt.POINT, "centroid", value.refs)
        if isinstance(geo, GeoPolygon) and all(
                isinstance(v, GeoPoint) and v.ra.const is not None and v.dec.const is not None
                for v in geo.vertices):
            ra, dec = geom.centroid_of_vertices([(float(v.ra.const), float(v.dec.const))  # type: ignore[union-attr,arg-type]
                                                 for v in geo.vertices])
            return self.geo_value(GeoPoint(geom.constant_value(ra), geom.constant_value(dec)),
                                  vt.POINT, "centroid")
        raise self.fail("CENTROID is supported for points, circles and polygons with constant "
                        "vertices", node)

    def area(self, node: n.AreaExpr, scope: Scope) -> Value:
        value = self.geometry_of(node.arg, scope, "AREA")
        return Value(geom.area_sql(value.geo), vt.DOUBLE, "deg**2",  # type: ignore[arg-type]
                     refs=value.refs, exact=True, name="area")

    def coord(self, node: n.CoordExpr, scope: Scope) -> Value:
        value = self.point_of(node.arg, scope, f"COORD{node.axis}")
        geo = value.geo
        name = f"coord{node.axis}"
        if isinstance(geo, GeoPoint):
            part = geo.ra if node.axis == 1 else geo.dec
            return replace(part, name=part.name if part.field is not None else name)
        ra, dec = geom.point_coordinates(geo)  # type: ignore[arg-type]
        return Value(ra if node.axis == 1 else dec, vt.DOUBLE, "deg", refs=value.refs,
                     exact=True, name=name)

    def coordsys(self, node: n.CoordsysExpr, scope: Scope) -> Value:
        self.geometry_of(node.arg, scope, "COORDSYS")
        return Value("'ICRS'::text", vt.TEXT, exact=True, name="coordsys")

    def distance(self, node: n.DistanceExpr, scope: Scope) -> Value:
        first = self.point_of(node.first, scope, "DISTANCE")
        second = self.point_of(node.second, scope, "DISTANCE")
        ra1, dec1 = geom.point_coordinates(first.geo)  # type: ignore[arg-type]
        ra2, dec2 = geom.point_coordinates(second.geo)  # type: ignore[arg-type]
        return Value(f"q3c_dist({ra1}, {dec1}, {ra2}, {dec2})", vt.DOUBLE, "deg",
                     refs=first.refs | second.refs, exact=True, name="distance")

    def predicate_value(self, node: n.GeoPredicate, scope: Scope) -> Value:
        sql = self.geo_predicate(node, scope)
        return Value(f"CAST({sql} AS integer)", vt.INT, exact=True, name=node.name.lower())

    # -- geometry predicates --------------------------------------------------------------------

    def geo_predicate(self, node: n.GeoPredicate, scope: Scope) -> str:
        first = self.geometry_of(node.left, scope, node.name)
        second = self.geometry_of(node.right, scope, node.name)
        if node.name == "CONTAINS":
            return self.contains(first, second, node)
        # INTERSECTS with a point is CONTAINS with the point first (ADQL 2.1 section 4.2.12)
        if shape_of(first.geo) == "point":  # type: ignore[arg-type]
            return self.contains(first, second, node)
        if shape_of(second.geo) == "point":  # type: ignore[arg-type]
            return self.contains(second, first, node)
        a, b = first.geo, second.geo
        if isinstance(a, GeoCircle) and isinstance(b, GeoCircle):
            reach = Value(f"({a.radius.sql} + {b.radius.sql})", vt.DOUBLE,
                          refs=a.radius.refs | b.radius.refs)
            return geom.point_in_circle(a.center, b.center, reach, first.refs, second.refs,
                                        prefer=self.prefer, sky_keys=self.sky_keys)
        return f"({first.sql} && {second.sql})"

    def contains(self, inner: Value, outer: Value, node: object) -> str:
        inner_geo, outer_geo = inner.geo, outer.geo
        inner_shape = shape_of(inner_geo)  # type: ignore[arg-type]
        outer_shape = shape_of(outer_geo)  # type: ignore[arg-type]
        if inner_shape == "point":
            # A stored pgsphere point is tested with pgsphere (its GiST index can serve),
            # unless the circle is centred on a q3c-indexed position.
            stored = isinstance(inner_geo, GeoSphere) and not (
                isinstance(outer_geo, GeoCircle) and geom.indexed_entry(outer_geo.center))
            if stored and outer_shape != "point":
                return f"({inner.sql} <@ {outer.sql})"
            if isinstance(outer_geo, GeoCircle):
                return geom.point_in_circle(inner_geo, outer_geo.center,  # type: ignore[arg-type]
                                            outer_geo.radius, inner.refs, outer.refs,
                                            prefer=self.prefer, sky_keys=self.sky_keys)
            if isinstance(outer_geo, GeoPolygon):
                return geom.point_in_polygon(inner_geo, outer_geo)  # type: ignore[arg-type]
            if outer_shape == "point":
                return f"({inner.sql} = {outer.sql})"
            return f"({inner.sql} <@ {outer.sql})"
        if outer_shape == "point":
            raise self.fail(f"a {inner_shape} cannot lie within a point; CONTAINS(point, "
                            f"{inner_shape}) tests whether the point lies in the {inner_shape}",
                            node)
        return f"({inner.sql} <@ {outer.sql})"

    def distance_within(self, node: n.DistanceExpr, radius_node: n.Expr, strict: bool,
                        scope: Scope) -> str:
        first = self.point_of(node.first, scope, "DISTANCE")
        second = self.point_of(node.second, scope, "DISTANCE")
        radius = self.coordinate(radius_node, scope, "the distance compared with DISTANCE")
        for stored, other in ((first, second), (second, first)):
            if isinstance(stored.geo, GeoSphere) and geom.indexed_entry(other.geo) is None:
                # a stored pgsphere point: a circle around the other point can use its index
                circle = GeoCircle(other.geo, radius)  # type: ignore[arg-type]
                return f"({stored.sql} <@ {geom.pg_circle(circle)})"
        return geom.point_in_circle(first.geo, second.geo, radius,  # type: ignore[arg-type]
                                    first.refs, second.refs, strict, self.prefer,
                                    self.sky_keys)

    # -- conditions -------------------------------------------------------------------------------

    def condition(self, node: n.Condition, scope: Scope) -> str:
        return self._conditions[type(node)](node, scope)  # type: ignore[operator]

    def comparison(self, node: n.Comparison, scope: Scope) -> str:
        left, right, op = node.left, node.right, node.op
        for predicate, other in ((left, right), (right, left)):
            if isinstance(predicate, n.GeoPredicate) and _is_zero_or_one(other) \
                    and op in ("=", "<>"):
                sql = self.geo_predicate(predicate, scope)
                holds = (other.value == 1) == (op == "=")  # type: ignore[union-attr]
                return sql if holds else f"(NOT {sql})"
        if isinstance(left, n.DistanceExpr) and op in ("<", "<="):
            return self.distance_within(left, right, op == "<", scope)
        if isinstance(right, n.DistanceExpr) and op in (">", ">="):
            return self.distance_within(right, left, op == ">", scope)
        first = self.value(left, scope)
        second = self.value(right, scope)
        geometric = [first.type.kind == "geometry", second.type.kind == "geometry"]
        if any(geometric):
            if not all(geometric) or op not in ("=", "<>"):
                raise self.fail("geometry values can only be compared with = or <> to other "
                                "geometry values", node)
            if shape_of(first.geo) != shape_of(second.geo):  # type: ignore[arg-type]
                return "FALSE" if op == "=" else "TRUE"
        return f"({first.sql} {op} {second.sql})"

    def between(self, node: n.Between, scope: Scope) -> str:
        operand = self.plain_value(node.operand, scope, "BETWEEN")
        low = self.plain_value(node.low, scope, "BETWEEN")
        high = self.plain_value(node.high, scope, "BETWEEN")
        negation = "NOT " if node.negated else ""
        return f"({operand.sql} {negation}BETWEEN {low.sql} AND {high.sql})"

    def in_list(self, node: n.InList, scope: Scope) -> str:
        operand = self.plain_value(node.operand, scope, "IN")
        items = ", ".join(self.plain_value(item, scope, "IN").sql for item in node.items)
        return f"({operand.sql} {'NOT ' if node.negated else ''}IN ({items}))"

    def in_subquery(self, node: n.InSubquery, scope: Scope) -> str:
        operand = self.plain_value(node.operand, scope, "IN")
        result = self.select_expression(node.query, scope, False, None)
        if len(result.outputs) != 1:
            raise self.fail(f"the subquery of IN must give one column, not "
                            f"{len(result.outputs)}", node)
        return f"({operand.sql} {'NOT ' if node.negated else ''}IN ({result.sql}))"

    def like(self, node: n.Like, scope: Scope) -> str:
        operand = self.value(node.operand, scope)
        pattern = self.value(node.pattern, scope)
        op = ("NOT " if node.negated else "") + ("ILIKE" if node.case_insensitive else "LIKE")
        # ADQL has no escape character; PostgreSQL's default one (backslash) is switched off.
        return f"({operand.sql} {op} {pattern.sql} ESCAPE '')"

    def is_null(self, node: n.IsNull, scope: Scope) -> str:
        operand = self.value(node.operand, scope)
        return f"({operand.sql} IS {'NOT ' if node.negated else ''}NULL)"

    def exists(self, node: n.Exists, scope: Scope) -> str:
        result = self.select_expression(node.query, scope, False, None)
        return f"(EXISTS ({result.sql}))"

    def negation(self, node: n.Not, scope: Scope) -> str:
        return f"(NOT {self.condition(node.operand, scope)})"

    def bool_op(self, node: n.BoolOp, scope: Scope) -> str:
        # "a OR b OR c ..." parses left-deep; walk the chain instead of recursing down it, so
        # that thousands of terms do not exhaust Python's stack.
        operands = [node.right]
        left: n.Condition = node.left
        while isinstance(left, n.BoolOp) and left.op == node.op:
            operands.append(left.right)
            left = left.left
        operands.append(left)
        parts = [self.condition(operand, scope) for operand in reversed(operands)]
        return "(" + f" {node.op} ".join(parts) + ")"
