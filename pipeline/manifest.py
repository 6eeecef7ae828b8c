"""The manifest: what the pipeline hands to ingest.

One JSON file per product group, written last and atomically, after every file it lists is
complete, so a watcher that sees a manifest may ingest it at once. Three kinds exist:

- ``exposure``: one science exposure: its raw CCD files, the science products of every readout
  quadrant that succeeded (and the reason for each that failed), and difference images where a
  reference existed.
- ``calibration``: one night's calibration: the raw bias and dome-flat exposures and the bias and
  high-frequency flat products per quadrant (and filter).
- ``reference``: one reference co-add per (field, ccdid, qid, filtercode).

Paths are POSIX paths relative to the product folder, which is the parent of the ``manifests``
folder the manifest sits in (see ``product_root``). The archive assigns pids; nothing here does.
pipeline/README.md documents every field; bump ``MANIFEST_VERSION`` on any incompatible change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A manifest that cannot be read: malformed JSON, missing fields, wrong types."""


class ManifestVersionError(ManifestError):
    """A manifest written by an incompatible pipeline version."""


class ProductType(StrEnum):
    RAW = "raw"
    """A camera file: one CCD, four quadrant HDUs with overscan, tile-compressed."""
    BIAS = "bias"
    HIFREQFLAT = "hifreqflat"
    SCIIMG = "sciimg"
    MSKIMG = "mskimg"
    PSFCAT = "psfcat"
    SEXCAT = "sexcat"
    REFIMG = "refimg"
    REFUNC = "refunc"
    """A reference co-add's 1-sigma uncertainty per pixel (ZTF's refunc)."""
    REFPSFCAT = "refpsfcat"
    REFSEXCAT = "refsexcat"
    DIFFIMG = "diffimg"
    DIFFCAT = "diffcat"
    DIFFIMGPSF = "diffimgpsf"
    """The difference image's PSF, a 25 x 25 unit-sum image (ZTF's diffimgpsf)."""


ManifestKind = Literal["exposure", "calibration", "reference"]
WcsValue = int | float | str


@dataclass(frozen=True)
class ProductFile:
    """One file of the group, with what ingest needs to place and verify it."""

    path: str
    product_type: str
    """A ``ProductType`` value."""
    size: int
    sha256: str
    expid: int | None = None
    ccdid: int | None = None
    qid: int | None = None
    """None for files not tied to one quadrant (raw CCD files have a ccdid but no qid)."""
    filtercode: str | None = None
    field: int | None = None


@dataclass(frozen=True)
class ExposureMeta:
    """Camera-level metadata of one exposure, as the raw primary header carries it."""

    expid: int
    nid: int
    """Night id: days since 2017-01-01 of the local evening date."""
    nightdate: str
    """Local evening date of the night, YYYY-MM-DD."""
    obsjd: float
    """Julian date (UTC) at the start of the exposure."""
    obsdate: str
    """ISO 8601 UTC at the start of the exposure."""
    filefracday: int
    """yyyymmddffffff: UTC date and six digits of the day fraction at the start."""
    field: int
    """0 for calibration exposures."""
    filtercode: str
    """zg, zr, zi; ``bi`` for bias frames."""
    fid: int
    """1 g, 2 r, 3 i; 0 for bias frames."""
    exptime: float
    programid: int
    """1 public, 2 partnership, 3 Caltech-like; calibration frames are public (1)."""
    itid: int
    """Image type id: 1 science, 2 bias, 4 dome flat."""
    imgtype: str
    """object, bias, flat."""
    imgtypecode: str
    """o, b, f."""
    telra: float
    teldec: float
    """Where the telescope believed it pointed (deg); the solved WCS is in the science rows."""
    airmass: float
    moonillf: float
    """Moon illuminated fraction, 0..1."""
    moonra: float
    moondec: float
    azimuth: float
    elevation: float
    ccdids: list[int] = field(default_factory=list)
    """CCDs read out in this exposure."""


@dataclass(frozen=True)
class RawImageMeta:
    """One raw CCD file."""

    expid: int
    ccdid: int
    path: str
    imgtypecode: str
    nquadrants: int
    naxis1: int
    """Columns per quadrant HDU, overscan included."""
    naxis2: int


@dataclass(frozen=True)
class CalibrationMeta:
    """A calibration product of one readout quadrant for one night."""

    caltype: str
    """``bias`` or ``hifreqflat`` (ProductType values)."""
    nid: int
    nightdate: str
    ccdid: int
    qid: int
    rcid: int
    filtercode: str
    """zg/zr/zi for flats, ``00`` for bias (filter-independent, as ZTF names it)."""
    fid: int
    """0 for bias."""
    nframes: int
    startobsjd: float
    endobsjd: float
    input_expids: list[int]
    programids: list[int]
    """Programs of the science exposures this product calibrated (for embargo)."""
    path: str
    median: float
    stddev: float
    nbadpix: int
    """Pixels this product marks as unusable (dead, hot or noisy)."""


@dataclass(frozen=True)
class Footprint:
    """Centre and the four corners (deg) of a quadrant image, in pixel order
    (1,1), (naxis1,1), (naxis1,naxis2), (1,naxis2)."""

    ra: float
    dec: float
    ra1: float
    dec1: float
    ra2: float
    dec2: float
    ra3: float
    dec3: float
    ra4: float
    dec4: float


@dataclass(frozen=True)
class ScienceImageMeta:
    """One calibrated readout-quadrant image and its catalogs."""

    expid: int
    nid: int
    ccdid: int
    qid: int
    rcid: int
    """(ccdid - 1) * 4 + (qid - 1), 0..63."""
    field: int
    fid: int
    filtercode: str
    programid: int
    obsjd: float
    obsdate: str
    filefracday: int
    exptime: float
    airmass: float
    moonillf: float
    naxis1: int
    naxis2: int
    footprint: Footprint
    wcs: dict[str, WcsValue]
    """Every WCS keyword of the sciimg header (TAN-SIP: CTYPEi, CRPIXi, CRVALi, CDi_j, A_, B_,
    AP_, BP_)."""
    astrom_rms: float | None
    """rms (arcsec) of matched reference stars about the fitted WCS, both axes together;
    None (as every quantity below that could not be measured) without a solution."""
    astrom_rms_ra: float | None
    astrom_rms_dec: float | None
    astrom_nmatch: int
    seeing: float
    """FWHM of the PSF, arcsec."""
    maglimit: float | None
    """5-sigma point-source limiting magnitude."""
    magzp: float | None
    """mag = magzp - 2.5 log10(flux in DN over the exposure); None without a zero point."""
    magzpunc: float | None
    magzprms: float | None
    nzpcal: int
    """Calibrators used for the zero point."""
    saturate: float
    """DN above which pixels of this image are saturated."""
    sky: float
    skyrms: float
    nsources_psf: int
    nsources_sex: int
    infobits: int
    """Quality flags, see README (0 means nothing to report)."""
    files: dict[str, str]
    """ProductType value -> path, for this quadrant's products."""
    calibration_files: dict[str, str]
    """ProductType value -> path of the bias and hifreqflat used."""
    raw_path: str


@dataclass(frozen=True)
class ReferenceMeta:
    """A reference co-add of one (field, ccdid, qid, filtercode)."""

    field: int
    ccdid: int
    qid: int
    rcid: int
    fid: int
    filtercode: str
    nframes: int
    startobsjd: float
    endobsjd: float
    startobsdate: str
    endobsdate: str
    input_expids: list[int]
    programids: list[int]
    """Programs whose exposures went into the co-add (for embargo)."""
    naxis1: int
    naxis2: int
    footprint: Footprint
    wcs: dict[str, WcsValue]
    seeing: float
    maglimit: float | None
    magzp: float | None
    magzprms: float | None
    nsources_psf: int
    infobits: int
    files: dict[str, str]
    input_files: list[str]
    """The sciimg paths co-added."""


@dataclass(frozen=True)
class DifferenceMeta:
    """Science minus PSF-matched reference for one readout quadrant."""

    expid: int
    ccdid: int
    qid: int
    rcid: int
    field: int
    fid: int
    filtercode: str
    programid: int
    obsjd: float
    obsdate: str
    naxis1: int
    naxis2: int
    footprint: Footprint
    wcs: dict[str, WcsValue]
    magzp: float
    """Same photometric scale as the science image."""
    maglimit: float | None
    ndiffsources: int
    """Positive and negative detections in the diffcat."""
    reference_path: str
    reference_programids: list[int]
    science_path: str
    files: dict[str, str]
    infobits: int


@dataclass(frozen=True)
class QuadrantFailure:
    """A quadrant the pipeline could not process; the rest of the exposure is unaffected."""

    expid: int
    ccdid: int
    qid: int
    step: str
    reason: str


@dataclass(frozen=True)
class Provenance:
    pipeline_version: str
    created: str
    """ISO 8601 UTC when the manifest was written."""
    software: dict[str, str]
    """Package -> version of the libraries that did the work."""
    input_files: list[str]
    """Paths (relative to the product folder) of the files the products were made from."""
    parameters: dict[str, WcsValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    kind: ManifestKind
    name: str
    """Unique within the product folder: ``exp_<expid>``, ``cal_<yyyymmdd>``,
    ``ref_<field>_<filtercode>_c<ccdid>_q<qid>``. Also the file name without ``.json``."""
    provenance: Provenance
    nightdate: str | None = None
    exposures: list[ExposureMeta] = field(default_factory=list)
    raw: list[RawImageMeta] = field(default_factory=list)
    calibrations: list[CalibrationMeta] = field(default_factory=list)
    science: list[ScienceImageMeta] = field(default_factory=list)
    references: list[ReferenceMeta] = field(default_factory=list)
    differences: list[DifferenceMeta] = field(default_factory=list)
    failures: list[QuadrantFailure] = field(default_factory=list)
    files: list[ProductFile] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    """Names of manifests whose products these refer to (calibration, references): ingest those
    first."""
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(to_plain(self), indent=1, sort_keys=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ManifestError(f"not JSON: {error}") from error
        if not isinstance(data, dict):
            raise ManifestError("a manifest is a JSON object")
        version = data.get("manifest_version")
        if version != MANIFEST_VERSION:
            raise ManifestVersionError(
                f"manifest_version {version!r}; this reader understands {MANIFEST_VERSION}"
            )
        return from_plain(cls, data, "manifest")

    def files_of(self, product_type: ProductType | str) -> list[ProductFile]:
        return [f for f in self.files if f.product_type == str(product_type)]


def manifest_path(product_dir: Path, manifest: Manifest) -> Path:
    """Where a manifest lives: ``manifests/<yyyymmdd>/<name>.json``; references go in
    ``manifests/ref``."""
    folder = "ref" if manifest.kind == "reference" else (manifest.nightdate or "").replace("-", "")
    return product_dir / "manifests" / folder / f"{manifest.name}.json"


def product_root(manifest_file: Path) -> Path:
    """The product folder that a manifest's relative paths start from."""
    return manifest_file.resolve().parent.parent.parent


def read_manifest(manifest_file: Path) -> Manifest:
    return Manifest.from_json(manifest_file.read_text())


def write_manifest(product_dir: Path, manifest: Manifest) -> Path:
    """Write atomically (temporary name, fsync, rename) so a watcher never sees half a file."""
    target = manifest_path(product_dir, manifest)
    write_atomic(target, manifest.to_json().encode())
    return target


def write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, target)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_file(
    product_dir: Path, path: Path, product_type: ProductType | str, **keys: Any
) -> ProductFile:
    """A ProductFile for a file inside the product folder, with its size and checksum."""
    return ProductFile(
        path=Path(os.path.abspath(path)).relative_to(os.path.abspath(product_dir)).as_posix(),
        product_type=str(product_type),
        size=path.stat().st_size,
        sha256=sha256_of(path),
        **keys,
    )


# --- plain JSON <-> dataclasses -------------------------------------------------------------

T = TypeVar("T")


def known(value: float) -> float | None:
    """A measured quantity, or None (JSON null, NULL in the catalog) when it could not be
    measured: never a NaN (JSON has none) nor a -99 that a query would take for a number."""
    return float(value) if math.isfinite(value) else None


def to_plain(value: Any) -> Any:
    """Dataclasses (nested) to JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def from_plain(cls: type[T], data: Any, where: str = "value") -> T:
    """The inverse of ``to_plain`` for one dataclass type, checking types as it goes."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ManifestError(f"{where}: missing {f.name}")
    # Unknown keys are ignored so that additive refinements within one version stay readable.
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ManifestError(f"{where}: null not allowed")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ManifestError as error:
                errors.append(str(error))
        raise ManifestError(f"{where}: {value!r} matches none of {options}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ManifestError(f"{where}: {value!r} not one of {typing.get_args(hint)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list")
        (item,) = typing.get_args(hint)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected an object")
        _, item = typing.get_args(hint)
        return {str(k): _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_plain(hint, value, where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ManifestError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ManifestError(f"{where}: expected a string, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ManifestError(f"{where}: expected a boolean")
        return value
    if hint is Any:
        return value
    raise ManifestError(f"{where}: unsupported type {hint!r}")
