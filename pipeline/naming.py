"""Survey time keys and product names, as ZTF writes them (see pipeline/README.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath

FILTERS: dict[str, int] = {"zg": 1, "zr": 2, "zi": 3}
"""filtercode -> fid."""
FILTER_NAMES = {"zg": "ZTF_g", "zr": "ZTF_r", "zi": "ZTF_i"}
FILTERCODE_OF_NAME = {name: code for code, name in FILTER_NAMES.items()}

JD_UNIX_EPOCH = 2440587.5
NID_EPOCH = dt.date(2017, 1, 1)
NIGHT_OFFSET = dt.timedelta(hours=20)
"""UTC minus this is a time on the local evening date of the night at Palomar (UTC-8): the
afternoon calibrations, the evening and the following morning share one date."""

IMAGE_TYPES = {"object": (1, "o"), "bias": (2, "b"), "flat": (4, "f")}
"""imgtype -> (itid, imgtypecode)."""


def jd_to_datetime(jd: float) -> dt.datetime:
    return dt.datetime.fromtimestamp((jd - JD_UNIX_EPOCH) * 86400.0, tz=dt.UTC)


def datetime_to_jd(when: dt.datetime) -> float:
    return when.timestamp() / 86400.0 + JD_UNIX_EPOCH


def nightdate_of(jd: float) -> dt.date:
    return (jd_to_datetime(jd) - NIGHT_OFFSET).date()


def nid_of(nightdate: dt.date) -> int:
    return (nightdate - NID_EPOCH).days


def filefracday(jd: float) -> int:
    """yyyymmddffffff: UTC date and six digits of the fraction of that day."""
    moment = jd_to_datetime(jd)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    fraction = min(round(seconds / 86400.0 * 1e6), 999999)
    return int(f"{moment:%Y%m%d}{fraction:06d}")


def isot(jd: float) -> str:
    return jd_to_datetime(jd).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _ffd_parts(ffd: int) -> tuple[str, str, str]:
    text = f"{ffd:014d}"
    return text[:4], text[4:8], text[8:]


def raw_path(ffd: int, field: int, filtercode: str, ccdid: int, imgtypecode: str) -> PurePosixPath:
    yyyy, mmdd, frac = _ffd_parts(ffd)
    name = f"ztf_{ffd}_{field:06d}_{filtercode}_c{ccdid:02d}_{imgtypecode}.fits.fz"
    return PurePosixPath("raw", yyyy, mmdd, frac, name)


def science_prefix(ffd: int, field: int, filtercode: str, ccdid: int, qid: int) -> PurePosixPath:
    """Path without the product suffix: append ``_sciimg.fits`` and so on."""
    yyyy, mmdd, frac = _ffd_parts(ffd)
    name = f"ztf_{ffd}_{field:06d}_{filtercode}_c{ccdid:02d}_o_q{qid}"
    return PurePosixPath("sci", yyyy, mmdd, frac, name)


SCIENCE_SUFFIXES = {
    "sciimg": "_sciimg.fits",
    "mskimg": "_mskimg.fits",
    "psfcat": "_psfcat.fits",
    "sexcat": "_sexcat.fits",
    "diffimg": "_scimrefdiffimg.fits.fz",
    "diffcat": "_diffcat.fits",
    "diffimgpsf": "_diffimgpsf.fits",
}
REFERENCE_SUFFIXES = {"refimg": "_refimg.fits", "refunc": "_refunc.fits",
                      "refpsfcat": "_refpsfcat.fits", "refsexcat": "_refsexcat.fits"}


def science_path(prefix: PurePosixPath, product_type: str) -> PurePosixPath:
    return prefix.with_name(prefix.name + SCIENCE_SUFFIXES[product_type])


def bias_path(nightdate: dt.date, ccdid: int, qid: int) -> PurePosixPath:
    day = f"{nightdate:%Y%m%d}"
    name = f"ztf_{day}_00_c{ccdid:02d}_q{qid}_bias.fits"
    return PurePosixPath("cal", day[:4], day[4:], "bias", name)


def flat_path(nightdate: dt.date, filtercode: str, ccdid: int, qid: int) -> PurePosixPath:
    day = f"{nightdate:%Y%m%d}"
    name = f"ztf_{day}_{filtercode}_c{ccdid:02d}_q{qid}_hifreqflat.fits"
    return PurePosixPath("cal", day[:4], day[4:], "hifreqflat", filtercode, name)


def field_prefix(field: int) -> str:
    """IRSA's directory of a field's references: the first three digits of the field number
    zero-padded to six (ZTF's fields have at most four digits, so ``000`` or ``001``; the
    demo camera's fine grid numbers fields up to seven digits, and the rule is kept exactly:
    field 1885220 is under ``188``)."""
    return f"{field:06d}"[:3]


def reference_prefix(field: int, filtercode: str, ccdid: int, qid: int) -> PurePosixPath:
    name = f"ztf_{field:06d}_{filtercode}_c{ccdid:02d}_q{qid}"
    folder = PurePosixPath(
        "ref", field_prefix(field), f"field{field:06d}", filtercode, f"ccd{ccdid:02d}", f"q{qid}"
    )
    return folder / name


def reference_path(prefix: PurePosixPath, product_type: str) -> PurePosixPath:
    return prefix.with_name(prefix.name + REFERENCE_SUFFIXES[product_type])


def reference_name(field: int, filtercode: str, ccdid: int, qid: int) -> str:
    return f"ref_{field:06d}_{filtercode}_c{ccdid:02d}_q{qid}"
