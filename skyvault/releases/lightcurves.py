"""A release's light curves (issue 16): its objects table and a nested light-curve catalog.

Both are HATS catalogs with the same partitioning, written in one pass over the release's
light-curve points (survey.lightcurves rows public at the release date by the rules of
dating.py, read as the public):

- ``catalog/lightcurves``: one row per object (its identity, the number of epochs) with a
  nested column ``lightcurve``, a list of its points in time order (every column of
  survey.lightcurves but ``oid``, and the image's relative photometric correction), as IRSA
  serves ZTF's data-release light curves; LSDB reads it as a nested-pandas frame;
- ``catalog/objects``: one row per object, its identity and the collapsed statistics of
  survey.objects computed from the release's epochs only (skyvault/lightcurves/metrics.py,
  the ``light-curve`` package), whatever later releases or passing proprietary periods have
  opened since, so a release's statistics never change.

An object is placed by its registry position (survey.object_registry: the first detection's,
which its identifier encodes), so all its points fall in one pixel; the points are sorted by
(position, oid, obsjd, sourceid) and each pixel's run of points is grouped into its objects
when the pixel is written (``nest``).  An object none of whose epochs is in the release is in
neither catalog.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa

from skyvault.lightcurves.access import good_epochs
from skyvault.lightcurves.metrics import Epochs, collapse
from skyvault.releases import binary_rows
from skyvault.releases.dating import released_sql
from skyvault.releases.hats_writer import (
    DEFAULT_PARTITION_ROWS,
    Output,
    _arrow_type,
    write_hats_catalog,
)
from skyvault.releases.model import Release
from skyvault.schema.model import FLOAT, Column, Table
from skyvault.schema.objects_sql import METRIC_NAMES
from skyvault.schema.tables import LIGHTCURVES, OBJECT_REGISTRY, OBJECTS

MJD_OFFSET = 2400000.5
IDENTITY = tuple(c.name for c in OBJECT_REGISTRY.columns)
"""oid, ra, dec, field, ccdid, qid, rcid, fid, filtercode: the object's registry row."""
POINT_COLUMNS = tuple(c.name for c in LIGHTCURVES.columns if c.name != "oid")
CORRECTION = Column("relphot_corr", FLOAT, "Relative photometric correction of the point's "
                    "image (survey.science_images.relphot_corr): add it to mag", unit="mag")

_OBJECT_PREFIX = "obj_"
POINTS = Table(
    "release", "lightcurve_points", "A release's light-curve points with their object",
    columns=(
        *(dataclasses.replace(c, name=f"{_OBJECT_PREFIX}{c.name}")
          for c in OBJECT_REGISTRY.columns),
        *(c for c in LIGHTCURVES.columns if c.name != "oid"),
        CORRECTION,
    ),
)
"""What the export reads: each point with its object's registry row (``obj_`` names)."""


def points_sql(at: str) -> str:
    """The release's light-curve points (``at``: the release date), in ``POINTS``'s columns."""
    assert LIGHTCURVES.embargo is not None
    inner = ", ".join(
        [f"o.{name} AS {_OBJECT_PREFIX}{name}" for name in IDENTITY]
        + [f"d.{name}" for name in POINT_COLUMNS] + ["i.relphot_corr"])
    return (f"SELECT {binary_rows.select_list(POINTS, 'p')} FROM ("
            f"SELECT {inner} FROM {LIGHTCURVES.qualified_name} d"
            f" JOIN {OBJECT_REGISTRY.qualified_name} o ON o.oid = d.oid"
            f" JOIN survey.science_images i ON i.pid = d.pid"
            f" WHERE {released_sql(LIGHTCURVES.embargo, at, 'd')}) p")


def _object_schema() -> list[pa.Field]:
    return [pa.field(c.name, _arrow_type(c)) for c in OBJECTS.columns]


def _column(rows: pa.Table, name: str) -> np.ndarray:
    return rows[name].to_numpy(zero_copy_only=False)


def _statistics(rows: pa.Table, starts: np.ndarray, stops: np.ndarray) -> dict[str, list]:
    """The collapsed statistics of each object's points (as survey.objects computes them)."""
    mjd = _column(rows, "obsjd") - MJD_OFFSET
    correction = rows["relphot_corr"].fill_null(0).to_numpy(zero_copy_only=False)
    mag = rows["mag"].cast(pa.float64()).to_numpy(zero_copy_only=False) + correction
    magerr = rows["magerr"].cast(pa.float64()).to_numpy(zero_copy_only=False)
    flags = rows["flags"].fill_null(0).to_numpy(zero_copy_only=False)
    # A point without flags is not good (SQL's NULL & mask = 0 is not true).
    good = good_epochs(flags, mag, magerr) & rows["flags"].is_valid().to_numpy(
        zero_copy_only=False)
    ra, dec = _column(rows, "ra"), _column(rows, "dec")
    out: dict[str, list] = {name: [] for name in METRIC_NAMES}
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        part = slice(start, stop)
        values = collapse(Epochs(mjd[part], mag[part], magerr[part], good[part], ra[part],
                                 dec[part]))
        for name in METRIC_NAMES:
            out[name].append(values[name])
    return out


def nest(rows: pa.Table) -> pa.Table:
    """One row per object from its points (sorted by object, then time): the objects table's
    columns, the spatial index, and the nested ``lightcurve``."""
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

    oid = _column(rows, f"{_OBJECT_PREFIX}oid")
    count = len(oid)
    starts = np.flatnonzero(np.r_[True, oid[1:] != oid[:-1]]) if count else np.zeros(0, int)
    stops = np.r_[starts[1:], count].astype(np.int64) if count else starts
    first = rows.take(starts)
    fields = _object_schema()
    statistics = _statistics(rows, starts, stops)
    arrays = [first[f"{_OBJECT_PREFIX}{f.name}"] if f.name in IDENTITY
              else pa.array(statistics[f.name], type=f.type, from_pandas=True)
              for f in fields]
    points = pa.StructArray.from_arrays(
        [rows[name].combine_chunks() for name in (*POINT_COLUMNS, CORRECTION.name)],
        names=[*POINT_COLUMNS, CORRECTION.name])
    offsets = pa.array(np.r_[starts, count].astype(np.int32))
    curves = pa.ListArray.from_arrays(offsets, points)
    return pa.Table.from_arrays(
        [*arrays, first[SPATIAL_INDEX_COLUMN], curves],
        schema=pa.schema([*fields, pa.field(SPATIAL_INDEX_COLUMN, pa.int64()),
                          pa.field("lightcurve", curves.type)]))


def write_release_lightcurves(connection: psycopg.Connection, catalog: Path, release: Release,
                              params: dict, at: str,
                              partition_rows: int = DEFAULT_PARTITION_ROWS) -> tuple[int, int]:
    """Write ``catalog``/objects and ``catalog``/lightcurves; returns (objects, points)."""
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

    identity = (*IDENTITY, SPATIAL_INDEX_COLUMN)
    outputs = [
        Output(catalog / "objects", f"skyvault_{release.name}_objects",
               "Objects: identity and statistics of the release's epochs",
               (*OBJECTS.column_names, SPATIAL_INDEX_COLUMN)),
        Output(catalog / "lightcurves", f"skyvault_{release.name}_lightcurves",
               "Light curves: one row per object, its points nested in time order",
               (*identity, "nobs", "lightcurve")),
    ]
    points = [0]
    lock = threading.Lock()

    def counted(rows: pa.Table) -> pa.Table:  # pixels are written by several threads
        with lock:
            points[0] += rows.num_rows
        return nest(rows)

    objects = write_hats_catalog(
        connection, POINTS, points_sql(at), params, catalog / "lightcurves", "", release,
        partition_rows, pixel_rows=counted, outputs=outputs,
        sort_keys=(f"{_OBJECT_PREFIX}oid", "obsjd", "sourceid"),
        position=(f"{_OBJECT_PREFIX}ra", f"{_OBJECT_PREFIX}dec"))
    return objects, points[0]
