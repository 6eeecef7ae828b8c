"""Source catalogs (psfcat, sexcat) into COPY batches for survey.psf_sources and
survey.aperture_sources.

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

from skyvault.ingest.copybinary import CopyColumn, RecordBatch
from skyvault.ingest.errors import (
    CorruptFits,
    GroupRejected,
    ImpossibleValue,
    MissingKeyword,
    Problem,
)
from skyvault.ingest.q3c import ang2ipix
from skyvault.schema.model import Table
from skyvault.schema.tables import APERTURE_SOURCES, PSF_SOURCES

CATALOG_TABLES: dict[str, Table] = {"psfcat": PSF_SOURCES, "sexcat": APERTURE_SOURCES}

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
}
# Per-image values the catalog rows repeat; set from the science image, not the file.
IMAGE_COLUMNS = ("pid", "expid", "nid", "field", "rcid", "fid", "filtercode", "obsjd",
                 "programid")


@dataclass
class CatalogLoad:
    """One catalog file, read, checked and laid out as COPY rows awaiting its image's keys."""

    product_type: str
    table: Table
    batch: RecordBatch

    @property
    def rows(self) -> int:
        return self.batch.rows


def copy_columns(table: Table) -> tuple[CopyColumn, ...]:
    return tuple(CopyColumn(column.name, column.type.pg_type) for column in table.columns)


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


def read_catalog(path: Path, product_type: str, tables: list[int]) -> CatalogLoad:
    """Read a psfcat or sexcat; raises GroupRejected for missing columns or impossible values."""
    try:
        return _read_catalog(path, product_type, tables)
    except (OSError, ValueError) as error:  # fitsio on a table astropy could parse
        raise GroupRejected([CorruptFits(path, f"unreadable table: {error}",
                                         product_type)]) from error


def _read_catalog(path: Path, product_type: str, tables: list[int]) -> CatalogLoad:
    table = CATALOG_TABLES[product_type]
    hdu, names = _catalog_hdu(path, product_type, tables)
    wanted: dict[str, str] = {}
    for column in table.columns:
        for alias in ALIASES[product_type].get(column.name, ()):
            if alias in names:
                wanted[column.name] = names[alias]
                break
    data = fitsio.read(str(path), ext=hdu, columns=sorted(set(wanted.values())))
    rows = len(data)
    values: dict[str, np.ndarray] = {}
    for column_name, source in wanted.items():
        array = np.asarray(data[source])
        if array.ndim > 1:  # e.g. MAG_APER for several apertures: the first one
            array = array.reshape(rows, -1)[:, 0]
        values[column_name] = array
    return catalog_load(path, product_type, values)


def catalog_load(path: Path, product_type: str, values: dict[str, np.ndarray]) -> CatalogLoad:
    """Check catalog columns (archive names) and lay them out as COPY rows in q3c order."""
    table = CATALOG_TABLES[product_type]
    rows = len(values["ra"])
    problems = check_positions(path, product_type, values["ra"], values["dec"])
    if problems:
        raise GroupRejected(problems)
    if "sourceid" not in values:
        values["sourceid"] = np.arange(1, rows + 1, dtype=np.int64)
    if "snr" not in values and "flux" in values and "fluxerr" in values:
        with np.errstate(divide="ignore", invalid="ignore"):
            values["snr"] = values["flux"] / values["fluxerr"]
    null = frozenset(column.name for column in table.columns
                     if column.name not in values and column.name not in IMAGE_COLUMNS)
    batch = RecordBatch(copy_columns(table), rows, null=null)
    for name, array in values.items():
        kind = batch.column(name).wire_dtype.kind
        if kind in "iu" and array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                raise GroupRejected([ImpossibleValue(path, f"{name} has non-finite values",
                                                     product_type)])
            array = array.astype(np.int64)
        batch.set(name, array)
    batch.take(np.argsort(ang2ipix(values["ra"], values["dec"]), kind="stable"))
    return CatalogLoad(product_type, table, batch)


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
    """Fill in the columns every row of the catalog shares with its science image."""
    for name in IMAGE_COLUMNS:
        load.batch.set(name, values[name])  # type: ignore[arg-type]
