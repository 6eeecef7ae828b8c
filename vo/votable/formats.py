"""The output formats a service offers: RESPONSEFORMAT values, media types, writers.

``OUTPUT_FORMATS`` lists each format once with its preferred media type and aliases, in the
shape of TAPRegExt's ``outputFormat`` elements (mime, alias*, ivo-id). ``lookup_format`` maps a
RESPONSEFORMAT (or TAP 1.0 FORMAT) value to the format and the Content-Type to send.

The Content-Type is the canonical media type of what is sent, never the request's text: a short
name (``votable/td``, ``fits``) or an alias media type (``image/fits``) gets the format's own
type, and parameters the client added (``text/xml; foo=bar``) are not echoed. VOTables carry
the serialization they are written in (VOTable 1.4 section 8: ``serialization=BINARY2``); a
client that asked for ``text/xml`` receives ``text/xml``, since DALI 1.1 section 3.4.6 lets a
client choose among a format's media types (a browser renders text/xml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.delimited import write_csv, write_tsv
from skyvault.vo.votable.fits import write_fits
from skyvault.vo.votable.parquet import write_parquet
from skyvault.vo.votable.writer import write_votable

Writer = Callable[..., Iterator[bytes]]


def write_ipac(*args: Any, **options: Any) -> Iterator[bytes]:
    """vo/ipac_table.py's writer. Imported when first used: it reads this package's cells and
    streaming modules, and importing any of them runs this package's __init__, which imports
    this module, so an import at the top would be circular whenever ipac_table comes first."""
    from skyvault.vo.ipac_table import write_ipac as writer

    return writer(*args, **options)


class UnknownFormat(ValueError):
    """A RESPONSEFORMAT this service does not produce (DALI: the request fails)."""


@dataclass(frozen=True)
class OutputFormat:
    name: str
    mime: str
    """The media type advertised (TAPRegExt outputFormat/mime) and sent for short names."""
    aliases: tuple[str, ...]
    """Other RESPONSEFORMAT values accepted: short names and further media types."""
    writer: Writer
    extension: str
    ivo_id: str | None = None
    is_votable: bool = False
    """Whether the writer takes ``infos``/``overflow`` and reports errors in the document."""
    takes_infos: bool = False
    content_type: str = ""
    """The canonical media type of what the writer sends (default: ``mime``)."""
    chosen_types: frozenset[str] = frozenset()
    """Other media types of the same bytes that a client may ask for by name and then receive
    as the Content-Type (DALI 1.1 section 3.4.6), without parameters."""

    def response_type(self, requested: str | None = None) -> str:
        """The Content-Type for this format, given the media type the client named (if any)."""
        if requested is not None:
            base = requested.split(";", 1)[0].strip().lower()
            if base in self.chosen_types:
                return base
        return self.content_type or self.mime

    def write(
        self,
        fields: Sequence[FieldSpec],
        batches: Iterable[ColumnBatch],
        *,
        infos: Sequence[tuple[str, str, str | None]] = (),
        overflow: Any = False,
        **options: Any,
    ) -> Iterator[bytes]:
        """Run this format's writer; options a format cannot use (infos for CSV) are dropped."""
        if self.takes_infos:
            options.update(infos=infos, overflow=overflow)
        return self.writer(fields, batches, **options)


_TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt#"

OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        "votable", "application/x-votable+xml;serialization=BINARY2",
        ("votable", "votable/b2", "votableb2", "binary2", "application/x-votable+xml",
         "application/x-votable+xml;serialization=binary2"),
        partial(write_votable, serialization="BINARY2"), "vot",
        _TAPREGEXT + "output-votable-binary2", is_votable=True, takes_infos=True,
        chosen_types=frozenset({"text/xml"}),
    ),
    OutputFormat(
        "votable/td", "application/x-votable+xml;serialization=TABLEDATA",
        ("votable/td", "votabletd", "tabledata", "text/xml",
         "application/x-votable+xml;serialization=tabledata"),
        partial(write_votable, serialization="TABLEDATA"), "vot",
        _TAPREGEXT + "output-votable-td", is_votable=True, takes_infos=True,
        chosen_types=frozenset({"text/xml"}),
    ),
    OutputFormat("csv", "text/csv;header=present", ("csv", "text/csv"), write_csv, "csv"),
    OutputFormat("tsv", "text/tab-separated-values",
                 ("tsv", "text/tab-separated-values"), write_tsv, "tsv"),
    OutputFormat("fits", "application/fits",
                 ("fits", "application/fits", "application/x-fits-table", "image/fits"),
                 write_fits, "fits", takes_infos=True),
    OutputFormat("parquet", "application/vnd.apache.parquet",
                 ("parquet", "application/vnd.apache.parquet", "application/x-parquet"),
                 write_parquet, "parquet", takes_infos=True),
    # IPAC table, as IPAC's TAP services offer it (TAPRegExt outputFormat text/plain, alias
    # ipac; IBE's ct=ipac_table); UTF-8, which the Content-Type says.
    OutputFormat("ipac", "text/plain", ("ipac", "ipac_table", "text/plain"), write_ipac, "tbl",
                 takes_infos=True, content_type="text/plain;charset=utf-8"),
)
DEFAULT_FORMAT = OUTPUT_FORMATS[0]


def _normalise(value: str) -> str:
    """Media types compare case-insensitively and without blanks around ``;`` and ``=``."""
    parts = [p.strip() for p in value.strip().split(";")]
    head = parts[0].lower()
    parameters = []
    for parameter in parts[1:]:
        key, _, val = parameter.partition("=")
        key = key.strip().lower()
        val = val.strip().strip(chr(34)).lower()
        if not key or (key, val) in (("charset", "utf-8"), ("header", "present")):
            continue  # what we send anyway: UTF-8, CSV with its header line
        parameters.append(f"{key}={val}")
    return ";".join([head, *parameters])


_MEANINGFUL_PARAMETERS = frozenset({"serialization", "header", "charset"})
_BY_VALUE: dict[str, OutputFormat] = {}
for _format in OUTPUT_FORMATS:
    for _value in (_format.mime, *_format.aliases):
        _BY_VALUE.setdefault(_normalise(_value), _format)


def lookup_format(value: str | None) -> tuple[OutputFormat, str]:
    """The format for a RESPONSEFORMAT value and the Content-Type to send with it.

    No value means the default, BINARY2 VOTable. Unknown values raise ``UnknownFormat``.
    """
    if value is None or not value.strip():
        return DEFAULT_FORMAT, DEFAULT_FORMAT.response_type()
    key = _normalise(value)
    found = _BY_VALUE.get(key)
    if found is None:
        # Unknown extra parameters (content=, version=) do not change what we produce; the
        # ones that would (serialization, header, charset) must match what we write.
        head, *parameters = key.split(";")
        meaningful = [p for p in parameters if p.split("=")[0] in _MEANINGFUL_PARAMETERS]
        found = _BY_VALUE.get(";".join([head, *meaningful]))
    if found is None:
        raise UnknownFormat(f"RESPONSEFORMAT {value!r} is not supported; supported: "
                            + ", ".join(f.mime for f in OUTPUT_FORMATS))
    return found, found.response_type(value if "/" in value else None)
