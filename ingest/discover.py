"""Which manifests a list of paths means, and in which order to ingest them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from skyvault.ingest.plan import ManifestHead

KIND_ORDER = {"calibration": 0, "reference": 1, "exposure": 2}


def find_manifests(paths: Iterable[Path]) -> list[Path]:
    """Manifest files named directly, or found under folders: a product folder (its
    ``manifests/``), a ``manifests`` folder or any folder below it. Temporary files (hidden
    names, as the pipeline's atomic writes use) are not manifests yet."""
    found: dict[Path, None] = {}
    for path in paths:
        path = Path(path)
        if path.is_file():
            found[path.resolve()] = None
            continue
        base = path / "manifests" if (path / "manifests").is_dir() else path
        for candidate in sorted(base.rglob("*.json")):
            if candidate.name.startswith(".") or "state" in candidate.relative_to(base).parts:
                continue
            found[candidate.resolve()] = None
    return list(found)


def ingest_order(heads: list[ManifestHead]) -> list[ManifestHead]:
    """Calibrations, then references, then exposures, each by name; a manifest that names
    another of the batch in ``depends_on`` comes after it."""
    ordered = sorted(heads, key=lambda h: (KIND_ORDER.get(h.kind, 3), h.name, str(h.path)))
    by_name = {head.name: head for head in ordered}
    result: list[ManifestHead] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in placed or name in visiting or name not in by_name:
            return
        visiting.add(name)
        for dependency in by_name[name].depends_on:
            visit(dependency)
        visiting.discard(name)
        placed.add(name)
        result.append(by_name[name])

    for head in ordered:
        visit(head.name)
    # Same name twice (an old and a rewritten manifest): both, the extra ones last.
    chosen = {id(head) for head in result}
    return result + [head for head in ordered if id(head) not in chosen]
