"""Alerts built from the archive: the candidates a selection names, read as a stream's
requester, with their 30-day histories and stamps.

``AlertBuilder.alerts`` reads in batches (one statement for the candidates, then per batch
one statement per difference image for the detections and one for the previous images, which
give the upper limits and the epochs of ``fp_hists``), then cuts the stamps from the archived
images in order of difference image, so each image file is opened once, and measures the
forced photometry of ``fp_hists`` (``fp_hists.ForcedHistories``) on the epochs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyvault.alerts import fp_hists as forced_histories
from skyvault.alerts import history
from skyvault.alerts.fp_hists import ForcedHistories
from skyvault.alerts.packet import alert_record, candidate_values, record, upper_limit_values
from skyvault.alerts.stamps import StampCutter, StampError
from skyvault.alerts.streams import Stream
from skyvault.db import Database
from skyvault.filestore import InvalidStorePath, StoreError, local_file
from skyvault.forced_photometry import Epoch
from skyvault.vo.cutout import OpenImages

log = logging.getLogger(__name__)

BATCH = 500
OPEN_FILES = 64
"""Files kept open: an image's three stamp files and the earlier differences its alerts'
fp_hists measure on (30 days of one field's visits)."""
ForcedPhotometry = Callable[[list[dict[str, Any]], list[list[Epoch]]],
                            list[list[dict[str, Any]]]]
"""What fills ``fp_hists``: given alerts' candidate rows and each one's epochs
(``fp_hists.epochs`` of its previous images), each one's fp_hist records (schema
``ztf.alert.fp_hist``). ``fp_hists.ForcedHistories`` by default."""

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
                previous = history.previous_images(connection, batch)
                stamps = self._stamps(batch)
                fp_hists: list[list[dict[str, Any]] | None] = [None] * len(batch)
                if self.forced_photometry is not None:
                    fp_hists = list(self.forced_photometry(
                        batch, [forced_histories.epochs(previous[row["candid"]])
                                for row in batch]))
                for row, row_stamps, row_fp_hists in zip(batch, stamps, fp_hists,
                                                         strict=True):
                    limits = history.upper_limit_rows(previous[row["candid"]])
                    yield alert_record(
                        row, history_records(detected.get(row["candid"], []), limits,
                                             row.get("rb_version")),
                        row_stamps, row_fp_hists)

    def _stamps(self, rows: list[dict[str, Any]]) -> list[dict[str, bytes | None]]:
        """Each row's stamps by kind, None (the schema's null) where an image is not readable
        here; each image's stamps cut together (a difference image's alerts share its three
        images: ``StampCutter.stamps``)."""
        stamps: list[dict[str, bytes | None]] = [{} for _ in rows]
        for kind, column in STAMP_PATHS.items():
            by_path: dict[str, list[int]] = {}
            for index, row in enumerate(rows):
                path = row.get(column)
                if path is None:
                    stamps[index][kind] = None
                else:
                    by_path.setdefault(path, []).append(index)
            for path, indices in by_path.items():
                for index, stamp in zip(indices, self._cut(path, [rows[k] for k in indices]),
                                        strict=True):
                    stamps[index][kind] = stamp
        return stamps

    def _cut(self, path: str, rows: list[dict[str, Any]]) -> list[bytes | None]:
        try:
            found = self.cutter.stamps(self.locate(path), [(r["ra"], r["dec"]) for r in rows])
        except (InvalidStorePath, StoreError, OSError) as error:
            found = [StampError(str(error)) for _ in rows]
        cut: list[bytes | None] = []
        for row, stamp in zip(rows, found, strict=True):
            if isinstance(stamp, StampError):
                log.warning("candidate %s: no stamp from %s (%s)", row["candid"], path, stamp)
                cut.append(None)
            else:
                cut.append(stamp)
        return cut
