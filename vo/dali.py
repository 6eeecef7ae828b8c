"""DALI 1.1 request parameters, and the TAP 1.1 query parameters built on them.

Pure functions over (name, value) pairs, so that the sync endpoint, the async job creation and
the worker (which reads a job's stored parameters) all parse a query the same way.

- Parameter names are case-insensitive (DALI 3.1); unknown parameters are ignored (TAP 1.1
  section 2.3).
- A single-valued parameter given twice is an error (DALI 3.1, "Multiple Values"), even with
  equal values, since a client sending two values has a bug we should not hide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# -- errors -------------------------------------------------------------------------------------


class DaliError(Exception):
    """A request the service refuses; ``http_status`` is what the response carries."""

    http_status = 400


class ParameterError(DaliError):
    """A parameter is missing, repeated or has a value the service cannot use."""


class RepeatedParameter(ParameterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Parameter {name} may be given only once (it has different values)")
        self.name = name


class MissingParameter(ParameterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Parameter {name} is required")
        self.name = name


class InvalidParameter(ParameterError):
    """A parameter's value is not acceptable; the message says why."""


class UploadError(DaliError):
    """An uploaded table cannot be read or used."""


class UploadTooLarge(UploadError):
    http_status = 413


# -- case-insensitive parameters --------------------------------------------------------------


class Parameters:
    """The parameters of one request, by upper-cased name, in the order given."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name.upper(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._values

    def __bool__(self) -> bool:
        return bool(self._values)

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name.upper(), ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of a single-valued parameter; two different values are an error (DALI 1.1
        section 3.1). The same value given twice is still one value: astroquery's TapPlus
        sends ``FORMAT=votable`` and ``format=votable`` with every upload."""
        values = self._values.get(name.upper())
        if not values:
            return default
        if any(value != values[0] for value in values[1:]):
            raise RepeatedParameter(name.upper())
        return values[0]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise MissingParameter(name.upper())
        return value

    def items(self) -> list[tuple[str, str]]:
        """(upper-cased name, value) pairs; repeated names appear once per value."""
        return [(name, value) for name, values in self._values.items() for value in values]

    def names(self) -> list[str]:
        return list(self._values)

    def merged(self, other: Parameters) -> Parameters:
        """These parameters with ``other``'s added (UWS parameter updates while PENDING).

        A name present in ``other`` replaces the values here, except UPLOAD, which accumulates
        since each UPLOAD value names further tables.
        """
        result = Parameters()
        result._values = {name: list(values) for name, values in self._values.items()}
        for name, values in other._values.items():
            if name == "UPLOAD":
                result._values.setdefault(name, []).extend(values)
            else:
                result._values[name] = list(values)
        return result


# -- value syntax -------------------------------------------------------------------------------


def parse_finite(text: str, name: str,
                 error: Callable[[str], Exception] = InvalidParameter) -> float:
    """A decimal number, finite; otherwise ``error`` (each protocol passes its own error type)
    with a message naming ``name``. Every service's small number parameters go through here."""
    try:
        value = float(text.strip())
    except ValueError:
        raise error(f"{name} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise error(f"{name} must be a finite number, not {text!r}")
    return value


def parse_non_negative_int(name: str, text: str) -> int:
    """An integer as DALI writes numbers (VOTable syntax, here decimal digits only)."""
    stripped = text.strip()
    if not re.fullmatch(r"\+?\d+", stripped):
        raise InvalidParameter(f"{name} must be a non-negative integer, not {text!r}")
    return int(stripped)


def parse_boolean(name: str, text: str) -> bool:
    """An XML Schema boolean (DALI 3.3.2): true, false, 1, 0."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidParameter(f"{name} must be true or false, not {text!r}")


# -- TAP query parameters -------------------------------------------------------------------------

ADQL_LANGS = {"ADQL": "2.1", "ADQL-2.0": "2.0", "ADQL-2.1": "2.1"}
"""Accepted LANG values (compared case-insensitively) and the ADQL version each selects."""

_UPLOAD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class UploadSpec:
    """One table of the UPLOAD parameter: a name for TAP_UPLOAD and where its content is."""

    table_name: str
    uri: str

    @property
    def inline_part(self) -> str | None:
        """For ``param:name`` (DALI 3.4.4 inline upload): the multipart part's name."""
        return self.uri[len("param:"):] if self.uri.startswith("param:") else None

    @property
    def is_http(self) -> bool:
        return self.uri.lower().startswith(("http://", "https://"))


def parse_upload(values: Iterable[str]) -> tuple[UploadSpec, ...]:
    """The UPLOAD parameter's values: ``name,uri`` pairs separated by ``;`` (TAP 1.1 2.5.4).

    Only inline (``param:``) and http(s) URIs are accepted: other schemes (file:, ftp:, vos:)
    would let a request read what the server can reach, or need resolvers we do not run.
    """
    specs: list[UploadSpec] = []
    seen: set[str] = set()
    for value in values:
        for item in value.split(";"):
            item = item.strip()
            if not item:
                continue
            name, comma, uri = item.partition(",")
            name, uri = name.strip(), uri.strip()
            if not comma or not name or not uri:
                raise UploadError(f"UPLOAD must be name,URI pairs; cannot read {item!r}")
            if not _UPLOAD_NAME.fullmatch(name):
                raise UploadError(
                    f"Upload table name {name!r} must start with a letter and contain only "
                    "letters, digits and underscores"
                )
            if name.lower() in seen:
                raise UploadError(f"Upload table name {name} is used twice")
            spec = UploadSpec(name, uri)
            if spec.inline_part is None and not spec.is_http:
                raise UploadError(
                    f"Upload {name}: only inline (param:) and http(s) URIs are accepted, "
                    f"not {uri!r}"
                )
            if spec.inline_part == "":
                raise UploadError(f"Upload {name}: param: needs the name of a request part")
            seen.add(name.lower())
            specs.append(spec)
    return tuple(specs)


@dataclass(frozen=True)
class TapQuery:
    """A TAP query as its parameters describe it, validated but not yet translated."""

    lang: str
    """The ADQL version asked for: ``2.0`` or ``2.1``."""
    query: str
    maxrec: int
    """Rows to return at most; the hard limit applies already."""
    response_format: str | None
    """RESPONSEFORMAT (or FORMAT) as given; None for the default."""
    uploads: tuple[UploadSpec, ...] = ()


@dataclass(frozen=True)
class QueryLimits:
    default_maxrec: int
    hard_maxrec: int


def response_format_parameter(params: Parameters) -> str | None:
    """RESPONSEFORMAT, or FORMAT for TAP 1.0 clients (TAP 1.1 2.3.7); both given must agree."""
    response_format = params.get("RESPONSEFORMAT")
    legacy = params.get("FORMAT")
    if response_format is not None and legacy is not None and response_format != legacy:
        raise InvalidParameter("RESPONSEFORMAT and FORMAT are given with different values")
    chosen = response_format if response_format is not None else legacy
    if chosen is not None and not chosen.strip():
        return None
    return chosen.strip() if chosen is not None else None


def parse_tap_query(params: Parameters, limits: QueryLimits) -> TapQuery:
    """The query a sync request or a job to run asks for (TAP 1.1 section 2.3)."""
    request = params.get("REQUEST")
    if request is not None and request.strip().lower() != "doquery":
        raise InvalidParameter(f"REQUEST must be doQuery, not {request!r}")
    lang = params.get("LANG")
    if lang is None or not lang.strip():
        raise MissingParameter("LANG")
    version = ADQL_LANGS.get(lang.strip().upper())
    if version is None:
        raise InvalidParameter(
            f"LANG {lang!r} is not supported; use one of {', '.join(ADQL_LANGS)}"
        )
    query = params.get("QUERY")
    if query is None or not query.strip():
        raise MissingParameter("QUERY")
    maxrec_text = params.get("MAXREC")
    if maxrec_text is None or not maxrec_text.strip():
        maxrec = limits.default_maxrec
    else:
        # Above the hard limit the service returns the hard limit's worth (DALI 3.2.6),
        # flagged as an overflow like any truncation.
        maxrec = min(parse_non_negative_int("MAXREC", maxrec_text), limits.hard_maxrec)
    return TapQuery(
        lang=version,
        query=query,
        maxrec=maxrec,
        response_format=response_format_parameter(params),
        uploads=parse_upload(params.get_all("UPLOAD")),
    )
