"""``fp_hists``: forced photometry at an alert's position on the difference images of the 30
days before it (ZTF's ``ztf.alert.fp_hist`` records), measured with the archive's forced
photometry (``skyvault.forced_photometry``, what /forcedphot answers with).

The epochs are found on the stream's own connection, so row-level security shows the stream's
requester's rows only, and held in SQL to those the alert's history may hold
(``candidate_history.history_programs``, the rule of ``prv_candidates``, as
``find_epochs(history_of_program=...)`` holds them): a public-stream alert's fp_hists hold
public-survey epochs only. They are the alert's previous images (``history.previous_images``,
one statement per difference image's alerts) that have a difference file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skyvault.alerts.history import HISTORY_DAYS
from skyvault.alerts.packet import record
from skyvault.forced_photometry import Epoch, ForcedRow, measure_positions
from skyvault.vo.cutout import OpenImages

NEAREST_REFERENCE = ("distnr", "magnr", "sigmagnr", "chinr", "sharpnr", "ranr", "decnr")
"""The alert candidate's nearest reference source, which ZTF repeats in each fp_hist."""


def history_window(jd: float) -> tuple[float, float]:
    """The 30 days before ``jd``, as ``find_epochs``' inclusive bounds: the end is the last
    double before ``jd``, so the alert's own epoch is not in its history (as prv_candidates)."""
    return jd - HISTORY_DAYS, math.nextafter(jd, -math.inf)


def fp_hist_values(row: ForcedRow, alert: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one fp_hist record: the epoch's, its measurement's, the alert's nearest
    reference source. The science image's background and noise, its colour terms and
    astrometric residuals are not in the archive (null)."""
    epoch = row.epoch
    return {
        "field": epoch.field, "rcid": epoch.rcid, "fid": epoch.fid, "pid": epoch.pid,
        "rfid": epoch.rfid, "sciinpseeing": row.sciinpseeing, "magzpsci": epoch.magzpsci,
        "magzpscirms": epoch.magzpscirms, "exptime": epoch.exptime,
        "diffmaglim": row.diffmaglim, "programid": epoch.programid, "jd": epoch.jd,
        "forcediffimflux": row.measured.flux, "forcediffimfluxunc": row.measured.fluxerr,
        "procstatus": str(row.procstatus),
        **{name: alert.get(name) for name in NEAREST_REFERENCE},
    }


def epochs(images: Sequence[Mapping[str, Any]]) -> list[Epoch]:
    """An alert's fp_hists' epochs from its previous images (``history.previous_images``):
    those with a difference file, oldest first; each as ``find_epochs(history_of_program=...)``
    finds it for the alert's position over ``history_window``. ``previous_images`` finds them
    for a whole difference image's alerts in one statement, where ``find_epochs`` took one per
    alert (benchmarks/bench_alerts.py)."""
    return [Epoch(diffid=image["diffid"], pid=image["pid"], expid=image["expid"],
                  rfid=image["refid"], jd=image["jd"], field=image["field"],
                  ccdid=image["ccdid"], qid=image["qid"], rcid=image["rcid"],
                  fid=image["fid"], filtercode=image["filtercode"],
                  programid=image["programid"], exptime=image["exptime"],
                  diffmaglim=image["diffmaglim"], path=image["difference_path"],
                  seeing=image["seeing"], magzpsci=image["magzpsci"],
                  magzpscirms=image["magzpscirms"], infobitssci=image["infobits"],
                  refjdstart=image["startobsjd"], refjdend=image["endobsjd"])
            for image in images if image["difference_path"] is not None]


class ForcedHistories:
    """``AlertBuilder``'s ``forced_photometry``: alerts' fp_hist records, oldest first,
    measured on their epochs. The alerts of one difference image share their earlier epochs:
    each epoch is measured at all its alerts' positions together (``measure_positions``: one
    file lookup, calibration and WCS call per epoch rather than per alert and epoch), and the
    difference files stay open in ``images``."""

    def __init__(self, locate: Callable[[str], Path], images: OpenImages) -> None:
        self.locate = locate
        self.images = images

    def __call__(self, alerts: Sequence[Mapping[str, Any]],
                 found: Sequence[Sequence[Epoch]]) -> list[list[dict[str, Any]]]:
        """Each alert's fp_hist records, on its epochs (``found``, in the alerts' order)."""
        slots: dict[int, tuple[Epoch, list[tuple[int, int]]]] = {}
        for index, epochs_of_alert in enumerate(found):
            for place, epoch in enumerate(epochs_of_alert):
                slots.setdefault(epoch.diffid, (epoch, []))[1].append((index, place))
        records: list[list[dict[str, Any]]] = [[{}] * len(e) for e in found]
        for epoch, places in slots.values():
            rows = measure_positions(
                epoch, [(alerts[index]["ra"] % 360.0, alerts[index]["dec"])
                        for index, _ in places], locate=self.locate, images=self.images)
            for (index, place), row in zip(places, rows, strict=True):
                records[index][place] = record("fp_hist", fp_hist_values(row, alerts[index]))
        return records
