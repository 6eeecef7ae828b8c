"""The TAP capability element of VOSI capabilities, as TAPRegExt 1.1 describes it.

The service assembles a ``TableAccess`` from what the translator supports (languages, features,
UDFs), what the writers produce (output formats) and its own limits; ``table_access_element``
writes it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from skyvault.vo.vosi import XSI_TYPE, interface_element

TAP_ID = "ivo://ivoa.net/std/TAP"
FEATURE_PREFIX = "ivo://ivoa.net/std/TAPRegExt#"
UDF_FEATURES = FEATURE_PREFIX + "features-udf"
GEOMETRY_FEATURES = FEATURE_PREFIX + "features-adqlgeo"
UPLOAD_INLINE = FEATURE_PREFIX + "upload-inline"
UPLOAD_HTTP = FEATURE_PREFIX + "upload-http"
UPLOAD_HTTPS = FEATURE_PREFIX + "upload-https"
ADQL_VERSION_IDS = {"2.0": "ivo://ivoa.net/std/ADQL#v2.0", "2.1": "ivo://ivoa.net/std/ADQL#v2.1"}


@dataclass(frozen=True)
class Feature:
    form: str
    description: str | None = None


@dataclass(frozen=True)
class FeatureList:
    type: str
    """A TAPRegExt feature type URI, e.g. ``ivo://ivoa.net/std/TAPRegExt#features-adqlgeo``."""
    features: tuple[Feature, ...]


@dataclass(frozen=True)
class Language:
    name: str
    versions: tuple[str, ...]
    description: str | None = None
    features: tuple[FeatureList, ...] = ()


@dataclass(frozen=True)
class OutputFormat:
    mime: str
    aliases: tuple[str, ...] = ()
    ivo_id: str | None = None


@dataclass(frozen=True)
class DataModel:
    ivo_id: str
    name: str


@dataclass(frozen=True)
class Limits:
    default: int | None
    hard: int | None
    unit: str | None = None
    """For data limits: ``row`` or ``byte``; None for time limits (seconds)."""


@dataclass(frozen=True)
class TableAccess:
    base_url: str
    languages: tuple[Language, ...]
    output_formats: tuple[OutputFormat, ...]
    upload_methods: tuple[str, ...] = ()
    data_models: tuple[DataModel, ...] = ()
    retention_period: Limits | None = None
    execution_duration: Limits | None = None
    output_limit: Limits | None = None
    upload_limit: Limits | None = None
    security_methods: tuple[str | None, ...] = ()


def _limits(parent: etree._Element, tag: str, limits: Limits | None) -> None:
    if limits is None or (limits.default is None and limits.hard is None):
        return
    element = etree.SubElement(parent, tag)
    for name, value in (("default", limits.default), ("hard", limits.hard)):
        if value is None:
            continue
        child = etree.SubElement(element, name)
        child.text = str(value)
        if limits.unit:
            child.set("unit", limits.unit)


def _language(parent: etree._Element, language: Language) -> None:
    element = etree.SubElement(parent, "language")
    etree.SubElement(element, "name").text = language.name
    for version in language.versions:
        child = etree.SubElement(element, "version")
        child.text = version
        if language.name == "ADQL" and version in ADQL_VERSION_IDS:
            child.set("ivo-id", ADQL_VERSION_IDS[version])
    if language.description:
        etree.SubElement(element, "description").text = language.description
    for feature_list in language.features:
        if not feature_list.features:
            continue
        features = etree.SubElement(element, "languageFeatures", type=feature_list.type)
        for feature in feature_list.features:
            child = etree.SubElement(features, "feature")
            etree.SubElement(child, "form").text = feature.form
            if feature.description:
                etree.SubElement(child, "description").text = feature.description


def table_access_element(access: TableAccess) -> etree._Element:
    """<capability xsi:type="tr:TableAccess"> in TAPRegExt's element order."""
    capability = etree.Element("capability", standardID=TAP_ID)
    capability.set(XSI_TYPE, "tr:TableAccess")
    interface_element(capability, access.base_url, use="base", version="1.1",
                      security_methods=access.security_methods)
    for model in access.data_models:
        etree.SubElement(capability, "dataModel", {"ivo-id": model.ivo_id}).text = model.name
    for language in access.languages:
        _language(capability, language)
    for output in access.output_formats:
        element = etree.SubElement(capability, "outputFormat")
        if output.ivo_id:
            element.set("ivo-id", output.ivo_id)
        etree.SubElement(element, "mime").text = output.mime
        for alias in output.aliases:
            etree.SubElement(element, "alias").text = alias
    for method in access.upload_methods:
        etree.SubElement(capability, "uploadMethod", {"ivo-id": method})
    _limits(capability, "retentionPeriod", access.retention_period)
    _limits(capability, "executionDuration", access.execution_duration)
    _limits(capability, "outputLimit", access.output_limit)
    _limits(capability, "uploadLimit", access.upload_limit)
    return capability


def udf_form(name: str, arguments: Sequence[tuple[str, str]], returns: str) -> str:
    """A UDF's signature as TAPRegExt 2.3 writes it: ``name(arg TYPE, ...) -> TYPE``."""
    args = ", ".join(f"{arg} {kind}" for arg, kind in arguments)
    return f"{name}({args}) -> {returns}"
