"""IRSA's ZTF product paths (``/ibe/data/ztf/products/...``) and the images they name.

The layout, from IRSA's ZTF metadata page
(https://irsa.ipac.caltech.edu/docs/program_interface/ztf_metadata.html) as ztfquery builds it
(ztfquery/buildurl.py science_path, raw_path, calibration_path, reference_path)::

    sci/YYYY/MMDD/dddddd/ztf_<filefracday>_<field:06d>_<filtercode>_c<ccd:02d>_<imgtypecode>_q<qid>_<suffix>
    raw/YYYY/MMDD/dddddd/ztf_<filefracday>_<field:06d>_<filtercode>_c<ccd:02d>_<imgtypecode>.fits.fz
    cal/YYYY/MMDD/<caltype>/<filtercode>/ccd<ccd:02d>/q<qid>/ztf_<YYYYMMDD>_<filtercode>_c<ccd:02d>_q<qid>_<caltype>.fits
    ref/<prefix>/field<field:06d>/<filtercode>/ccd<ccd:02d>/q<qid>/ztf_<field:06d>_<filtercode>_c<ccd:02d>_q<qid>_<suffix>

where ``YYYYMMDDdddddd`` is the filefracday, ``prefix`` the first three digits of the field
zero-padded to six digits (pipeline/naming.py ``field_prefix``), and a bias frame's
filtercode ``00``. Difference-image products sit beside their science image under ``sci/``
(``scimrefdiffimg.fits.fz``, ``diffimgpsf.fits``), as at IRSA; SkyVault's difference catalog is
there too, as ``diffcat.fits``.

A path is parsed into the keys of its image and the product asked for; every part must agree
with every other (the directories with the file name), so each image has exactly one path.
Which file that is, and whether the requester may have it, the database says (data.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from skyvault.pipeline.naming import field_prefix

SCIENCE_SUFFIXES = {
    "sciimg.fits": ("sci", "sciimg"), "mskimg.fits": ("sci", "mskimg"),
    "psfcat.fits": ("sci", "psfcat"), "sexcat.fits": ("sci", "sexcat"),
    "sciimgdaopsfcent.fits": ("sci", "sciimgdaopsfcent"), "sciimlog.txt": ("sci", "sciimlog"),
    "scimrefdiffimg.fits.fz": ("diff", "diffimg"), "diffimgpsf.fits": ("diff", "diffimgpsf"),
    "diffcat.fits": ("diff", "diffcat"), "diffimlog.txt": ("diff", "diffimlog"),
}
"""File-name suffix -> (image kind, SkyVault product) of the ``sci/`` directories."""
REFERENCE_SUFFIXES = {
    "refimg.fits": "refimg", "refpsfcat.fits": "refpsfcat", "refsexcat.fits": "refsexcat",
    "refunc.fits": "refunc", "refcov.fits": "refcov", "refimlog.txt": "refimlog",
}
CALIBRATION_TYPES = ("bias", "hifreqflat")

_SCIENCE = re.compile(
    r"sci/(?P<yyyy>\d{4})/(?P<mmdd>\d{4})/(?P<frac>\d{6})/"
    r"ztf_(?P<ffd>\d{14})_(?P<field>\d{6,9})_(?P<filtercode>z[gri])_c(?P<ccd>\d\d)_"
    r"(?P<imgtype>o)_q(?P<qid>[1-4])_(?P<suffix>[a-z0-9.]+)")
_RAW = re.compile(
    r"raw/(?P<yyyy>\d{4})/(?P<mmdd>\d{4})/(?P<frac>\d{6})/"
    r"ztf_(?P<ffd>\d{14})_(?P<field>\d{6,9})_(?P<filtercode>[a-zA-Z0-9]{2})_c(?P<ccd>\d\d)_"
    r"(?P<imgtype>[obdf])\.fits\.fz")
_CALIBRATION = re.compile(
    r"cal/(?P<yyyy>\d{4})/(?P<mmdd>\d{4})/(?P<caltype>bias|hifreqflat)/(?P<dir_filter>\w\w)/"
    r"ccd(?P<dir_ccd>\d\d)/q(?P<dir_qid>[1-4])/"
    r"ztf_(?P<day>\d{8})_(?P<filtercode>z[gri]|00)_c(?P<ccd>\d\d)_q(?P<qid>[1-4])_"
    r"(?P<suffix>[a-z]+)\.fits")
_REFERENCE = re.compile(
    r"ref/(?P<prefix>\d{3})/field(?P<dir_field>\d{6,9})/(?P<dir_filter>z[gri])/"
    r"ccd(?P<dir_ccd>\d\d)/q(?P<dir_qid>[1-4])/"
    r"ztf_(?P<field>\d{6,9})_(?P<filtercode>z[gri])_c(?P<ccd>\d\d)_q(?P<qid>[1-4])_"
    r"(?P<suffix>[a-z0-9.]+)")


@dataclass(frozen=True)
class ProductPath:
    """The image a path names (its keys) and the product of it asked for."""

    kind: str
    """``sci``, ``diff``, ``raw``, ``cal`` or ``ref``: which table holds the image."""
    product: str
    """The product as ``survey.files.product`` names it."""
    field: int | None = None
    filefracday: int | None = None
    filtercode: str = ""
    ccdid: int = 0
    qid: int | None = None
    imgtypecode: str | None = None
    caltype: str | None = None
    nightdate: str | None = None
    """YYYY-MM-DD of a calibration product."""


def _field(text: str) -> int | None:
    """A field number written as IRSA pads it (six digits, more only for larger numbers)."""
    value = int(text)
    return value if f"{value:06d}" == text else None


def _ccd(text: str) -> int | None:
    value = int(text)
    return value if 1 <= value <= 16 else None


def parse_product_path(path: str) -> ProductPath | None:
    """The product a path under ``/ibe/data/ztf/products/`` names, or None when it names
    none (a malformed path is a file that does not exist)."""
    for parse in (_science, _raw, _calibration, _reference):
        found = parse(path)
        if found is not None:
            return found
    return None


def _science(path: str) -> ProductPath | None:
    match = _SCIENCE.fullmatch(path)
    if match is None or match["suffix"] not in SCIENCE_SUFFIXES:
        return None
    if match["ffd"] != match["yyyy"] + match["mmdd"] + match["frac"]:
        return None
    field, ccd = _field(match["field"]), _ccd(match["ccd"])
    if field is None or ccd is None:
        return None
    kind, product = SCIENCE_SUFFIXES[match["suffix"]]
    return ProductPath(kind, product, field=field, filefracday=int(match["ffd"]),
                       filtercode=match["filtercode"], ccdid=ccd, qid=int(match["qid"]),
                       imgtypecode=match["imgtype"])


def _raw(path: str) -> ProductPath | None:
    match = _RAW.fullmatch(path)
    if match is None or match["ffd"] != match["yyyy"] + match["mmdd"] + match["frac"]:
        return None
    field, ccd = _field(match["field"]), _ccd(match["ccd"])
    if field is None or ccd is None:
        return None
    return ProductPath("raw", "raw", field=field, filefracday=int(match["ffd"]),
                       filtercode=match["filtercode"], ccdid=ccd, imgtypecode=match["imgtype"])


def _calibration(path: str) -> ProductPath | None:
    match = _CALIBRATION.fullmatch(path)
    if match is None or match["suffix"] != match["caltype"]:
        return None
    day = match["day"]
    agrees = (day == match["yyyy"] + match["mmdd"] and match["dir_filter"] == match["filtercode"]
              and match["dir_ccd"] == match["ccd"] and match["dir_qid"] == match["qid"]
              and (match["filtercode"] == "00") == (match["caltype"] == "bias"))
    ccd = _ccd(match["ccd"])
    try:
        night = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return None
    if not agrees or ccd is None:
        return None
    return ProductPath("cal", match["caltype"], filtercode=match["filtercode"], ccdid=ccd,
                       qid=int(match["qid"]), caltype=match["caltype"],
                       nightdate=night.isoformat())


def _reference(path: str) -> ProductPath | None:
    match = _REFERENCE.fullmatch(path)
    if match is None or match["suffix"] not in REFERENCE_SUFFIXES:
        return None
    field, ccd = _field(match["field"]), _ccd(match["ccd"])
    agrees = (match["dir_field"] == match["field"] and match["dir_filter"] == match["filtercode"]
              and match["dir_ccd"] == match["ccd"] and match["dir_qid"] == match["qid"])
    if not agrees or field is None or ccd is None or match["prefix"] != field_prefix(field):
        return None
    return ProductPath("ref", REFERENCE_SUFFIXES[match["suffix"]], field=field,
                       filtercode=match["filtercode"], ccdid=ccd, qid=int(match["qid"]))
