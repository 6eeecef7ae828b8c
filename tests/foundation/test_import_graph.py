"""The import graph of the skyvault package (issue 14): no circles between modules, and
`skyvault worker` loads no Flask.

The graph is read with the standard library's ``ast`` from every module of the folders that
setup.cfg maps under ``skyvault`` (``server/`` is ``skyvault.server``, ...). Every import
counts, wherever it stands: at the top, inside a function, under ``if TYPE_CHECKING``; an
import deferred into a function or hidden from the interpreter still ties the two modules
together, and a circle of them is a knot that one module cannot be understood or moved without.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KNOWN_CIRCLES: dict[frozenset[str], str] = {}
"""Circles outside the code this test came with, each with why it is still here; the test
fails once one is gone, so that the entry is removed with it."""


def package_folders() -> dict[str, Path]:
    """Import name -> folder, from setup.cfg's ``package_dir``."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    folders = {}
    for line in parser["options"]["package_dir"].strip().splitlines():
        name, folder = (part.strip() for part in line.split("="))
        folders[name] = ROOT / folder
    return folders


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found: dict[str, Path] = {}
    folders = package_folders()
    for package, folder in folders.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            # A folder without __init__.py is no package: nothing in it is imported by name.
            if not (path.parent / "__init__.py").is_file() or any(
                    part.startswith(".") for part in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imported_modules(name: str, source: str, *, is_package: bool = False,
                     known: set[str] | dict[str, Path] | None = None) -> Iterator[str]:
    """The package's modules (``known``) that module ``name`` imports, anywhere in its
    ``source``."""
    known = modules() if known is None else known
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    yield submodule  # ``from package import module``
                elif source in known:
                    yield source


@cache
def import_graph() -> dict[str, set[str]]:
    return {name: set(imported_modules(name, path.read_text(),
                                       is_package=path.name == "__init__.py")) - {name}
            for name, path in modules().items()}


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(frozenset(group))
    return found


def test_the_graph_reader_finds_circles_and_imports_of_every_kind() -> None:
    """The reader itself: circles are found, a chain is not one, and every form of import
    (deferred into a function, under TYPE_CHECKING, relative, a module named by ``from
    package import``) resolves to the module it loads."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        frozenset({"a", "b", "c"})]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    known = {"p", "p.a", "p.b", "p.c", "p.d", "p.e", "p.sub", "p.sub.f"}
    source = ("import os\n"
              "import p.a\n"
              "from p import b, VALUE\n"
              "from .c import name\n"
              "from .sub import f\n"
              "if TYPE_CHECKING:\n    from p.d import Thing\n"
              "def later():\n    from ..e import other\n")
    assert set(imported_modules("p.sub.g", source.replace("..e", "p.e").replace(
        ".c ", "p.c ").replace(".sub ", "p.sub "), known=known)) == {
        "p.a", "p.b", "p", "p.c", "p.sub.f", "p.d", "p.e"}
    assert set(imported_modules("p.sub.g", "from . import f\nfrom ..c import x\n",
                                known=known)) == {"p.sub.f", "p.c"}
    assert set(imported_modules("p.sub", "from .f import x\n", is_package=True,
                                known=known)) == {"p.sub.f"}
    graph = import_graph()
    assert len(graph) > 100
    assert "skyvault.server.uws.parts" in graph["skyvault.server.uws.blueprint"]


def test_no_import_circles_between_modules() -> None:
    found = set(circles(import_graph()))
    unexpected = sorted(sorted(group) for group in found - set(KNOWN_CIRCLES))
    assert not unexpected, f"modules that import each other: {unexpected}"
    gone = sorted(sorted(group) for group in set(KNOWN_CIRCLES) - found)
    assert not gone, f"no longer circles, remove them from KNOWN_CIRCLES: {gone}"


def test_the_worker_loads_no_flask() -> None:
    """`skyvault worker` runs TAP queries, SODA cutouts and forced photometry with their
    executors, which import no Flask blueprint (nor Flask): the cutting is
    ``server.soda_cutouts``', shared with /soda/sync; the measuring
    ``skyvault.forced_photometry``'s, shared with /forcedphot/sync."""
    probe = ("import sys\n"
             "from skyvault.server.worker import worker_cli\n"
             "from skyvault.server.uws.services import executors\n"
             "assert sorted(executors()) == ['forcedphot', 'soda', 'tap'], executors()\n"
             "print(sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.')))\n")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "[]"


PLATFORM_FLOOR = frozenset({
    "skyvault.config", "skyvault.db", "skyvault.access", "skyvault.cluster",
    "skyvault.db_errors", "skyvault.filestore", "skyvault.crash", "skyvault.geometry",
    "skyvault.tansip"})
"""Settings, the database and who is asking, the file store, sky geometry and the WCS: what
every part may import and what imports no part (docs/ARCHITECTURE.md)."""

SERVER_ENTRIES = frozenset({"skyvault.serving", "skyvault.cli"})
"""``skyvault serve`` (gunicorn) and the CLI root, which names ``skyvault worker``."""

LAYER_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("vo/ is the IVOA layer, pure: no database session, service or product code",
     "skyvault.vo", ("skyvault.vo", "skyvault.schema", "skyvault.db_errors", "skyvault.geometry",
                     "skyvault.tansip")),
    ("schema/ is the declaration; only the release rules it generates policies from",
     "skyvault.schema", ("skyvault.schema", "skyvault.releases.dating")),
)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_layers_import_only_downwards() -> None:
    """The rules docs/ARCHITECTURE.md states, read from the import graph."""
    graph = import_graph()
    broken = []
    for rule, package, allowed in LAYER_RULES:
        for module, imported in graph.items():
            if _inside(module, package):
                broken += [(rule, module, target) for target in sorted(imported)
                           if not any(_inside(target, a) for a in allowed)]
    for module in PLATFORM_FLOOR:
        broken += [("the platform floor imports only the platform floor", module, target)
                   for target in sorted(graph[module] - PLATFORM_FLOOR)]
    for module, imported in graph.items():
        if not _inside(module, "skyvault.server") and module not in SERVER_ENTRIES:
            broken += [("only the server and its entry points import server/", module, target)
                       for target in sorted(imported) if _inside(target, "skyvault.server")]
    assert not broken, "\n".join(f"{rule}: {module} imports {target}"
                                 for rule, module, target in broken)
    assert set(graph) >= PLATFORM_FLOOR
