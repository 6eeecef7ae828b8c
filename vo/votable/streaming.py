"""What every streaming writer shares: the row limit, the overflow flag and the write report.

A TAP service fetches MAXREC+1 rows so that it can tell a full result from a truncated one;
``limited`` passes on at most ``limit`` rows and notes the overflow when one more row exists,
then closes the source (ending a COPY early) instead of reading it to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from skyvault.db_errors import is_database_error, public_message

Overflow = bool | Callable[[], bool]


class Rows(Protocol):
    """What ``limited`` counts and cuts: a ``ColumnBatch`` or ``sqlrows.RenderedRows``."""

    @property
    def n_rows(self) -> int: ...

    def slice(self, start: int, stop: int) -> Self: ...


RowsT = TypeVar("RowsT", bound=Rows)


@dataclass
class WriteStats:
    """Filled in by a writer as it goes; read it after the last chunk."""

    rows: int = 0
    overflow: bool = False
    error: str | None = None
    """Set when the source failed mid-way and a VOTable writer reported it in the document."""


def limited(
    batches: Iterable[RowsT], limit: int | None, stats: WriteStats
) -> Iterator[RowsT]:
    source = iter(batches)
    try:
        for batch in source:
            if batch.n_rows == 0:
                continue
            if limit is not None:
                room = limit - stats.rows
                if batch.n_rows > room:
                    stats.overflow = True
                    if room > 0:
                        stats.rows += room
                        yield batch.slice(0, room)
                    return
            stats.rows += batch.n_rows
            yield batch
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def overflowed(stats: WriteStats, overflow: Overflow) -> bool:
    if stats.overflow:
        return True
    return bool(overflow() if callable(overflow) else overflow)


def error_message(error: BaseException) -> str:
    if is_database_error(error):
        # A database message may quote a row's values (skyvault.db_errors).
        return public_message(error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def resumed(first: RowsT | None, rest: Iterator[RowsT]) -> Iterator[RowsT]:
    """``first`` (taken from ``rest`` to see the source work before an answer starts) then the
    ``rest``; closing this closes ``rest``, so a writer that stops at its limit ends a COPY or
    a cursor."""
    try:
        if first is not None:
            yield first
            yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()
