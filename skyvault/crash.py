"""A crash hook for tests of crash safety.

``SKYVAULT_INGEST_CRASH=<point>:<n>`` makes the process kill itself with SIGKILL the n-th time
it passes ``crash_point(<point>)`` (n counts from 1). SIGKILL runs no handler, flushes no buffer
and commits nothing, like a power cut of the process. Unset (always, outside tests), a crash
point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "SKYVAULT_INGEST_CRASH"

POINTS = (
    "place:write",          # half of a file written to its temporary name
    "place:before_rename",  # temporary files complete and synced, none renamed
    "place:after_rename",   # files in place, directory not yet synced
    "db:rows",              # image rows inserted, catalogs not yet copied
    "associate:registered", # new objects registered, detections not yet copied
    "copy:mid",             # half of a catalog's COPY stream sent
    "commit:before",        # everything sent, COMMIT not yet issued
    "commit:after",         # group committed, nothing after it done
    "seal:prebuilt",        # indexes built side by side and committed, table still loading
    "seal:indexed",         # loading partition indexed, not yet attached
    "seal:after",           # partition attached and committed
    "quarantine:copied",    # a bad file copied to quarantine, not yet recorded
)
"""The points an ingest run passes (tests/ingest/test_ingest_crash.py kills it at each)."""

COMPACTION_POINTS = (
    "compact:cells",        # the night's cells created and attached, no row moved (uncommitted)
    "compact:moved",        # rows copied to the sky, night partition not yet dropped
    "compact:after",        # the night's move committed
)
"""The points ``skyvault ingest compact`` passes (tests/ingest/test_compact.py)."""

ENSEMBLE_POINTS = (
    "ensemble:relphot",     # orphans removed, corrections written (uncommitted)
    "ensemble:released",    # a chunk's released statistics written (uncommitted)
)
"""The points the ensemble step passes (tests/lightcurves/test_ingest_objects.py)."""

_passes: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    if not value:
        return None
    point, _, count = value.rpartition(":")
    return point, int(count)


_TARGET = _target()


def crash_point(point: str) -> None:
    if _TARGET is None or _TARGET[0] != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if _passes[point] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
