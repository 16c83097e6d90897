"""The deployer's import structure: no cycle, no private name across modules, every
third-party import declared.

Imports are read from the source (AST), module-level and function-level alike, so an import
hidden inside a function to dodge a cycle still counts. The checker runs on a small made-up
package first, so these tests can fail.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Imports:
    """What the modules of one package import from each other.

    Attributes:
        modules: Module name -> source file.
        edges: Module -> the package's modules it imports.
        private: (importer, owner, name) for each private name used across modules.
        external: Importer -> dotted names of the modules it imports from outside.
    """

    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[tuple[str, str, str]] = field(default_factory=list)
    external: dict[str, set[str]] = field(default_factory=dict)


def _module_names(root: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def read_imports(root: Path, package: str) -> Imports:
    """Read every import of ``package`` (a folder under ``root``)."""
    found = Imports(_module_names(root, package))
    for module, path in found.modules.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = found.edges.setdefault(module, set())
        aliases: dict[str, str] = {}  # local name -> package module it is bound to
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _resolve(found.modules, alias.name, package)
                    if target is None:
                        found.external.setdefault(module, set()).add(alias.name)
                        continue
                    edges.add(target)
                    if alias.asname:
                        aliases[alias.asname] = target
                    if any(_is_private(p) for p in alias.name.split(".")):
                        found.private.append((module, target, alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([base] if base else [])])
                if base.split(".")[0] != package:
                    if base != "__future__":
                        found.external.setdefault(module, set()).add(base)
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in found.modules:
                        edges.add(submodule)
                        aliases[alias.asname or alias.name] = submodule
                        continue
                    owner = _resolve(found.modules, base, package) or base
                    edges.add(owner)
                    if _is_private(alias.name) and owner != module:
                        found.private.append((module, owner, alias.name))
        for node in ast.walk(tree):
            # module._name, where module is another module of the package
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
                and aliases[node.value.id] != module
            ):
                found.private.append((module, aliases[node.value.id], node.attr))
        edges.discard(module)
    return found


def _resolve(modules: dict[str, Path], dotted: str, package: str) -> str | None:
    """The package's module ``dotted`` names (or the nearest enclosing one); None if outside."""
    if dotted.split(".")[0] != package:
        return None
    while dotted not in modules and "." in dotted:
        dotted = dotted.rpartition(".")[0]
    return dotted


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def by_package(found: Imports, package: str) -> dict[str, set[str]]:
    """The import graph between the package's top-level units: each subpackage counts as
    one node (``deployer.run``), each top-level module as itself (``deployer.api``)."""

    def unit(module: str) -> str:
        parts = module.split(".")
        if len(parts) == 1:
            return module
        top = ".".join(parts[:2])
        is_package = found.modules[top].name == "__init__.py"
        return top if is_package or len(parts) == 2 else module

    graph: dict[str, set[str]] = {}
    for source, targets in found.edges.items():
        for target in targets:
            if unit(source) != unit(target):
                graph.setdefault(unit(source), set()).add(unit(target))
    return graph


def _chains(components: Iterable[list[str]], edges: dict[str, set[str]]) -> Iterator[str]:
    for component in components:
        members = set(component)
        links = [f"{a} -> {b}" for a in component for b in sorted(edges[a] & members)]
        yield f"{', '.join(component)} ({'; '.join(links)})"


@pytest.fixture(scope="module")
def deployer_imports() -> Imports:
    return read_imports(ROOT, "deployer")


# --- the checker can fail ----------------------------------------------------------


def test_the_checker_finds_cycles_and_private_names_in_a_made_up_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    # A function-level import still counts, and so does a private attribute.
    (pkg / "b.py").write_text(
        "import pkg.sub.c as c\n\ndef f():\n    from pkg import a\n    return c._hidden\n"
    )
    (pkg / "sub" / "c.py").write_text("from ..a import _secret\nimport json\n")
    (pkg / "sub" / "d.py").write_text("from pkg.sub.c import x\n")

    found = read_imports(tmp_path, "pkg")

    assert cycles(found.edges) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert sorted(found.private) == [
        ("pkg.b", "pkg.sub.c", "_hidden"),
        ("pkg.sub.c", "pkg.a", "_secret"),
    ]
    assert cycles(by_package(found, "pkg")) == [["pkg.a", "pkg.b", "pkg.sub"]]
    assert found.external == {"pkg.sub.c": {"json"}}


# --- the deployer ------------------------------------------------------------------


def test_no_import_cycle_between_deployer_modules(deployer_imports: Imports) -> None:
    found = cycles(deployer_imports.edges)
    assert not found, "import cycles: " + " | ".join(_chains(found, deployer_imports.edges))


def test_no_import_cycle_between_deployer_packages(deployer_imports: Imports) -> None:
    """``deployer.api`` and ``deployer.run`` (or any two top-level units) do not depend on
    each other."""
    graph = by_package(deployer_imports, "deployer")
    found = cycles(graph)
    assert not found, "cycles between packages: " + " | ".join(_chains(found, graph))


def test_no_private_name_crosses_a_deployer_module(deployer_imports: Imports) -> None:
    crossing = [f"{who} uses {owner}.{name}" for who, owner, name in deployer_imports.private]
    assert not crossing, "make these public where they belong, or move them: " + "; ".join(crossing)


def _declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = (re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0] for dep in project["dependencies"])
    return {_normalize(name) for name in names}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _top_level_owners() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _files(distribution: str) -> tuple[str, ...]:
    return tuple(str(f) for f in importlib.metadata.files(distribution) or [])


def _distribution_of(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (namespace packages such as
    ``azure`` are told apart by their files)."""
    top = module.split(".")[0]
    owners = _top_level_owners().get(top, [])
    if len(owners) <= 1:
        return {_normalize(d) for d in owners}
    folder = "/".join(module.split(".")[:3])
    return {_normalize(d) for d in owners if any(f.startswith(folder) for f in _files(d))}


def test_every_third_party_import_of_the_deployer_is_a_declared_dependency(
    deployer_imports: Imports,
) -> None:
    """``pip install .`` brings every module the deployer imports (checked against the
    dev virtualenv's installed distributions)."""
    declared = _declared_distributions()
    missing = []
    for module, names in sorted(deployer_imports.external.items()):
        for name in sorted(names):
            if name.split(".")[0] in sys.stdlib_module_names:
                continue
            providers = _distribution_of(name)
            assert providers, f"{module} imports {name}, which no installed distribution provides"
            if not providers & declared:
                missing.append(f"{module} imports {name} ({' or '.join(sorted(providers))})")
    assert not missing, "declare in pyproject.toml [project] dependencies: " + "; ".join(missing)
