"""From a manifest to a plan: the rows, files and catalogs of one product group, checked.

Everything that needs only the manifest and the files happens here, outside any transaction
(and in a thread, while the database loads the previous group): reading the manifest, tying
each file to its product, FITS structure and keywords, impossible values, reading and sorting
the catalogs. What needs the database (programs, versions, identifiers of other products)
is left as rules and references for the loader. Every problem found is collected, so that a
quarantined group reports all its bad files at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from skyvault.geometry import gnomonic, radec_of, separation, unit_vectors
from skyvault.ingest import layout
from skyvault.ingest.catalogs import (
    CATALOG_TABLES,
    REFERENCE_CATALOG_TABLES,
    CatalogLoad,
    read_catalog,
)
from skyvault.ingest.errors import (
    BadManifest,
    ChecksumMismatch,
    GroupRejected,
    ImpossibleValue,
    MissingFile,
    Problem,
)
from skyvault.ingest.fitscheck import FitsContents, check_image, check_raw, inspect_fits
from skyvault.pipeline.manifest import (
    MANIFEST_VERSION,
    ExposureMeta,
    Footprint,
    Manifest,
    ManifestError,
    ProductFile,
    ScienceImageMeta,
    product_root,
)

JD_UNIX_EPOCH = 2440587.5
WCS_COLUMNS = {"CRVAL1": "crval1", "CRVAL2": "crval2", "CRPIX1": "crpix1", "CRPIX2": "crpix2",
               "CD1_1": "cd11", "CD1_2": "cd12", "CD2_1": "cd21", "CD2_2": "cd22"}
PRODUCT_TYPES = {"raw", *layout.CALIBRATION_TYPES, *layout.SCIENCE_TYPES,
                 *layout.REFERENCE_TYPES, *layout.DIFFERENCE_TYPES}


@dataclass(frozen=True)
class Ref:
    """Another product's identifier, looked up in the transaction by its key."""

    table: str
    key: tuple[tuple[str, Any], ...]
    required: bool = False


@dataclass
class PlannedFile:
    source: Path
    product_type: str
    size: int
    sha256: str
    extension: str


@dataclass
class Product:
    table: str
    id_column: str
    key: dict[str, Any]
    values: dict[str, Any]
    files: list[PlannedFile]
    store_path: Callable[[PlannedFile, int], str]
    label: str
    refs: dict[str, Ref] = field(default_factory=dict)
    catalogs: list[CatalogLoad] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def array_programs(self) -> bool:
        return self.table in ("calibration_images", "reference_images")

    @property
    def programs(self) -> list[int]:
        return list(self.values["programids"]) if self.array_programs \
            else [self.values["programid"]]


@dataclass
class Exposure:
    values: dict[str, Any]


@dataclass
class GroupPlan:
    manifest_path: Path
    manifest_sha256: str
    manifest: Manifest
    exposures: list[Exposure]
    products: list[Product]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def nrows(self) -> int:
        return sum(load.rows for product in self.products for load in product.catalogs)


# -- small pure helpers ---------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    """ISO 8601; a time without offset is UTC (the pipeline writes UTC)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def night_start(nightdate: str) -> dt.datetime:
    return dt.datetime.fromisoformat(nightdate).replace(tzinfo=dt.UTC)


def spoly_text(corners: list[tuple[float, float]]) -> str:
    return "{" + ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in corners) + "}"


def footprint_values(footprint: Footprint) -> dict[str, Any]:
    corners = [(footprint.ra1, footprint.dec1), (footprint.ra2, footprint.dec2),
               (footprint.ra3, footprint.dec3), (footprint.ra4, footprint.dec4)]
    values: dict[str, Any] = {"ra": footprint.ra, "dec": footprint.dec}
    for number, (ra, dec) in enumerate(corners, start=1):
        values[f"ra{number}"] = ra
        values[f"dec{number}"] = dec
    values["footprint"] = spoly_text(corners)
    return values


def wcs_values(wcs: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for keyword, column in WCS_COLUMNS.items():
        value = wcs.get(keyword)
        values[column] = float(value) if isinstance(value, int | float) else None
    return values


def ccd_geometry(quadrants: list[Footprint]) -> dict[str, Any]:
    """Centre and outline of a CCD from its quadrants' footprints: the centre is the mean
    direction of the quadrant centres; the corners, when all four quadrants are known, are the
    four quadrant corners farthest from it, in order around it."""
    centre_ra, centre_dec = radec_of(unit_vectors([q.ra for q in quadrants],
                                                  [q.dec for q in quadrants]).sum(axis=0))
    ra, dec = float(centre_ra), float(centre_dec)
    values: dict[str, Any] = {"ra": ra, "dec": dec}
    if len(quadrants) != 4:
        return values
    points = [(q.ra1, q.dec1) for q in quadrants] + [(q.ra2, q.dec2) for q in quadrants] + \
             [(q.ra3, q.dec3) for q in quadrants] + [(q.ra4, q.dec4) for q in quadrants]
    distance = separation([p[0] for p in points], [p[1] for p in points], ra, dec)
    farthest = [points[i] for i in np.argsort(-distance, kind="stable")[:4]]
    # Ordered by position angle around the centre, in the tangent plane there.
    xi, eta = gnomonic([p[0] for p in farthest], [p[1] for p in farthest], ra, dec)
    farthest = [farthest[i] for i in np.argsort(np.arctan2(eta, xi), kind="stable")]
    for number, (corner_ra, corner_dec) in enumerate(farthest, start=1):
        values[f"ra{number}"] = corner_ra
        values[f"dec{number}"] = corner_dec
    values["footprint"] = spoly_text(farthest)
    return values


LEGACY_MISSING_MAGNITUDE = -99.0
"""What manifests written before unmeasured quantities became null give for a magnitude that
could not be measured (ZTF's convention); for an rms they gave -1."""


def magnitude_or_null(value: float | None) -> float | None:
    """A magnitude for the catalog: NULL when unknown, whatever the manifest's convention."""
    if value is None or not math.isfinite(value) or value == LEGACY_MISSING_MAGNITUDE:
        return None
    return value


def spread_or_null(value: float | None) -> float | None:
    """An rms or uncertainty for the catalog: NULL when unknown (None, NaN or negative)."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


SKY_IMAGE_TYPE = "o"
"""imgtypecode of frames that look at the sky; bias (b) and flat (f) frames have no sky
position, whatever pointing their header reports, so their position columns are NULL."""


def looks_at_sky(exposure: ExposureMeta) -> bool:
    return exposure.imgtypecode == SKY_IMAGE_TYPE


def _bad_number(value: Any) -> bool:
    return not isinstance(value, int | float) or not math.isfinite(value)


def check_sky(where: Path, label: str, values: dict[str, Any],
              product_type: str | None) -> list[Problem]:
    """Positions must be finite, dec within +-90, ra within 0..360."""
    problems: list[Problem] = []
    for name, value in values.items():
        if not (name.startswith("ra") or name.startswith("dec") or name in ("telra", "teldec")):
            continue
        if name == "footprint" or value is None:
            continue
        if _bad_number(value):
            problems.append(ImpossibleValue(where, f"{label}: {name} = {value!r}", product_type))
        elif name.startswith("dec") or name == "teldec":
            if abs(value) > 90:
                problems.append(ImpossibleValue(where, f"{label}: {name} = {value} is outside "
                                                       "+-90", product_type))
        elif not 0 <= value <= 360:
            problems.append(ImpossibleValue(where, f"{label}: {name} = {value} is outside "
                                                   "0..360", product_type))
    return problems


def check_time(where: Path, label: str, obsjd: float) -> list[Problem]:
    # JD 2400000 is 1858; 2500000 is 2132: anything outside is not an observation of ours.
    if _bad_number(obsjd) or not 2_400_000 < obsjd < 2_500_000:
        return [ImpossibleValue(where, f"{label}: obsjd = {obsjd!r}", None)]
    return []


# -- the planner ----------------------------------------------------------------------------


class _Planner:
    def __init__(self, manifest_path: Path, manifest: Manifest, sha256: str) -> None:
        self.manifest_path = manifest_path
        self.manifest = manifest
        self.sha256 = sha256
        self.root = product_root(manifest_path)
        self.problems: list[Problem] = []
        self.files = {f.path: f for f in manifest.files}
        self.claimed: set[str] = set()
        self.exposures = {e.expid: e for e in manifest.exposures}

    # files ------------------------------------------------------------------------------

    def source(self, relative: str) -> Path | None:
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts:
            self.problems.append(BadManifest(self.manifest_path,
                                             f"path {relative!r} leaves the product folder"))
            return None
        return self.root.joinpath(*pure.parts)

    def planned_file(self, relative: str, product_type: str) -> PlannedFile | None:
        """The file's manifest entry, checked to exist with the promised size."""
        self.claimed.add(relative)
        entry: ProductFile | None = self.files.get(relative)
        if entry is None:
            self.problems.append(BadManifest(
                self.manifest_path, f"{relative} is named by a product but not listed in files "
                                    "(no size or checksum)"))
            return None
        source = self.source(relative)
        if source is None:
            return None
        if entry.product_type != product_type:
            self.problems.append(BadManifest(
                self.manifest_path, f"{relative} is listed as {entry.product_type}, its product "
                                    f"uses it as {product_type}"))
            return None
        if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
            self.problems.append(BadManifest(self.manifest_path,
                                             f"{relative}: sha256 {entry.sha256!r} malformed"))
            return None
        try:
            size = source.stat().st_size
        except FileNotFoundError:
            self.problems.append(MissingFile(source, "listed in the manifest, absent on disk",
                                             product_type))
            return None
        if size != entry.size:
            self.problems.append(ChecksumMismatch(
                source, f"{size} bytes, the manifest says {entry.size}", product_type))
            return None
        return PlannedFile(source, product_type, entry.size, entry.sha256.lower(),
                           layout.file_extension(source.name))

    def inspect(self, planned: PlannedFile) -> FitsContents | None:
        """The file's HDUs, or None (and its problem recorded) if it is not complete FITS."""
        try:
            return inspect_fits(planned.source, planned.product_type)
        except GroupRejected as rejected:
            self.problems += rejected.problems
            return None

    def product_files(self, files: dict[str, str], types: tuple[str, ...],
                      label: str) -> list[PlannedFile]:
        planned: list[PlannedFile] = []
        for product_type, relative in files.items():
            if product_type not in types:
                self.problems.append(BadManifest(
                    self.manifest_path, f"{label}: {product_type} is not one of {types}"))
                continue
            found = self.planned_file(relative, product_type)
            if found is not None:
                planned.append(found)
        return planned

    # products -----------------------------------------------------------------------------

    def exposure_rows(self) -> list[Exposure]:
        rows: list[Exposure] = []
        for e in self.manifest.exposures:
            label = f"exposure {e.expid}"
            values = {
                "expid": e.expid, "obsjd": e.obsjd, "obsdate": parse_time(e.obsdate),
                "nid": e.nid, "field": e.field, "fid": e.fid, "filtercode": e.filtercode,
                "exptime": e.exptime, "telra": e.telra if looks_at_sky(e) else None,
                "teldec": e.teldec if looks_at_sky(e) else None,
                "airmass": e.airmass, "moonillf": e.moonillf, "itid": e.itid,
                "imgtypecode": e.imgtypecode, "programid": e.programid,
            }
            self.problems += check_time(self.manifest_path, label, e.obsjd)
            self.problems += check_sky(self.manifest_path, label, values, None)
            if _bad_number(e.exptime) or e.exptime < 0:
                self.problems.append(ImpossibleValue(self.manifest_path,
                                                     f"{label}: exptime = {e.exptime!r}"))
            rows.append(Exposure(values))
        return rows

    def raw_products(self) -> list[Product]:
        products: list[Product] = []
        quadrants: dict[tuple[int, int], list[Footprint]] = {}
        for science in self.manifest.science:
            quadrants.setdefault((science.expid, science.ccdid), []).append(science.footprint)
        for raw in self.manifest.raw:
            label = f"raw {raw.expid} ccd {raw.ccdid}"
            exposure = self.exposures.get(raw.expid)
            if exposure is None:
                self.problems.append(BadManifest(self.manifest_path,
                                                 f"{label}: no exposure {raw.expid}"))
                continue
            planned = self.planned_file(raw.path, "raw")
            if planned is None:
                continue
            contents = self.inspect(planned)
            if contents is not None:
                self.problems += check_raw(planned.source, contents, raw.nquadrants,
                                           (raw.naxis1, raw.naxis2),
                                           {"EXPID": raw.expid, "CCDID": raw.ccdid})
            if (raw.expid, raw.ccdid) in quadrants:
                geometry = ccd_geometry(quadrants[(raw.expid, raw.ccdid)])
            elif looks_at_sky(exposure):
                geometry = {"ra": exposure.telra, "dec": exposure.teldec}
            else:
                geometry = {"ra": None, "dec": None}
            observed = parse_time(exposure.obsdate)
            values = {
                "expid": raw.expid, "obsjd": exposure.obsjd, "obsdate": observed,
                "nid": exposure.nid, "field": exposure.field, "ccdid": raw.ccdid,
                "fid": exposure.fid, "filtercode": exposure.filtercode,
                "exptime": exposure.exptime, "filefracday": exposure.filefracday,
                "programid": exposure.programid, **geometry,
            }
            self.problems += check_sky(planned.source, label, values, "raw")

            def path(f: PlannedFile, version: int, e=exposure, r=raw) -> str:
                return layout.raw_path(e.filefracday, e.field, e.filtercode, r.ccdid,
                                       r.imgtypecode, f.extension, version)

            products.append(Product(
                "raw_images", "rawid", {"expid": raw.expid, "ccdid": raw.ccdid}, values,
                [planned], path, label,
            ))
        return products

    def calibration_products(self) -> list[Product]:
        products: list[Product] = []
        for cal in self.manifest.calibrations:
            label = f"{cal.caltype} {cal.nightdate} rcid {cal.rcid} {cal.filtercode}"
            if cal.caltype not in layout.CALIBRATION_TYPES:
                self.problems.append(BadManifest(self.manifest_path,
                                                 f"{label}: unknown caltype {cal.caltype!r}"))
                continue
            planned = self.planned_file(cal.path, cal.caltype)
            if planned is None:
                continue
            contents = self.inspect(planned)
            if contents is not None:
                self.problems += check_image(planned.source, cal.caltype, contents, None,
                                             {"CCDID": cal.ccdid, "QID": cal.qid})
            programs = tuple(cal.programids) or tuple(sorted({
                self.exposures[expid].programid for expid in cal.input_expids
                if expid in self.exposures})) or (1,)
            values = {
                "caltype": cal.caltype, "nid": cal.nid, "obsdate": night_start(cal.nightdate),
                "ccdid": cal.ccdid, "qid": cal.qid, "rcid": cal.rcid, "fid": cal.fid,
                "filtercode": cal.filtercode, "nframes": cal.nframes,
                "programids": list(programs),
            }

            def path(f: PlannedFile, version: int, c=cal) -> str:
                return layout.calibration_path(c.caltype, c.nightdate, c.filtercode, c.ccdid,
                                               c.qid, f.extension, version)

            products.append(Product(
                "calibration_images", "calid",
                {"caltype": cal.caltype, "nid": cal.nid, "rcid": cal.rcid,
                 "filtercode": cal.filtercode},
                values, [planned], path, label,
                inputs=[{"role": "exposure", "expid": expid} for expid in cal.input_expids],
            ))
        return products

    def science_products(self) -> list[Product]:
        products: list[Product] = []
        for sci in self.manifest.science:
            label = f"science {sci.expid} ccd {sci.ccdid} q{sci.qid}"
            planned = self.product_files(sci.files, layout.SCIENCE_TYPES, label)
            if "sciimg" not in sci.files:
                self.problems.append(BadManifest(self.manifest_path, f"{label}: no sciimg"))
            keys = {"EXPID": sci.expid, "CCDID": sci.ccdid, "QID": sci.qid,
                    "FIELDID": sci.field, "PROGRMID": sci.programid}
            catalogs: list[CatalogLoad] = []
            for f in planned:
                contents = self.inspect(f)
                if contents is None:
                    continue
                if f.product_type in CATALOG_TABLES:
                    try:
                        catalogs.append(read_catalog(f.source, f.product_type, contents.tables))
                    except GroupRejected as rejected:
                        self.problems += rejected.problems
                elif f.product_type in ("sciimg", "mskimg"):
                    self.problems += check_image(f.source, f.product_type, contents,
                                                 (sci.naxis1, sci.naxis2), keys)
            values = self.science_values(sci)
            self.problems += check_sky(self.manifest_path, label, values, "sciimg")
            self.problems += check_time(self.manifest_path, label, sci.obsjd)
            psf = [c for c in catalogs if c.product_type == "psfcat"]
            if psf and psf[0].rows != sci.nsources_psf:
                self.problems.append(ImpossibleValue(
                    self.manifest_path, f"{label}: the psfcat has {psf[0].rows} sources, the "
                                        f"manifest says nsources_psf = {sci.nsources_psf}"))

            def path(f: PlannedFile, version: int, s=sci) -> str:
                return layout.quadrant_path("sci", s.filefracday, s.field, s.filtercode,
                                            s.ccdid, s.qid, f.product_type, f.extension, version)

            products.append(Product(
                "science_images", "pid", {"expid": sci.expid, "rcid": sci.rcid}, values,
                planned, path, label,
                refs={
                    "rawid": Ref("raw_images", (("expid", sci.expid), ("ccdid", sci.ccdid))),
                    "bias_calid": Ref("calibration_images", (
                        ("caltype", "bias"), ("nid", sci.nid), ("rcid", sci.rcid),
                        ("filtercode", "00"))),
                    "flat_calid": Ref("calibration_images", (
                        ("caltype", "hifreqflat"), ("nid", sci.nid), ("rcid", sci.rcid),
                        ("filtercode", sci.filtercode))),
                },
                catalogs=catalogs,
                inputs=[{"role": "raw", "path": sci.raw_path}] + [
                    {"role": role, "path": p} for role, p in sorted(sci.calibration_files.items())
                ],
            ))
        return products

    def science_values(self, sci: ScienceImageMeta) -> dict[str, Any]:
        provenance = self.manifest.provenance
        return {
            "expid": sci.expid, "obsjd": sci.obsjd, "obsdate": parse_time(sci.obsdate),
            "nid": sci.nid, "field": sci.field, "ccdid": sci.ccdid, "qid": sci.qid,
            "rcid": sci.rcid, "fid": sci.fid, "filtercode": sci.filtercode,
            "filefracday": sci.filefracday, "exptime": sci.exptime, "airmass": sci.airmass,
            "seeing": sci.seeing, "maglimit": magnitude_or_null(sci.maglimit),
            "magzp": magnitude_or_null(sci.magzp), "magzprms": spread_or_null(sci.magzprms),
            "infobits": sci.infobits, "astrom_rms": spread_or_null(sci.astrom_rms),
            "nsources": sci.nsources_psf, **footprint_values(sci.footprint),
            **wcs_values(sci.wcs), "naxis1": sci.naxis1, "naxis2": sci.naxis2,
            "pipeline_version": provenance.pipeline_version,
            "processed_at": parse_time(provenance.created), "programid": sci.programid,
        }

    def reference_products(self) -> list[Product]:
        products: list[Product] = []
        for ref in self.manifest.references:
            label = f"reference field {ref.field} ccd {ref.ccdid} q{ref.qid} {ref.filtercode}"
            planned = self.product_files(ref.files, layout.REFERENCE_TYPES, label)
            catalogs: list[CatalogLoad] = []
            for f in planned:
                contents = self.inspect(f)
                if contents is None:
                    continue
                if f.product_type in REFERENCE_CATALOG_TABLES:
                    try:
                        catalogs.append(read_catalog(f.source, f.product_type, contents.tables,
                                                     list(ref.programids)))
                    except GroupRejected as rejected:
                        self.problems += rejected.problems
                elif f.product_type in ("refimg", "refunc"):
                    self.problems += check_image(
                        f.source, f.product_type, contents, (ref.naxis1, ref.naxis2),
                        {"CCDID": ref.ccdid, "QID": ref.qid, "FIELDID": ref.field})
            psf = [c for c in catalogs if c.product_type == "refpsfcat"]
            if psf and psf[0].rows != ref.nsources_psf:
                self.problems.append(ImpossibleValue(
                    self.manifest_path, f"{label}: the refpsfcat has {psf[0].rows} sources, the"
                                        f" manifest says nsources_psf = {ref.nsources_psf}"))
            end = parse_time(ref.endobsdate)
            values = {
                "field": ref.field, "ccdid": ref.ccdid, "qid": ref.qid, "rcid": ref.rcid,
                "fid": ref.fid, "filtercode": ref.filtercode, "nframes": ref.nframes,
                "startobsdate": parse_time(ref.startobsdate), "endobsdate": end,
                "startobsjd": ref.startobsjd, "endobsjd": ref.endobsjd, "seeing": ref.seeing,
                "maglimit": magnitude_or_null(ref.maglimit),
                "magzp": magnitude_or_null(ref.magzp), "magzprms": spread_or_null(ref.magzprms),
                "infobits": ref.infobits, **footprint_values(ref.footprint),
                **wcs_values(ref.wcs), "naxis1": ref.naxis1, "naxis2": ref.naxis2,
                "pipeline_version": self.manifest.provenance.pipeline_version,
                "programids": list(ref.programids),
            }
            self.problems += check_sky(self.manifest_path, label, values, "refimg")
            if not ref.programids:
                self.problems.append(BadManifest(self.manifest_path,
                                                 f"{label}: empty programids"))

            def path(f: PlannedFile, version: int, r=ref) -> str:
                return layout.reference_path(r.field, r.filtercode, r.ccdid, r.qid,
                                             f.product_type, f.extension, version)

            products.append(Product(
                "reference_images", "refid",
                {"field": ref.field, "rcid": ref.rcid, "filtercode": ref.filtercode},
                values, planned, path, label, catalogs=catalogs,
                inputs=[{"role": "epoch", "path": p} for p in ref.input_files]
                + [{"role": "exposure", "expid": expid} for expid in ref.input_expids],
            ))
        return products

    def difference_products(self) -> list[Product]:
        products: list[Product] = []
        science = {(s.expid, s.rcid): s for s in self.manifest.science}
        for diff in self.manifest.differences:
            label = f"difference {diff.expid} ccd {diff.ccdid} q{diff.qid}"
            planned = self.product_files(diff.files, layout.DIFFERENCE_TYPES, label)
            catalogs: list[CatalogLoad] = []
            for f in planned:
                contents = self.inspect(f)
                if contents is None:
                    continue
                if f.product_type == "diffimg":
                    self.problems += check_image(
                        f.source, "diffimg", contents, (diff.naxis1, diff.naxis2),
                        {"EXPID": diff.expid, "CCDID": diff.ccdid, "QID": diff.qid})
                elif f.product_type in CATALOG_TABLES:
                    try:
                        catalogs.append(read_catalog(f.source, f.product_type, contents.tables))
                    except GroupRejected as rejected:
                        self.problems += rejected.problems
            sci = science.get((diff.expid, diff.rcid))
            exposure = self.exposures.get(diff.expid)
            observed = parse_time(diff.obsdate)
            values = {
                "expid": diff.expid, "obsjd": diff.obsjd, "obsdate": observed,
                "nid": sci.nid if sci else (exposure.nid if exposure else None),
                "field": diff.field, "ccdid": diff.ccdid, "qid": diff.qid, "rcid": diff.rcid,
                "fid": diff.fid, "filtercode": diff.filtercode,
                "exptime": sci.exptime if sci else (exposure.exptime if exposure else None),
                "maglimit": magnitude_or_null(diff.maglimit), "ncandidates": diff.ndiffsources,
                **footprint_values(diff.footprint), "programid": diff.programid,
            }
            self.problems += check_sky(self.manifest_path, label, values, "diffimg")
            filefracday = sci.filefracday if sci else (exposure.filefracday if exposure else 0)

            def path(f: PlannedFile, version: int, d=diff, ffd=filefracday) -> str:
                return layout.quadrant_path("diff", ffd, d.field, d.filtercode, d.ccdid, d.qid,
                                            f.product_type, f.extension, version)

            products.append(Product(
                "difference_images", "diffid", {"expid": diff.expid, "rcid": diff.rcid},
                values, planned, path, label,
                refs={
                    "pid": Ref("science_images", (("expid", diff.expid), ("rcid", diff.rcid)),
                               required=True),
                    "refid": Ref("reference_images", (
                        ("field", diff.field), ("rcid", diff.rcid),
                        ("filtercode", diff.filtercode)), required=True),
                },
                catalogs=catalogs,
                inputs=[{"role": "science", "path": diff.science_path},
                        {"role": "reference", "path": diff.reference_path}],
            ))
        return products

    def plan(self) -> GroupPlan:
        exposures = self.exposure_rows()
        products = (self.raw_products() + self.calibration_products()
                    + self.science_products() + self.reference_products()
                    + self.difference_products())
        for relative, entry in self.files.items():
            if relative not in self.claimed:
                self.problems.append(BadManifest(
                    self.manifest_path, f"{relative} ({entry.product_type}) is listed in files "
                                        "but no product names it"))
            if entry.product_type not in PRODUCT_TYPES:
                self.problems.append(BadManifest(
                    self.manifest_path, f"{relative}: unknown product type "
                                        f"{entry.product_type!r}"))
        if self.problems:
            raise GroupRejected(self.problems)
        return GroupPlan(self.manifest_path, self.sha256, self.manifest, exposures, products)


@dataclass(frozen=True)
class ManifestHead:
    """What ordering and skipping need, read without building the whole manifest (which takes
    the pipeline's reader about as long as planning the group, so it happens in the planner
    thread)."""

    path: Path
    sha256: str
    kind: str
    name: str
    depends_on: tuple[str, ...]


def read_manifest_head(path: Path) -> ManifestHead:
    """Raises GroupRejected (BadManifest) for what is not a manifest at all."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GroupRejected([BadManifest(path, f"unreadable: {error}")]) from error
    try:
        plain = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GroupRejected([BadManifest(path, f"not JSON: {error}")]) from error
    if not isinstance(plain, dict):
        raise GroupRejected([BadManifest(path, "a manifest is a JSON object")])
    if plain.get("manifest_version") != MANIFEST_VERSION:
        raise GroupRejected([BadManifest(
            path, f"manifest_version {plain.get('manifest_version')!r}; this archive reads "
                  f"{MANIFEST_VERSION}")])
    name, kind, depends = plain.get("name"), plain.get("kind"), plain.get("depends_on", [])
    if not isinstance(name, str) or not isinstance(kind, str) or not isinstance(depends, list):
        raise GroupRejected([BadManifest(path, "name, kind or depends_on missing or malformed")])
    return ManifestHead(path, hashlib.sha256(data).hexdigest(), kind, name,
                        tuple(str(d) for d in depends))


def read_manifest_file(path: Path) -> tuple[Manifest, str]:
    """The manifest and the SHA-256 of its bytes; raises GroupRejected (BadManifest)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GroupRejected([BadManifest(path, f"unreadable: {error}")]) from error
    try:
        manifest = Manifest.from_json(data.decode("utf-8"))
    except (ManifestError, UnicodeDecodeError, TypeError, ValueError) as error:
        raise GroupRejected([BadManifest(path, str(error))]) from error
    return manifest, hashlib.sha256(data).hexdigest()


def plan_group(path: Path) -> GroupPlan:
    """Read and check a group and lay out its rows; raises GroupRejected with every problem
    found. The plan carries the SHA-256 of the bytes it was made from."""
    manifest, sha256 = read_manifest_file(path)
    try:
        return _Planner(path, manifest, sha256).plan()
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        # A value of a type the contract allows but that means nothing (a date that is no
        # date, a footprint of strings): the manifest is bad, not the run.
        raise GroupRejected([BadManifest(path, f"{type(error).__name__}: {error}")]) from error
