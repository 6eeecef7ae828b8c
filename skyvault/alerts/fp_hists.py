"""``fp_hists``: forced photometry at an alert's position on the difference images of the 30
days before it (ZTF's ``ztf.alert.fp_hist`` records), measured with the archive's forced
photometry (``skyvault.forced_photometry``, what /forcedphot answers with).

The epochs are found on the stream's own connection, so row-level security shows the stream's
requester's rows only, and held in SQL to those the alert's history may hold
(``find_epochs(history_of_program=...)``: ``candidate_history.history_programs``, the rule of
``prv_candidates``): a public-stream alert's fp_hists hold public-survey epochs only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from skyvault.alerts.history import HISTORY_DAYS
from skyvault.alerts.packet import record
from skyvault.forced_photometry import ForcedRow, find_epochs, forced_request, measure_epochs
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


class ForcedHistories:
    """``AlertBuilder``'s ``forced_photometry``: an alert's fp_hist records, oldest first.
    The difference files stay open in ``images`` (the alerts of one difference image share
    their earlier epochs)."""

    def __init__(self, locate: Callable[[str], Path], images: OpenImages) -> None:
        self.locate = locate
        self.images = images

    def __call__(self, connection: psycopg.Connection,
                 alert: dict[str, Any]) -> list[dict[str, Any]]:
        request = forced_request(alert["ra"], alert["dec"], *history_window(alert["jd"]))
        epochs = find_epochs(connection, request, history_of_program=alert["programid"])
        return [record("fp_hist", fp_hist_values(row, alert))
                for row in measure_epochs(epochs, request.ra, request.dec, locate=self.locate,
                                          images=self.images)]
