"""Query results out: PostgreSQL binary COPY in, VOTable/CSV/TSV/FITS/Parquet bytes out, streaming.

Data flow (memory bounded whatever the row count)::

    cursor.copy("COPY (sql) TO STDOUT (FORMAT binary)")          # or copy_batches(...)
      -> decode_copy_stream(chunks, pg_types) -> Iterator[ColumnBatch]
      -> OUTPUT_FORMATS[...].write(fields, batches, limit=maxrec, ...) -> Iterator[bytes]

Public interface
----------------
``ColumnBatch`` / ``ColumnData``
    A slice of a result, one numpy array (+ null mask, + offsets for text and arrays) per
    column. ``ColumnBatch.from_rows(fields, rows)`` / ``from_columns(fields, columns)`` build
    one from Python values (None = NULL) for services that assemble small results.
``decode_copy_stream(chunks, pg_types, *, batch_bytes=4 MiB) -> Iterator[ColumnBatch]``
    Vectorised decoder of binary COPY. ``pg_types`` are PostgreSQL type names (smallint,
    integer, bigint, real, double precision, boolean, text, varchar, char(n), timestamptz,
    timestamp, date, bytea, and 1-D arrays of the numeric/boolean types).
``copy_batches(cursor, sql, pg_types, params=None) -> Iterator[ColumnBatch]``
    Runs ``sql`` through binary COPY on a psycopg cursor and decodes it.
``describe_pg_types(cursor, sql, params=None) -> list[str]``
    The type names of a query's columns (a ``LIMIT 0`` round trip).
``geometry_sql(expression, pg_type) -> str``
    pgsphere types have no binary form: select this SQL instead of an spoint/scircle/spoly
    column; it yields the DALI point/circle/polygon as ``double precision[]`` in degrees.
``pgsphere_degrees(text, pg_type) -> tuple[float, ...] | None``
    The same DALI array from a pgsphere value's text, in Python.
``write_votable(fields, batches, *, serialization="BINARY2"|"TABLEDATA", infos=(),
                overflow=False, limit=None, stats=None, table_name=None, description=None,
                errors="report", trailer="", version="1.4"|"1.1", resource_name=None)
                -> Iterator[bytes]``
    The one writer of every VOTable answer (TAP, SIA, SCS, DataLink). VOTable 1.4 with
    RESOURCE type="results", QUERY_STATUS=OK before the TABLE, the ``infos`` (name, value,
    content) after it (put QUERY and standardID there), and QUERY_STATUS OVERFLOW (or ERROR, if
    the batches raised) after the TABLE; ``trailer`` (further RESOURCEs: DataLink service
    descriptors) after the results. ``version="1.1"`` (TABLEDATA only, for Simple Cone Search
    1.03): no xtype, integer NULLs declared in ``<VALUES null>``, the status before the TABLE.
``sqlrows.row_sql(fields, expressions, pg_types) -> RowSql``, ``RenderedRows``
    The fast path of small answers (SIA, SCS): PostgreSQL writes the TABLEDATA cells by the
    same rules; ``RowSql.rendered(fetched_rows)`` is a batch ``write_votable`` takes.
``write_csv``, ``write_tsv`` (fields, batches, *, limit=None, stats=None)
``write_fits``, ``write_parquet`` (fields, batches, *, infos=(), overflow=False, limit=None,
                                    stats=None)
    FITS spools to a temporary file first (the header needs the row count), so its first
    chunk comes after the whole result was read. Parquet carries VOTable metadata (VOParquet).
``limit`` / ``WriteStats``
    Ask the database for MAXREC+1 rows and pass ``limit=MAXREC``: the writer writes MAXREC
    rows, stops reading (closing the batch iterator, which ends a COPY), and reports the
    overflow (OVERFLOW INFO; ``stats.overflow``). ``stats.rows`` counts rows written.
``OUTPUT_FORMATS``, ``lookup_format(responseformat) -> (OutputFormat, content_type)``
    The formats with their TAPRegExt mime/aliases/ivo-id; ``OutputFormat.write(fields, batches,
    infos=..., overflow=..., limit=..., stats=...)`` runs the right writer.
``metadata_votable(fields, *, infos=(), overflow=True) -> bytes``
    The MAXREC=0 answer: FIELDs, no rows, OVERFLOW.
``error_votable(message, *, infos=()) -> bytes``, ``error_response(message, http_status=400)``
    DALI error document (QUERY_STATUS=ERROR with the message); the latter also carries the
    HTTP status and Content-Type. ``scs_error_votable(message)`` for Simple Cone Search 1.03.

Text columns: VOTable 1.4 ``char`` holds ASCII (section 2.1), and astropy decodes BINARY2
char cells as ASCII: a column that may hold other text is declared ``unicodeChar`` (free-text
schema columns, ADQL string literals and expressions built from them, uploaded text that is
not ASCII), written as UTF-16 in BINARY2 and as the characters themselves in TABLEDATA (BMP
only, as VOTable 1.4 requires; other characters become U+FFFD). ``char`` cells that are not
ASCII all the same are written with ``?`` for each such character. CSV, TSV and Parquet carry
UTF-8; FITS ``A`` columns carry UTF-8 with the width in bytes (see ``fits``).
"""

from skyvault.vo.votable.columns import BatchError, ColumnBatch, ColumnData
from skyvault.vo.votable.delimited import write_csv, write_tsv
from skyvault.vo.votable.document import (
    VOTABLE_MIME,
    ErrorResponse,
    Info,
    error_response,
    error_votable,
    metadata_votable,
    scs_error_votable,
)
from skyvault.vo.votable.fits import FitsError, write_fits
from skyvault.vo.votable.formats import (
    DEFAULT_FORMAT,
    OUTPUT_FORMATS,
    OutputFormat,
    UnknownFormat,
    lookup_format,
)
from skyvault.vo.votable.parquet import write_parquet
from skyvault.vo.votable.pgcopy import (
    CopyFormatError,
    UnsupportedPgType,
    copy_batches,
    decode_copy_stream,
    describe_pg_types,
    geometry_sql,
    pgsphere_degrees,
)
from skyvault.vo.votable.streaming import WriteStats
from skyvault.vo.votable.writer import write_votable

__all__ = [
    "DEFAULT_FORMAT",
    "OUTPUT_FORMATS",
    "VOTABLE_MIME",
    "BatchError",
    "ColumnBatch",
    "ColumnData",
    "CopyFormatError",
    "ErrorResponse",
    "FitsError",
    "Info",
    "OutputFormat",
    "UnknownFormat",
    "UnsupportedPgType",
    "WriteStats",
    "copy_batches",
    "decode_copy_stream",
    "describe_pg_types",
    "error_response",
    "error_votable",
    "geometry_sql",
    "lookup_format",
    "metadata_votable",
    "pgsphere_degrees",
    "scs_error_votable",
    "write_csv",
    "write_fits",
    "write_parquet",
    "write_tsv",
    "write_votable",
]
