"""Multi-Order Coverage maps (IVOA MOC 2.0) of image footprints, with mocpy. Pure.

A footprint is a spherical polygon (the image's four corners, as in ``s_region``). mocpy's
polygon coverage keeps every HEALPix cell the polygon touches, so the MOC of a set of
footprints contains all of them and reaches at most one cell (of ``order``) beyond their
edges. Spatio-temporal MOCs pair each group of footprints with its time range.

Serialisations: FITS (MOC 2.0, NUNIQ, with the MOC 2.0 keywords), JSON (``{"order": [cells]}``,
what Aladin Lite and mocpy read) and ASCII (``order/cells``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.time import Time
from lxml import etree
from mocpy import MOC, STMOC

from skyvault.vo.vosi import interface_element

DEFAULT_ORDER = 13
"""About 26 arcsec: a few per cent of a quadrant's side in the small demo camera (256
pixels of 1 arcsec), far below one for a full-size quadrant."""
MAX_ORDER = 16
"""Finer than 3 arcsec says nothing the footprints' accuracy supports, and costs a lot."""
TIME_ORDER = 35
"""Time resolution of ST-MOCs: 2^(61-35) microseconds, about 67 seconds, below an exposure."""

FORMATS = {"fits": "application/fits", "json": "application/json",
           "ascii": "text/plain; charset=utf-8"}


class MocRequestError(ValueError):
    """A MOC was asked for with a value it cannot be made with; the message says which."""


Polygon = Sequence[tuple[float, float]]
"""Vertices (ra, dec) in degrees, in order around the polygon."""


def parse_order(text: str | None, default: int = DEFAULT_ORDER) -> int:
    if text is None or text == "":
        return default
    try:
        order = int(text)
    except ValueError as error:
        raise MocRequestError(f"order must be an integer from 0 to {MAX_ORDER}, not "
                              f"{text!r}") from error
    if not 0 <= order <= MAX_ORDER:
        raise MocRequestError(f"order must be from 0 to {MAX_ORDER}, not {order}")
    return order


def parse_format(text: str | None) -> str:
    value = (text or "fits").lower()
    if value not in FORMATS:
        raise MocRequestError(f"format must be one of {', '.join(FORMATS)}, not {text!r}")
    return value


def _vertex_arrays(polygons: Iterable[Polygon]) -> list[np.ndarray]:
    """[lon1, lat1, lon2, lat2, ...] as mocpy.from_polygons takes them, degenerate ones out."""
    arrays: list[np.ndarray] = []
    for polygon in polygons:
        vertices = np.asarray(polygon, dtype=float)
        if vertices.ndim != 2 or len(vertices) < 3 or not np.all(np.isfinite(vertices)):
            continue
        arrays += [vertices[:, 0] % 360.0, np.clip(vertices[:, 1], -90.0, 90.0)]
    return arrays


def footprint_moc(polygons: Iterable[Polygon], order: int = DEFAULT_ORDER) -> MOC:
    """The union of the polygons' coverages at ``order`` (empty MOC for no polygon)."""
    arrays = _vertex_arrays(polygons)
    if not arrays:
        return MOC.new_empty(order)
    # One thread: the service runs several requests at once, and mocpy's default is all cores.
    mocs = MOC.from_polygons(arrays, max_depth=order, n_threads=1)
    union = mocs[0].union(*mocs[1:]) if len(mocs) > 1 else mocs[0]
    return union


@dataclass(frozen=True)
class TimedFootprints:
    """Footprints observed together, with their time span (JD, UTC)."""

    start_jd: float
    end_jd: float
    polygons: Sequence[Polygon]


def space_time_moc(groups: Iterable[TimedFootprints], order: int = DEFAULT_ORDER,
                   time_order: int = TIME_ORDER) -> STMOC:
    """An ST-MOC: for each group, its spatial coverage during its time range."""
    starts, ends, spaces = [], [], []
    for group in groups:
        space = footprint_moc(group.polygons, order)
        if space.empty():
            continue
        starts.append(group.start_jd)
        ends.append(max(group.end_jd, group.start_jd))
        spaces.append(space)
    if not spaces:
        return STMOC.new_empty(order, time_order)
    return STMOC.from_spatial_coverages(Time(starts, format="jd", scale="utc"),
                                        Time(ends, format="jd", scale="utc"), spaces,
                                        time_depth=time_order)


def serialise(moc: MOC | STMOC, kind: str) -> bytes:
    """The MOC in one of FORMATS."""
    if kind == "fits":
        buffer = io.BytesIO()
        moc.serialize("fits").writeto(buffer)
        return buffer.getvalue()
    if kind == "json":
        if isinstance(moc, STMOC):
            return moc.to_string("json").encode()
        return json.dumps(json.loads(moc.to_string("json")), separators=(",", ":")).encode()
    return (moc.to_string("ascii") + "\n").encode()


MOC_STANDARD_ID = "ivo://skyvault.archive/std/moc#coverage-2.0"
MOC_DESCRIPTION = (
    "Coverage of the archive's science images as IVOA MOC 2.0 (FITS by default; format=json or "
    "ascii), as the requester may see them; filter=zg|zr|zi, night=YYYY-MM-DD, release=NAME, "
    "order=0-16 select it. The same URL with /stmoc instead of /moc gives the space-time "
    "coverage (ST-MOC).")


def capability_element(moc_url: str,
                       security_methods: Iterable[str | None] = ()) -> etree._Element:
    """A VOSI capability (VOResource 1.1 section 3.2) pointing clients at the coverage MOC,
    with the authentication it accepts (SSO 2.0; None for anonymous use). MOC defines no
    service standard, so the capability's standardID is this archive's own (clients, taplint
    among them, require one)."""
    capability = etree.Element("capability", standardID=MOC_STANDARD_ID)
    etree.SubElement(capability, "description").text = MOC_DESCRIPTION
    interface = interface_element(capability, moc_url, use="base",
                                  security_methods=security_methods)
    etree.SubElement(interface, "resultType").text = FORMATS["fits"]
    return capability


def sky_area_deg2(moc: MOC) -> float:
    return float(moc.sky_fraction) * 4.0 * np.pi * (180.0 / np.pi) ** 2


def cell_outlines(moc: MOC, order: int, step: int = 1) -> list[np.ndarray]:
    """The outline (ra, dec) of each cell of the MOC degraded to ``order``: what a sky map
    draws. ``step`` points per cell side (1: the four corners)."""
    from cdshealpix.nested import vertices

    coarse = moc.degrade_to_order(order) if moc.max_order > order else moc
    depth = coarse.max_order
    cells = np.asarray(coarse.flatten(), dtype=np.uint64)
    if len(cells) == 0:
        return []
    lon, lat = vertices(cells, depth, step=step)
    return [np.column_stack([lo.to_value("deg"), la.to_value("deg")])
            for lo, la in zip(lon, lat, strict=True)]
