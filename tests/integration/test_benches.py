"""Every benchmark of ``bench/``, run as ``make bench`` runs it but in its ``--smoke`` mode (the
smallest workload that goes through every step), so a broken bench fails CI.

The figures of a smoke run mean nothing; the test asks only that the bench exits 0 and prints
them. The cluster benches use the session's compose stack (``--project``) instead of starting
their own, and the test waits until the cluster is as they found it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from testbed.cluster import cluster_settled, one, wait_until
from testbed.engine import COMPOSE_STACK_GROUP, REPO

BENCHES = sorted((REPO / "bench").glob("bench_*.py"))
ON_THE_STACK = {"bench_cluster_montecarlo", "bench_cluster_mpi", "bench_cluster_roundtrip"}


def test_every_bench_is_here() -> None:
    assert len(BENCHES) >= 12, [b.name for b in BENCHES]
    assert {b.stem for b in BENCHES} >= ON_THE_STACK


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "bench",
    [
        # The cluster benches share the stack, so they share its test process too; the
        # others share nothing, so each is a group of its own and they spread over processes.
        pytest.param(
            b,
            marks=pytest.mark.xdist_group(
                COMPOSE_STACK_GROUP if b.stem in ON_THE_STACK else f"bench-{b.stem}"
            ),
        )
        for b in BENCHES
    ],
    ids=lambda path: path.stem,
)
def test_bench_runs_in_smoke_mode(bench: Path, request: pytest.FixtureRequest) -> None:
    command = [sys.executable, str(bench), "--smoke"]
    project = None
    if bench.stem in ON_THE_STACK:
        project = str(request.getfixturevalue("stack"))
        command += ["--project", project]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=840, cwd=REPO)
    output = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"{bench.name} --smoke failed:\n{output[-4000:]}"
    assert proc.stdout.strip(), f"{bench.name} --smoke printed no figures"
    print(proc.stdout)
    if project is not None:
        # Leave the shared cluster as it was: extra engines unregistered, all engines healthy.
        client = docker.from_env()
        notebook = one(client, project, "notebook")
        wait_until(lambda: cluster_settled(client, project, notebook), 180, "a settled cluster")
