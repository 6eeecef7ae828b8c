"""Alert packets: archive rows as ZTF's records (schema 4.02), and their Avro bytes.

Every field of the schema is filled: from the candidate's column of the same name (the
candidates table uses ZTF's names), from the science image, reference and program rows, or,
where SkyVault has no such quantity, with null where the schema allows it and with ZTF's own
sentinel (-999, as ZTF writes ``ssdistnr`` without a known object) where it does not. One
record per file, in an Avro object container file with the schema, as ZTF's packets and its
alert archive hold them.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from pathlib import PurePosixPath
from typing import Any, BinaryIO

import fastavro
import numpy as np

from skyvault.alerts.schema import PUBLISHER, VERSION, alert_schema, base_type, field_types
from skyvault.alerts.stamps import FILE_SUFFIX

SENTINEL = -999
INTEGERS = ("int", "long")
FLOATS = ("float", "double")
FP_HISTS_SEAM = None
"""``fp_hists`` when an alert is built without them (``AlertBuilder(fp_hists=False)``): null,
the schema's default. ``fp_hists.ForcedHistories`` makes them by default."""


_FLOAT32 = struct.Struct("<f")


def _float32(value: Any) -> float:
    """``value`` rounded to 32 bits, what the packet carries (so that a record equals its
    reading back): float(np.float32(value)). A Python float is rounded by ``struct`` (the
    same C cast, without numpy's scalar overhead); anything else, or a float beyond 32 bits'
    range (struct refuses, numpy makes it infinite), by numpy."""
    if value.__class__ is float:
        try:
            return _FLOAT32.unpack(_FLOAT32.pack(value))[0]
        except OverflowError:
            pass
    with np.errstate(over="ignore"):  # beyond 32 bits' range: infinite, as intended
        return float(np.float32(value))


def _identity(value: Any) -> Any:
    return value


def _converter(avro_type: Any) -> Callable[[Any], Any]:
    """How a value becomes a field of type ``avro_type``: missing (None or NaN) as null where
    the schema allows it, else ZTF's sentinel (-999, "" for strings); present, as the type."""
    kind = base_type(avro_type)
    if isinstance(avro_type, list):
        absent: Any = None
    elif kind == "string":
        absent = ""
    elif kind in (*INTEGERS, *FLOATS):
        absent = SENTINEL
    else:
        absent = None
    present: Callable[[Any], Any] = {"int": int, "long": int, "float": _float32,
                                      "double": float, "string": str}.get(kind, _identity)

    def convert(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return absent
        return present(value)

    return convert


@cache
def _converters(name: str) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Each field of record ``name`` and its converter, made once per schema (a night's
    alerts convert millions of fields: deciding each one's type per value cost a fifth of the
    night, benchmarks/bench_alerts.py)."""
    return tuple((field, _converter(kind)) for field, kind in field_types(name).items())


def record(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A record of schema ``name`` with every field, from ``values`` by field name."""
    get = values.get
    return {field: convert(get(field)) for field, convert in _converters(name)}


def _file_name(path: str | None) -> str | None:
    return PurePosixPath(path).name if path else None


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not b:
        return None
    return float(a) / float(b)


def candidate_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a candidate row (``history.alert_rows`` or ``history.detections``) gives the
    candidate and prv_candidate records beyond its own columns."""
    values = dict(row)
    values["tblid"] = row["candid"] % 1_000_000
    values["pdiffimfilename"] = _file_name(row.get("difference_path"))
    values["rbversion"] = row.get("rb_version")
    if row.get("diffmaglim") is not None and row.get("magap") is not None:
        values["magfromlim"] = row["diffmaglim"] - row["magap"]
    values["aimagerat"] = _ratio(row.get("aimage"), row.get("fwhm"))
    values["bimagerat"] = _ratio(row.get("bimage"), row.get("fwhm"))
    values["rfid"] = row.get("refid")
    values["tooflag"] = 0
    return values


def upper_limit_values(row: Mapping[str, Any], rb_version: str | None) -> dict[str, Any]:
    values = dict(row)
    values["pdiffimfilename"] = _file_name(row.get("difference_path"))
    values["rbversion"] = rb_version
    return values


def cutout(kind: str, candid: int, pid: int, stamp: bytes | None) -> dict[str, Any] | None:
    if stamp is None:
        return None
    return {"fileName": f"candid{candid}_pid{pid}_{FILE_SUFFIX[kind]}.fits.gz",
            "stampData": stamp}


def alert_record(row: Mapping[str, Any], history: Iterable[dict[str, Any]],
                 stamps: Mapping[str, bytes | None],
                 fp_hists: list[dict[str, Any]] | None = FP_HISTS_SEAM) -> dict[str, Any]:
    """The alert of candidate ``row``: its history (prv_candidate records, oldest first) and
    stamps by kind (science, template, difference)."""
    candidate = record("candidate", candidate_values(row))
    return {
        "schemavsn": VERSION,
        "publisher": PUBLISHER,
        "objectId": row.get("objectid") or "",
        "candid": int(row["candid"]),
        "candidate": candidate,
        "prv_candidates": list(history),
        "fp_hists": fp_hists,
        "cutoutScience": cutout("science", row["candid"], row["pid"], stamps.get("science")),
        "cutoutTemplate": cutout("template", row["candid"], row["pid"],
                                 stamps.get("template")),
        "cutoutDifference": cutout("difference", row["candid"], row["pid"],
                                   stamps.get("difference")),
    }


def write_alerts(stream: BinaryIO, alerts: Iterable[dict[str, Any]]) -> None:
    """Alerts into an Avro object container file (the schema in its header), uncompressed as
    ZTF's."""
    fastavro.writer(stream, alert_schema(), alerts, sync_marker=SYNC_MARKER)


SYNC_MARKER = hashlib.sha256(b"SkyVault alert packet").digest()[:16]
"""The container files' sync marker, fixed so that the same alert makes the same bytes
(archives are checksummed); the Avro specification lets a writer choose it freely."""


@cache
def _container_header() -> bytes:
    """The header of a container file of alerts (magic, schema, codec, sync marker), as
    fastavro writes it."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, alert_schema(), [], sync_marker=SYNC_MARKER)
    return buffer.getvalue()


def _varint(value: int) -> bytes:
    """An Avro long (zig-zag, then base-128 little-endian)."""
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def packet_bytes(alert: dict[str, Any]) -> bytes:
    """One alert as a file of its own, as ZTF's alert archive holds them (``<candid>.avro``):
    an Avro object container file with one block of one record. fastavro encodes the record;
    the header, the same for every packet, is made once (fastavro.writer per packet spent
    half its time writing the schema into each header again: benchmarks/bench_alerts.py)."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, alert_schema(), alert)
    data = body.getvalue()
    return b"".join((_container_header(), _varint(1), _varint(len(data)), data, SYNC_MARKER))


def read_alerts(stream: BinaryIO) -> Iterator[dict[str, Any]]:
    """The alerts of an Avro file, with the schema the file carries: the reader a broker uses
    on ZTF's packets."""
    yield from fastavro.reader(stream)
