"""TAP_UPLOAD (TAP 1.1 section 2.5.4, DALI 3.4.4): uploaded VOTables as temporary tables.

An upload arrives inline (a multipart part named by ``param:part``) or by http(s) URL, is read
with astropy into an ``UploadedTable``, and becomes a ``TEMP`` table created inside the query's
own transaction (``ON COMMIT DROP``): visible to that query alone, gone with its transaction,
and read under the same role and row-level security as the rest of the query. The translator
sees it as ``TAP_UPLOAD.<name>`` through the catalog's ``sql_names``.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


def _connect_public(address: tuple[str, int], timeout: float | object = None,
                    source_address: tuple[str, int] | None = None) -> socket.socket:
    """``socket.create_connection`` that refuses any address not on the public internet.

    The check is on the addresses actually connected to, so a name that resolves to a private
    address (or a redirect to one, or a name re-pointed between two look-ups) cannot make the
    service fetch from the archive's own network (server-side request forgery).
    """
    host, port = address
    candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    public = [c for c in candidates if ipaddress.ip_address(c[4][0].split("%")[0]).is_global]
    if not public:
        raise UploadError(f"The upload host {host} is not on the public internet")
    error: OSError | None = None
    for family, kind, protocol, _, sockaddr in public:
        sock = socket.socket(family, kind, protocol)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as failure:
            error = failure
            sock.close()
    raise error or OSError(f"cannot connect to {host}")


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req)


def upload_opener(private_networks: bool) -> urllib.request.OpenerDirector:
    """An opener for upload URLs: http(s) only, no proxy from the environment (it would hide
    the address fetched), public addresses only unless ``private_networks``."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}),
                                                  _HttpOnlyRedirects()]
    if not private_networks:
        handlers += [_PublicHTTPHandler(), _PublicHTTPSHandler()]
    return urllib.request.build_opener(*handlers)


def _read_limited(stream: io.RawIOBase | Any, limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge(f"Upload {name} is larger than the limit of {limit} bytes")
    return data


def fetch_upload(spec: UploadSpec, inline: Callable[[str], io.IOBase | None], *,
                 limit: int, timeout: float, private_networks: bool = False) -> bytes:
    """The bytes of one uploaded table, refusing anything above ``limit`` bytes and, unless
    ``private_networks``, URLs that lead to loopback, private, link-local or reserved
    addresses."""
    part = spec.inline_part
    if part is not None:
        stream = inline(part)
        if stream is None:
            raise UploadError(f"Upload {spec.table_name} refers to param:{part}, but the request "
                              f"has no part named {part}")
        return _read_limited(stream, limit, spec.table_name)
    opener = upload_opener(private_networks)
    request = urllib.request.Request(spec.uri, headers={"User-Agent": "SkyVault-TAP"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return _read_limited(response, limit, spec.table_name)
    except UploadError:
        raise
    except urllib.error.URLError as error:
        if isinstance(error.reason, UploadError):
            raise error.reason from error
        raise UploadError(f"Cannot fetch upload {spec.table_name} from {spec.uri}: "
                          f"{error.reason}") from error
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise UploadError(f"Cannot fetch upload {spec.table_name} from {spec.uri}: "
                          f"{error}") from error


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
    columns = [_unicode_if_needed(column, [row[position] for row in rows])
               for position, column in enumerate(columns)]
    return UploadedTable(spec.table_name, f"pg_temp.tap_upload_{index}", tuple(columns), rows)


def _unicode_if_needed(column: UploadedColumn, values: Sequence[Any]) -> UploadedColumn:
    """A ``char`` column holding non-ASCII text (VOTable 1.6 allows UTF-8 in char; clients
    send it in older versions too) is declared ``unicodeChar``, which VOTable 1.4 results can
    carry, so query results give the text back as it came."""
    kind = column.column_type
    if kind.datatype != "char" or kind.pg_type != "text":
        return column
    if all(not isinstance(value, str) or value.isascii() for value in values):
        return column
    return replace(column, column_type=replace(kind, datatype="unicodeChar"))


def load_uploads(specs: Sequence[UploadSpec], inline: Callable[[str], io.IOBase | None], *,
                 limit: int, max_tables: int, timeout: float,
                 private_networks: bool = False) -> list[UploadedTable]:
    if len(specs) > max_tables:
        raise UploadError(f"At most {max_tables} tables can be uploaded with one query")
    return [read_votable(spec, fetch_upload(spec, inline, limit=limit, timeout=timeout,
                                            private_networks=private_networks), index)
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
