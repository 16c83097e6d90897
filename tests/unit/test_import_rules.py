"""Who may import what, read from the source (the imports' AST), so a shortcut fails here:

* no module imports a conftest or a test module (shared helpers live in ``testbed``);
* nothing outside ``tests/`` imports ``tests``;
* the deployer imports neither the emulator nor the test bed, and the emulator (a package of
  its own) imports neither the deployer, the test bed nor the tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.engine import REPO

# Folder -> (where its Python files are, the folder they are imported from).
ROOTS = {
    "bench": ("bench", REPO),
    "deployer": ("deployer", REPO),
    "emulator": ("emulator/aci_emulator", REPO / "emulator"),
    "testbed": ("testbed", REPO),
    "tests": ("tests", REPO),
}
FORBIDDEN = {
    "bench": {"tests"},
    "deployer": {"tests", "testbed", "aci_emulator"},
    "emulator": {"tests", "testbed", "deployer"},
    "testbed": {"tests"},
    "tests": set(),
}


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported."""

    file: Path
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}: imports {self.module}"


def module_name(path: Path, import_root: Path) -> str:
    """The dotted name a file is imported as (``tests.unit.test_x``, ``aci_emulator.arm``)."""
    parts = list(path.relative_to(import_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, import_root: Path) -> Iterator[Import]:
    """Every module a file imports, relative imports resolved; for ``from m import n`` both
    ``m`` and ``m.n`` (``n`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, import_root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(path, node.lineno, module)
            for alias in node.names:
                yield Import(path, node.lineno, f"{module}.{alias.name}")


def all_imports(folder: str) -> list[Import]:
    """The imports of every Python file of a scanned folder."""
    source, import_root = ROOTS[folder]
    files = sorted((REPO / source).rglob("*.py"))
    assert files, f"no Python files under {source}"
    return [imp for path in files for imp in imports_of(path, import_root)]


def is_test_or_conftest(module: str) -> bool:
    """A conftest or a test module (a ``test_*`` part under ``tests``), or a name in one."""
    parts = module.split(".")
    return "conftest" in parts or (
        parts[0] == "tests" and any(p.startswith("test_") for p in parts)
    )


@pytest.mark.parametrize("folder", sorted(ROOTS))
def test_no_module_imports_a_conftest_or_a_test_module(folder: str) -> None:
    bad = [str(imp) for imp in all_imports(folder) if is_test_or_conftest(imp.module)]
    assert not bad, "shared helpers belong in testbed/, fixtures in conftests:\n" + "\n".join(bad)


@pytest.mark.parametrize("folder", sorted(ROOTS))
def test_each_folder_imports_only_what_it_may(folder: str) -> None:
    bad = [str(imp) for imp in all_imports(folder) if imp.module.split(".")[0] in FORBIDDEN[folder]]
    assert not bad, f"{folder}/ may not import {sorted(FORBIDDEN[folder])}:\n" + "\n".join(bad)


def test_the_rules_see_relative_and_from_imports(tmp_path: Path) -> None:
    """The checks above see ``from .conftest import x``, ``from ..pkg import test_module`` and
    ``import tests.unit.test_module``, and a plain package is not a test module."""
    package = tmp_path / "tests" / "integration" / "area"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    test = package / "test_x.py"
    test.write_text(
        "from .conftest import helper\nfrom ..other import test_y\nimport tests.unit.test_z\n"
    )
    found = {imp.module for imp in imports_of(test, tmp_path)}
    flagged = {m for m in found if is_test_or_conftest(m)}
    assert flagged == {
        "tests.integration.area.conftest",
        "tests.integration.area.conftest.helper",
        "tests.integration.other.test_y",
        "tests.unit.test_z",
    }
    assert found - flagged == {"tests.integration.other"}
