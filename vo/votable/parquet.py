"""Parquet output with VOTable metadata (IVOA VOParquet note 1.0), streamed row group by row group.

Each batch becomes one row group; the bytes pyarrow writes are handed on as soon as the group
is complete, so memory stays bounded. The file-level key ``IVOA.VOTable-Parquet.content`` holds
a VOTable with the FIELDs (unit, UCD, utype, xtype, description) and the QUERY_STATUS INFOs,
written into the footer at the end, when the overflow is known; ``astropy``'s
``Table.read(..., format="parquet.votable")`` reads it. Every Parquet field also carries its own
unit/ucd/utype/xtype/description as field metadata for readers that know no VOTable.

Column types follow the VOTable datatype: numbers as such, text (and DALI timestamps, which
VOTable declares as char) as UTF-8 strings, arrays (points, polygons) as lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import FieldPlan, conform, plan_for
from skyvault.vo.votable.columns import ColumnBatch, ColumnData
from skyvault.vo.votable.document import Info, document_tail, table_head
from skyvault.vo.votable.streaming import Overflow, WriteStats, limited, overflowed

_ARROW_TYPES = {
    "boolean": pa.bool_(), "unsignedByte": pa.uint8(), "short": pa.int16(), "int": pa.int32(),
    "long": pa.int64(), "float": pa.float32(), "double": pa.float64(),
}


def arrow_type(plan: FieldPlan) -> pa.DataType:
    if plan.is_text:
        return pa.string()
    element = _ARROW_TYPES.get(plan.field.datatype)
    if element is None:
        raise ValueError(f"{plan.field.datatype} has no Parquet form")
    return element if plan.is_scalar else pa.list_(element)


def arrow_schema(fields: Sequence[FieldSpec]) -> pa.Schema:
    arrow_fields = []
    for field in fields:
        metadata = {key: value for key, value in (
            ("unit", field.unit), ("ucd", field.ucd), ("utype", field.utype),
            ("xtype", field.xtype), ("description", field.description),
        ) if value}
        arrow_fields.append(pa.field(field.name, arrow_type(plan_for(field)),
                                     metadata=metadata or None))
    return pa.schema(arrow_fields)


def _validity(nulls: np.ndarray | None) -> pa.Buffer | None:
    if nulls is None or not nulls.any():
        return None
    return pa.py_buffer(np.packbits(~nulls, bitorder="little"))


def arrow_array(plan: FieldPlan, column: ColumnData) -> pa.Array:
    column = conform(plan, column)
    nulls = column.nulls if column.nulls is not None and column.nulls.any() else None
    if column.kind == "scalar":
        return pa.array(column.values, type=arrow_type(plan), mask=nulls)
    assert column.offsets is not None
    flat = column.flat()
    offsets = column.offsets - column.offsets[0]
    count = column.n_rows
    null_count = int(nulls.sum()) if nulls is not None else 0
    if column.kind == "text":
        # A batch is a few megabytes: 32-bit offsets always suffice.
        return pa.Array.from_buffers(
            pa.string(), count,
            [_validity(nulls), pa.py_buffer(offsets.astype(np.int32)),
             pa.py_buffer(np.ascontiguousarray(flat))],
            null_count=null_count,
        )
    list_type = arrow_type(plan)
    values = pa.array(flat, type=list_type.value_type)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values,
                                    type=list_type,
                                    mask=pa.array(nulls) if nulls is not None else None)


class _Sink:
    """A write-only file that keeps what pyarrow wrote until the writer takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def write_parquet(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    infos: Sequence[Info] = (),
    overflow: Overflow = False,
    limit: int | None = None,
    stats: WriteStats | None = None,
    compression: str = "zstd",
) -> Iterator[bytes]:
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    schema = arrow_schema(fields)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression=compression)
    try:
        for batch in limited(batches, limit, stats):
            arrays = [arrow_array(p, c) for p, c in zip(plans, batch.columns, strict=True)]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            data = sink.take()
            if data:
                yield data
        content = table_head(fields, infos=infos) + document_tail(
            overflow=overflowed(stats, overflow))
        writer.add_key_value_metadata({
            "IVOA.VOTable-Parquet.version": "1.0",
            "IVOA.VOTable-Parquet.content": content,
        })
    finally:
        writer.close()
    yield sink.take()
