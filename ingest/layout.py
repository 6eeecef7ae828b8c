"""The store's path scheme, modelled on IRSA's for ZTF (see ingest/README.md).

The archive derives every path from the product's keys, never from where the pipeline happened
to write the file, so the scheme stays stable whatever the pipeline does. Version 1 of a product
has exactly IRSA's name; a reprocessing (version n >= 2) inserts ``_v<n>`` before the product
suffix, so superseded files keep their path and stay downloadable.

```
raw/<yyyy>/<mmdd>/<ffffff>/ztf_<ffd>_<field:06d>_<fc>_c<cc>_<t>.fits.fz
cal/<yyyy>/<mmdd>/bias/ztf_<yyyymmdd>_00_c<cc>_q<q>_bias.fits
cal/<yyyy>/<mmdd>/hifreqflat/<fc>/ztf_<yyyymmdd>_<fc>_c<cc>_q<q>_hifreqflat.fits
sci/<yyyy>/<mmdd>/<ffffff>/ztf_<ffd>_<field:06d>_<fc>_c<cc>_o_q<q>_{sciimg,mskimg,psfcat,sexcat}.fits
diff/<yyyy>/<mmdd>/<ffffff>/ztf_<ffd>_<field:06d>_<fc>_c<cc>_o_q<q>_{scimrefdiffimg.fits.fz,diffcat.fits,diffimgpsf.fits}
ref/<fff>/field<field:06d>/<fc>/ccd<cc>/q<q>/ztf_<field:06d>_<fc>_c<cc>_q<q>_{refimg,refunc,refpsfcat,refsexcat}.fits
```
"""

from __future__ import annotations

from skyvault.pipeline.naming import field_prefix

PRODUCT_SUFFIX = {
    "sciimg": "sciimg",
    "mskimg": "mskimg",
    "psfcat": "psfcat",
    "sexcat": "sexcat",
    "diffimg": "scimrefdiffimg",
    "diffcat": "diffcat",
    "diffimgpsf": "diffimgpsf",
    "refimg": "refimg",
    "refpsfcat": "refpsfcat",
    "refsexcat": "refsexcat",
    "refunc": "refunc",
    "bias": "bias",
    "hifreqflat": "hifreqflat",
}
SCIENCE_TYPES = ("sciimg", "mskimg", "psfcat", "sexcat")
DIFFERENCE_TYPES = ("diffimg", "diffcat", "diffimgpsf")
REFERENCE_TYPES = ("refimg", "refunc", "refpsfcat", "refsexcat")
CALIBRATION_TYPES = ("bias", "hifreqflat")
KNOWN_EXTENSIONS = (".fits.fz", ".fits.gz", ".fits", ".fit", ".fz")


def file_extension(name: str) -> str:
    """The FITS extension of a source file name, kept in the store name (``.fits.fz`` tells a
    reader the file is tile-compressed)."""
    lowered = name.lower()
    for extension in KNOWN_EXTENSIONS:
        if lowered.endswith(extension):
            return extension
    return ".fits"


def content_type(path: str) -> str:
    return "application/gzip" if path.endswith(".gz") else "application/fits"


def _version(version: int) -> str:
    return "" if version <= 1 else f"_v{version}"


def _ffd_parts(filefracday: int) -> tuple[str, str, str]:
    text = f"{filefracday:014d}"
    return text[:4], text[4:8], text[8:]


def raw_path(filefracday: int, field: int, filtercode: str, ccdid: int, imgtypecode: str,
             extension: str, version: int = 1) -> str:
    yyyy, mmdd, frac = _ffd_parts(filefracday)
    name = (f"ztf_{filefracday:014d}_{field:06d}_{filtercode}_c{ccdid:02d}_{imgtypecode}"
            f"{_version(version)}{extension}")
    return f"raw/{yyyy}/{mmdd}/{frac}/{name}"


def quadrant_path(top: str, filefracday: int, field: int, filtercode: str, ccdid: int, qid: int,
                  product_type: str, extension: str, version: int = 1) -> str:
    """Science (``sci``) and difference (``diff``) products of one readout quadrant."""
    yyyy, mmdd, frac = _ffd_parts(filefracday)
    name = (f"ztf_{filefracday:014d}_{field:06d}_{filtercode}_c{ccdid:02d}_o_q{qid}"
            f"{_version(version)}_{PRODUCT_SUFFIX[product_type]}{extension}")
    return f"{top}/{yyyy}/{mmdd}/{frac}/{name}"


def calibration_path(caltype: str, nightdate: str, filtercode: str, ccdid: int, qid: int,
                     extension: str, version: int = 1) -> str:
    day = nightdate.replace("-", "")
    if caltype == "bias":
        folder = f"cal/{day[:4]}/{day[4:]}/bias"
        code = "00"
    else:
        folder = f"cal/{day[:4]}/{day[4:]}/{caltype}/{filtercode}"
        code = filtercode
    name = (f"ztf_{day}_{code}_c{ccdid:02d}_q{qid}{_version(version)}"
            f"_{PRODUCT_SUFFIX[caltype]}{extension}")
    return f"{folder}/{name}"


def reference_path(field: int, filtercode: str, ccdid: int, qid: int, product_type: str,
                   extension: str, version: int = 1) -> str:
    folder = f"ref/{field_prefix(field)}/field{field:06d}/{filtercode}/ccd{ccdid:02d}/q{qid}"
    name = (f"ztf_{field:06d}_{filtercode}_c{ccdid:02d}_q{qid}{_version(version)}"
            f"_{PRODUCT_SUFFIX[product_type]}{extension}")
    return f"{folder}/{name}"
