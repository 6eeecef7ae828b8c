"""Images and files as the requester may see them: the lookups behind DataLink, SODA and
previews. Every function takes the connection of ``context.reading()``, so row-level security
decides what exists; an embargoed image is simply not found."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from skyvault.releases.dating import release_date_sql, released_sql
from skyvault.schema.model import Column
from skyvault.schema.tables import FILES, table_by_name
from skyvault.vo.publisher_did import (
    COLLECTION_OF_TABLE,
    COLLECTIONS,
    Collection,
    ImageKey,
    publisher_did,
)
from skyvault.vo.votable.pgcopy import pgsphere_degrees


@dataclass(frozen=True)
class FileRow:
    path: str
    product: str
    content_type: str
    size_bytes: int
    sha256: str
    ingested_at: dt.datetime


_FILE_COLUMNS = "path, product, content_type, size_bytes, sha256, ingested_at"


@dataclass(frozen=True)
class ImageRow:
    """An image as ObsCore describes it, with what its links and descriptors need."""

    key: ImageKey
    s_ra: float | None
    s_dec: float | None
    s_fov: float | None
    s_region: tuple[float, ...] | None
    naxis1: int | None
    naxis2: int | None
    em_min: float | None
    em_max: float | None
    t_min: float | None
    t_max: float | None
    target: str | None
    filtercode: str | None


def find_image(connection: psycopg.Connection, key: ImageKey) -> ImageRow | None:
    row = connection.execute(
        "SELECT s_ra, s_dec, s_fov, s_region::text, s_xel1, s_xel2, em_min, em_max, t_min,"
        " t_max, target_name, filtercode FROM ivoa.obscore"
        " WHERE image_table = %s AND image_id = %s",
        (key.collection.table, key.image_id),
    ).fetchone()
    if row is None:
        return None
    return ImageRow(key, row[0], row[1], row[2], pgsphere_degrees(row[3]), row[4], row[5],
                    row[6], row[7], row[8], row[9], row[10], row[11])


def image_with_file(connection: psycopg.Connection,
                    key: ImageKey) -> tuple[ImageRow, FileRow] | None:
    """The image and its own file in one round trip (what SODA needs per request)."""
    row = connection.execute(
        "SELECT o.s_ra, o.s_dec, o.s_fov, o.s_region::text, o.s_xel1, o.s_xel2, o.em_min,"
        " o.em_max, o.t_min, o.t_max, o.target_name, o.filtercode,"
        f" {', '.join('f.' + c.strip() for c in _FILE_COLUMNS.split(','))}"
        " FROM ivoa.obscore o JOIN LATERAL ("
        f"  SELECT {_FILE_COLUMNS} FROM survey.files"
        "   WHERE image_table = o.image_table AND image_id = o.image_id AND product = %s"
        "     AND is_current = 1 ORDER BY proc_version DESC LIMIT 1) f ON true"
        " WHERE o.image_table = %s AND o.image_id = %s",
        (key.collection.product, key.collection.table, key.image_id),
    ).fetchone()
    if row is None:
        return None
    image = ImageRow(key, row[0], row[1], row[2], pgsphere_degrees(row[3]), row[4], row[5],
                     row[6], row[7], row[8], row[9], row[10], row[11])
    return image, FileRow(*row[12:])


def image_files(connection: psycopg.Connection, table: str, image_id: int) -> list[FileRow]:
    rows = connection.execute(
        f"SELECT {_FILE_COLUMNS} FROM survey.files"
        " WHERE image_table = %s AND image_id = %s AND is_current = 1 ORDER BY product, path",
        (table, image_id),
    ).fetchall()
    return [FileRow(*row) for row in rows]


def main_file(connection: psycopg.Connection, key: ImageKey) -> FileRow | None:
    return product_file(connection, key.collection.table, key.image_id, key.collection.product)


def product_file(connection: psycopg.Connection, table: str, image_id: int,
                 product: str) -> FileRow | None:
    """The current file of one product (``sciimg``, ``mskimg``, ``psfcat``, ...) of an image."""
    row = connection.execute(
        f"SELECT {_FILE_COLUMNS} FROM survey.files"
        " WHERE image_table = %s AND image_id = %s AND product = %s AND is_current = 1"
        " ORDER BY proc_version DESC LIMIT 1",
        (table, image_id, product),
    ).fetchone()
    return FileRow(*row) if row else None


def file_by_path(connection: psycopg.Connection, path: str) -> FileRow | None:
    row = connection.execute(
        f"SELECT {_FILE_COLUMNS} FROM survey.files WHERE path = %s", (path,)
    ).fetchone()
    return FileRow(*row) if row else None


# -- provenance -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Related:
    """An image linked to another by provenance: ``#progenitor`` or ``#derivation``."""

    semantics: str
    key: ImageKey | None
    """The related image when it has a DataLink document (an ObsCore collection)."""
    file: FileRow | None
    """The file itself for products outside ObsCore (bias and flat frames)."""
    description: str


def _ids(connection: psycopg.Connection, sql: str, image_id: int) -> list[int]:
    return [row[0] for row in connection.execute(sql, (image_id,)).fetchall()]


def _visible(connection: psycopg.Connection, collection: str, image_id: int | None) -> bool:
    # Provenance columns point at rows the requester may not see (a public reference co-add
    # built from embargoed epochs, an embargoed science image of a public reference): look.
    if image_id is None:
        return False
    target = COLLECTIONS[collection]
    return connection.execute(
        f"SELECT 1 FROM survey.{target.table} WHERE {target.key} = %s", (image_id,)
    ).fetchone() is not None


_DERIVATIONS = {
    "raw": ("sci", "SELECT pid FROM survey.science_images WHERE rawid = %s AND is_current = 1"
                   " ORDER BY pid", "Science image processed from this raw frame"),
    "sci": ("diff", "SELECT diffid FROM survey.difference_images WHERE pid = %s"
                    " AND is_current = 1 ORDER BY diffid", "Difference image of this image"),
    "ref": ("diff", "SELECT diffid FROM survey.difference_images WHERE refid = %s"
                    " AND is_current = 1 ORDER BY diffid", "Difference image against this "
                                                           "reference"),
}


_REFERENCE_EPOCHS = """
SELECT s.pid FROM survey.science_images s
 WHERE s.is_current = 1
   AND s.rcid = (SELECT rcid FROM survey.reference_images WHERE refid = %s)
   AND s.expid IN (SELECT (input ->> 'expid')::bigint
                     FROM archive.provenance p, jsonb_array_elements(p.inputs) AS input
                    WHERE p.image_table = 'reference_images' AND p.image_id = %s
                      AND input ->> 'role' = 'exposure')
 ORDER BY s.obsjd, s.pid"""


_EPOCH_REFERENCES = """
SELECT r.refid FROM survey.science_images s
  JOIN archive.provenance p ON p.image_table = 'reference_images'
   AND p.inputs @> jsonb_build_array(jsonb_build_object('role', 'exposure', 'expid', s.expid))
  JOIN survey.reference_images r ON r.refid = p.image_id AND r.rcid = s.rcid
 WHERE s.pid = %s AND r.is_current = 1
 ORDER BY r.refid"""


def related_images(connection: psycopg.Connection, key: ImageKey) -> list[Related]:
    """Progenitors and derivations of an image, as far as the requester may see them."""
    collection, image_id = key.collection.name, key.image_id
    found: list[Related] = []

    def image(semantics: str, target: str, related_id: int, what: str) -> None:
        found.append(Related(semantics, ImageKey(COLLECTIONS[target], related_id), None,
                             f"{what}: {publisher_did(target, related_id)}"))

    if collection == "sci":
        row = connection.execute(
            "SELECT rawid, bias_calid, flat_calid FROM survey.science_images WHERE pid = %s",
            (image_id,)).fetchone()
        if row:
            if _visible(connection, "raw", row[0]):
                image("#progenitor", "raw", row[0], "Raw CCD frame this image was processed from")
            for calid, what in ((row[1], "Bias"), (row[2], "High-frequency flat")):
                if calid is None:
                    continue
                for file in image_files(connection, "calibration_images", calid):
                    found.append(Related("#progenitor", None, file,
                                         f"{what} frame used to calibrate this image"))
        for (refid,) in connection.execute(_EPOCH_REFERENCES, (image_id,)).fetchall():
            image("#derivation", "ref", refid, "Reference co-add this image went into")
    elif collection == "diff":
        row = connection.execute(
            "SELECT pid, refid FROM survey.difference_images WHERE diffid = %s", (image_id,)
        ).fetchone()
        if row:
            for target, related_id, what in (("sci", row[0], "Science image"),
                                             ("ref", row[1], "Reference image")):
                if _visible(connection, target, related_id):
                    image("#progenitor", target, related_id,
                          f"{what} this difference was computed from")
    elif collection == "ref":
        # The co-add's epochs: its input exposures' science images of its readout quadrant,
        # read through the requester's row-level security (hidden epochs are not named).
        for (pid,) in connection.execute(_REFERENCE_EPOCHS, (image_id, image_id)).fetchall():
            image("#progenitor", "sci", pid, "Science image co-added into this reference")
    if collection in _DERIVATIONS:
        target, sql, what = _DERIVATIONS[collection]
        for related_id in _ids(connection, sql, image_id):
            image("#derivation", target, related_id, what)
    return found


def collection_of_table(table: str) -> Collection | None:
    return COLLECTION_OF_TABLE.get(table)


def image_record(connection: psycopg.Connection, key: ImageKey,
                 columns: list[Column]) -> dict | None:
    """The image's row in its survey table (``columns`` of it, a timestamp of 'infinity' as
    None) with its ``release_date``, or None if the requester may not see it."""
    table = table_by_name(f"survey.{key.collection.table}")
    select = ", ".join(
        # 'infinity' has no Python value: show it as nothing.
        f'CASE WHEN isfinite("{c.name}") THEN "{c.name}" END AS "{c.name}"'
        if c.type.pg_type == "timestamptz" else f'"{c.name}"' for c in columns)
    assert table.embargo is not None
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"SELECT {select}, {release_date_sql(table.embargo)} AS release_date"
            f" FROM {table.qualified_name} WHERE {key.collection.key} = %s",
            (key.image_id,)).fetchone()


def references_of_science(connection: psycopg.Connection, pid: int) -> list[int]:
    """The current co-adds of a science image's field, quadrant and filter (those its
    difference images are made against, even before one exists), visible to the requester."""
    return _ids(connection,
                "SELECT r.refid FROM survey.reference_images r JOIN survey.science_images s"
                " ON s.field = r.field AND s.rcid = r.rcid AND s.filtercode = r.filtercode"
                " WHERE s.pid = %s AND r.is_current = 1 ORDER BY r.refid", pid)


def released_file_type(connection: psycopg.Connection, release_name: str,
                       path: str) -> str | None:
    """The content type of a file of a public release: visible to the requester (the policy),
    public at the release's date (so in it), the release's date passed. None otherwise."""
    assert FILES.embargo is not None
    row = connection.execute(
        "SELECT f.content_type FROM survey.files f JOIN survey.data_releases r"
        " ON r.release_name = %s"
        " WHERE f.path = %s AND f.is_current = 1"
        f" AND {released_sql(FILES.embargo, 'r.release_date', 'f')}"
        " AND r.release_date <= now()", (release_name, path)).fetchone()
    return None if row is None else row[0]
