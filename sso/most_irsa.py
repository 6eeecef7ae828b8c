"""IRSA's MOST parameters and answers on SkyVault's ``/most`` (pure; no Flask here).

astroquery's ``astroquery.ipac.irsa.Most`` POSTs IRSA's MOST form fields (``catalog``,
``input_type``, ``output_mode``, ``obs_begin``, ``obs_end``, ``ephem_step``,
``fits_region_files``, ``obj_name``, ``mpc_data``, ``obj_type`` and the manual elements
``epoch``, ``eccentricity``, ``inclination``, ``arg_perihelion``, ``ascend_node``,
``semimajor_axis``, ``mean_anomaly``, ``perih_dist``, ``perih_time``) and reads the answer by
``output_mode``: ``Brief`` and ``Gator`` an IPAC table, ``VOTable`` a VOTable, ``Regular`` and
``Full`` an HTML page whose "Download" links give, in order, the results table, the image
metadata table (both IPAC) and the DS9 region file. A request carrying ``input_type`` is read
this way (``is_irsa_request``); its parameters are translated into SkyVault's own
(``sso.most_request``) and the search is the same.

Differences from IRSA, said in the answer rather than guessed at: the one catalog is ``ztf``
(SkyVault's science images); NAIF identifiers (``naifid_input``) are not known here; the FITS
and region tarballs (``fits_region_files=on``, astroquery's ``with_tarballs`` and
``get_images``) are not made; ``perih_time`` and ``epoch`` are read as TDB (SkyVault's orbits
are); ``mpc_data`` is one MPC line in MPCORB.DAT or CometEls.txt columns, or a CometEls record
with its fields joined by ``+`` as IRSA's own example writes it (``comet_line_from_fields``);
an asteroid in that joined form is refused (its field layout is not documented). Each refusal is
IRSA's error text, ``MOST: *** error: ...``, which astroquery raises as ``InvalidQueryError``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from skyvault.vo.fields import FieldSpec

from .most_request import RequestError

CATALOGS = ("ztf",)
"""What ``Most.list_catalogs`` lists and ``catalog`` accepts: the survey's science images."""
OUTPUT_MODES = ("Regular", "Full", "Brief", "Gator", "VOTable")
DOWNLOADS = ("Metadata", "DS9")
"""SkyVault's own ``output_mode`` values behind the page's download links (IRSA links to
files of a job; SkyVault answers again from the same parameters)."""
NO_MATCHES = "Number of Matched Image Frames   = {count}"
"""IRSA's line, spaces included: astroquery looks for it with a count of 0."""
ERROR_PREFIX = "MOST: *** error: "
INPUT_TYPES = ("name_input", "naifid_input", "mpc_input", "manual_input")
NAIF_INPUT_TYPES = ("naifid_input", "nafid_input")
"""IRSA's name, and the one astroquery checks and sends (``nafid_input``)."""

_MANUAL = {"epoch": "epoch", "eccentricity": "e", "inclination": "incl",
           "arg_perihelion": "peri", "ascend_node": "node", "semimajor_axis": "a",
           "mean_anomaly": "m", "perih_dist": "q"}
_PERIHELION_TIME = re.compile(
    r"^\s*(\d{4})[+ -](\d{1,2})[+ -](\d{1,2})"
    r"(?:[+ T](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?)?\s*$")
_MJD_ZERO = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)
_COMET_COLUMNS = ((15, 18, "perihelion year"), (20, 21, "perihelion month"),
                  (23, 29, "perihelion day"), (31, 39, "q"), (42, 49, "e"),
                  (52, 59, "argument of perihelion"), (62, 69, "ascending node"),
                  (72, 79, "inclination"), (82, 89, "epoch"), (92, 95, "H"), (97, 100, "G"))
"""CometEls.txt's fields after the designation, in order (1-based columns, inclusive)."""
_NUMBERED_COMET = re.compile(r"^(\d{1,4})([CPDXIA])$")
_COMET_TYPE = re.compile(r"^(?:\d+)?([CPDXIA])/")
_REFERENCE = re.compile(r"\s+(?:MPC|MPEC|JPL|NK)\s*[\w/-]*$")
"""The orbit's reference, which CometEls.txt keeps after column 159, at the end of the name."""


@dataclass(frozen=True)
class IrsaRequest:
    items: list[tuple[str, str]]
    """SkyVault's parameters for ``most_request.parse_request``."""
    output_mode: str
    given: dict[str, str]
    """IRSA's parameters as given (non-empty), for the download links."""


def is_irsa_request(items: Iterable[tuple[str, str]]) -> bool:
    return any(name == "input_type" for name, _ in items)


def _perihelion_mjd(text: str) -> str:
    match = _PERIHELION_TIME.match(text)
    if match is None:
        raise RequestError(f"perih_time: {text!r} is not YYYY+MM+DD+HH:MM:SS")
    year, month, day, hour, minute, second = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                             tzinfo=dt.UTC)
    except ValueError:
        raise RequestError(f"perih_time: {text!r} is not a date") from None
    days = (moment - _MJD_ZERO).total_seconds() / 86400.0 + float(second or 0) / 86400.0
    return repr(days)


def comet_line_from_fields(text: str) -> str:
    """A CometEls.txt line from its fields joined by ``+`` (IRSA's MOST example:
    ``K10N010+2010+08+16.1477+1.494525+...+12.8762+20100621+17.0+4.0+P/2010+N1+(WISE)+MPC+75712``):
    designation (``0002P`` or a packed provisional one), perihelion year, month and day, q, e,
    argument of perihelion, node, inclination, epoch, H, G, then the name."""
    fields = [part for part in text.split("+") if part]
    if len(fields) < 12 or not (fields[1].isdigit() and len(fields[1]) == 4):
        raise RequestError("mpc_data: a '+'-joined record is read as CometEls.txt's fields "
                           "(designation, perihelion year, month, day, q, e, peri, node, incl, "
                           "epoch, H, G, name); give an asteroid as one MPCORB.DAT line")
    line = [" "] * 160
    designation, name = fields[0], _REFERENCE.sub("", " ".join(fields[12:]))
    numbered = _NUMBERED_COMET.match(designation)
    if numbered:
        line[0:4], line[4] = list(numbered.group(1).rjust(4, "0")), numbered.group(2)
    else:
        kind = _COMET_TYPE.match(name)
        line[4] = kind.group(1) if kind else "C"
        line[5:5 + len(designation)] = list(designation[:7])
    for (first, last, label), value in zip(_COMET_COLUMNS, fields[1:12], strict=True):
        if len(value) > last - first + 1:
            raise RequestError(f"mpc_data: {label} {value!r} is longer than its "
                               f"{last - first + 1} columns")
        line[first - 1:last] = list(value.rjust(last - first + 1))
    line[102:102 + len(name[:56])] = list(name[:56])
    return "".join(line).rstrip()


def translate(items: Iterable[tuple[str, str]]) -> IrsaRequest:
    """IRSA's parameters as SkyVault's; ``RequestError`` names what cannot be served."""
    given = {name: value.strip() for name, value in items if value.strip()}
    catalog = given.get("catalog", "")
    if catalog.lower() not in CATALOGS:
        raise RequestError(f"catalog {catalog!r} is not served here; catalogs: "
                           f"{', '.join(CATALOGS)}")
    output_mode = given.get("output_mode", "Regular")
    if output_mode not in OUTPUT_MODES + DOWNLOADS:
        raise RequestError(f"output_mode {output_mode!r} is not one of "
                           f"{', '.join(OUTPUT_MODES)}")
    if given.get("fits_region_files") == "on":
        raise RequestError("tarballs of FITS and region files (fits_region_files=on, "
                           "with_tarballs, get_images) are not made here: ask without them and "
                           "download the images from their image_url")
    input_type = given.get("input_type", "")
    translated: list[tuple[str, str]] = [("mode", "images")]
    if input_type == "name_input":
        if "obj_name" not in given:
            raise RequestError("obj_name is required with input_type=name_input")
        translated.append(("object", given["obj_name"]))
    elif input_type == "mpc_input":
        if "mpc_data" not in given:
            raise RequestError("mpc_data is required with input_type=mpc_input")
        data = given["mpc_data"]
        joined = "+" in data and "  " not in data
        translated.append(("orbit", comet_line_from_fields(data) if joined else data))
    elif input_type == "manual_input":
        translated += [(ours, given[theirs]) for theirs, ours in _MANUAL.items()
                       if theirs in given]
        if "perih_time" in given:
            translated.append(("tp", _perihelion_mjd(given["perih_time"])))
    elif input_type in NAIF_INPUT_TYPES:
        raise RequestError("NAIF identifiers are not known here: give obj_name "
                           "(input_type=name_input), mpc_data or the orbital elements")
    else:
        raise RequestError(f"input_type {input_type!r} is not one of {', '.join(INPUT_TYPES)}")
    for name in ("obs_begin", "obs_end"):
        if name in given:
            translated.append((name, given[name]))
    if "ephem_step" in given:
        translated.append(("step", given["ephem_step"]))
    return IrsaRequest(translated, output_mode, given)


# --------------------------------------------------------------------------- answers

def _f(name: str, datatype: str, unit: str | None, description: str) -> FieldSpec:
    return FieldSpec(name, datatype, unit=unit, description=description)


def _text(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, "char", arraysize="*", description=description)


RENAMED = {"ra": "ra_obj", "dec": "dec_obj", "r": "sun_dist", "delta": "geo_dist",
           "centre_dist": "dist_ctr"}
"""SkyVault's match columns that IRSA's MOST tables name otherwise."""

RESULT_FIELDS: tuple[FieldSpec, ...] = (
    _text("Image_ID", "Publisher DID of the science image"),
    _text("date_obs", "Mid-exposure date (UTC)"),
    _text("time_obs", "Mid-exposure time of day (UTC)"),
    _f("mjd_obs", "double", "d", "Mid-exposure MJD (UTC)"),
    _f("ra_obj", "double", "deg", "Predicted right ascension of the object (ICRF)"),
    _f("dec_obj", "double", "deg", "Predicted declination of the object (ICRF)"),
    _f("sun_dist", "double", "AU", "Heliocentric distance"),
    _f("geo_dist", "double", "AU", "Distance from the observer (Palomar, I41)"),
    _f("dist_ctr", "double", "deg", "Distance of the object from the image centre"),
    _f("phase", "double", "deg", "Phase angle"),
    _f("vmag", "double", "mag", "Predicted V magnitude"),
    _f("pid", "long", None, "Science image identifier"),
    _text("filtercode", "Filter: zg, zr or zi"),
    _f("x", "double", "pix", "Predicted pixel x (FITS, 1-based)"),
    _f("y", "double", "pix", "Predicted pixel y (FITS, 1-based)"),
    _text("image_url", "The science image (FITS)"),
    _text("postcard_url", "PNG preview of the image"),
)
GATOR_FIELDS: tuple[FieldSpec, ...] = (
    _f("mjd", "double", "d", "Mid-exposure MJD (UTC)"),
    _f("pid", "long", None, "Science image identifier"),
    _f("ra", "double", "deg", "Predicted right ascension of the object (ICRF)"),
    _f("dec", "double", "deg", "Predicted declination of the object (ICRF)"),
)


def metadata_fields(match_fields: Sequence[FieldSpec]) -> tuple[FieldSpec, ...]:
    """The image metadata table: SkyVault's match columns, IRSA's names where it has them."""
    return tuple(replace(f, name=RENAMED.get(f.name, f.name)) for f in match_fields)


def result_rows(rows: Sequence[dict]) -> list[tuple]:
    """From SkyVault's match rows (as dicts of ``MATCH_FIELDS`` names)."""
    return [
        (row["image_id"], row["obs_date"].strftime("%Y-%m-%d"),
         row["obs_date"].strftime("%H:%M:%S.%f")[:-3], row["mjd_mid"], row["ra"], row["dec"],
         row["r"], row["delta"], row["centre_dist"], row["phase"], row["vmag"], row["pid"],
         row["filtercode"], row["x"], row["y"], row["access_url"], row["preview_url"])
        for row in rows
    ]


def gator_rows(rows: Sequence[dict]) -> list[tuple]:
    return [(row["mjd_mid"], row["pid"], row["ra"], row["dec"]) for row in rows]


def error_text(message: str) -> str:
    return f"{ERROR_PREFIX}{message}\n"
