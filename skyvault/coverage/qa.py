"""Quality-assurance figures of a night, from the rows its requester may see. Pure.

What the embargo allows, by decision: every number on a QA page is computed from rows read
through row-level security, so the public's night page counts, averages and plots the public
exposures only, a member's adds their programs' proprietary ones, and a night with nothing
the requester may see is answered exactly as a night without observations. Ingest's quarantine
(files refused at ingest) is not shown: its records name files of every program and sit in a
private schema that requesters cannot read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from skyvault.coverage.queries import ExposureCount, ImageQuality, MissingQuadrants

INFOBITS = 32


@dataclass(frozen=True)
class FilterFigures:
    filtercode: str
    images: int
    seeing: float | None
    maglimit: float | None
    zeropoint: float | None
    zp_scatter: float | None
    """Standard deviation of the images' zero points (over quadrants and exposures)."""
    zp_fit_rms: float | None
    """Median of the images' own zero-point fit rms."""
    astrom_rms: float | None
    flagged: int


@dataclass
class NightFigures:
    exposures: list[ExposureCount]
    filters: list[FilterFigures]
    infobits: dict[int, int] = field(default_factory=dict)
    """bit -> images with it set."""
    missing: list[MissingQuadrants] = field(default_factory=list)

    @property
    def exposure_total(self) -> int:
        return sum(e.exposures for e in self.exposures)

    @property
    def missing_total(self) -> int:
        return sum(m.missing for m in self.missing)


def _median(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _std(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else None


def infobit_counts(images: Sequence[ImageQuality]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for image in images:
        bits = image.infobits or 0
        for bit in range(INFOBITS):
            if bits & (1 << bit):
                counts[bit] = counts.get(bit, 0) + 1
    return dict(sorted(counts.items()))


def night_figures(exposures: list[ExposureCount], images: list[ImageQuality],
                  missing: list[MissingQuadrants]) -> NightFigures:
    filters = []
    for code in sorted({i.filtercode for i in images}):
        chosen = [i for i in images if i.filtercode == code]
        filters.append(FilterFigures(
            code, len(chosen), _median([i.seeing for i in chosen]),
            _median([i.maglimit for i in chosen]), _median([i.magzp for i in chosen]),
            _std([i.magzp for i in chosen]), _median([i.magzprms for i in chosen]),
            _median([i.astrom_rms for i in chosen]),
            sum(1 for i in chosen if i.infobits)))
    return NightFigures(exposures, filters, infobit_counts(images), missing)
