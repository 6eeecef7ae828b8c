"""TAP_UPLOAD (TAP 1.1 section 2.5.4, DALI 3.4.4): uploaded VOTables as temporary tables.

An upload arrives inline (a multipart part named by ``param:part``) or by http(s) URL, is read
with astropy into an ``UploadedTable``, and becomes a ``TEMP`` table created inside the query's
own transaction (``ON COMMIT DROP``): visible to that query alone, gone with its transaction,
and read under the same role and row-level security as the rest of the query. The translator
sees it as ``TAP_UPLOAD.<name>`` through the catalog's ``sql_names``.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from skyvault.schema.model import Column, ColumnType, Table
from skyvault.vo.dali import UploadError, UploadSpec, UploadTooLarge

UPLOAD_SCHEMA = "tap_upload"

# VOTable datatype -> PostgreSQL element type.
_PG_TYPES = {
    "boolean": "boolean",
    "bit": "boolean",
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
}


@dataclass(frozen=True)
class UploadedColumn:
    name: str
    column_type: ColumnType
    unit: str | None
    ucd: str | None
    utype: str | None
    description: str | None


@dataclass(frozen=True)
class UploadedTable:
    name: str
    """The table's name after TAP_UPLOAD, as the client gave it."""
    sql_name: str
    """The temporary table's SQL name."""
    columns: tuple[UploadedColumn, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def adql_name(self) -> str:
        return f"{UPLOAD_SCHEMA}.{self.name}"

    def model(self) -> Table:
        """The table as the ADQL catalog describes it."""
        return Table(
            UPLOAD_SCHEMA, self.name, f"Table uploaded as {self.name}",
            columns=tuple(
                Column(c.name, c.column_type, c.description or "", unit=c.unit, ucd=c.ucd,
                       utype=c.utype)
                for c in self.columns
            ),
        )


# -- fetching -------------------------------------------------------------------------------


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s): an upload URL must not lead to ftp: or file:."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith(("http://", "https://")):
            raise UploadError(f"The upload URL redirects to {newurl!r}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_limited(stream: io.RawIOBase | Any, limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge(f"Upload {name} is larger than the limit of {limit} bytes")
    return data


def fetch_upload(spec: UploadSpec, inline: Callable[[str], io.IOBase | None], *,
                 limit: int, timeout: float) -> bytes:
    """The bytes of one uploaded table, refusing anything above ``limit`` bytes."""
    part = spec.inline_part
    if part is not None:
        stream = inline(part)
        if stream is None:
            raise UploadError(f"Upload {spec.table_name} refers to param:{part}, but the request "
                              f"has no part named {part}")
        return _read_limited(stream, limit, spec.table_name)
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    request = urllib.request.Request(spec.uri, headers={"User-Agent": "SkyVault-TAP"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return _read_limited(response, limit, spec.table_name)
    except UploadError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise UploadError(f"Cannot fetch upload {spec.table_name} from {spec.uri}: "
                          f"{reason}") from error


# -- reading ----------------------------------------------------------------------------------


def _column_type(field: Any) -> ColumnType:
    datatype = field.datatype
    arraysize = field.arraysize
    xtype = field.xtype
    if datatype in ("char", "unicodeChar"):
        if xtype == "timestamp":
            return ColumnType("timestamptz", "char", "*", "timestamp")
        # arraysize="1" is what no arraysize says (deprecated by VOTable 1.3 Erratum 3).
        return ColumnType("text", datatype, None if arraysize == "1" else arraysize, xtype)
    if datatype in ("floatComplex", "doubleComplex"):
        raise UploadError(f"Column {field.name}: complex numbers cannot be uploaded here")
    element = _PG_TYPES.get(datatype)
    if element is None:
        raise UploadError(f"Column {field.name}: unknown VOTable datatype {datatype}")
    if arraysize in (None, "", "1"):
        return ColumnType(element, datatype, None, xtype)
    # Multi-dimensional arrays are stored flattened; the declared shape travels in arraysize.
    return ColumnType(f"{element}[]", datatype, arraysize, xtype)


def _cell(value: Any, column_type: ColumnType) -> Any:
    """A VOTable cell as astropy reads it -> a value psycopg can send."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, np.ma.MaskedArray):
        if value.mask is np.ma.nomask or not np.any(value.mask):
            value = value.data
        elif np.all(value.mask):
            return None
        else:
            flat = value.ravel()
            return [None if m else v for v, m in zip(flat.data.tolist(),
                                                     np.ma.getmaskarray(flat).tolist(),
                                                     strict=True)]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU" or value.dtype == object:
            items = value.ravel().tolist()
            if column_type.pg_type == "text":
                return "".join(i.decode() if isinstance(i, bytes) else str(i) for i in items)
            return items
        return value.ravel().tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        # PostgreSQL text cannot hold NUL; an empty string is how VOTable writes a null char.
        value = value.replace("\x00", "")
        if column_type.pg_type == "timestamptz" and not value.strip():
            return None
    return value


def read_votable(spec: UploadSpec, data: bytes, index: int) -> UploadedTable:
    """The first table of an uploaded VOTable document."""
    # Imported here: astropy costs half a second to import, and most queries upload nothing.
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOTableSpecWarning, VOWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)
            warnings.simplefilter("ignore", VOTableSpecWarning)
            document = parse(io.BytesIO(data), verify="ignore")
            table = document.get_first_table()
    except Exception as error:  # astropy raises many kinds on malformed input
        raise UploadError(f"Upload {spec.table_name} is not a readable VOTable: {error}") from error
    names: set[str] = set()
    columns: list[UploadedColumn] = []
    for position, field in enumerate(table.fields):
        name = field.name or field.ID or f"col{position + 1}"
        if name in names:
            raise UploadError(f"Upload {spec.table_name} has two columns named {name}")
        names.add(name)
        columns.append(UploadedColumn(name, _column_type(field), field.unit and str(field.unit),
                                      field.ucd, field.utype, field.description))
    array = table.array
    field_names = array.dtype.names or ()
    rows = tuple(
        tuple(_cell(array[key][row], column.column_type)
              for key, column in zip(field_names, columns, strict=True))
        for row in range(len(array))
    )
    return UploadedTable(spec.table_name, f"pg_temp.tap_upload_{index}", tuple(columns), rows)


def load_uploads(specs: Sequence[UploadSpec], inline: Callable[[str], io.IOBase | None], *,
                 limit: int, max_tables: int, timeout: float) -> list[UploadedTable]:
    if len(specs) > max_tables:
        raise UploadError(f"At most {max_tables} tables can be uploaded with one query")
    return [read_votable(spec, fetch_upload(spec, inline, limit=limit, timeout=timeout), index)
            for index, spec in enumerate(specs)]


# -- into the database ----------------------------------------------------------------------------


def create_upload_tables(connection: psycopg.Connection, tables: Sequence[UploadedTable]) -> None:
    """Temporary tables holding the uploads, dropped when the transaction ends.

    Runs in the query's transaction before it becomes read-only (PostgreSQL refuses CREATE, even
    of a temporary table, in a read-only transaction; writing rows into one is allowed).
    """
    for table in tables:
        relation = sql.SQL(table.sql_name)  # pg_temp.tap_upload_<n>, made here, not by users
        definition = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.column_type.pg_type))
            for c in table.columns
        )
        connection.execute(
            sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(relation, definition)
        )
        if not table.rows:
            continue
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        try:
            with connection.cursor() as cursor, cursor.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(relation, names)
            ) as copy:
                for row in table.rows:
                    copy.write_row(row)
        except psycopg.DataError as error:
            raise UploadError(f"Upload {table.name}: a value does not fit its column "
                              f"({error.diag.message_primary or error})") from error
        connection.execute(sql.SQL("ANALYZE {}").format(relation))
