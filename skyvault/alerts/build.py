"""Alerts built from the archive: the candidates a selection names, read as a stream's
requester, with their 30-day histories and stamps.

``AlertBuilder.alerts`` reads in batches (one statement per batch for the candidates, one for
the detections, one for the upper limits), then cuts the stamps from the archived images in
order of difference image, so each image file is opened once, and measures the forced
photometry of ``fp_hists`` (``fp_hists.ForcedHistories``, one statement per alert) on the
same connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from skyvault.alerts import history
from skyvault.alerts.fp_hists import ForcedHistories
from skyvault.alerts.packet import alert_record, candidate_values, record, upper_limit_values
from skyvault.alerts.stamps import StampCutter, StampError
from skyvault.alerts.streams import Stream
from skyvault.db import Database
from skyvault.filestore import InvalidStorePath, StoreError, local_file
from skyvault.vo.cutout import OpenImages

log = logging.getLogger(__name__)

BATCH = 500
OPEN_FILES = 64
"""Files kept open: an image's three stamp files and the earlier differences its alerts'
fp_hists measure on (30 days of one field's visits)."""
ForcedPhotometry = Callable[[psycopg.Connection, dict[str, Any]], list[dict[str, Any]] | None]
"""What fills ``fp_hists``: given the stream's connection and an alert's candidate row, the
fp_hist records (schema ``ztf.alert.fp_hist``) or None. ``fp_hists.ForcedHistories`` by
default."""

STAMP_PATHS = {"science": "science_path", "template": "template_path",
               "difference": "difference_path"}


@dataclass(frozen=True)
class Selection:
    """Which candidates to make alerts of: SQL on ``c`` (survey.candidates) and its values."""

    where: str
    params: dict[str, Any]
    limit: int | None = None


def night_selection(nid: int, stream: Stream) -> Selection:
    """A night's candidates of the stream's programs."""
    return Selection("c.nid = %(nid)s AND c.programid = ANY(%(stream_programs)s)",
                     {"nid": nid, "stream_programs": sorted(stream.programs)})


def history_records(detected: list[dict[str, Any]], limits: list[dict[str, Any]],
                    rb_version: str | None) -> list[dict[str, Any]]:
    """Detections and upper limits as prv_candidate records, in order of time."""
    rows = [(row["jd"], record("prv_candidate", candidate_values(row))) for row in detected]
    rows += [(row["jd"], record("prv_candidate", upper_limit_values(row, rb_version)))
             for row in limits]
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


class AlertBuilder:
    def __init__(self, database: Database, stream: Stream, *,
                 fp_hists: bool = True,
                 forced_photometry: ForcedPhotometry | None = None,
                 locate: Callable[[str], Path] = local_file) -> None:
        """``fp_hists=False`` leaves them null (a night built faster: BENCHMARKS.md);
        ``forced_photometry`` replaces the archive's forced photometry."""
        self.database = database
        self.stream = stream
        self.locate = locate
        self.images = OpenImages(keep=OPEN_FILES)
        """The image files open for section reads, the stamps' and the forced photometry's
        (closed when ``alerts`` ends)."""
        self.cutter = StampCutter(self.images)
        if forced_photometry is None and fp_hists:
            forced_photometry = ForcedHistories(locate, self.images)
        self.forced_photometry = forced_photometry

    def alerts(self, selection: Selection) -> Iterator[dict[str, Any]]:
        """The alerts of the selected candidates, in order of difference image."""
        # As the reader role (user_query): row-level security applies even to a service
        # that logs in as the owner, and only published tables can be read.
        with self.images, self.database.reading(self.stream.requester, user_query=True,
                                                primary=True) as connection:
            rows = history.alert_rows(connection, selection.where, selection.params,
                                      selection.limit)
            batches = [rows[k:k + BATCH] for k in range(0, len(rows), BATCH)]
            for batch in batches:
                detected = history.detections(connection, batch)
                limits = history.upper_limits(connection, batch)
                for row in batch:
                    yield self._alert(connection, row, detected.get(row["candid"], []),
                                      limits.get(row["candid"], []))

    def _alert(self, connection: psycopg.Connection, row: dict[str, Any],
               detected: list[dict[str, Any]], limits: list[dict[str, Any]]) -> dict[str, Any]:
        stamps = {kind: self._stamp(row.get(column), row)
                  for kind, column in STAMP_PATHS.items()}
        fp_hists = self.forced_photometry(connection, row) if self.forced_photometry else None
        return alert_record(row, history_records(detected, limits, row.get("rb_version")),
                            stamps, fp_hists)

    def _stamp(self, path: str | None, row: dict[str, Any]) -> bytes | None:
        """A stamp, or None (the schema's null) when the image is not readable here."""
        if path is None:
            return None
        try:
            return self.cutter.stamp(self.locate(path), row["ra"], row["dec"])
        except (InvalidStorePath, StoreError, StampError, OSError) as error:
            log.warning("candidate %s: no stamp from %s (%s)", row["candid"], path, error)
            return None
