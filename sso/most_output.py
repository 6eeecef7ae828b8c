"""The moving-object search's tables: VOTable fields, rows, and the VOTable/CSV documents.

Pure: URLs come from a ``Links`` the HTTP edge builds (they depend on the service's address).
Times are UTC; positions are astrometric ICRF as ``ephemeris.predict`` defines them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import ColumnBatch, Info, write_csv, write_votable
from skyvault.vo.votable.writer import Serialization

from .ephemeris import Ephemeris
from .field_objects import FieldObject
from .search_db import ImageMatch, mjd_to_datetime


def _f(name: str, datatype: str, unit: str | None, ucd: str | None, description: str,
       **extra: str) -> FieldSpec:
    return FieldSpec(name, datatype, unit=unit, ucd=ucd, description=description, **extra)


def _text(name: str, ucd: str | None, description: str) -> FieldSpec:
    return FieldSpec(name, "char", arraysize="*", ucd=ucd, description=description)


def _time(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, "char", arraysize="*", xtype="timestamp", ucd="time.epoch",
                     description=description)


PREDICTION_FIELDS: tuple[FieldSpec, ...] = (
    _f("ra", "double", "deg", "pos.eq.ra;meta.main",
       "Predicted right ascension (astrometric ICRF, topocentric, light-time corrected)"),
    _f("dec", "double", "deg", "pos.eq.dec;meta.main", "Predicted declination (as ra)"),
    _f("ra_rate", "double", "arcsec/h", "pos.pm;pos.eq.ra",
       "Rate of motion in right ascension, times cos(dec)"),
    _f("dec_rate", "double", "arcsec/h", "pos.pm;pos.eq.dec", "Rate of motion in declination"),
    _f("r", "double", "AU", "pos.distance;pos.heliocentric",
       "Heliocentric distance of the object at light emission"),
    _f("delta", "double", "AU", "pos.distance", "Distance from the observer (Palomar, I41)"),
    _f("phase", "double", "deg", "pos.phaseAng", "Phase angle Sun-object-observer"),
    _f("elong", "double", "deg", "pos.angDistance", "Solar elongation Sun-observer-object"),
    _f("vmag", "double", "mag", "phot.mag;em.opt.V",
       "Predicted V magnitude (H, G for asteroids; M1, K1 total magnitude for comets)"),
    _f("unc_3sigma", "double", "arcsec", "stat.error;pos",
       "Rough 3-sigma positional uncertainty from the orbit's MPC U parameter "
       "(null without one)"),
)

MATCH_FIELDS: tuple[FieldSpec, ...] = (
    _text("object", "meta.id", "The object searched for"),
    _text("image_id", "meta.id;meta.main", "Publisher DID of the science image (for SODA and "
          "DataLink ID)"),
    _f("pid", "long", None, "meta.id", "Science image identifier (survey.science_images.pid)"),
    _f("expid", "long", None, "meta.id", "Exposure identifier"),
    _f("field", "int", None, "meta.id;obs.field", "Survey field"),
    _f("ccdid", "short", None, "meta.id;instr.det", "CCD (1-16)"),
    _f("qid", "short", None, "meta.id;instr.det", "Readout quadrant (1-4)"),
    _f("rcid", "short", None, "meta.id;instr.det", "Readout channel (0-63)"),
    _text("filtercode", "meta.id;instr.filter", "Filter: zg, zr or zi"),
    _f("programid", "short", None, "meta.id", "Program the exposure belongs to"),
    _time("obs_date", "Mid-exposure time (UTC), where the prediction is made"),
    _f("mjd_mid", "double", "d", "time.epoch;obs", "Mid-exposure MJD (UTC)"),
    _f("obsjd", "double", "d", "time.start;obs.exposure", "Julian date (UTC) of exposure start"),
    _f("exptime", "double", "s", "time.duration;obs.exposure", "Exposure time"),
    *PREDICTION_FIELDS,
    _f("x", "double", "pix", "pos.cartesian.x;instr.det",
       "Predicted pixel x in the image (FITS, 1-based; linear TAN WCS of the image)"),
    _f("y", "double", "pix", "pos.cartesian.y;instr.det", "Predicted pixel y (as x)"),
    _f("centre_dist", "double", "deg", "pos.angDistance",
       "Distance of the prediction from the image centre"),
    _f("maglimit", "double", "mag", "phot.mag;stat.max", "5-sigma limiting magnitude"),
    _text("access_url", "meta.ref.url", "The science image (FITS)"),
    _text("cutout_url", "meta.ref.url", "SODA cutout centred on the prediction"),
    _text("datalink_url", "meta.ref.url", "DataLink links of the image"),
    _text("preview_url", "meta.ref.url", "PNG preview of the whole image"),
)

EPHEMERIS_FIELDS: tuple[FieldSpec, ...] = (
    _text("object", "meta.id", "The object"),
    _time("obs_date", "Time of the prediction (UTC)"),
    _f("mjd", "double", "d", "time.epoch", "MJD (UTC) of the prediction"),
    *PREDICTION_FIELDS,
)


_PREDICTION = {spec.name: spec for spec in PREDICTION_FIELDS}

FIELD_OBJECT_FIELDS: tuple[FieldSpec, ...] = (
    _text("object", "meta.id;meta.main", "The known solar-system object"),
    _text("designation", "meta.id", "Its designation in survey.solar_system_objects"),
    _text("image_id", "meta.id", "Publisher DID of the science image"),
    _f("pid", "long", None, "meta.id", "Science image identifier (survey.science_images.pid)"),
    _time("obs_date", "Mid-exposure time (UTC), where the prediction is made"),
    _f("mjd_mid", "double", "d", "time.epoch;obs", "Mid-exposure MJD (UTC)"),
    _PREDICTION["ra"], _PREDICTION["dec"], _PREDICTION["vmag"],
)
"""The objects predicted inside one image (``/most/field``, the image viewer's overlay)."""


def field_object_rows(objects: Sequence[FieldObject], image_did: Callable[[int], str]
                      ) -> list[tuple]:
    return [(o.label, o.designation, image_did(o.pid), o.pid, mjd_to_datetime(o.mjd_mid),
             o.mjd_mid, o.ra, o.dec, o.vmag) for o in objects]


@dataclass(frozen=True)
class Links:
    """URLs of an image's products, as the service publishes them."""

    image_did: Callable[[int], str]
    file: Callable[[str], str]
    cutout: Callable[[str, float, float, float], str]
    """(DID, ra, dec, radius in deg)"""
    datalink: Callable[[str], str]
    preview: Callable[[int], str]


CUTOUT_MIN_RADIUS_DEG = 1.0 / 60.0
CUTOUT_MAX_RADIUS_DEG = 0.5


def cutout_radius_deg(uncertainty_arcsec: float) -> float:
    """A minute of arc, or the 3-sigma uncertainty when larger (up to half a degree)."""
    if not math.isfinite(uncertainty_arcsec):
        return CUTOUT_MIN_RADIUS_DEG
    return min(max(uncertainty_arcsec / 3600.0, CUTOUT_MIN_RADIUS_DEG), CUTOUT_MAX_RADIUS_DEG)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def match_row(label: str, match: ImageMatch, links: Links) -> tuple:
    did = links.image_did(match.pid)
    return (
        label, did, match.pid, match.expid, match.field, match.ccdid, match.qid, match.rcid,
        match.filtercode, match.programid, match.obsdate_mid, match.mjd_mid, match.obsjd,
        match.exptime, match.ra, match.dec, match.ra_rate, match.dec_rate, match.r,
        match.delta, match.phase, match.elong, _finite(match.vmag),
        _finite(match.uncertainty_arcsec), _finite(match.x), _finite(match.y),
        match.centre_distance_deg, _finite(match.maglimit),
        links.file(match.path) if match.path else None,
        links.cutout(did, match.ra, match.dec, cutout_radius_deg(match.uncertainty_arcsec)),
        links.datalink(did), links.preview(match.pid),
    )


def ephemeris_rows(
    label: str, ephemeris: Ephemeris, uncertainty: NDArray[np.float64]
) -> list[tuple]:
    return [
        (label, mjd_to_datetime(float(ephemeris.mjd_utc[k])), float(ephemeris.mjd_utc[k]),
         float(ephemeris.ra[k]), float(ephemeris.dec[k]), float(ephemeris.ra_rate[k]),
         float(ephemeris.dec_rate[k]), float(ephemeris.r[k]), float(ephemeris.delta[k]),
         float(ephemeris.phase[k]), float(ephemeris.elong[k]), _finite(ephemeris.vmag[k]),
         _finite(uncertainty[k]))
        for k in range(len(ephemeris))
    ]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    fields: Sequence[FieldSpec]
    rows: list[tuple]


_FIELD_ID = re.compile(rb' ID="[^"]*"')


def votable_document(tables: Sequence[Table], infos: Sequence[Info],
                     serialization: Serialization = "BINARY2") -> bytes:
    """One RESOURCE of type results holding the tables in order (pyvo reads the first)."""
    documents = [
        b"".join(write_votable(table.fields, [ColumnBatch.from_rows(table.fields, table.rows)],
                               infos=infos if index == 0 else (), table_name=table.name,
                               description=table.description, serialization=serialization))
        for index, table in enumerate(tables)
    ]
    first = documents[0]
    extra = []
    for document in documents[1:]:
        table = document[document.index(b"<TABLE"): document.rindex(b"</TABLE>") + 9]
        # FIELD IDs must be unique in the whole document; later tables' names repeat them.
        extra.append(_FIELD_ID.sub(b"", table))
    if not extra:
        return first
    end = first.rindex(b"</TABLE>") + 9
    return first[:end] + b"".join(extra) + first[end:]


def csv_document(table: Table) -> bytes:
    return b"".join(write_csv(table.fields, [ColumnBatch.from_rows(table.fields, table.rows)]))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
