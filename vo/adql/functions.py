"""The functions an ADQL query may call: ADQL 2.1's mathematical and string functions and an
allow-list of user-defined functions, each with its PostgreSQL form.

Nothing else is callable: a function name not listed here is refused, so ADQL cannot reach
PostgreSQL functions by name. ``UDF_SIGNATURES`` feeds TAPRegExt (the service's capabilities).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.adql.values import GeoSphere, Value


class FunctionError(ValueError):
    """A function called with arguments it cannot take; the translator adds the position."""


def _refs(args: list[Value]) -> frozenset[int]:
    refs: frozenset[int] = frozenset()
    for arg in args:
        refs |= arg.refs
    return refs


def _numeric(name: str, args: list[Value]) -> None:
    for arg in args:
        if arg.type.kind not in ("number", "null", "string"):
            raise FunctionError(f"{name} needs numbers, not a {arg.type.xtype or arg.type.kind} "
                                "value")


def _double(name: str, sql: str, args: list[Value], unit: str | None = None,
            exact: bool = False) -> Value:
    return Value(sql, vt.DOUBLE, unit, refs=_refs(args), exact=exact, name=name.lower())


def _as_double(arg: Value) -> str:
    if arg.exact and arg.type.pg == "double precision":
        return arg.sql
    if arg.const is not None and isinstance(arg.const, float):
        return arg.sql
    return f"CAST({arg.sql} AS double precision)"


def _same_or_double(arg: Value) -> vt.ValueType:
    return arg.type if arg.type.is_numeric else vt.DOUBLE


# -- ADQL 2.1 section 2.3: mathematical and trigonometrical functions ------------------------------

_SIMPLE_DOUBLE = {
    # ADQL name: PostgreSQL function (all of double precision)
    "EXP": "exp", "LOG": "ln", "LOG10": "log", "SQRT": "sqrt", "ACOS": "acos", "ASIN": "asin",
    "ATAN": "atan", "COS": "cos", "COT": "cot", "SIN": "sin", "TAN": "tan", "DEGREES": "degrees",
    "RADIANS": "radians", "ATAN2": "atan2", "POWER": "power",
}


def math_function(name: str, args: list[Value]) -> Value:
    _numeric(name, args)
    if name in _SIMPLE_DOUBLE:
        # LOG is the natural logarithm in ADQL but base 10 in PostgreSQL: hence ln and log.
        unit = {"DEGREES": "deg", "RADIANS": "rad"}.get(name)
        cast = [_as_double(arg) for arg in args]
        return _double(name, f"{_SIMPLE_DOUBLE[name]}({', '.join(cast)})", args, unit, True)
    if name == "PI":
        return Value("pi()", vt.DOUBLE, const=3.141592653589793, exact=True, name="pi")
    if name == "RAND":
        # The optional seed has "undefined semantics" (ADQL 2.1 table 1); it is ignored.
        return Value("random()", vt.DOUBLE, exact=True, name="rand")
    arg = args[0]
    if name == "ABS":
        return Value(f"abs({arg.sql})", _same_or_double(arg), arg.unit, refs=arg.refs,
                     exact=arg.exact and arg.type.is_numeric, name="abs",
                     const=abs(arg.const) if arg.const is not None else None)
    if name in ("CEILING", "FLOOR"):
        fn = "ceil" if name == "CEILING" else "floor"
        return _double(name, f"{fn}({_as_double(arg)})", args, arg.unit, True)
    if name in ("ROUND", "TRUNCATE"):
        fn = "round" if name == "ROUND" else "trunc"
        if len(args) == 1:
            return _double(name, f"{fn}({_as_double(arg)})", args, arg.unit, True)
        # round/trunc with a number of places exist for numeric only in PostgreSQL
        return _double(name, f"CAST({fn}(CAST({arg.sql} AS numeric), {args[1].sql}) AS "
                             "double precision)", args, arg.unit, True)
    if name == "MOD":
        first, second = args
        if first.type.is_integer and second.type.is_integer:
            return Value(f"mod({first.sql}, {second.sql})", vt.wider(first.type, second.type),
                         refs=_refs(args), exact=first.type.pg == second.type.pg, name="mod")
        return _double(name, f"CAST(mod(CAST({first.sql} AS numeric), CAST({second.sql} AS "
                             "numeric)) AS double precision)", args, None, True)
    raise FunctionError(f"unknown function {name}")  # pragma: no cover - parser checks names


def string_function(name: str, args: list[Value]) -> Value:
    arg = args[0]
    if arg.type.kind in ("geometry", "number", "timestamp"):
        raise FunctionError(f"{name} needs a string, not a {arg.type.xtype or arg.type.kind}")
    return Value(f"{name.lower()}({arg.sql})", vt.text_of(arg.type), refs=arg.refs,
                 exact=True, name=name.lower())


# -- user-defined functions --------------------------------------------------------------------


@dataclass(frozen=True)
class Udf:
    signature: str
    """TAPRegExt form (ADQL 2.1 section 4.3.2)."""
    description: str
    arities: tuple[int, ...]
    build: Callable[[list[Value]], Value]
    aggregate: bool = False


def _int(sql: str, args: list[Value], name: str) -> Value:
    return Value(f"CAST({sql} AS integer)", vt.INT, refs=_refs(args), exact=True, name=name)


def _healpix_index(args: list[Value]) -> Value:
    order = args[0]
    if len(args) == 2:
        point = args[1]
        if point.type.xtype != "point":
            raise FunctionError("ivo_healpix_index(order, point) needs a POINT")
        spoint = point.sql
    else:
        spoint = f"spoint(radians({args[1].sql}), radians({args[2].sql}))"
    return Value(f"healpix_nest(CAST({order.sql} AS integer), {spoint})", vt.LONG,
                 refs=_refs(args), exact=True, name="ivo_healpix_index")


def _healpix_center(args: list[Value]) -> Value:
    sql = f"center_of_healpix_nest(CAST({args[0].sql} AS integer), CAST({args[1].sql} AS bigint))"
    return Value(sql, vt.POINT, "deg", geo=GeoSphere(sql, "point"), refs=_refs(args),
                 exact=True, name="ivo_healpix_center")


def _hashlist_has(args: list[Value]) -> Value:
    hashlist, item = args
    return _int(f"lower({item.sql}) = ANY(string_to_array(lower({hashlist.sql}), '#'))", args,
                "ivo_hashlist_has")


def _nocasematch(args: list[Value]) -> Value:
    value, pattern = args
    return _int(f"{value.sql} ILIKE {pattern.sql} ESCAPE ''", args, "ivo_nocasematch")


def _hasword(args: list[Value]) -> Value:
    haystack, needle = args
    return _int(f"to_tsvector('simple', {haystack.sql}) @@ phraseto_tsquery('simple', "
                f"{needle.sql})", args, "ivo_hasword")


def _string_agg(args: list[Value]) -> Value:
    value, delimiter = args
    return Value(f"string_agg(CAST({value.sql} AS text), {delimiter.sql})",
                 vt.text_of(value.type, delimiter.type), refs=_refs(args), exact=True,
                 name="ivo_string_agg")


def _interval_overlaps(args: list[Value]) -> Value:
    low1, high1, low2, high2 = (arg.sql for arg in args)
    return _int(f"({high1} >= {low2} AND {high2} >= {low1})", args, "ivo_interval_overlaps")


def _timestamp_arg(name: str, arg: Value) -> str:
    if arg.type.kind == "timestamp":
        return arg.sql
    if arg.type.kind in ("string", "null"):
        return f"(CAST({arg.sql} AS timestamp) AT TIME ZONE 'UTC')"
    raise FunctionError(f"{name} needs a TIMESTAMP")


def _to_jd(args: list[Value]) -> Value:
    sql = f"(extract(epoch FROM {_timestamp_arg('ivo_to_jd', args[0])}) / 86400.0 + 2440587.5)"
    return Value(f"CAST({sql} AS double precision)", vt.DOUBLE, "d", refs=_refs(args),
                 exact=True, name="ivo_to_jd")


def _to_mjd(args: list[Value]) -> Value:
    sql = f"(extract(epoch FROM {_timestamp_arg('ivo_to_mjd', args[0])}) / 86400.0 + 40587)"
    return Value(f"CAST({sql} AS double precision)", vt.DOUBLE, "d", refs=_refs(args),
                 exact=True, name="ivo_to_mjd")


UDFS: dict[str, Udf] = {
    "ivo_healpix_index": Udf(
        "ivo_healpix_index(hpxOrder INTEGER, ra DOUBLE PRECISION, dec DOUBLE PRECISION) -> "
        "BIGINT",
        "Index of the HEALPix cell (nested scheme) of order hpxOrder containing ra, dec "
        "(degrees, ICRS); ivo_healpix_index(hpxOrder, point) works as well.",
        (2, 3), _healpix_index),
    "ivo_healpix_center": Udf(
        "ivo_healpix_center(hpxOrder INTEGER, hpxIndex BIGINT) -> POINT",
        "The centre of the HEALPix cell (nested scheme) hpxIndex of order hpxOrder.",
        (2,), _healpix_center),
    "ivo_hashlist_has": Udf(
        "ivo_hashlist_has(hashlist VARCHAR(*), item VARCHAR(*)) -> INTEGER",
        "1 if item is, compared case-insensitively, one of the words of hashlist, a list of "
        "words separated by '#'; 0 otherwise.",
        (2,), _hashlist_has),
    "ivo_nocasematch": Udf(
        "ivo_nocasematch(value VARCHAR(*), pattern VARCHAR(*)) -> INTEGER",
        "1 if value matches pattern (LIKE syntax) ignoring case, 0 otherwise.",
        (2,), _nocasematch),
    "ivo_hasword": Udf(
        "ivo_hasword(haystack VARCHAR(*), needle VARCHAR(*)) -> INTEGER",
        "1 if needle occurs as a word (or sequence of words) in haystack, ignoring case and "
        "punctuation; 0 otherwise.",
        (2,), _hasword),
    "ivo_string_agg": Udf(
        "ivo_string_agg(expr VARCHAR(*), delimiter VARCHAR(*)) -> VARCHAR(*)",
        "Aggregate: the values of expr in a group, joined by delimiter.",
        (2,), _string_agg, aggregate=True),
    "ivo_interval_overlaps": Udf(
        "ivo_interval_overlaps(l1 DOUBLE PRECISION, h1 DOUBLE PRECISION, l2 DOUBLE PRECISION, "
        "h2 DOUBLE PRECISION) -> INTEGER",
        "1 if the intervals [l1, h1] and [l2, h2] overlap, 0 otherwise.",
        (4,), _interval_overlaps),
    "ivo_to_jd": Udf(
        "ivo_to_jd(t TIMESTAMP) -> DOUBLE PRECISION",
        "The Julian Date of the timestamp t (UTC).",
        (1,), _to_jd),
    "ivo_to_mjd": Udf(
        "ivo_to_mjd(t TIMESTAMP) -> DOUBLE PRECISION",
        "The Modified Julian Date of the timestamp t (UTC).",
        (1,), _to_mjd),
}

UDF_SIGNATURES: tuple[tuple[str, str], ...] = tuple(
    (udf.signature, udf.description) for udf in UDFS.values())
"""(form, description) of every UDF, for TAPRegExt ``languageFeatures`` of type
ivo://ivoa.net/std/tapregext#features-udf."""


def user_function(name: str, args: list[Value]) -> Value:
    udf = UDFS.get(name.lower())
    if udf is None:
        known = ", ".join(sorted(UDFS))
        raise FunctionError(f"unknown function {name}; the functions beyond ADQL's own are: "
                            f"{known}")
    if len(args) not in udf.arities:
        counts = " or ".join(str(a) for a in udf.arities)
        raise FunctionError(f"{name} takes {counts} arguments, not {len(args)}: {udf.signature}")
    return udf.build(args)
