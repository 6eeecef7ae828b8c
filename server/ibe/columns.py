"""IRSA's ZTF image metadata tables (ztf.ztf_current_meta_{sci,raw,cal,ref}), as views over
SkyVault's tables: IRSA's column names, each with the SQL that computes it.

The names are those of IRSA's tables as ztfquery reads them (ztfquery/metasearch.py
QUERIABLE_FIELD; ztfquery/query.py metatable_to_url builds file URLs from field, ccdid, qid,
filtercode, imgtypecode, filefracday, nightdate and caltype, and tells the kinds apart by
caltype, startobsdate, rcid and expid): https://irsa.ipac.caltech.edu/docs/program_interface/
ztf_metadata.html. Where SkyVault keeps a column of the same name, the view shows it with
SkyVault's description and unit. Where IRSA has a value SkyVault does not measure (moonesb,
ccdrot; seeing of a raw frame) the column is there and NULL. IRSA's bookkeeping columns are
SkyVault's equivalents: ``ipac_pub_date`` is the release date (NULL while none is scheduled),
``ipac_gid`` the program (the lowest of them for a co-add of several programs; IRSA's cal table
has none), ``meta_id`` the image's identifier. Only current processing versions
are listed, as at IRSA.

Each view is a ``schema.model.Table`` in a schema of its own (``ibe``), reachable only by the
IBE search's translation (never published in TAP_SCHEMA), whose SQL is a derived table over the
survey tables, read like any ADQL query: as the reader role, under row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.releases.dating import release_date_sql
from skyvault.schema.model import (
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    SHORT,
    TEXT,
    TIMESTAMP,
    Column,
    ColumnType,
    Table,
    char,
)
from skyvault.schema.tables import (
    CALIBRATION_IMAGES,
    EXPOSURES,
    RAW_IMAGES,
    REFERENCE_IMAGES,
    SCIENCE_IMAGES,
)
from skyvault.vo.adql.sqltext import quote_ident

SCHEMA = "ibe"
DISTANCE = "ibe_distance"
"""A column every positional view has for ordering by distance from POS (IBE's ``mcen``); not
one of IRSA's, so COLUMNS cannot name it."""


@dataclass(frozen=True)
class ViewColumn:
    column: Column
    sql: str
    """The expression computing it over the view's FROM clause."""


@dataclass(frozen=True)
class ImageView:
    """One IBE table: its columns, where they come from, and how its images lie on the sky."""

    name: str
    """``sci``, ``raw``, ``cal`` or ``ref``: the last part of the search URL."""
    description: str
    columns: tuple[ViewColumn, ...]
    source: str
    """FROM clause (with aliases) the column expressions read."""
    current: str
    """The condition keeping current processing versions."""
    footprint: str | None
    """SQL of the images' footprints (pgsphere spoly); None for views without positions."""
    centre: tuple[str, str] | None
    key: str
    """The column the rows are ordered by."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.column.name for c in self.columns)

    def model(self) -> Table:
        """The view as ADQL sees it (with the distance column of positional views); one Table
        object per view, since the ADQL translator caches column metadata per Table object."""
        found = _MODELS.get(self.name)
        if found is None:
            columns = tuple(c.column for c in self.columns)
            if self.centre is not None:
                columns += (Column(DISTANCE, DOUBLE, "Distance from POS", unit="deg"),)
            found = _MODELS[self.name] = Table(SCHEMA, self.name, self.description, columns)
        return found


_MODELS: dict[str, Table] = {}


def _same(table: Table, name: str, alias: str) -> ViewColumn:
    """A SkyVault column shown under its own name."""
    return ViewColumn(table.column(name), f"{alias}.{name}")


def _renamed(table: Table, name: str, alias: str, source: str, description: str) -> ViewColumn:
    found = table.column(source)
    return ViewColumn(Column(name, found.type, description, unit=found.unit, ucd=found.ucd),
                      f"{alias}.{source}")


def _computed(name: str, kind: ColumnType, description: str, sql: str, unit: str | None = None,
              ucd: str | None = None) -> ViewColumn:
    return ViewColumn(Column(name, kind, description, unit=unit, ucd=ucd), sql)


def _null(name: str, kind: ColumnType, description: str, unit: str | None = None) -> ViewColumn:
    return _computed(name, kind, description + " (not measured by SkyVault: NULL)",
                     f"NULL::{kind.pg_type}", unit)


def _publication(table: Table, alias: str, key: str,
                 programs: str | None) -> tuple[ViewColumn, ...]:
    """ipac_pub_date, ipac_gid (where IRSA's table has it: not in cal) and meta_id."""
    assert table.embargo is not None
    columns = [_computed("ipac_pub_date", TIMESTAMP, "Date the product is public under the "
                         "releases declared so far; NULL while no release covers it",
                         release_date_sql(table.embargo, alias), ucd="time.release")]
    if programs is not None:
        columns.append(_computed("ipac_gid", SHORT, "Program (IPAC group) of the data; for "
                                 "products of several programs the lowest", programs,
                                 ucd="meta.id"))
    columns.append(_computed("meta_id", LONG, "Metadata record ID: the image's identifier in "
                             "SkyVault", f"{alias}.{key}", ucd="meta.id"))
    return tuple(columns)


def _corners(table: Table, alias: str) -> tuple[ViewColumn, ...]:
    return tuple(_same(table, f"{axis}{n}", alias) for n in range(1, 5) for axis in ("ra", "dec"))


def _wcs(table: Table, alias: str) -> tuple[ViewColumn, ...]:
    return tuple(_same(table, name, alias) for name in (
        "crpix1", "crpix2", "crval1", "crval2", "cd11", "cd12", "cd21", "cd22"))


_IMAGE_TYPE = ("CASE e.itid WHEN 1 THEN 'object' WHEN 2 THEN 'bias' WHEN 3 THEN 'dark'"
               " WHEN 4 THEN 'flat' END")
_LOWEST_PROGRAM = "(SELECT min(p) FROM unnest({alias}.programids) AS p)"


def _sci() -> ImageView:
    s = SCIENCE_IMAGES
    columns = (
        _same(s, "ra", "s"), _same(s, "dec", "s"), _same(s, "infobits", "s"),
        *(_same(s, name, "s") for name in ("field", "ccdid", "qid", "rcid", "fid",
                                            "filtercode", "pid", "nid", "expid")),
        _computed("itid", SHORT, "Image type ID: 1, a science image is an on-sky frame",
                  "1::smallint", ucd="meta.code"),
        _computed("imgtype", TEXT, "Image type name", "'object'::text", ucd="meta.code"),
        _computed("imgtypecode", char(1), "Single letter image type code: o (on-sky)",
                  "'o'::char(1)", ucd="meta.code"),
        *(_same(s, name, "s") for name in ("obsdate", "obsjd", "exptime", "filefracday",
                                            "seeing", "airmass")),
        ViewColumn(EXPOSURES.column("moonillf"), "e.moonillf"),
        _null("moonesb", FLOAT, "Moon excess in sky brightness", "mag/arcsec2"),
        _same(s, "maglimit", "s"),
        *_wcs(s, "s"),
        *_corners(s, "s"),
        *_publication(s, "s", "pid", "s.programid"),
    )
    return ImageView(
        "sci", "ZTF science images (IRSA's ztf_current_meta_sci)", columns,
        "survey.science_images AS s LEFT JOIN survey.exposures AS e ON e.expid = s.expid",
        "s.is_current = 1", "s.footprint", ("s.ra", "s.dec"), "pid")


def _raw() -> ImageView:
    r = RAW_IMAGES
    columns = (
        _null("infobits", INT, "Info bit flags"),
        *(_same(r, name, "r") for name in ("field", "ccdid", "fid", "filtercode", "nid",
                                            "expid")),
        ViewColumn(EXPOSURES.column("itid"), "e.itid"),
        _computed("imgtype", TEXT, "Image type name: object, bias, dark or flat", _IMAGE_TYPE,
                  ucd="meta.code"),
        ViewColumn(EXPOSURES.column("imgtypecode"), "e.imgtypecode"),
        *(_same(r, name, "r") for name in ("filefracday", "obsdate", "obsjd", "exptime")),
        _null("seeing", FLOAT, "Seeing FWHM", "arcsec"),
        *(ViewColumn(EXPOSURES.column(name), f"e.{name}") for name in ("airmass", "moonillf")),
        _null("moonesb", FLOAT, "Moon excess in sky brightness", "mag/arcsec2"),
        *(ViewColumn(EXPOSURES.column(name), f"e.{name}") for name in ("telra", "teldec")),
        _null("ccdrot", FLOAT, "CCD rotation angle", "deg"),
        _same(r, "ra", "r"), _same(r, "dec", "r"), *_corners(r, "r"),
        *_publication(r, "r", "rawid", "r.programid"),
    )
    return ImageView(
        "raw", "ZTF raw CCD images (IRSA's ztf_current_meta_raw)", columns,
        "survey.raw_images AS r LEFT JOIN survey.exposures AS e ON e.expid = r.expid",
        "r.is_current = 1", "r.footprint", ("r.ra", "r.dec"), "meta_id")


def _ref() -> ImageView:
    f = REFERENCE_IMAGES
    columns = (
        _same(f, "infobits", "f"),
        *(_same(f, name, "f") for name in ("field", "ccdid", "qid", "rcid", "fid",
                                            "filtercode")),
        _renamed(f, "rfid", "f", "refid", "Reference image ID"),
        *(_same(f, name, "f") for name in ("nframes", "maglimit", "startobsdate",
                                            "endobsdate")),
        *_wcs(f, "f"),
        _same(f, "ra", "f"), _same(f, "dec", "f"), *_corners(f, "f"),
        *_publication(f, "f", "refid", _LOWEST_PROGRAM.format(alias="f")),
    )
    return ImageView(
        "ref", "ZTF reference co-adds (IRSA's ztf_current_meta_ref)", columns,
        "survey.reference_images AS f", "f.is_current = 1", "f.footprint", ("f.ra", "f.dec"),
        "rfid")


def _cal() -> ImageView:
    c = CALIBRATION_IMAGES
    columns = (
        *(_same(c, name, "c") for name in ("caltype", "ccdid", "qid", "rcid", "fid",
                                            "filtercode")),
        _renamed(c, "cid", "c", "calid", "Calibration product ID"),
        _computed("nightdate", INT, "Night the product calibrates, YYYYMMDD (UTC date)",
                  "to_char(c.obsdate AT TIME ZONE 'UTC', 'YYYYMMDD')::integer",
                  ucd="time.epoch"),
        _null("startobsdate", TIMESTAMP, "Start of the earliest frame combined"),
        _null("endobsdate", TIMESTAMP, "End of the latest frame combined"),
        _same(c, "nid", "c"), _same(c, "nframes", "c"),
        *_publication(c, "c", "calid", None),
    )
    return ImageView(
        "cal", "ZTF calibration products: bias and high-frequency flats (IRSA's "
        "ztf_current_meta_cal)", columns, "survey.calibration_images AS c", "c.is_current = 1",
        None, None, "cid")


VIEWS: dict[str, ImageView] = {view.name: view for view in (_sci(), _raw(), _cal(), _ref())}


def view_sql(view: ImageView, condition: str | None, distance_from: str | None) -> str:
    """The view as a derived table: its columns, current versions, and ``condition`` (SQL
    the caller built from numbers, the spatial constraint) applied inside, next to the
    footprint index; ``distance_from`` is the spoint the distance column is measured from."""
    select = [f"{c.sql} AS {quote_ident(c.column.name)}" for c in view.columns]
    if view.centre is not None:
        ra, dec = view.centre
        distance = (f"degrees({distance_from} <-> spoint(radians({ra}), radians({dec})))"
                    if distance_from else "NULL::double precision")
        select.append(f"{distance} AS {DISTANCE}")
    where = view.current + (f" AND ({condition})" if condition else "")
    return f"(SELECT {', '.join(select)} FROM {view.source} WHERE {where})"
