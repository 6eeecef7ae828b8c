"""Which manifests a list of paths means, and in which order to ingest them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from skyvault.pipeline.manifest import Manifest

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


def ingest_order(groups: list[tuple[Path, Manifest]]) -> list[tuple[Path, Manifest]]:
    """Calibrations, then references, then exposures, each by name; a manifest that names
    another of the batch in ``depends_on`` comes after it."""
    ordered = sorted(groups, key=lambda g: (KIND_ORDER.get(g[1].kind, 3), g[1].name))
    position = {manifest.name: index for index, (_, manifest) in enumerate(ordered)}
    result: list[tuple[Path, Manifest]] = []
    placed: set[str] = set()
    visiting: set[str] = set()
    by_name = {manifest.name: (path, manifest) for path, manifest in ordered}

    def visit(name: str) -> None:
        if name in placed or name in visiting or name not in by_name:
            return
        visiting.add(name)
        for dependency in sorted(by_name[name][1].depends_on, key=lambda n: position.get(n, 0)):
            visit(dependency)
        visiting.discard(name)
        placed.add(name)
        result.append(by_name[name])

    for _, manifest in ordered:
        visit(manifest.name)
    # Same name twice (an old and a rewritten manifest): both, in the order given.
    leftovers = [g for g in ordered if g not in result]
    return result + leftovers
