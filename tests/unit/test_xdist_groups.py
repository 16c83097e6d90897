"""`make test` runs two test processes (pytest-xdist, ``--dist loadgroup``): the tests of one
session stack must run in one process, in file order, or a test finds another process's
stack (the web tests once read the job log of a stack where no search had run).

The check runs the real collection of the stack's web and stack tests in two processes with
every test replaced by a note of where it ran, so it needs no Docker and takes seconds.
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
XDIST = ["-n", "2", "--dist", "loadgroup", *PATHS]  # as `make test` runs them


def test_the_tests_of_the_compose_stack_run_in_one_process_in_file_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "dry_run.py").write_text(DRY_RUN, encoding="utf-8")
    where = tmp_path / "where.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "WHERE_RAN": str(where),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "dry_run", "-p", "no:cacheprovider", "-q", *XDIST],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [line.split(" ", 1) for line in where.read_text(encoding="utf-8").splitlines()]
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
