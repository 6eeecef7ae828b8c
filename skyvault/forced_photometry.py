"""Forced photometry over the archive: every difference image that covers a position, as the
requester may see them, measured at that position (``pipeline.process.forced``).

The epochs are found through the requester's connection (``db.reading(requester)``): a
difference image, its file and its science image are rows under row-level security, so an
embargoed epoch is simply not there, and its file is opened only after its row was seen. Each
file is read in a small section around the position (fitsio: only the tiles it touches of the
tile-compressed difference are decompressed); the difference's own header gives its WCS, PSF
(PSFFWHM, PSFBETA), zero point (MAGZP, ZFPS's ``zpdiff``), noise (SKYRMS, NOISECOR) and gain.

Flask-free and outside ``server/`` (which only ``server/`` may import): the sync endpoint, the
async executor (`skyvault worker`) and the alert writer (``forced_photometry_rows``, for ZTF's
``fp_hists``) all measure with this module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from skyvault.access import Requester
from skyvault.db import Database, database
from skyvault.filestore import InvalidStorePath, StoreError, local_file
from skyvault.ingest.candidate_history import history_programs
from skyvault.pipeline.process.forced import (
    ForcedFlux,
    ForcedStatus,
    forced_flux,
    no_measurement,
    stamp_half_size,
)
from skyvault.pipeline.process.psf import Psf
from skyvault.vo.cutout import CutoutError, ImageFile, OpenImages, PixelBox, open_image
from skyvault.vo.forcedphot import FILTER_IDS, ForcedRequest
from skyvault.vo.skyproj import ProjectionError

log = logging.getLogger(__name__)

DEFAULT_GAIN = 6.0
"""e-/DN where a difference does not say (made before its header carried GAIN): the camera's
nominal gain, as the pipeline's candidates assume; it only sets a bright source's own noise."""


class TooManyEpochs(Exception):
    """More epochs than the caller allows (sync answers small ranges only)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} epochs cover this position in the range asked")
        self.limit = limit


@dataclass(frozen=True)
class Epoch:
    """One difference image covering the position, with what the archive knows of it."""

    diffid: int
    pid: int
    expid: int | None
    rfid: int
    jd: float
    field: int | None
    ccdid: int | None
    qid: int | None
    rcid: int | None
    fid: int | None
    filtercode: str | None
    programid: int
    exptime: float | None
    diffmaglim: float | None
    path: str
    seeing: float | None
    """Of the science image, arcsec (NULL if the requester may not see it)."""
    magzpsci: float | None
    magzpscirms: float | None
    infobitssci: int | None
    refjdstart: float | None
    """First and last epoch of the reference (NULL while the reference itself is embargoed)."""
    refjdend: float | None


EPOCH_SQL = f"""
SELECT d.diffid, d.pid, d.expid, d.refid, d.obsjd, d.field, d.ccdid, d.qid, d.rcid, d.fid,
       d.filtercode, d.programid, d.exptime, d.maglimit, f.path,
       s.seeing, s.magzp, s.magzprms, s.infobits, r.startobsjd, r.endobsjd
  FROM survey.difference_images d
 CROSS JOIN (SELECT %(history_of)s::int2 AS programid) alert
  JOIN LATERAL (SELECT path FROM survey.files
                 WHERE image_table = 'difference_images' AND image_id = d.diffid
                   AND product = 'diffimg' AND is_current = 1
                 ORDER BY proc_version DESC LIMIT 1) f ON true
  LEFT JOIN survey.science_images s ON s.pid = d.pid
  LEFT JOIN survey.reference_images r ON r.refid = d.refid
 WHERE d.footprint @> spoint(radians(%(ra)s), radians(%(dec)s))
   AND d.is_current = 1
   AND (%(jd_start)s::float8 IS NULL OR d.obsjd >= %(jd_start)s::float8)
   AND (%(jd_end)s::float8 IS NULL OR d.obsjd <= %(jd_end)s::float8)
   AND (cardinality(%(filters)s::text[]) = 0 OR d.filtercode = ANY(%(filters)s::text[]))
   AND (alert.programid IS NULL OR {history_programs('d', 'alert')})
 ORDER BY d.obsjd, d.diffid
 LIMIT %(limit)s
"""
"""``history_of``: NULL, or the program of an alert whose ``fp_hists`` these epochs are: then only
the epochs its history may hold (``candidate_history.history_programs``, the rule of its
``prv_candidates``), in SQL, beside row-level security."""


def find_epochs(connection: psycopg.Connection, request: ForcedRequest,
                limit: int | None = None, *, history_of_program: int | None = None,
                ) -> list[Epoch]:
    """The difference images covering the request's position in its range, oldest first, as
    the connection's requester may see them; ``TooManyEpochs`` beyond ``limit``. With
    ``history_of_program``, only those an alert of that program may carry (``EPOCH_SQL``)."""
    rows = connection.execute(EPOCH_SQL, {
        "ra": request.ra, "dec": request.dec, "jd_start": request.jd_start,
        "jd_end": request.jd_end, "filters": list(request.filtercodes),
        "history_of": history_of_program,
        "limit": None if limit is None else limit + 1}).fetchall()
    if limit is not None and len(rows) > limit:
        raise TooManyEpochs(limit)
    return [Epoch(*row) for row in rows]


@dataclass(frozen=True)
class ForcedRow:
    """One epoch's forced photometry: ZFPS's columns (and ZTF's ``fp_hist`` fields) where
    they apply. Fluxes are DN on the difference's zero point ``zpdiff``."""

    epoch: Epoch
    zpdiff: float | None
    diffmaglim: float | None
    xpos: float | None
    """Where the position falls on the difference (FITS pixels, 1-based)."""
    ypos: float | None
    sciinpseeing: float | None
    """The science image's FWHM in pixels (fp_hist's unit)."""
    measured: ForcedFlux

    @property
    def procstatus(self) -> int:
        return int(self.measured.status)


@dataclass(frozen=True)
class DifferenceCalibration:
    """What a difference's header says its pixels mean."""

    psf: Psf | None
    zpdiff: float | None
    diffmaglim: float | None
    sky_rms: float | None
    """Per-pixel rms, DN (SKYRMS over NOISECOR: the header's is corrected for correlation)."""
    noise_correlation: float
    gain: float
    pixel_scale: float | None


def calibration(values: dict[str, object]) -> DifferenceCalibration:
    fwhm, beta = _number(values.get("PSFFWHM")), _number(values.get("PSFBETA"))
    correlation = _number(values.get("NOISECOR")) or 1.0
    skyrms = _number(values.get("SKYRMS"))
    return DifferenceCalibration(
        psf=Psf(fwhm, beta, 0) if fwhm and beta and fwhm > 0 and beta > 1 else None,
        zpdiff=_number(values.get("MAGZP")),
        diffmaglim=_number(values.get("MAGLIM")),
        sky_rms=skyrms / correlation if skyrms else None,
        noise_correlation=correlation,
        gain=_number(values.get("GAIN")) or DEFAULT_GAIN,
        pixel_scale=_number(values.get("PIXSCALE")),
    )


def measure_epoch(epoch: Epoch, ra: float, dec: float, *,
                  locate: Callable[[str], Path] = local_file,
                  images: OpenImages | None = None) -> ForcedRow:
    """The forced flux at (ra, dec) on the epoch's difference image (the store's file
    ``locate`` finds; kept open in ``images`` when given, for the next position on it)."""
    return measure_positions(epoch, [(ra, dec)], locate=locate, images=images)[0]


def measure_positions(epoch: Epoch, positions: Sequence[tuple[float, float]], *,
                      locate: Callable[[str], Path] = local_file,
                      images: OpenImages | None = None) -> list[ForcedRow]:
    """``measure_epoch`` at each position on the one epoch: its file found and opened, its
    calibration read and its WCS applied once for them all (the alerts of one difference
    image share their earlier epochs)."""
    if not positions:
        return []
    try:
        if images is not None:
            return _measure_all(images.get(locate(epoch.path)), epoch, positions)
        with open_image(locate(epoch.path)) as image:
            return _measure_all(image, epoch, positions)
    except _UNREADABLE as error:
        return [_unreadable(epoch, error) for _ in positions]


_UNREADABLE = (InvalidStorePath, StoreError, CutoutError, ProjectionError, ValueError, OSError)


def _unreadable(epoch: Epoch, error: Exception) -> ForcedRow:
    # A file the archive lists but cannot read is the archive's fault, not the user's:
    # logged, and the epoch reported without a flux.
    log.error("forced photometry cannot read %s: %s", epoch.path, error)
    return ForcedRow(epoch, None, epoch.diffmaglim, None, None, _seeing(epoch, None),
                     no_measurement(ForcedStatus.UNREADABLE))


def _measure_all(image: ImageFile, epoch: Epoch,
                 positions: Sequence[tuple[float, float]]) -> list[ForcedRow]:
    calibrated = calibration(image.header.values)
    xs, ys = image.projection().world_to_pixel([ra for ra, _ in positions],
                                               [dec for _, dec in positions])
    rows = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        try:
            rows.append(_measure(image, calibrated, epoch, x, y))
        except _UNREADABLE as error:
            rows.append(_unreadable(epoch, error))
    return rows


def _measure(image: ImageFile, calibrated: DifferenceCalibration, epoch: Epoch, x: float,
             y: float) -> ForcedRow:
    diffmaglim = calibrated.diffmaglim if calibrated.diffmaglim is not None \
        else epoch.diffmaglim
    seeing = _seeing(epoch, calibrated.pixel_scale)
    position = (x + 1, y + 1) if math.isfinite(x) and math.isfinite(y) else (None, None)
    if calibrated.psf is None or calibrated.zpdiff is None:
        return ForcedRow(epoch, calibrated.zpdiff, diffmaglim, *position, seeing,
                         no_measurement(ForcedStatus.NO_CALIBRATION))
    if position[0] is None:
        return ForcedRow(epoch, calibrated.zpdiff, diffmaglim, None, None, seeing,
                         no_measurement(ForcedStatus.NO_PIXELS))
    half = stamp_half_size(calibrated.psf)
    ix, iy = round(x), round(y)
    box = PixelBox(ix - half, ix + half + 1, iy - half, iy + half + 1).intersect(
        PixelBox(0, image.header.naxis1, 0, image.header.naxis2))
    if box.is_empty:
        measured = no_measurement(ForcedStatus.NO_PIXELS)
    else:
        pixels = image.read(box)
        # The pipeline writes 0 where the difference has no value (masked in either image,
        # outside the reference's coverage); dithered quantisation keeps zeros exact.
        measured = forced_flux(pixels, x - box.x0, y - box.y0, calibrated.psf,
                               gain=calibrated.gain,
                               noise_correlation=calibrated.noise_correlation,
                               unusable=pixels == 0, fallback_rms=calibrated.sky_rms)
    return ForcedRow(epoch, calibrated.zpdiff, diffmaglim, *position, seeing, measured)


def _seeing(epoch: Epoch, pixel_scale: float | None) -> float | None:
    if epoch.seeing is None or not pixel_scale:
        return None
    return epoch.seeing / pixel_scale


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def measure_epochs(epochs: list[Epoch], ra: float, dec: float,
                   stop: Callable[[], bool] | None = None, *,
                   locate: Callable[[str], Path] = local_file,
                   images: OpenImages | None = None) -> Iterator[ForcedRow]:
    """Each epoch's row in turn; ``stop`` is asked between epochs (an aborted job)."""
    for epoch in epochs:
        if stop is not None and stop():
            return
        yield measure_epoch(epoch, ra, dec, locate=locate, images=images)


def forced_request(ra: float, dec: float, jd_start: float | None, jd_end: float | None,
                   filtercodes: tuple[str, ...] = ()) -> ForcedRequest:
    unknown = [code for code in filtercodes if code not in FILTER_IDS]
    if unknown:
        raise ValueError(f"unknown filter codes {unknown}: not among {sorted(FILTER_IDS)}")
    return ForcedRequest(ra % 360.0, dec, jd_start, jd_end, tuple(filtercodes))


def forced_photometry_rows(requester: Requester, ra: float, dec: float, *,
                           jd_start: float | None = None, jd_end: float | None = None,
                           filtercodes: tuple[str, ...] = (), primary: bool = True,
                           history_of_program: int | None = None,
                           on: Database | None = None,
                           locate: Callable[[str], Path] = local_file) -> list[ForcedRow]:
    """Forced photometry at (ra, dec) on every difference image ``requester`` may see, oldest
    first; with ``history_of_program``, only those an alert of that program may carry (as
    ZTF alert packets' ``fp_hists``: the stream's requester, its 30 days, ``find_epochs``).
    Reads ``on`` (the service's database by default) on the primary by default, as jobs
    do."""
    request = forced_request(ra, dec, jd_start, jd_end, filtercodes)
    with (on or database()).reading(requester, primary=primary) as connection:
        epochs = find_epochs(connection, request, history_of_program=history_of_program)
    return list(measure_epochs(epochs, request.ra, request.dec, locate=locate))
