"""`make test` runs two test processes (pytest-xdist, ``--dist loadgroup``): the tests of one
session stack must run in one process, in file order, or a test finds another process's
stack (the web tests once read the job log of a stack where no search had run).

The checks run the real collection of the tests in two processes with every test replaced by a
note of where it ran, so they need no Docker and take seconds. The run modules, which share no
stack, are groups of their own so that the processes share them out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testbed.engine import COMPOSE_STACK_GROUP, REPO

# A plugin for the child pytest: each test is noted (process, id) instead of run.
DRY_RUN = """
import os
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    with open(os.environ["WHERE_RAN"], "a", encoding="utf-8") as fh:
        fh.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + " " + item.nodeid + "\\n")
    return True
"""

PATHS = ["tests/integration/test_stack.py", "tests/integration/web"]
XDIST = ["-n", "2", "--dist", "loadgroup"]  # as `make test` runs them


def dry_run(tmp_path: Path, paths: list[str]) -> list[tuple[str, str]]:
    """Collect ``paths`` in two processes as `make test` does and "run" each test by noting
    (process, test id with its ``@group``)."""
    (tmp_path / "dry_run.py").write_text(DRY_RUN, encoding="utf-8")
    where = tmp_path / "where.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "WHERE_RAN": str(where),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "dry_run",
            "-p",
            "no:cacheprovider",
            "-q",
            *XDIST,
            *paths,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = where.read_text(encoding="utf-8").splitlines()
    return [(worker, nodeid) for worker, nodeid in (line.split(" ", 1) for line in lines)]


def test_the_tests_of_the_compose_stack_run_in_one_process_in_file_order(
    tmp_path: Path,
) -> None:
    ran = dry_run(tmp_path, PATHS)
    on_stack = [
        (worker, nodeid) for worker, nodeid in ran if nodeid.endswith("@" + COMPOSE_STACK_GROUP)
    ]
    web = [nodeid for _, nodeid in on_stack if "/web/" in nodeid]
    assert len(web) >= 9, ran  # every web test is on the stack, by its fixtures
    assert len({worker for worker, _ in on_stack}) == 1, on_stack
    # In file order: the stack's own checks first, then the web module top to bottom.
    order = [nodeid.split("@")[0] for _, nodeid in on_stack]
    assert order[0].startswith("tests/integration/test_stack.py::"), order
    names = [n.split("::")[1].split("[")[0] for n in order if "/web/" in n]
    assert names[0] == "test_a_search_from_paste_to_alignment_and_tsv", names
    assert names[-1] == "test_a_multi_batch_search_is_one_search_with_every_querys_hits", names


def test_each_run_module_is_a_group_of_its_own_and_they_spread_over_the_processes(
    tmp_path: Path,
) -> None:
    """A run module's tests share its stack (``run_stack`` is module-scoped), so they stay in
    one process; the modules share nothing (each registry starts from the stored push), so
    they are groups of their own, which the two processes share out.

    The run modules are dry-run alone: xdist hands each process one group before any runs,
    so both get a run module by construction. With the emulator module among them, a process
    could get it first and the other, faster one every run module (it did once in CI)."""
    ran = dry_run(tmp_path, ["tests/integration/run"])
    groups: dict[str, set[str]] = {}
    workers: dict[str, set[str]] = {}
    for worker, nodeid in ran:
        module, group = nodeid.split("::")[0], nodeid.rsplit("@", 1)[1]
        groups.setdefault(module, set()).add(group)
        workers.setdefault(module, set()).add(worker)
    run = [m for m in groups if m.startswith("tests/integration/run/")]
    assert len(run) >= 5, groups
    assert all(len(g) == 1 for g in groups.values()), groups
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len({group for m in run for group in groups[m]}) == len(run), groups
    assert {worker for m in run for worker in workers[m]} == {"gw0", "gw1"}, workers


def test_the_deployers_emulator_tests_are_the_emulator_group(tmp_path: Path) -> None:
    ran = dry_run(tmp_path, ["tests/integration/emulator/test_emulator_deployer.py"])
    assert ran and {nodeid.rsplit("@", 1)[1] for _, nodeid in ran} == {"emulator"}, ran
    assert len({worker for worker, _ in ran}) == 1, ran


def test_the_quick_unit_tests_are_handed_out_after_the_slow_single_tests() -> None:
    """xdist hands out single tests in collection order: the benches' smokes (minutes) before
    the unit tests (seconds), so no process starts a long test when the other is nearly done."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_hints.py",
            "tests/integration/test_benches.py",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    unit = [i for i, nodeid in enumerate(ids) if nodeid.startswith("tests/unit/")]
    benches = [i for i, nodeid in enumerate(ids) if "test_benches.py" in nodeid]
    assert unit and len(benches) >= 12, ids
    assert max(benches) < min(unit), ids
