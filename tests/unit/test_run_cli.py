"""``deployer run``'s command line: the implied ``start``, options before the command,
errors as one line and the JSON envelope (no storage or Azure needed for these)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOYER = str(Path(sys.executable).parent / "deployer")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYER, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("run", "status", "not-a-run"),
        ("run", "--output", "json", "status", "not-a-run"),
        ("--output", "json", "run", "status", "not-a-run"),
        ("run", "status", "not-a-run", "--output", "json"),
    ],
)
def test_status_of_a_malformed_run_id_exits_2(args: tuple[str, ...]) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert "is not a run id" in proc.stderr and "Traceback" not in proc.stderr
    if "json" in args:
        doc = json.loads(proc.stdout)
        assert doc["command"] == "run status" and doc["ok"] is False
        assert doc["error"]["exit_code"] == 2 and doc["error"]["code"] == "RunNotFound"


def test_start_is_implied_and_validates_outfmt(tmp_path: Path) -> None:
    proc = run(
        "run", str(tmp_path / "w.yaml"), str(tmp_path / "q.fa"), "--db", "d", "--outfmt", "5"
    )
    assert proc.returncode == 2 and "--outfmt '5'" in proc.stderr, proc.stderr


def test_start_without_a_blast_workload_exits_2(tmp_path: Path) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text("deployment: {name: demo}\nworkloads:\n  ipyparallel: {engines: 1}\n")
    (tmp_path / "q.fa").write_text(">q\nACGT\n")
    proc = run("run", str(workload), str(tmp_path / "q.fa"), "--db", "demo")
    assert proc.returncode == 2 and "defines no blast workload" in proc.stderr, proc.stderr
