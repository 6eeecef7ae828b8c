"""Interactive plots for the pages, as plotly.js figures (data and layout, JSON). Pure.

Why plotly.js: its "basic" bundle (scatter and bar, MIT, about 1.2 MB, 400 kB compressed) has
zoom, pan, hover and error bars, needs neither eval nor inline script (so the pages keep their
same-origin policy), and is served from this origin like Aladin Lite (server/web/vendor.py).
Bokeh needs 'unsafe-eval'; uPlot has no error bars, which light curves need.

A page shows a figure with the ``plot`` macro of web/macros.html (a container and the figure
as a JSON script element) and ``static/plots.js``, which draws every such container, shows
each point's image (``customdata``: its page and preview) on hover and opens its page on a
click. The light curve page draws ``light_curve_figure`` the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

FILTER_COLOURS = {"zg": "#2e8b57", "zr": "#c0392b", "zi": "#8e44ad"}


@dataclass(frozen=True)
class Point:
    x: str | float
    """An ISO time (UTC) or a number."""
    y: float | None
    error: float | None = None
    label: str = ""
    page: str | None = None
    """The page a click opens (the epoch's image)."""
    preview: str | None = None
    """A small image shown on hover."""


@dataclass
class Series:
    name: str
    colour: str
    points: list[Point] = field(default_factory=list)
    symbol: str = "circle"
    """plotly's marker symbol: light curves draw flagged epochs open and upper limits as
    downward triangles."""


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _trace(series: Series, mode: str) -> dict:
    points = [p for p in series.points if _finite(p.y)]
    trace: dict = {
        "type": "scatter", "mode": mode, "name": series.name,
        "x": [p.x for p in points], "y": [p.y for p in points],
        "text": [p.label for p in points],
        "customdata": [[p.page or "", p.preview or ""] for p in points],
        "marker": {"color": series.colour, "size": 7, "symbol": series.symbol},
        "line": {"color": series.colour, "width": 1},
        "hovertemplate": "%{text}<br>%{y:.3f}<extra>%{fullData.name}</extra>",
    }
    if any(_finite(p.error) for p in points):
        trace["error_y"] = {"type": "data", "visible": True, "color": series.colour,
                            "array": [p.error if _finite(p.error) else 0.0 for p in points]}
    return trace


def figure(title: str, x_title: str, y_title: str, series: Sequence[Series], *,
           time_axis: bool = True, reversed_y: bool = False, mode: str = "markers") -> dict:
    """A figure of one or more series; empty series are left out."""
    traces = [_trace(s, mode) for s in series if any(_finite(p.y) for p in s.points)]
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "xaxis": {"title": {"text": x_title}, "type": "date" if time_axis else "linear"},
            "yaxis": {"title": {"text": y_title},
                      "autorange": "reversed" if reversed_y else True},
            "margin": {"l": 60, "r": 16, "t": 40, "b": 50},
            "legend": {"orientation": "h", "y": -0.25},
            "hovermode": "closest",
        },
        "empty": not traces,
    }


def bar_figure(title: str, categories: Sequence[str], values: Sequence[float],
               y_title: str, colour: str = "#1f5fa8") -> dict:
    return {
        "data": [{"type": "bar", "x": list(categories), "y": list(values),
                  "marker": {"color": colour}, "hovertemplate": "%{x}: %{y}<extra></extra>"}],
        "layout": {"title": {"text": title, "font": {"size": 15}},
                   "yaxis": {"title": {"text": y_title}},
                   "xaxis": {"type": "category"},
                   "margin": {"l": 60, "r": 16, "t": 40, "b": 50}},
        "empty": not values,
    }


def light_curve_figure(title: str, series: Sequence[Series], *,
                       x_title: str = "Time (UTC)", time_axis: bool = True) -> dict:
    """Magnitudes against time (or phase) with their errors, brighter up: what a light curve
    page draws (one series per filter and kind of point; each point's page is its image)."""
    return figure(title, x_title, "Magnitude (AB)", series, reversed_y=True,
                  time_axis=time_axis)
