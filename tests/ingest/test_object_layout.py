"""A catalog filed under its objects' identifiers (the layout for lightcurve and candidate
tables, ingest/README.md): an object's detections are one sky cell, and cones still prune.

The table is declared here as the coming catalogs will be (a ``SkyLayout`` keyed by ``oid``,
an identifier that is the q3c pixel of its object, with how far detections may lie from it),
created from that declaration by the same DDL functions, its rows filed in the sky cells as
compaction files them. A lookup by ``oid`` must plan one cell; ADQL cones on the detections'
positions must equal a numpy brute force, RA wrap, poles and cell edges included, while the
translator's added key ranges prune the cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
import release_calendar

from skyvault.access import ANONYMOUS
from skyvault.db import Database, DatabaseUrls
from skyvault.ingest.compact import SkyCell, create_cell, sky_table
from skyvault.ingest.q3c import (
    OBJECT_SERIAL_BITS,
    ang2ipix,
    cell_of,
    ipix2ang,
    near_their_objects,
    object_ids,
    object_positions,
)
from skyvault.ingest.testing import fresh_database
from skyvault.releases.dating import night_jd
from skyvault.schema.ddl import create_table, sky_layout_statements
from skyvault.schema.model import (
    DOUBLE,
    FLOAT,
    LONG,
    SHORT,
    Column,
    Embargo,
    Index,
    SkyLayout,
    Table,
)
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.vo.adql.catalog import catalog_from_tables
from skyvault.vo.adql.translator import translate

MARGIN = 1.5 / 3600
DETECTIONS = Table(
    "survey", "lc_detections_test", "Detections of objects, filed under their objects",
    columns=(
        Column("oid", LONG, "Object identifier (the q3c pixel of the object)", nullable=False),
        Column("ra", DOUBLE, "Right ascension", unit="deg", ucd="pos.eq.ra;meta.main",
               nullable=False),
        Column("dec", DOUBLE, "Declination", unit="deg", ucd="pos.eq.dec;meta.main",
               nullable=False),
        Column("nid", SHORT, "Night", nullable=False),
        Column("mag", FLOAT, "Magnitude", unit="mag"),
        Column("programid", SHORT, "Program", nullable=False),
        Column("obsjd", DOUBLE, "Observation time", unit="d", nullable=False),
    ),
    indexes=(Index("lc_detections_test_q3c_idx", "q3c_ang2ipix(ra, dec)"),
             Index("lc_detections_test_oid_idx", "oid")),
    embargo=Embargo(),
    sky_layout=SkyLayout(key="oid", key_margin_deg=MARGIN),
)
CENTRES = [(0.0, 0.0), (359.999, 1.0), (45.0, 35.264), (10.0, 89.99), (200.0, -89.98),
           (11.25, 5.625), (123.0, -40.0)]
CONES = [(ra, dec, radius) for ra, dec in CENTRES for radius in (2 / 3600, 0.01, 0.2)]


@pytest.fixture(scope="module")
def filed(database: Database) -> Iterator[tuple[Database, dict[str, np.ndarray]]]:
    handle = fresh_database(database.urls.admin, "object_layout")
    service = Database(DatabaseUrls(
        admin=handle.urls.admin, app=handle.urls.admin.replace("://skyvault@",
                                                               "://skyvault_app@")))
    rng = np.random.default_rng(11)
    ra0 = np.concatenate([(c[0] + rng.normal(0, 0.02, 400)) % 360 for c in CENTRES])
    dec0 = np.concatenate([np.clip(c[1] + rng.normal(0, 0.02, 400), -89.999, 89.999)
                           for c in CENTRES])
    oids = object_ids(ra0, dec0, np.arange(len(ra0)) % 7)
    epochs = 12
    rows = {"oid": np.repeat(oids, epochs), "nid": np.tile(np.arange(epochs), len(oids))}
    centre_ra, centre_dec = object_positions(rows["oid"])
    scatter = rng.normal(0, 0.3 / 3600, (2, len(rows["oid"])))
    rows["dec"] = np.clip(centre_dec + scatter[1], -90, 90)
    rows["ra"] = (centre_ra + scatter[0] / np.cos(np.radians(rows["dec"]))) % 360
    keep = near_their_objects(rows["ra"], rows["dec"], rows["oid"], MARGIN)
    rows = {name: values[keep] for name, values in rows.items()}
    with service.admin() as connection:
        release_calendar.prepare(connection)  # program 1's nights below are in its release
        for statement in create_table(DETECTIONS) + sky_layout_statements(DETECTIONS):
            connection.execute(statement)
        connection.execute(f"GRANT SELECT ON {DETECTIONS.qualified_name} TO skyvault_reader")
        layout = DETECTIONS.sky_layout
        for number in sorted(set(cell_of(rows["oid"], layout.depth).tolist())):
            create_cell(connection, SkyCell(DETECTIONS, layout.depth, number))
        order = np.lexsort((rows["nid"], rows["oid"]))
        with connection.cursor().copy(
                f"COPY {sky_table(DETECTIONS)} (oid, ra, dec, nid, mag, programid,"
                " obsjd, placement) FROM STDIN") as copy:
            for i in order:
                copy.write_row((int(rows["oid"][i]), float(rows["ra"][i]),
                                float(rows["dec"][i]), int(rows["nid"][i]), 18.0, 1,
                                night_jd(int(rows["nid"][i])), SkyLayout.SKY))
        connection.execute(f"ANALYZE {DETECTIONS.qualified_name}")
    yield service, rows
    service.close()


def _distance(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a0, d0, a, d = map(np.radians, (ra0, dec0, ra, dec))
    hav = np.sin((d - d0) / 2) ** 2 + np.cos(d0) * np.cos(d) * np.sin((a - a0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


def _adql(ra0: float, dec0: float, radius: float) -> str:
    catalog = catalog_from_tables([*PUBLISHED_TABLES, DETECTIONS])
    return translate(
        "SELECT oid, nid FROM survey.lc_detections_test WHERE 1 = CONTAINS(POINT('ICRS', ra,"
        f" dec), CIRCLE('ICRS', {ra0!r}, {dec0!r}, {radius!r}))", catalog).sql


def test_identifiers_are_pixels_of_their_objects(filed) -> None:
    service, rows = filed
    ra, dec = object_positions(rows["oid"][:50])
    assert np.all(rows["oid"][:50] >> OBJECT_SERIAL_BITS
                  == ang2ipix(ra, dec) >> OBJECT_SERIAL_BITS)
    with service.admin() as connection:
        for pixel in ang2ipix(rows["ra"][:20], rows["dec"][:20]).tolist():
            sql_ra, sql_dec = connection.execute("SELECT q3c_ipix2ang(%s)",
                                                 (pixel,)).fetchone()[0]
            mine = ipix2ang(np.array([pixel]))
            # q3c gives a corner of the pixel, ipix2ang its centre: within one pixel (0.3 mas)
            assert abs(float(mine[1][0]) - sql_dec) < 1e-7
            assert abs((float(mine[0][0]) - sql_ra + 180) % 360 - 180) * np.cos(
                np.radians(sql_dec)) < 1e-7
    far = near_their_objects(np.array([rows["ra"][0] + 0.01]), np.array([rows["dec"][0]]),
                             rows["oid"][:1], MARGIN)
    assert not far[0]
    with pytest.raises(ValueError):
        object_ids(np.array([1.0]), np.array([1.0]), 1 << OBJECT_SERIAL_BITS)


def test_a_lightcurve_by_oid_reads_one_cell(filed) -> None:
    service, rows = filed
    oid = int(rows["oid"][len(rows["oid"]) // 2])
    with service.reading(ANONYMOUS, user_query=True) as connection:
        connection.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in connection.execute(
            f"EXPLAIN SELECT nid, mag FROM survey.lc_detections_test WHERE oid = {oid}"))
        found = sorted(r[0] for r in connection.execute(
            "SELECT nid FROM survey.lc_detections_test WHERE oid = %s", (oid,)))
    assert len(set(re.findall(r"on (lc_detections_test_c\d+_\d+) ", plan))) == 1, plan
    assert found == sorted(rows["nid"][rows["oid"] == oid].tolist())


@pytest.mark.parametrize("ra0, dec0, radius", CONES)
def test_cones_on_detections_equal_brute_force_and_prune(filed, ra0, dec0, radius) -> None:
    service, rows = filed
    distance = _distance(ra0, dec0, rows["ra"], rows["dec"])
    inside = {(int(rows["oid"][i]), int(rows["nid"][i])) for i in np.nonzero(distance <= radius)[0]}
    edge = {(int(rows["oid"][i]), int(rows["nid"][i]))
            for i in np.nonzero(np.abs(distance - radius) < 1e-8)[0]}
    sql = _adql(ra0, dec0, radius)
    assert "q3c_nearby_it" in sql and "t1.oid BETWEEN" in sql
    with service.reading(ANONYMOUS, user_query=True) as connection:
        found = set(connection.execute(sql).fetchall())
        plan = "\n".join(r[0] for r in connection.execute(f"EXPLAIN {sql}"))
    assert inside - edge <= found <= inside | edge
    with service.admin() as connection:
        total = len(re.findall(r"_c\d+_\d+", " ".join(
            r[0] for r in connection.execute(
                "SELECT relid::text FROM pg_partition_tree('survey.lc_detections_test')"))))
    probed = set(re.findall(r"on (lc_detections_test_c\d+_\d+) ", plan))
    assert 1 <= len(probed) <= 4 < total, plan
    if radius >= 0.01:
        assert inside, "the cone should hold detections"


def test_a_cone_without_the_margin_would_lose_rows(filed) -> None:
    """Why the margin: filed under their objects, detections near a cell's edge can lie in the
    next cell's sky. Pruning by the cone alone would miss some; the translator's ranges, widened
    by the margin, do not (the brute-force test above)."""
    _, rows = filed
    own = cell_of(ang2ipix(rows["ra"], rows["dec"]), DETECTIONS.sky_layout.depth)
    filed_under = cell_of(rows["oid"], DETECTIONS.sky_layout.depth)
    assert np.any(own != filed_under)
