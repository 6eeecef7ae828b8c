"""Catalogs (psfcat, sexcat, diffcat; a reference's refpsfcat and refsexcat) into COPY
batches for survey.psf_sources, survey.aperture_sources, survey.candidates,
survey.reference_psf_sources and survey.reference_aperture_sources.

Catalog columns are found by name, case-insensitively: first the archive's own column name,
then the names ZTF's and SExtractor's catalogs use (``sigmag``, ``MAG_AUTO``, ...). A table
column with no source column is NULL; ``ra`` and ``dec`` are required. Rows are sorted by q3c
pixel, so each image's sources lie in q3c order in the partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import fitsio
import numpy as np

from skyvault.ingest.copybinary import CopyColumn, RecordBatch, smallint_array_wire
from skyvault.ingest.errors import (
    CorruptFits,
    GroupRejected,
    ImpossibleValue,
    MissingKeyword,
    Problem,
)
from skyvault.ingest.q3c import ang2ipix
from skyvault.schema.model import Table
from skyvault.schema.tables import (
    APERTURE_SOURCES,
    CANDIDATES,
    LIGHTCURVES,
    PSF_SOURCES,
    REFERENCE_APERTURE_SOURCES,
    REFERENCE_PSF_SOURCES,
)

CATALOG_TABLES: dict[str, Table] = {"psfcat": PSF_SOURCES, "sexcat": APERTURE_SOURCES,
                                    "diffcat": CANDIDATES}
REFERENCE_CATALOG_TABLES: dict[str, Table] = {"refpsfcat": REFERENCE_PSF_SOURCES,
                                              "refsexcat": REFERENCE_APERTURE_SOURCES}
"""A reference co-add's catalogs: plain tables (a co-add is of no night), dated as the co-add."""
DERIVED_TABLES: dict[str, tuple[Table, ...]] = {"psfcat": (LIGHTCURVES,)}
"""Tables a product's rows also go to, made in the load transaction from the catalog's rows
(the light-curve points, once association has given each detection its object:
ingest/objects.py). They belong to the same image and are kept, counted and superseded with it."""


def catalog_table(product_type: str) -> Table:
    """The table a catalog product's rows go to."""
    return CATALOG_TABLES.get(product_type) or REFERENCE_CATALOG_TABLES[product_type]


def loaded_tables(product_type: str) -> tuple[Table, ...]:
    """Every table that holds rows of a catalog product: its own, then those made from it."""
    return (catalog_table(product_type), *DERIVED_TABLES.get(product_type, ()))


@dataclass(frozen=True)
class CatalogOf:
    """Whose rows a catalog table holds: the image table, the column naming the image, and
    the column unique within one image."""

    image_table: str
    image_key: str
    row_key: str


CATALOG_OF: dict[str, CatalogOf] = {
    "psfcat": CatalogOf("science_images", "pid", "sourceid"),
    "sexcat": CatalogOf("science_images", "pid", "sourceid"),
    "diffcat": CatalogOf("difference_images", "diffid", "candid"),
}

COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "sourceid": ("sourceid", "source_id", "id", "number"),
    "ra": ("ra", "alphawin_j2000", "alpha_j2000", "x_world", "ra_deg"),
    "dec": ("dec", "deltawin_j2000", "delta_j2000", "y_world", "dec_deg"),
    "x": ("x", "xpos", "xwin_image", "x_image", "xcentroid"),
    "y": ("y", "ypos", "ywin_image", "y_image", "ycentroid"),
    "flags": ("flags", "flag"),
    "snr": ("snr", "sn", "s2n"),
}
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "psfcat": {
        **COMMON_ALIASES,
        "mag": ("mag", "mag_psf", "psfmag"),
        "magerr": ("magerr", "sigmag", "magerr_psf", "mag_err"),
        "flux": ("flux", "flux_psf", "psfflux"),
        "fluxerr": ("fluxerr", "sigflux", "fluxerr_psf", "flux_err"),
        "sharpness": ("sharpness", "sharp"),
        "chi": ("chi", "chisq", "chi2"),
    },
    "sexcat": {
        **COMMON_ALIASES,
        "mag": ("mag", "mag_auto", "mag_aper"),
        "magerr": ("magerr", "magerr_auto", "magerr_aper"),
        "flux": ("flux", "flux_auto", "flux_aper"),
        "fluxerr": ("fluxerr", "fluxerr_auto", "fluxerr_aper"),
        "fwhm": ("fwhm", "fwhm_arcsec"),
        "a": ("a", "a_image"),
        "b": ("b", "b_image"),
        "theta": ("theta", "theta_image"),
    },
    # A diffcat's candidates: ZTF's alert-candidate names, or the pipeline's catalog names.
    "diffcat": {
        **{name: (name,) for name in CANDIDATES.column_names},
        **COMMON_ALIASES,
        "xpos": ("xpos", "x"),
        "ypos": ("ypos", "y"),
        "magpsf": ("magpsf", "mag"),
        "sigmapsf": ("sigmapsf", "magerr"),
        "chipsf": ("chipsf", "chi"),
        "scorr": ("scorr", "snr"),
        "flux": ("flux",),
        "fluxerr": ("fluxerr",),
    },
}
ALIASES["refpsfcat"] = ALIASES["psfcat"]
ALIASES["refsexcat"] = ALIASES["sexcat"]
VERSION_KEYWORDS = {"rb_version": "RBVERSN"}
"""Columns every row of a catalog takes from its header: one value per file."""
# Per-image values the catalog rows repeat; set from the image, not the file (``candid`` is
# the difference image's id and the row's number, see ``set_image_values``).
IMAGE_COLUMNS = ("pid", "expid", "nid", "field", "rcid", "fid", "filtercode", "obsjd",
                 "programid", "diffid", "jd", "candid", "refid", "ingested_at", "programids")
CANDIDATES_PER_IMAGE = 1_000_000
"""candid = diffid * 1000000 + the candidate's number in its diffcat."""
ASSOCIATED_COLUMNS = ("oid",)
"""Set in the load transaction by the association step (ingest/objects.py)."""
ASSOCIATED_PRODUCTS = ("psfcat",)
"""Catalogs whose rows ingest associates with objects (and copies as light-curve points)."""


@dataclass
class CatalogLoad:
    """One catalog file, read, checked and laid out as COPY rows awaiting its image's keys."""

    product_type: str
    table: Table
    batch: RecordBatch
    sourceid: np.ndarray
    """The rows' numbers in the file, in the batch's (q3c) order."""
    path: Path | None = None
    """The file the rows come from (for problems found later, in the load transaction)."""

    @property
    def rows(self) -> int:
        return self.batch.rows


def copy_columns(table: Table, text_widths: dict[str, int] | None = None
                 ) -> tuple[CopyColumn, ...]:
    """The COPY columns of a table; a text column with one value of known width for every row
    goes on the wire as that many bytes (text and char(n) share their binary form)."""
    widths = text_widths or {}
    return tuple(
        CopyColumn(column.name, f"char({widths[column.name]})"
                   if column.name in widths else column.type.pg_type)
        for column in table.columns)


def _catalog_hdu(path: Path, product_type: str, tables: list[int]) -> tuple[int, dict[str, str]]:
    """The first binary table with positions, and its column names by lower-case name."""
    aliases = ALIASES[product_type]
    with fitsio.FITS(str(path)) as handle:
        for index in tables:
            names = {name.lower(): name for name in handle[index].get_colnames()}
            if any(alias in names for alias in aliases["ra"]) and \
                    any(alias in names for alias in aliases["dec"]):
                return index, names
    raise GroupRejected([MissingKeyword(path, "no binary table with ra and dec columns",
                                        product_type)])


def read_catalog(path: Path, product_type: str, tables: list[int],
                 programids: list[int] | None = None) -> CatalogLoad:
    """Read a catalog product; raises GroupRejected for missing columns or impossible values.
    ``programids``: a reference's programs, which every row of its catalogs carries."""
    try:
        return _read_catalog(path, product_type, tables, programids)
    except (OSError, ValueError) as error:  # fitsio on a table astropy could parse
        raise GroupRejected([CorruptFits(path, f"unreadable table: {error}",
                                         product_type)]) from error


def source_columns(product_type: str, names: dict[str, str]) -> dict[str, str]:
    """Archive column -> the file's column (``names``: the file's by lower-case name), found
    through the aliases; ``sourceid`` too, where the file has one."""
    wanted: dict[str, str] = {}
    for column in (*catalog_table(product_type).column_names, "sourceid"):
        for alias in ALIASES[product_type].get(column, COMMON_ALIASES["sourceid"]
                                                if column == "sourceid" else ()):
            if alias in names:
                wanted[column] = names[alias]
                break
    return wanted


def _read_catalog(path: Path, product_type: str, tables: list[int],
                  programids: list[int] | None) -> CatalogLoad:
    table = catalog_table(product_type)
    hdu, names = _catalog_hdu(path, product_type, tables)
    wanted = source_columns(product_type, names)
    data, header = fitsio.read(str(path), ext=hdu, columns=sorted(set(wanted.values())),
                               header=True)
    rows = len(data)
    values: dict[str, np.ndarray] = {}
    for column_name, source in wanted.items():
        array = np.asarray(data[source])
        if array.ndim > 1:  # e.g. MAG_APER for several apertures: the first one
            array = array.reshape(rows, -1)[:, 0]
        values[column_name] = array
    primary = fitsio.read_header(str(path), ext=0) if VERSION_KEYWORDS.keys() & set(
        table.column_names) else {}
    for column_name, keyword in VERSION_KEYWORDS.items():
        source = header if keyword in header else primary
        if column_name in table.column_names and keyword in source:
            version = str(source[keyword]).strip()
            if version and version != "none":
                values[column_name] = np.array(version.encode())
    if "programids" in table.column_names:
        # One array for every row: its binary form, sent as the fixed-width bytes it is.
        values["programids"] = np.array(smallint_array_wire(programids or []))
    return catalog_load(path, product_type, values,
                        with_objects=product_type in ASSOCIATED_PRODUCTS)


def catalog_load(path: Path, product_type: str, values: dict[str, np.ndarray], *,
                 with_objects: bool = False) -> CatalogLoad:
    """Check catalog columns (archive names) and lay them out as COPY rows in q3c order.
    ``with_objects``: the rows' object (``ASSOCIATED_COLUMNS``) is left for association to set,
    as ingest does; otherwise it is empty (rows loaded without objects, for tests and
    benchmarks of the catalogs alone)."""
    table = catalog_table(product_type)
    rows = len(values["ra"])
    problems = check_positions(path, product_type, values["ra"], values["dec"])
    if problems:
        raise GroupRejected(problems)
    if "sourceid" not in values:
        values["sourceid"] = np.arange(1, rows + 1, dtype=np.int64)
    sourceid = np.asarray(values["sourceid"], dtype=np.int64)
    if "sourceid" not in table.column_names:
        values.pop("sourceid")
    if "snr" in table.column_names and "snr" not in values and "flux" in values \
            and "fluxerr" in values:
        with np.errstate(divide="ignore", invalid="ignore"):
            values["snr"] = values["flux"] / values["fluxerr"]
    if "isdiffpos" in values and values["isdiffpos"].dtype.kind in "iub":
        # ZTF writes 't' or 'f'; the pipeline's diffcat 1 or 0.
        values["isdiffpos"] = np.where(values["isdiffpos"] != 0, b"t", b"f")
    # itemsize, not len(item()): numpy drops trailing NUL bytes from item(), and an array's
    # binary form may end with one (programid 256).
    widths = {name: value.dtype.itemsize for name, value in values.items()
              if value.ndim == 0 and isinstance(value.item(), bytes)}
    null = frozenset(column.name for column in table.columns
                     if column.name not in values and column.name not in IMAGE_COLUMNS
                     and not (with_objects and column.name in ASSOCIATED_COLUMNS))
    batch = RecordBatch(copy_columns(table, widths), rows, null=null)
    for name, array in values.items():
        if array.ndim == 0:
            batch.set(name, array.item())
            continue
        kind = batch.column(name).wire_dtype.kind
        if kind in "iu" and array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                raise GroupRejected([ImpossibleValue(path, f"{name} has non-finite values",
                                                     product_type)])
            array = array.astype(np.int64)
        batch.set(name, array)
    order = np.argsort(ang2ipix(values["ra"], values["dec"]), kind="stable")
    batch.take(order)
    return CatalogLoad(product_type, table, batch, sourceid[order], path)


def check_positions(path: Path, product_type: str, ra: np.ndarray,
                    dec: np.ndarray) -> list[Problem]:
    problems: list[Problem] = []
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        problems.append(ImpossibleValue(
            path, f"{int(bad.sum())} of {len(ra)} sources have non-finite coordinates",
            product_type))
    with np.errstate(invalid="ignore"):
        outside = (np.abs(dec) > 90) | (ra < 0) | (ra > 360)
    if outside.any():
        problems.append(ImpossibleValue(
            path, f"{int(outside.sum())} of {len(ra)} sources outside 0 <= ra <= 360, "
                  f"|dec| <= 90", product_type))
    return problems


def set_image_values(load: CatalogLoad, values: dict[str, object]) -> None:
    """Fill in the columns every row of the catalog shares with its image; ``candid`` from
    ``diffid`` and each row's number."""
    if "candid" in load.table.column_names:
        diffid = int(values["diffid"])  # type: ignore[call-overload]
        load.batch.set("candid", diffid * CANDIDATES_PER_IMAGE + load.sourceid)
    for name in IMAGE_COLUMNS:
        # A reference catalog's programids were set when it was read (read_catalog).
        if name in load.table.column_names and name not in ("candid", "programids"):
            load.batch.set(name, values[name])  # type: ignore[arg-type]
