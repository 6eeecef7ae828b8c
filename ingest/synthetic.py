"""Small but real product folders, written as the pipeline writes them (pipeline/README.md):
real FITS files (RICE-compressed raw CCDs and differences, images with a TAN WCS, catalogs
with the pipeline's column names) and version-1 manifests.

For ingest's tests and benchmark, which need products of known content, broken on purpose,
or reprocessed on demand, without running the whole pipeline. ``catalog_columns`` also makes
realistic catalog rows in memory for the load benchmark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from skyvault.ingest.plan import JD_UNIX_EPOCH
from skyvault.pipeline.manifest import (
    CalibrationMeta,
    DifferenceMeta,
    ExposureMeta,
    Footprint,
    Manifest,
    ProductFile,
    Provenance,
    RawImageMeta,
    ReferenceMeta,
    ScienceImageMeta,
    describe_file,
    write_manifest,
)
from skyvault.pipeline.naming import field_prefix
from skyvault.pipeline.process.candidates import EXTERNAL_COLUMNS, REFERENCE_COLUMNS
from skyvault.pipeline.process.difference import psf_image
from skyvault.pipeline.process.psf import Psf

PIXEL_SCALE = 1.012 / 3600.0
FILTERS = {"zg": 1, "zr": 2, "zi": 3}
NID_EPOCH = dt.date(2017, 1, 1)


@dataclass(frozen=True)
class NightSpec:
    nightdate: str = "2026-11-20"
    exposures: int = 2
    ccds: tuple[int, ...] = (1,)
    quadrants: tuple[int, ...] = (1, 2)
    sources: int = 40
    size: int = 32
    overscan: int = 4
    programids: tuple[int, ...] = (1, 2)
    field: int = 500
    filtercode: str = "zr"
    ra: float = 150.0
    dec: float = 20.0
    seed: int = 1
    references: bool = True
    pipeline_version: str = "synthetic-1"
    unmeasured: tuple[int, ...] = ()
    """Exposures (indices) whose zero point failed: catalog magnitudes NaN, the images'
    magzp, maglimit and their rms unknown."""
    legacy_sentinels: bool = False
    """Write unknown image quantities as older pipelines did (-99 magnitudes, -1 rms)."""
    unmatched_candidates: int = 0
    """Candidates per diffcat with no reference-catalog or star-galaxy source within 30
    arcsec: their neighbour columns (distnr, magnr, ..., distpsnr1, sgscore1, ...) are NaN,
    as the pipeline writes them."""

    @property
    def nid(self) -> int:
        return (dt.date.fromisoformat(self.nightdate) - NID_EPOCH).days

    @property
    def day(self) -> str:
        return self.nightdate.replace("-", "")


@dataclass
class NightFiles:
    root: Path
    calibration: Path
    references: list[Path] = field(default_factory=list)
    exposures: list[Path] = field(default_factory=list)

    @property
    def manifests(self) -> list[Path]:
        return [self.calibration, *self.references, *self.exposures]


SYNTHETIC_PSF_FWHM = 2.0
SYNTHETIC_PSF_BETA = 2.5
"""The synthetic difference images' PSF (pixels; Moffat beta), in their diffimgpsf files."""
DIFF_CANDIDATES = 3
DIFF_CARDS: dict[str, object] = {}
"""Cards added to the difference images' headers (a benchmark gives them the calibration the
pipeline's differences carry: PSFFWHM, PSFBETA, MAGZP, SKYRMS..., for forced photometry)."""
DIFF_TILE: tuple[int, int] | None = None
"""The difference images' compression tiles (rows, columns); None: astropy's one row per tile
(the pipeline's own are 128 x 128, pipeline/process/products.py)."""
"""Candidates in each synthetic difference image's diffcat."""
SYNTHETIC_RB_VERSION = "rb-hgb-000000000000"


def rcid(ccdid: int, qid: int) -> int:
    return (ccdid - 1) * 4 + (qid - 1)


def datetime_to_jd(when: dt.datetime) -> float:
    return when.timestamp() / 86400.0 + JD_UNIX_EPOCH


def jd_to_datetime(jd: float) -> dt.datetime:
    return dt.datetime.fromtimestamp((jd - JD_UNIX_EPOCH) * 86400.0, tz=dt.UTC)


def isot(jd: float) -> str:
    return jd_to_datetime(jd).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def filefracday(jd: float) -> int:
    moment = jd_to_datetime(jd)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    return int(f"{moment:%Y%m%d}{min(round(seconds / 86400 * 1e6), 999999):06d}")


def _ffd_parts(ffd: int) -> tuple[str, str, str]:
    text = f"{ffd:014d}"
    return text[:4], text[4:8], text[8:]


def quadrant_centre(spec: NightSpec, ccdid: int, qid: int) -> tuple[float, float]:
    """Quadrants side by side along RA, CCDs along Dec: distinct, non-overlapping patches."""
    step = spec.size * PIXEL_SCALE
    column = {1: 1, 2: 0, 3: 0, 4: 1}[qid]
    row = {1: 1, 2: 1, 3: 0, 4: 0}[qid] + 2 * (ccdid - 1)
    return (spec.ra + (column - 0.5) * step / np.cos(np.radians(spec.dec)),
            spec.dec + (row - 0.5) * step)


def footprint(spec: NightSpec, ccdid: int, qid: int) -> Footprint:
    ra, dec = quadrant_centre(spec, ccdid, qid)
    half = spec.size * PIXEL_SCALE / 2
    dra = half / np.cos(np.radians(dec))
    return Footprint(ra=ra, dec=dec, ra1=ra - dra, dec1=dec - half, ra2=ra + dra, dec2=dec - half,
                     ra3=ra + dra, dec3=dec + half, ra4=ra - dra, dec4=dec + half)


def wcs_cards(spec: NightSpec, ccdid: int, qid: int) -> dict[str, float | str]:
    ra, dec = quadrant_centre(spec, ccdid, qid)
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
            "CRPIX1": (spec.size + 1) / 2, "CRPIX2": (spec.size + 1) / 2,
            "CD1_1": -PIXEL_SCALE, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": PIXEL_SCALE}


def catalog_columns(rng: np.random.Generator, count: int, ra: float, dec: float,
                    half_width: float, aperture: bool = False) -> dict[str, np.ndarray]:
    """Catalog columns with the pipeline's names and realistic values."""
    mag = rng.uniform(14, 21, count).astype(np.float32)
    flux = (10 ** (-0.4 * (mag - 26))).astype(np.float32)
    fluxerr = (np.sqrt(flux) + 5).astype(np.float32)
    columns = {
        "sourceid": np.arange(1, count + 1, dtype=np.int64),
        "x": rng.uniform(1, 3072, count).astype(np.float32),
        "y": rng.uniform(1, 3080, count).astype(np.float32),
        "ra": (ra + rng.uniform(-half_width, half_width, count)
               / np.cos(np.radians(dec))) % 360.0,
        "dec": np.clip(dec + rng.uniform(-half_width, half_width, count), -90, 90),
        "flux": flux, "fluxerr": fluxerr,
        "mag": mag, "magerr": (1.0857 * fluxerr / flux).astype(np.float32),
        "snr": (flux / fluxerr).astype(np.float32),
        "flags": rng.integers(0, 4, count).astype(np.int32),
    }
    if aperture:
        columns |= {"fwhm": rng.uniform(1.5, 3, count).astype(np.float32),
                    "a": rng.uniform(1, 3, count).astype(np.float32),
                    "b": rng.uniform(0.8, 2, count).astype(np.float32),
                    "theta": rng.uniform(-90, 90, count).astype(np.float32)}
    else:
        columns |= {"chi": rng.uniform(0.5, 2, count).astype(np.float32),
                    "sharpness": rng.normal(0, 0.1, count).astype(np.float32)}
    return columns


NEIGHBOUR_COLUMNS = (*REFERENCE_COLUMNS, *EXTERNAL_COLUMNS)
"""A candidate's fields that describe the nearest catalog source: unknown (NaN) without one."""


def candidate_columns(rng: np.random.Generator, count: int, ra: float, dec: float,
                      half_width: float, unmatched: int = 0) -> dict[str, np.ndarray]:
    """A diffcat's columns (the pipeline's names, ZTF's alert-candidate measurements) with
    realistic values; the first ``unmatched`` candidates have no catalog source nearby."""
    columns = catalog_columns(rng, count, ra, dec, half_width)
    floats = {name: rng.uniform(low, high, count).astype(np.float32) for name, (low, high) in {
        "magap": (17, 21), "sigmagap": (0.01, 0.3), "magdiff": (-0.2, 0.2),
        "diffmaglim": (20, 21), "fwhm": (1.5, 3.5), "aimage": (0.7, 2), "bimage": (0.6, 1.8),
        "elong": (1, 1.5), "sumrat": (0.5, 1), "mindtoedge": (0, 1500), "dipole": (0, 0.5),
        "distnr": (0, 30), "magnr": (14, 22), "sigmagnr": (0.01, 0.2), "chinr": (0.5, 3),
        "sharpnr": (-0.2, 0.2), "distpsnr1": (0, 30), "sgscore1": (0, 1), "sgmag1": (15, 22),
        "srmag1": (15, 22), "simag1": (15, 22), "rb": (0, 1)}.items()}
    for name in NEIGHBOUR_COLUMNS:
        floats[name][:unmatched] = np.nan
    return {**columns, **floats,
            "isdiffpos": rng.integers(0, 2, count).astype(np.int32),
            "nbad": rng.integers(0, 3, count).astype(np.int32),
            "nneg": rng.integers(0, 8, count).astype(np.int32)}


def _header(cards: dict[str, object]) -> fits.Header:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    return header


def _write_image(path: Path, data: np.ndarray, cards: dict[str, object],
                 compress: bool = False, tile: tuple[int, int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        tiling = {"tile_shape": tile} if tile else {}
        hdu = fits.CompImageHDU(data, header=_header(cards), compression_type="RICE_1",
                                **tiling)
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    else:
        fits.PrimaryHDU(data, header=_header(cards)).writeto(path, overwrite=True, checksum=True)


def _write_catalog(path: Path, columns: dict[str, np.ndarray], cards: dict[str, object],
                   extname: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name, format={"i": "K" if a.dtype.itemsize == 8 else "J",
                                   "f": "D" if a.dtype.itemsize == 8 else "E"}[a.dtype.kind],
                     array=a) for name, a in columns.items()], name=extname)
    fits.HDUList([fits.PrimaryHDU(header=_header(cards)), table]).writeto(path, overwrite=True)


class _Writer:
    def __init__(self, root: Path, spec: NightSpec) -> None:
        self.root = root
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.created = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC).isoformat()

    def describe(self, relative: str, product_type: str, **keys: object) -> ProductFile:
        return describe_file(self.root, self.root / relative, product_type, **keys)

    def provenance(self) -> Provenance:
        return Provenance(self.spec.pipeline_version, self.created, {"numpy": np.__version__},
                          [], {"seed": self.spec.seed})

    def image(self, shape: tuple[int, int], scale: float = 100.0) -> np.ndarray:
        return (self.rng.normal(scale, 5, shape)).astype(np.float32)

    def exposure_meta(self, expid: int, jd: float, programid: int, imgtype: str,
                      filtercode: str, field_id: int) -> ExposureMeta:
        itid, code = {"object": (1, "o"), "bias": (2, "b"), "flat": (4, "f")}[imgtype]
        return ExposureMeta(
            expid=expid, nid=self.spec.nid, nightdate=self.spec.nightdate, obsjd=jd,
            obsdate=isot(jd), filefracday=filefracday(jd), field=field_id,
            filtercode=filtercode, fid=FILTERS.get(filtercode, 0),
            exptime=0.0 if imgtype == "bias" else 30.0, programid=programid, itid=itid,
            imgtype=imgtype, imgtypecode=code,
            # bias and flat frames report the telescope parked at the zenith, as the camera
            # simulator writes them: a pointing that is no sky position
            telra=self.spec.ra if imgtype == "object" else 0.0,
            teldec=self.spec.dec if imgtype == "object" else 90.0,
            airmass=1.2, moonillf=0.3, moonra=10.0, moondec=5.0, azimuth=180.0, elevation=60.0,
            ccdids=list(self.spec.ccds))

    def raw_file(self, exposure: ExposureMeta, ccdid: int) -> tuple[RawImageMeta, ProductFile]:
        yyyy, mmdd, frac = _ffd_parts(exposure.filefracday)
        relative = (f"raw/{yyyy}/{mmdd}/{frac}/ztf_{exposure.filefracday:014d}_"
                    f"{exposure.field:06d}_{exposure.filtercode}_c{ccdid:02d}_"
                    f"{exposure.imgtypecode}.fits.fz")
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        primary = fits.PrimaryHDU(header=_header({
            "EXPID": exposure.expid, "CCD_ID": ccdid, "FIELDID": exposure.field,
            "PROGRMID": exposure.programid, "OBSJD": exposure.obsjd}))
        hdus = [primary]
        width = self.spec.size + self.spec.overscan
        # A camera file depends on the exposure alone: a reprocessing leaves it identical.
        rng = np.random.default_rng((exposure.expid, ccdid))
        for qid in (1, 2, 3, 4):
            data = rng.integers(900, 1100, (self.spec.size, width)).astype(np.int16)
            hdus.append(fits.CompImageHDU(data, name=f"Q{qid}", compression_type="RICE_1"))
        fits.HDUList(hdus).writeto(path, overwrite=True)
        meta = RawImageMeta(exposure.expid, ccdid, relative, exposure.imgtypecode, 4, width,
                            self.spec.size)
        return meta, self.describe(relative, "raw", expid=exposure.expid, ccdid=ccdid,
                                   filtercode=exposure.filtercode, field=exposure.field)

    def photometry(self, unmeasured: bool) -> dict[str, float | int | None]:
        """A science image's zero-point quantities, or what is written without one."""
        if not unmeasured:
            return {"maglimit": 20.8, "magzp": 26.0, "magzpunc": 0.01, "magzprms": 0.03,
                    "nzpcal": 25}
        magnitude, spread = (-99.0, -1.0) if self.spec.legacy_sentinels else (None, None)
        return {"maglimit": magnitude, "magzp": magnitude, "magzpunc": spread,
                "magzprms": spread, "nzpcal": 0}

    # -- groups -----------------------------------------------------------------------------

    def calibration(self) -> Path:
        spec = self.spec
        start = datetime_to_jd(dt.datetime.fromisoformat(spec.nightdate).replace(
            hour=23, tzinfo=dt.UTC))
        bias = self.exposure_meta(spec.nid * 1000 + 1, start, 1, "bias", "bi", 0)
        flat = self.exposure_meta(spec.nid * 1000 + 2, start + 0.001, 1, "flat",
                                  spec.filtercode, 0)
        raws, files = [], []
        for exposure in (bias, flat):
            for ccdid in spec.ccds:
                meta, described = self.raw_file(exposure, ccdid)
                raws.append(meta)
                files.append(described)
        calibrations = []
        for ccdid in spec.ccds:
            for qid in spec.quadrants:
                for caltype, code in (("bias", "00"), ("hifreqflat", spec.filtercode)):
                    folder = f"cal/{spec.day[:4]}/{spec.day[4:]}/" + (
                        "bias" if caltype == "bias" else f"hifreqflat/{code}")
                    relative = f"{folder}/ztf_{spec.day}_{code}_c{ccdid:02d}_q{qid}_{caltype}.fits"
                    _write_image(self.root / relative, self.image((spec.size, spec.size)),
                                 {"CCD_ID": ccdid, "QID": qid})
                    files.append(self.describe(relative, caltype, ccdid=ccdid, qid=qid,
                                               filtercode=code))
                    source = bias if caltype == "bias" else flat
                    calibrations.append(CalibrationMeta(
                        caltype=caltype, nid=spec.nid, nightdate=spec.nightdate, ccdid=ccdid,
                        qid=qid, rcid=rcid(ccdid, qid), filtercode=code,
                        fid=0 if caltype == "bias" else FILTERS[code], nframes=1,
                        startobsjd=source.obsjd, endobsjd=source.obsjd,
                        input_expids=[source.expid], programids=list(spec.programids),
                        path=relative, median=100.0, stddev=5.0, nbadpix=0))
        manifest = Manifest(kind="calibration", name=f"cal_{spec.day}",
                            provenance=self.provenance(), nightdate=spec.nightdate,
                            exposures=[bias, flat], raw=raws, calibrations=calibrations,
                            files=files)
        return write_manifest(self.root, manifest)

    def reference(self, ccdid: int, qid: int) -> Path:
        spec = self.spec
        name = f"ztf_{spec.field:06d}_{spec.filtercode}_c{ccdid:02d}_q{qid}"
        folder = (f"ref/{field_prefix(spec.field)}/field{spec.field:06d}/{spec.filtercode}/"
                  f"ccd{ccdid:02d}/q{qid}")
        paths = {kind: f"{folder}/{name}_{kind}.fits"
                 for kind in ("refimg", "refunc", "refpsfcat", "refsexcat")}
        cards = {**wcs_cards(spec, ccdid, qid), "CCD_ID": ccdid, "QID": qid,
                 "FIELDID": spec.field}
        _write_image(self.root / paths["refimg"], self.image((spec.size, spec.size)), cards)
        # The uncertainty map and aperture catalog draw from their own generator, so the
        # other products' values stay what they were before references had them.
        extra = np.random.default_rng((spec.seed, ccdid, qid))
        _write_image(self.root / paths["refunc"],
                     extra.normal(5.0, 0.2, (spec.size, spec.size)).astype(np.float32), cards)
        ra, dec = quadrant_centre(spec, ccdid, qid)
        half = spec.size * PIXEL_SCALE / 2
        _write_catalog(self.root / paths["refpsfcat"],
                       catalog_columns(self.rng, spec.sources, ra, dec, half), cards, "PSFCAT")
        _write_catalog(self.root / paths["refsexcat"],
                       catalog_columns(extra, spec.sources, ra, dec, half, aperture=True),
                       cards, "SEXCAT")
        files = [self.describe(p, t, ccdid=ccdid, qid=qid, filtercode=spec.filtercode,
                               field=spec.field) for t, p in paths.items()]
        jd0 = datetime_to_jd(dt.datetime(2026, 1, 10, 5, tzinfo=dt.UTC))
        meta = ReferenceMeta(
            field=spec.field, ccdid=ccdid, qid=qid, rcid=rcid(ccdid, qid),
            fid=FILTERS[spec.filtercode], filtercode=spec.filtercode, nframes=12,
            startobsjd=jd0, endobsjd=jd0 + 40, startobsdate=isot(jd0),
            endobsdate=isot(jd0 + 40), input_expids=[1, 2, 3], programids=list(spec.programids),
            naxis1=spec.size, naxis2=spec.size, footprint=footprint(spec, ccdid, qid),
            wcs=wcs_cards(spec, ccdid, qid), seeing=2.0, maglimit=21.5, magzp=26.0,
            magzprms=0.02, nsources_psf=spec.sources, infobits=0, files=paths, input_files=[])
        manifest = Manifest(kind="reference",
                            name=f"ref_{spec.field:06d}_{spec.filtercode}_c{ccdid:02d}_q{qid}",
                            provenance=self.provenance(), references=[meta], files=files)
        return write_manifest(self.root, manifest)

    def exposure(self, index: int) -> Path:
        spec = self.spec
        base = datetime_to_jd(dt.datetime.fromisoformat(spec.nightdate).replace(
            tzinfo=dt.UTC) + dt.timedelta(days=1, hours=4))
        jd = base + index * 0.0005
        expid = spec.nid * 1000 + 100 + index
        programid = spec.programids[index % len(spec.programids)]
        exposure = self.exposure_meta(expid, jd, programid, "object", spec.filtercode,
                                      spec.field)
        raws, files, science, differences = [], [], [], []
        for ccdid in spec.ccds:
            meta, described = self.raw_file(exposure, ccdid)
            raws.append(meta)
            files.append(described)
            for qid in spec.quadrants:
                s, d, f = self.quadrant(exposure, ccdid, qid, meta.path,
                                        index in spec.unmeasured)
                science.append(s)
                files += f
                if d is not None:
                    differences.append(d)
        depends = [f"cal_{spec.day}"]
        if spec.references:
            depends += [f"ref_{spec.field:06d}_{spec.filtercode}_c{c:02d}_q{q}"
                        for c in spec.ccds for q in spec.quadrants]
        manifest = Manifest(kind="exposure", name=f"exp_{expid}", provenance=self.provenance(),
                            nightdate=spec.nightdate, exposures=[exposure], raw=raws,
                            science=science, differences=differences, files=files,
                            depends_on=depends)
        return write_manifest(self.root, manifest)

    def quadrant(self, exposure: ExposureMeta, ccdid: int, qid: int, raw_path: str,
                 unmeasured: bool = False) -> tuple[ScienceImageMeta, DifferenceMeta | None,
                                                    list[ProductFile]]:
        spec = self.spec
        ffd = exposure.filefracday
        yyyy, mmdd, frac = _ffd_parts(ffd)
        stem = f"ztf_{ffd:014d}_{spec.field:06d}_{spec.filtercode}_c{ccdid:02d}_o_q{qid}"
        sci_folder = f"sci/{yyyy}/{mmdd}/{frac}"
        paths = {t: f"{sci_folder}/{stem}_{t}.fits"
                 for t in ("sciimg", "mskimg", "psfcat", "sexcat")}
        cards = {**wcs_cards(spec, ccdid, qid), "EXPID": exposure.expid, "CCD_ID": ccdid,
                 "QID": qid, "FIELDID": spec.field, "PROGRMID": exposure.programid}
        shape = (spec.size, spec.size)
        _write_image(self.root / paths["sciimg"], self.image(shape), cards)
        _write_image(self.root / paths["mskimg"], np.zeros(shape, np.int16), cards)
        ra, dec = quadrant_centre(spec, ccdid, qid)
        half = spec.size * PIXEL_SCALE / 2
        psfcat = catalog_columns(self.rng, spec.sources, ra, dec, half)
        sexcat = catalog_columns(self.rng, spec.sources, ra, dec, half, aperture=True)
        if unmeasured:  # fluxes, but no zero point to turn them into magnitudes
            for columns in (psfcat, sexcat):
                columns["mag"][:] = np.nan
                columns["magerr"][:] = np.nan
        _write_catalog(self.root / paths["psfcat"], psfcat, cards, "PSFCAT")
        _write_catalog(self.root / paths["sexcat"], sexcat, cards, "SEXCAT")
        keys = {"expid": exposure.expid, "ccdid": ccdid, "qid": qid,
                "filtercode": spec.filtercode, "field": spec.field}
        files = [self.describe(p, t, **keys) for t, p in paths.items()]
        bias = (f"cal/{spec.day[:4]}/{spec.day[4:]}/bias/"
                f"ztf_{spec.day}_00_c{ccdid:02d}_q{qid}_bias.fits")
        flat = (f"cal/{spec.day[:4]}/{spec.day[4:]}/hifreqflat/{spec.filtercode}/"
                f"ztf_{spec.day}_{spec.filtercode}_c{ccdid:02d}_q{qid}_hifreqflat.fits")
        science = ScienceImageMeta(
            expid=exposure.expid, nid=spec.nid, ccdid=ccdid, qid=qid, rcid=rcid(ccdid, qid),
            field=spec.field, fid=FILTERS[spec.filtercode], filtercode=spec.filtercode,
            programid=exposure.programid, obsjd=exposure.obsjd, obsdate=exposure.obsdate,
            filefracday=ffd, exptime=exposure.exptime, airmass=exposure.airmass,
            moonillf=exposure.moonillf, naxis1=spec.size, naxis2=spec.size,
            footprint=footprint(spec, ccdid, qid), wcs=wcs_cards(spec, ccdid, qid),
            astrom_rms=0.08, astrom_rms_ra=0.06, astrom_rms_dec=0.05, astrom_nmatch=30,
            seeing=2.1, **self.photometry(unmeasured),
            saturate=60000.0, sky=100.0, skyrms=5.0, nsources_psf=spec.sources,
            nsources_sex=spec.sources, infobits=0, files=paths,
            calibration_files={"bias": bias, "hifreqflat": flat}, raw_path=raw_path)
        if not spec.references:
            return science, None, files
        diff_paths = {"diffimg": f"{sci_folder}/{stem}_scimrefdiffimg.fits.fz",
                      "diffcat": f"{sci_folder}/{stem}_diffcat.fits",
                      "diffimgpsf": f"{sci_folder}/{stem}_diffimgpsf.fits"}
        _write_image(self.root / diff_paths["diffimg"], self.image(shape, 0.0),
                     {**cards, **DIFF_CARDS}, compress=True, tile=DIFF_TILE)
        _write_image(self.root / diff_paths["diffimgpsf"],
                     psf_image(Psf(SYNTHETIC_PSF_FWHM, SYNTHETIC_PSF_BETA, 0)), cards)
        candidates = candidate_columns(self.rng, DIFF_CANDIDATES, ra, dec, half,
                                       spec.unmatched_candidates)
        _write_catalog(self.root / diff_paths["diffcat"], candidates,
                       {**cards, "RBVERSN": SYNTHETIC_RB_VERSION}, "DIFFCAT")
        files += [self.describe(p, t, **keys) for t, p in diff_paths.items()]
        ref = (f"ref/{field_prefix(spec.field)}/field{spec.field:06d}/{spec.filtercode}/"
               f"ccd{ccdid:02d}/q{qid}/ztf_{spec.field:06d}_{spec.filtercode}_c{ccdid:02d}_q{qid}"
               "_refimg.fits")
        difference = DifferenceMeta(
            expid=exposure.expid, ccdid=ccdid, qid=qid, rcid=rcid(ccdid, qid), field=spec.field,
            fid=FILTERS[spec.filtercode], filtercode=spec.filtercode,
            programid=exposure.programid, obsjd=exposure.obsjd, obsdate=exposure.obsdate,
            naxis1=spec.size, naxis2=spec.size, footprint=footprint(spec, ccdid, qid),
            wcs=wcs_cards(spec, ccdid, qid), magzp=26.0, maglimit=21.0,
            ndiffsources=DIFF_CANDIDATES,
            reference_path=ref, reference_programids=list(spec.programids),
            science_path=paths["sciimg"], files=diff_paths, infobits=0)
        return science, difference, files


def write_night(root: Path, spec: NightSpec | None = None) -> NightFiles:
    """A product folder with one night: its calibration, references, and exposures."""
    spec = spec or NightSpec()
    writer = _Writer(root, spec)
    night = NightFiles(root, writer.calibration())
    if spec.references:
        night.references = [writer.reference(c, q) for c in spec.ccds for q in spec.quadrants]
    night.exposures = [writer.exposure(i) for i in range(spec.exposures)]
    return night


def reprocess_exposure(root: Path, spec: NightSpec, index: int, seed: int) -> Path:
    """Rewrite exposure ``index`` as a rerun of the pipeline would: same keys and paths, new
    pixel and catalog content, new checksums in a rewritten manifest."""
    from dataclasses import replace

    writer = _Writer(root, replace(spec, seed=seed))
    writer.created = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC).isoformat()
    return writer.exposure(index)
