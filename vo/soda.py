"""SODA 1.0 parameters, and the service descriptors that advertise them.

``parse_soda_request`` reads ID and the filtering parameters (POS, CIRCLE, POLYGON, BAND, TIME,
and PIXEL_1 / PIXEL_2, pixel ranges as DaCHS offers them) into one ``Cutout`` per combination of
values (SODA 1.0 section 5: "each combination of values produces one result"). The {sync}
resource accepts one value per parameter and answers MultiValuedParamNotSupported otherwise
(section 3.2). Different filters apply together: the cutout is what every one of them selects.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from skyvault.vo.datalink import ServiceDescriptor, ServiceParam
from skyvault.vo.shapes import (
    Interval,
    Shape,
    ShapeError,
    parse_circle,
    parse_interval,
    parse_pixel_interval,
    parse_polygon,
    parse_pos,
)

SODA_SYNC_ID = "ivo://ivoa.net/std/SODA#sync-1.0"
SODA_ASYNC_ID = "ivo://ivoa.net/std/SODA#async-1.0"
FITS_TYPE = "application/fits"
SPATIAL = ("POS", "CIRCLE", "POLYGON")
FILTERS = (*SPATIAL, "BAND", "TIME", "PIXEL_1", "PIXEL_2")


class SodaError(Exception):
    """An error SODA reports as text/plain starting with ``code`` (SODA 1.0 section 5.2)."""

    code = "Error"
    http_status = 400

    def text(self) -> str:
        return f"{self.code}: {self}\n"


class UsageError(SodaError):
    code = "UsageError"


class MultiValuedParamNotSupported(SodaError):
    code = "MultiValuedParamNotSupported"


class NotFound(UsageError):
    """No dataset with that ID (or none the requester may see: the answer is the same)."""

    http_status = 404


class ParameterSource(Protocol):
    def get_all(self, name: str) -> list[str]: ...


@dataclass(frozen=True)
class Cutout:
    """One combination of filter values."""

    shapes: tuple[Shape, ...] = ()
    pixel1: tuple[int, int] | None = None
    pixel2: tuple[int, int] | None = None
    band: Interval | None = None
    time: Interval | None = None

    def describe(self) -> str:
        parts = [type(s).__name__.upper() for s in self.shapes]
        if self.pixel1 or self.pixel2:
            parts.append(f"PIXEL {self.pixel1 or '*'} {self.pixel2 or '*'}")
        return ", ".join(parts) or "whole image"


@dataclass(frozen=True)
class SodaRequest:
    ids: tuple[str, ...]
    cutouts: tuple[Cutout, ...]
    response_format: str = FITS_TYPE


def _parse(name: str, text: str) -> object:
    try:
        if name == "POS":
            return parse_pos(text, name)
        if name == "CIRCLE":
            return parse_circle(text, name)
        if name == "POLYGON":
            return parse_polygon(text, name)
        if name in ("BAND", "TIME"):
            return parse_interval(text, name)
        return parse_pixel_interval(text, name)
    except ShapeError as error:
        raise UsageError(str(error)) from None


def _response_format(params: ParameterSource) -> str:
    values = params.get_all("RESPONSEFORMAT")
    if len(values) > 1:
        raise MultiValuedParamNotSupported("RESPONSEFORMAT takes one value")
    if not values or not values[0].strip():
        return FITS_TYPE
    base = values[0].split(";", 1)[0].strip().lower()
    if base not in (FITS_TYPE, "image/fits", "fits"):
        raise UsageError(f"RESPONSEFORMAT {values[0]!r} is not offered; use {FITS_TYPE}")
    return FITS_TYPE


def parse_soda_request(params: ParameterSource, *, multi_valued: bool) -> SodaRequest:
    ids = tuple(v.strip() for v in params.get_all("ID") if v.strip())
    if not ids:
        raise UsageError("ID is required")
    response_format = _response_format(params)
    values: dict[str, list[object]] = {}
    for name in FILTERS:
        given = [v for v in params.get_all(name) if v.strip()]
        if not given:
            continue
        if len(given) > 1 and not multi_valued:
            raise MultiValuedParamNotSupported(f"{name} takes one value in {{sync}} requests")
        values[name] = [_parse(name, text) for text in given]
    if len(ids) > 1 and not multi_valued:
        raise MultiValuedParamNotSupported("ID takes one value in {sync} requests; use {async}")
    names = list(values)
    cutouts = []
    for combination in itertools.product(*(values[n] for n in names)):
        chosen = dict(zip(names, combination, strict=True))
        cutouts.append(Cutout(
            shapes=tuple(chosen[n] for n in SPATIAL if n in chosen),  # type: ignore[misc]
            pixel1=chosen.get("PIXEL_1"),  # type: ignore[arg-type]
            pixel2=chosen.get("PIXEL_2"),  # type: ignore[arg-type]
            band=chosen.get("BAND"),  # type: ignore[arg-type]
            time=chosen.get("TIME"),  # type: ignore[arg-type]
        ))
    return SodaRequest(ids, tuple(cutouts) or (Cutout(),), response_format)


def overlaps(wanted: Interval | None, lo: float | None, hi: float | None) -> bool:
    """Whether a BAND or TIME filter keeps the data; unknown coverage never matches."""
    if wanted is None:
        return True
    if lo is None or hi is None:
        return False
    return wanted.lo <= hi and wanted.hi >= lo


# -- descriptors ----------------------------------------------------------------------------------


def _numbers(values: Sequence[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


@dataclass(frozen=True)
class DatasetBounds:
    """What one dataset covers, for the MIN/MAX hints of its descriptor (SODA 1.0 4.3)."""

    naxis1: int | None = None
    naxis2: int | None = None
    circle: tuple[float, float, float] | None = None
    polygon: tuple[float, ...] | None = None
    band: tuple[float, float] | None = None
    time: tuple[float, float] | None = None
    sky: bool = True
    """False for images without a celestial WCS (raw CCD frames): only PIXEL_n apply."""


def soda_descriptor(access_url: str, *, descriptor_id: str | None = None,
                    id_value: str = "", id_ref: str | None = None,
                    bounds: DatasetBounds | None = None) -> ServiceDescriptor:
    """The SODA {sync} descriptor: fixed ``id_value`` for one dataset (in DataLink documents),
    or ``id_ref`` to the FIELD holding IDs (generic, in discovery responses)."""
    bounds = bounds or DatasetBounds()
    params = [ServiceParam("ID", ucd="meta.ref.url;meta.curation", value=id_value, ref=id_ref,
                           description="The publisher DID of the dataset of interest")]
    if bounds.sky:
        params += [
            ServiceParam("POS", ucd="pos.outline;obs",
                         description="Region to cut out: CIRCLE ra dec r, RANGE ra1 ra2 dec1 "
                                     "dec2 or POLYGON ra1 dec1 ... (ICRS degrees)"),
            ServiceParam("CIRCLE", datatype="double", arraysize="3", xtype="circle", unit="deg",
                         ucd="pos.outline;obs",
                         description="A circle (ra dec radius) that the cutout covers",
                         maximum=_numbers(bounds.circle) if bounds.circle else None),
            ServiceParam("POLYGON", datatype="double", arraysize="*", xtype="polygon",
                         unit="deg", ucd="pos.outline;obs",
                         description="A polygon (ra1 dec1 ra2 dec2 ...) that the cutout covers",
                         maximum=_numbers(bounds.polygon) if bounds.polygon else None),
        ]
    params += [
        ServiceParam("BAND", datatype="double", arraysize="2", xtype="interval", unit="m",
                     ucd="em.wl;stat.interval",
                     description="Vacuum wavelength interval; the image is returned when its "
                                 "filter overlaps it",
                     minimum=repr(bounds.band[0]) if bounds.band else None,
                     maximum=repr(bounds.band[1]) if bounds.band else None),
        ServiceParam("TIME", datatype="double", arraysize="2", xtype="interval", unit="d",
                     ucd="time.interval;obs.exposure",
                     description="Time interval (MJD); the image is returned when its exposure "
                                 "overlaps it",
                     minimum=repr(bounds.time[0]) if bounds.time else None,
                     maximum=repr(bounds.time[1]) if bounds.time else None),
    ]
    for axis, size in ((1, bounds.naxis1), (2, bounds.naxis2)):
        params.append(ServiceParam(
            f"PIXEL_{axis}", datatype="int", arraysize="2", xtype="interval",
            ucd=f"pos.cartesian.{'xy'[axis - 1]};instr.pixel",
            description=f"Pixel range along FITS axis {axis} (1-based, inclusive)",
            minimum="1" if size else None, maximum=str(size) if size else None))
    return ServiceDescriptor(
        access_url=access_url, input_params=tuple(params), standard_id=SODA_SYNC_ID,
        id=descriptor_id, name=descriptor_id or "cutout",
        description="SODA cutout service: the pixels of an image that a region covers, as FITS "
                    "with the image's header and a shifted WCS",
        content_type=FITS_TYPE,
    )
