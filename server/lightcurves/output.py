"""The light-curve table: IRSA's columns (with their units and meaning), then ``upperlimit``
and ``pid``, in the format asked for, written by the archive's writers: VOTable, CSV and TSV
(``vo.votable``), IPAC table (``vo.ipac_table``), HTML (IBE's ``ct=html`` table)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from skyvault.lightcurves.irsa_request import LightCurveRequest
from skyvault.lightcurves.service import POINT_COLUMNS, LightCurveAnswer
from skyvault.server.ibe.html_table import MEDIA_TYPE as HTML_MEDIA_TYPE
from skyvault.server.ibe.html_table import write_html
from skyvault.vo.fields import FieldSpec
from skyvault.vo.fields import described_field as _field
from skyvault.vo.votable import ColumnBatch
from skyvault.vo.votable.formats import lookup_format

STANDARD_ID = "ivo://skyvault.archive/std/lightcurves"
"""No IVOA standard describes IRSA's light-curve API; the service names itself."""

_WRITERS = {"VOTABLE": "votable", "IPAC_TABLE": "ipac", "CSV": "csv", "TSV": "tsv"}


FIELDS: tuple[FieldSpec, ...] = (
    _field("oid", "long", "Object identifier (survey.objects)", None, "meta.id;meta.main"),
    _field("expid", "long", "Exposure", None, "meta.id;obs"),
    _field("hjd", "double", "Heliocentric Julian date (UTC) of the start of the exposure, for"
           " the object's position", "d", "time.epoch"),
    _field("mjd", "double", "Modified Julian date (UTC) of the start of the exposure", "d",
           "time.epoch;obs"),
    _field("mag", "double", "PSF-fit magnitude with the image's relative photometric"
           " correction applied; empty for an upper limit", "mag", "phot.mag"),
    _field("magerr", "double", "1-sigma uncertainty of mag", "mag", "stat.error;phot.mag"),
    _field("catflags", "int", "Catalog flags of the detection (survey.psf_sources.flags;"
           " /tables/bits)", None, "meta.code.qual"),
    _field("filtercode", "char", "Filter: zg, zr or zi", None, "instr.filter", "*"),
    _field("ra", "double", "Right ascension of the detection; empty for an upper limit", "deg",
           "pos.eq.ra"),
    _field("dec", "double", "Declination of the detection; empty for an upper limit", "deg",
           "pos.eq.dec"),
    _field("chi", "double", "Reduced chi-square of the PSF fit", None, "stat.fit.chi2"),
    _field("sharp", "double", "Sharpness of the detection", None, "src.morph.param"),
    _field("filefracday", "long", "Exposure start as YYYYMMDDdddddd (UTC, fraction of day)",
           None, "time.epoch;meta.id"),
    _field("field", "int", "Survey field", None, "meta.id;obs.field"),
    _field("ccdid", "short", "CCD (1-16)", None, "meta.id;instr.det"),
    _field("qid", "short", "Readout quadrant (1-4)", None, "meta.id;instr.det"),
    _field("limitmag", "double", "5-sigma limiting magnitude of the image: for an upper limit,"
           " the object was fainter than this", "mag", "phot.mag;stat.max"),
    _field("magzp", "double", "Photometric zero point of the image", "mag",
           "phot.calib;phot.mag"),
    _field("magzprms", "double", "RMS of the zero-point fit", "mag", "stat.stdev;phot.calib"),
    _field("exptime", "double", "Exposure time", "s", "time.duration;obs.exposure"),
    _field("airmass", "double", "Airmass", None, "obs.airMass"),
    _field("programid", "short", "Program of the exposure", None, "meta.id"),
    _field("upperlimit", "boolean", "true: an upper limit (the image covered the object's"
           " position and nothing was detected; limitmag is the limit, mag is empty); false: a"
           " detection", None, "meta.code;phot.mag"),
    _field("pid", "long", "Science image (survey.science_images)", None, "meta.id"),
)
assert tuple(f.name for f in FIELDS) == POINT_COLUMNS


def content_type(chosen: str) -> str:
    if chosen == "HTML":
        return HTML_MEDIA_TYPE
    return lookup_format(_WRITERS[chosen])[1]


def request_infos(request: LightCurveRequest, answer: LightCurveAnswer
                  ) -> list[tuple[str, str, str | None]]:
    """What was asked and answered, as INFOs (VOTable) or keywords (IPAC table)."""
    infos: list[tuple[str, str, str | None]] = [
        ("standardID", STANDARD_ID, None), ("COLLECTION", answer.collection, None),
        ("objects", str(answer.objects), None)]
    if request.circle is not None:
        circle = request.circle
        infos.append(("POS", f"CIRCLE {circle.ra!r} {circle.dec!r} {circle.radius!r}", None))
    if request.time is not None:
        infos.append(("TIME", f"{request.time.lo!r} {request.time.hi!r}", None))
    return infos


def write_answer(request: LightCurveRequest, answer: LightCurveAnswer) -> Iterator[bytes]:
    """The document of the rows in the request's FORMAT."""
    rows: Sequence[tuple] = [tuple(row[name] for name in POINT_COLUMNS) for row in answer.rows]
    batch = ColumnBatch.from_rows(FIELDS, rows)
    if request.format == "HTML":
        return write_html(FIELDS, [batch], title="SkyVault light curves")
    output, _ = lookup_format(_WRITERS[request.format])
    return output.write(FIELDS, [batch], infos=request_infos(request, answer))
