"""A service's settings: a frozen dataclass of defaults, each field overridable by the
environment variable ``SKYVAULT_<PREFIX>_<FIELD>`` and then by the web application's config key
``<PREFIX>_<FIELD>`` (tests and the demo set those per application)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

SettingsT = TypeVar("SettingsT")


def environment_name(prefix: str, field: str) -> str:
    return f"SKYVAULT_{prefix}_{field.upper()}"


def settings_from(defaults: SettingsT, prefix: str,
                  environ: Mapping[str, str] | os._Environ = os.environ,
                  overrides: Mapping[str, Any] | None = None) -> SettingsT:
    """``defaults`` with the values the environment gives (empty values do not count), then
    ``overrides`` (by field name) on top."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(defaults):  # type: ignore[arg-type]
        text = environ.get(environment_name(prefix, field.name))
        if text:
            values[field.name] = _parse(text, type(getattr(defaults, field.name)))
    configured = dataclasses.replace(defaults, **values)  # type: ignore[type-var]
    return dataclasses.replace(configured, **(overrides or {}))  # type: ignore[type-var]


def app_overrides(defaults: Any, prefix: str, app_config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an application's config sets, as ``<PREFIX>_<FIELD>`` keys."""
    return {field.name: app_config[f"{prefix}_{field.name.upper()}"]
            for field in dataclasses.fields(defaults)
            if f"{prefix}_{field.name.upper()}" in app_config}


def _parse(text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"{text!r} is not a yes/no value")
        return text.lower() in ("1", "true", "yes", "on")
    return kind(text)


def app_settings(defaults: SettingsT, prefix: str) -> SettingsT:
    """The running application's settings of a service: ``defaults``, then the environment,
    then the application's config (``<PREFIX>_<FIELD>`` keys), read once per application."""
    from flask import current_app  # Flask only where a request runs; executors import this module

    cache = current_app.extensions.setdefault("skyvault.service_settings", {})
    key = (prefix, type(defaults))
    if key not in cache:
        cache[key] = settings_from(defaults, prefix, os.environ,
                                   app_overrides(defaults, prefix, current_app.config))
    return cache[key]
