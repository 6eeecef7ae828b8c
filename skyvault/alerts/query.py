"""The alert API's logic, without HTTP: which alerts a request names (by candid, by objectId,
or a night's with filters), found as the requester (row-level security on survey.candidates
decides what exists), each then built on its stream (``build.AlertBuilder``) and encoded as
Avro or JSON.

An alert is one product, visible exactly when its candidate is visible to the requester: the
public stream's at once, a program's to its members and, once its data are released, to all.
Its content is what its stream carries (streams.py), the same for every requester.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from skyvault.alerts.build import AlertBuilder, Selection
from skyvault.alerts.history import CLEAN
from skyvault.alerts.packet import write_alerts
from skyvault.alerts.streams import stream_of_program
from skyvault.db import Database
from skyvault.vo.dali import parse_finite
from skyvault.vo.shapes import ShapeError, check_radius

NID_EPOCH = dt.date(2017, 1, 1)
DEFAULT_MAXREC = 100
LARGEST_MAXREC = 5000
SOLAR_SYSTEM_SEARCH_ARCSEC = 30.0
"""ssdistnr is computed within this distance only (ingest/candidate_history.py): farther
clearances cannot be answered."""
AVRO_TYPE = "application/avro"
JSON_TYPE = "application/json"
OBJECT_ID = re.compile(r"^ZTF\d{2}[a-z]{7}$")
LARGEST_ID = 2**63 - 1


class AlertQueryError(ValueError):
    """A request the API cannot answer as asked (400)."""


class AlertNotFound(LookupError):
    """Nothing visible by that name (404; hidden and missing alike)."""


@dataclass(frozen=True)
class Answer:
    content: bytes
    content_type: str
    count: int
    truncated: bool


# -- parameters ---------------------------------------------------------------------------------


def _number(values: Mapping[str, str], name: str) -> float | None:
    text = values.get(name)
    if text is None or text.strip() == "":
        return None
    return parse_finite(text, name, AlertQueryError)


def _integer(values: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = _number(values, name)
    if value is None:
        return None
    if value != int(value) or not low <= value <= high:
        raise AlertQueryError(f"{name}: expected an integer from {low} to {high}")
    return int(value)


def parse_candid(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= LARGEST_ID:
        raise AlertQueryError(f"candid: {text[:40]!r} is not a candidate identifier")
    return int(text)


def parse_object_id(text: str) -> str:
    if not OBJECT_ID.match(text):
        raise AlertQueryError(f"objectId: {text[:40]!r} is not an object name such as "
                              "ZTF26aaaaaaa")
    return text


def parse_night(text: str) -> int:
    """A night by its date (YYYYMMDD or YYYY-MM-DD), as its nid."""
    try:
        date = dt.datetime.strptime(text.replace("-", ""), "%Y%m%d").date()
    except ValueError:
        raise AlertQueryError(f"night: {text[:40]!r} is not a date YYYYMMDD") from None
    return (date - NID_EPOCH).days


def output_format(values: Mapping[str, str]) -> str:
    chosen = (values.get("format") or "avro").strip().lower()
    if chosen not in ("avro", "json"):
        raise AlertQueryError(f"format: {chosen[:20]!r}; use avro or json")
    return chosen


def maxrec(values: Mapping[str, str]) -> int:
    chosen = _integer(values, "maxrec", 1, LARGEST_MAXREC)
    return DEFAULT_MAXREC if chosen is None else chosen


def night_filters(nid: int, values: Mapping[str, str]) -> Selection:
    """A night's alerts narrowed by the request's filters (each optional):
    ``magpsf_min``/``magpsf_max``, ``rb_min``, ``fid``, ``programid``, ``isdiffpos`` (t or f),
    ``ndethist_min``, a cone ``ra``, ``dec``, ``radius`` (degrees), and ``ss_clear_arcsec``:
    no known solar-system object within that distance (at most 30)."""
    where = ["c.nid = %(nid)s"]
    params: dict[str, Any] = {"nid": nid}
    for name, sql in (("magpsf_min", "c.magpsf >= %(magpsf_min)s"),
                      ("magpsf_max", "c.magpsf <= %(magpsf_max)s"),
                      ("rb_min", "c.rb >= %(rb_min)s")):
        value = _number(values, name)
        if value is not None:
            where.append(sql)
            params[name] = value
    for name, low, high in (("fid", 1, 3), ("programid", 0, 32767),
                            ("ndethist_min", 0, 2**31 - 1)):
        value = _integer(values, name, low, high)
        if value is not None:
            column = "ndethist" if name == "ndethist_min" else name
            where.append(f"c.{column} {'>=' if name.endswith('_min') else '='} %({name})s")
            params[name] = value
    sign = (values.get("isdiffpos") or "").strip()
    if sign:
        if sign not in ("t", "f"):
            raise AlertQueryError("isdiffpos: use t or f")
        where.append("c.isdiffpos = %(isdiffpos)s")
        params["isdiffpos"] = sign
    cone = [_number(values, name) for name in ("ra", "dec", "radius")]
    if any(v is not None for v in cone):
        if any(v is None for v in cone):
            raise AlertQueryError("a cone needs ra, dec and radius (degrees)")
        ra, dec, radius = cone
        if not (0 <= ra <= 360 and -90 <= dec <= 90):
            raise AlertQueryError("ra must be in [0, 360] and dec in [-90, 90] degrees")
        try:
            check_radius(radius, "radius")
        except ShapeError as error:
            raise AlertQueryError(str(error)) from None
        where.append("q3c_radial_query(c.ra, c.dec, %(ra)s, %(dec)s, %(radius)s)")
        params.update(ra=ra, dec=dec, radius=radius)
    clear = _number(values, "ss_clear_arcsec")
    if clear is not None:
        if not 0 <= clear <= SOLAR_SYSTEM_SEARCH_ARCSEC:
            raise AlertQueryError("ss_clear_arcsec: from 0 to 30 (known objects are looked "
                                  "for within 30 arcsec)")
        where.append("(c.ssdistnr IS NULL OR c.ssdistnr > %(ss_clear)s)")
        params["ss_clear"] = clear
    return Selection(" AND ".join(where), params)


# -- answers ------------------------------------------------------------------------------------


def visible_candidates(connection: psycopg.Connection, selection: Selection,
                       limit: int) -> list[tuple[int, int, int]]:
    """(candid, diffid, programid) of the selected clean candidates the requester sees."""
    return connection.execute(
        f"SELECT c.candid, c.diffid, c.programid FROM survey.candidates c"
        f" WHERE {CLEAN} AND ({selection.where}) ORDER BY c.candid LIMIT {int(limit)}",
        selection.params).fetchall()


def build_alerts(database: Database, connection: psycopg.Connection,
                 found: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Each found candidate's alert, built on its program's stream, in order of candid."""
    by_program: dict[int, list[tuple[int, int]]] = {}
    for candid, diffid, programid in found:
        by_program.setdefault(programid, []).append((candid, diffid))
    alerts = []
    for programid, keys in by_program.items():
        stream = stream_of_program(connection, programid)
        selection = Selection("c.diffid = ANY(%(diffids)s) AND c.candid = ANY(%(candids)s)",
                              {"diffids": sorted({d for _, d in keys}),
                               "candids": [c for c, _ in keys]})
        alerts += AlertBuilder(database, stream).alerts(selection)
    alerts.sort(key=lambda alert: alert["candid"])
    return alerts


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


def encode(alerts: list[dict[str, Any]], form: str) -> tuple[bytes, str]:
    """Avro: one object container file of the alerts; JSON: ``{"alerts": [...]}`` with the
    stamps' bytes in base64."""
    if form == "json":
        text = json.dumps({"alerts": alerts}, default=_json_default)
        return text.encode(), JSON_TYPE
    buffer = io.BytesIO()
    write_alerts(buffer, alerts)
    return buffer.getvalue(), AVRO_TYPE


def answer(database: Database, connection: psycopg.Connection, selection: Selection,
           values: Mapping[str, str], *, limit: int, required: bool) -> Answer:
    """The alerts of the selection visible on ``connection`` (the requester's), at most
    ``limit``; AlertNotFound when ``required`` and there are none."""
    form = output_format(values)
    found = visible_candidates(connection, selection, limit + 1)
    truncated = len(found) > limit
    found = found[:limit]
    if required and not found:
        raise AlertNotFound("no such alert")
    alerts = build_alerts(database, connection, found)
    content, content_type = encode(alerts, form)
    return Answer(content, content_type, len(alerts), truncated)


def by_candid(candid: int) -> Selection:
    return Selection("c.diffid = %(diffid)s AND c.candid = %(candid)s",
                     {"diffid": candid // 1_000_000, "candid": candid})


def by_object(object_id: str) -> Selection:
    return Selection("c.objectid = %(objectid)s", {"objectid": object_id})
