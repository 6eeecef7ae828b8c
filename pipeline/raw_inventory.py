"""A night's raw files: found in the raw folder, placed in the product folder, described.

The camera's primary headers say everything the planning needs (exposure, CCD, image type,
program); ``exposure_meta`` and ``raw_meta`` turn them into the manifest's rows.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import fitsio

from skyvault.pipeline.manifest import (
    ExposureMeta,
    ProductFile,
    ProductType,
    RawImageMeta,
    describe_file,
)
from skyvault.pipeline.naming import (
    FILTERS,
    IMAGE_TYPES,
    filefracday,
    isot,
    nid_of,
    nightdate_of,
    raw_path,
)
from skyvault.pipeline.process.rawio import read_primary


@dataclass(frozen=True)
class RawFile:
    source: Path
    relative: str
    """Where it goes in the product folder."""
    header: dict

    @property
    def expid(self) -> int:
        return int(self.header["EXPID"])

    @property
    def ccdid(self) -> int:
        return int(self.header["CCD_ID"])

    @property
    def obsjd(self) -> float:
        return float(self.header["OBSJD"])

    @property
    def code(self) -> str:
        return str(self.header["IMGTYPCD"])


def scan_raw(raw_dir: Path) -> list[RawFile]:
    found = []
    for path in sorted(Path(raw_dir).rglob("*.fits.fz")):
        if path.name.startswith("."):
            continue
        header = read_primary(path)
        relative = raw_path(
            filefracday(float(header["OBSJD"])),
            int(header["FIELDID"]),
            str(header["FILTCODE"]),
            int(header["CCD_ID"]),
            str(header["IMGTYPCD"]),
        )
        found.append(RawFile(path, str(relative), header))
    return found


def place_raw(raw: RawFile, product_dir: Path) -> None:
    """Hard-link (or copy) a raw file into the product folder, once."""
    target = product_dir / raw.relative
    if target.exists() and target.stat().st_size == raw.source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    if temporary.exists():
        temporary.unlink()
    try:
        os.link(raw.source.resolve(), temporary)
    except OSError:
        shutil.copy2(raw.source.resolve(), temporary)
    os.replace(temporary, target)


def exposure_meta(header: dict, ccdids: list[int]) -> ExposureMeta:
    obsjd = float(header["OBSJD"])
    nightdate = nightdate_of(obsjd)
    imgtype = str(header["IMGTYP"])
    return ExposureMeta(
        expid=int(header["EXPID"]),
        nid=int(header.get("NIGHTID", nid_of(nightdate))),
        nightdate=nightdate.isoformat(),
        obsjd=obsjd,
        obsdate=isot(obsjd),
        filefracday=filefracday(obsjd),
        field=int(header["FIELDID"]),
        filtercode=str(header["FILTCODE"]),
        fid=int(header["FILTERID"]),
        exptime=float(header["EXPTIME"]),
        programid=int(header["PROGRMID"]),
        itid=int(header.get("ITID", IMAGE_TYPES.get(imgtype, (0, ""))[0])),
        imgtype=imgtype,
        imgtypecode=str(header["IMGTYPCD"]),
        telra=float(header["TELRA"]),
        teldec=float(header["TELDEC"]),
        airmass=float(header["AIRMASS"]),
        moonillf=float(header.get("MOONILLF", 0.0)),
        moonra=float(header.get("MOONRA", 0.0)),
        moondec=float(header.get("MOONDEC", 0.0)),
        azimuth=float(header.get("AZIMUTH", 0.0)),
        elevation=float(header.get("ELVATION", 90.0)),
        ccdids=sorted(ccdids),
    )


def raw_meta(raw: RawFile, product_dir: Path) -> tuple[RawImageMeta, ProductFile]:
    try:
        with fitsio.FITS(str(product_dir / raw.relative)) as fits:
            names = [hdu.get_extname() for hdu in fits[1:]]
            dims = fits[1].get_dims() if len(fits) > 1 else [0, 0]
    except (OSError, ValueError):  # a damaged file is still archived as what arrived
        names, dims = [], [0, 0]
    meta = RawImageMeta(
        expid=raw.expid,
        ccdid=raw.ccdid,
        path=raw.relative,
        imgtypecode=raw.code,
        nquadrants=len(names),
        naxis1=int(dims[1]),
        naxis2=int(dims[0]),
    )
    field_id = int(raw.header["FIELDID"])
    filtercode = str(raw.header["FILTCODE"])
    return meta, describe_file(
        product_dir,
        product_dir / raw.relative,
        ProductType.RAW,
        expid=raw.expid,
        ccdid=raw.ccdid,
        filtercode=filtercode if filtercode in FILTERS else None,
        field=field_id or None,
    )


