"""ZTF's alert schema, version 4.02 (the .avsc files of ZwickyTransientFacility/ztf-avro-alert
at commit 75a9831, kept unchanged beside this module), parsed once with fastavro."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastavro.schema import load_schema_ordered

VERSION = "4.02"
PUBLISHER = "SkyVault"
FOLDER = "schema_4_02"
NAMED = ("cutout", "candidate", "prv_candidate", "fp_hist", "alert")
"""In dependency order: each names only those before it."""


@cache
def raw_schema(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(FOLDER, f"{name}.avsc").read_text()
    return json.loads(text)


@cache
def alert_schema() -> dict[str, Any]:
    """The parsed top-level schema (``ztf.alert``) with its named types inlined, so that the
    schema a container file carries in its header is whole (as ZTF's packets carry it), its
    objects' keys in sorted order: fastavro's parsing orders a field's keys as it iterates a
    set, which differs from process to process (string hashing), and so did the headers of
    the same alert's packets (``_sorted_keys``)."""
    folder = resources.files(__package__).joinpath(FOLDER)
    with resources.as_file(folder) as path:
        return _sorted_keys(load_schema_ordered([str(path / f"{name}.avsc") for name in NAMED]))


def _sorted_keys(value: Any) -> Any:
    """``value`` with every dict's keys in sorted order (lists keep theirs: fields, union
    branches and symbols are ordered)."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


@cache
def field_types(name: str) -> dict[str, Any]:
    """A record's fields and their declared Avro types, by field name."""
    return {field["name"]: field["type"] for field in raw_schema(name)["fields"]}


def nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


def base_type(avro_type: Any) -> Any:
    """The type a value has when it is not null."""
    if isinstance(avro_type, list):
        return next(t for t in avro_type if t != "null")
    return avro_type
