"""The forced-photometry table: its columns (ZFPS's names, ZTF ``fp_hist``'s where ZFPS has
none) and the document in the format asked for, written by the archive's one set of writers
(``vo.votable``: VOTable BINARY2 or TABLEDATA, CSV, TSV, FITS, Parquet)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from skyvault.forced_photometry import ForcedRow
from skyvault.vo.fields import FieldSpec
from skyvault.vo.fields import described_field as _field
from skyvault.vo.forcedphot import ForcedRequest
from skyvault.vo.votable import ColumnBatch

STANDARD_ID = "ivo://skyvault.archive/std/forcedphot"
"""No IVOA standard describes forced photometry; the service names itself."""


FIELDS: tuple[FieldSpec, ...] = (
    _field("jd", "double", "Julian date (UTC) at the start of the exposure", "d",
           "time.epoch"),
    _field("filter", "char", "Filter code: zg, zr or zi", None, "meta.id;instr.filter", "2"),
    _field("fid", "short", "Filter identifier: 1 g, 2 r, 3 i", None, "meta.id;instr.filter"),
    _field("forcediffimflux", "double", "Forced PSF-fit flux on the difference image, on its"
           " zero point zpdiff (mag = zpdiff - 2.5 log10 flux)", "ct", "phot.flux"),
    _field("forcediffimfluxunc", "double", "1-sigma uncertainty of forcediffimflux", "ct",
           "stat.error;phot.flux"),
    _field("forcediffimsnr", "double", "forcediffimflux / forcediffimfluxunc", None,
           "stat.snr"),
    _field("forcediffimchisq", "double", "Reduced chi-square of the PSF fit", None,
           "stat.fit.chi2"),
    _field("forcediffimbkg", "double", "Local background taken off the difference before the"
           " fit", "ct", "phot.flux.sb;instr.skyLevel"),
    _field("forcediffimsigpix", "double", "Robust per-pixel noise of the difference around the"
           " position (before the noise-correlation factor)", "ct", "stat.stdev;phot.flux"),
    _field("zpdiff", "double", "Zero point of the difference image", "mag",
           "phot.calib;phot.mag"),
    _field("diffmaglim", "double", "5-sigma limiting magnitude of the difference image", "mag",
           "phot.mag;stat.max"),
    _field("procstatus", "int", "0 measured; 56 pixels without value within one FWHM; 61 the"
           " fit reaches beyond the image edge; 62 no PSF or zero point; 63 no usable pixel; 64"
           " the file could not be read",
           None, "meta.code.qual"),
    _field("xpos", "double", "Position on the difference image (FITS, 1-based)", "pix",
           "pos.cartesian.x;instr.det"),
    _field("ypos", "double", "Position on the difference image (FITS, 1-based)", "pix",
           "pos.cartesian.y;instr.det"),
    _field("diffid", "long", "Difference image", None, "meta.id"),
    _field("pid", "long", "Science image", None, "meta.id"),
    _field("expid", "long", "Exposure", None, "meta.id"),
    _field("rfid", "long", "Reference image", None, "meta.id"),
    _field("field", "int", "Survey field", None, "meta.id;obs.field"),
    _field("ccdid", "short", "CCD (1-16)", None, "meta.id;instr.det"),
    _field("qid", "short", "Readout quadrant (1-4)", None, "meta.id;instr.det"),
    _field("rcid", "short", "Readout channel (0-63)", None, "meta.id;instr.det"),
    _field("programid", "short", "Program of the exposure", None, "meta.id"),
    _field("exptime", "double", "Exposure time", "s", "time.duration;obs.exposure"),
    _field("sciinpseeing", "double", "FWHM of the science image", "pix", "instr.obsty.seeing"),
    _field("zpmaginpsci", "double", "Zero point of the science image", "mag",
           "phot.calib;phot.mag"),
    _field("zpmaginpscirms", "double", "RMS of the science image's zero-point fit", "mag",
           "stat.stdev;phot.calib"),
    _field("infobitssci", "int", "Quality bits of the science image (0: no known problem)",
           None, "meta.code.qual"),
    _field("refjdstart", "double", "Start of the first epoch in the reference", "d",
           "time.start"),
    _field("refjdend", "double", "Start of the last epoch in the reference", "d",
           "time.end"),
)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def row_values(row: ForcedRow) -> tuple:
    epoch, measured = row.epoch, row.measured
    return (
        epoch.jd, epoch.filtercode, epoch.fid, _finite(measured.flux),
        _finite(measured.fluxerr), _finite(measured.snr), _finite(measured.chisq),
        _finite(measured.background), _finite(measured.pixel_rms), row.zpdiff,
        row.diffmaglim, row.procstatus, row.xpos, row.ypos, epoch.diffid, epoch.pid,
        epoch.expid, epoch.rfid, epoch.field, epoch.ccdid, epoch.qid, epoch.rcid,
        epoch.programid, epoch.exptime, row.sciinpseeing, epoch.magzpsci,
        epoch.magzpscirms, epoch.infobitssci, epoch.refjdstart, epoch.refjdend,
    )


def request_infos(request: ForcedRequest) -> list[tuple[str, str, str | None]]:
    """What was asked, as INFOs of the VOTable (FITS and Parquet keep them too)."""
    infos: list[tuple[str, str, str | None]] = [
        ("standardID", STANDARD_ID, None), ("ra", repr(request.ra), None),
        ("dec", repr(request.dec), None)]
    if request.jd_start is not None:
        infos.append(("jdstart", repr(request.jd_start), None))
    if request.jd_end is not None:
        infos.append(("jdend", repr(request.jd_end), None))
    if request.filtercodes:
        infos.append(("filter", ",".join(request.filtercodes), None))
    return infos


def write_table(request: ForcedRequest, rows: Sequence[ForcedRow]) -> Iterator[bytes]:
    """The document of the rows in the request's format."""
    output, _content_type = request.output()
    batch = ColumnBatch.from_rows(FIELDS, [row_values(row) for row in rows])
    return output.write(FIELDS, [batch], infos=request_infos(request))
