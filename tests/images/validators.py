"""Outside validators for the image services' documents: STILTS votlint, datalinklint and
taplint (CPV and AVV stages), and astropy's VOTable validator."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import warnings

from astropy.io.votable import parse
from astropy.io.votable.exceptions import VOWarning

# UCDs the published schema declares that astropy's UCD list calls secondary-only; they come
# from schema/tables.py (the archive's column definitions), not from the services.
KNOWN_SCHEMA_UCDS = ("'instr.filter'",)


def _stilts(*arguments: str) -> str:
    result = subprocess.run(["stilts", *arguments], capture_output=True, text=True, timeout=300)
    return result.stdout + result.stderr


def totals(report: str) -> dict[str, int]:
    match = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", report)
    assert match, report
    return {"errors": int(match.group(1)), "warnings": int(match.group(2))}


def votlint(content: bytes) -> list[str]:
    """votlint's complaints about a document (an empty list when it is clean)."""
    with tempfile.NamedTemporaryFile(suffix=".vot") as handle:
        handle.write(content)
        handle.flush()
        report = _stilts("votlint", f"votable={handle.name}")
    return [line for line in report.splitlines() if line.strip()]


def astropy_problems(content: bytes) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse(io.BytesIO(content), verify="warn")
    problems = [str(w.message) for w in caught if issubclass(w.category, VOWarning)]
    return [p for p in problems if not any(u in p for u in KNOWN_SCHEMA_UCDS)]


def assert_valid_votable(content: bytes) -> None:
    assert votlint(content) == []
    assert astropy_problems(content) == []


def datalinklint(url: str) -> str:
    return _stilts("datalinklint", f"votable={url}")


def vosi_report(base_url: str) -> str:
    """taplint's capabilities (CPV) and availability (AVV) stages on a service's base URL."""
    return _stilts("taplint", f"tapurl={base_url}", "stages=CPV AVV")


def stilts_cone(service_url: str, service_type: str, ra: float, dec: float,
                radius: float) -> str:
    return _stilts("cone", f"serviceurl={service_url}", f"servicetype={service_type}",
                   f"lon={ra}", f"lat={dec}", f"radius={radius}", "ofmt=csv")
