"""``deployer run``'s command line: the implied ``start``, options before the command,
errors as one line and the JSON envelope (no storage or Azure needed for these)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.imagebuild import manifest
from deployer.imagebuild.manifest import BuiltImage
from deployer.protocol import PROTOCOLS, run_protocol

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


@pytest.mark.parametrize(
    ("recorded", "shards"), [(None, 2), (1, 2), (None, 1), (2, 2), (3, 2), (2, 1)]
)
def test_start_refuses_a_janitor_image_older_than_its_runs_protocol_before_anything(
    tmp_path: Path, recorded: int | None, shards: int
) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "deployment: {name: demo, location: westeurope, registry: r.azurecr.io,\n"
        "             managed_identity: /x/id, managed_identity_client_id: cid}\n"
        "workloads:\n  blast: {workers: 1, databases: [{name: demo, bytes_to_cache: 1000, "
        f"shards: {shards}}}]}}\n"
    )
    (tmp_path / "q.fa").write_text(">q\nACGT\n")
    state = tmp_path / "state"
    image = BuiltImage("r.azurecr.io/deployer:0.1-old", None, "h", "skipped", recorded)
    manifest.save(
        manifest.BuildManifest("r.azurecr.io", "0.1-old", {"deployer": image}),
        manifest.path_for("r.azurecr.io", state),
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DEPLOYER_STATE_DIR": str(state),
        "AZURE_SUBSCRIPTION_ID": "sub",
        "DEPLOYER_RESOURCE_GROUP": "rg",
    }
    proc = run("run", str(workload), str(tmp_path / "q.fa"), "--db", "demo", env=env)
    theirs, needed = recorded or 1, run_protocol(shards)
    if theirs >= needed:
        # Past the check: it stops at the next one (no storage for the run).
        assert proc.returncode == 2 and "storage" in proc.stderr, proc.stderr
        assert "janitor's image" not in proc.stderr
        return
    assert proc.returncode == 1, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first == (
        "error: the janitor's image r.azurecr.io/deployer:0.1-old (build 0.1-old) speaks run "
        f"protocol {theirs} ({PROTOCOLS[theirs]}), but this deployer's run needs 3 (each "
        "shard's jobs are on a queue of their own, and every worker group serves one shard), "
        "which it would mis-handle; nothing was created [JanitorImageTooOld]"
    ), proc.stderr
    assert "deployer build" in proc.stderr and "Traceback" not in proc.stderr


def test_the_janitor_logs_its_own_lines_not_each_sdk_request() -> None:
    """The janitor group's log keeps its steps: the Azure SDK's request lines (20 a request,
    at INFO) stay out, or a long run's log would be all headers."""
    code = (
        "import logging\n"
        "from deployer.cli.janitor import configure_logging\n"
        "configure_logging()\n"
        "logging.getLogger('azure.core.pipeline.policies.http_logging_policy')"
        ".info('Request URL: http://azurite/blastjobs')\n"
        "logging.getLogger('deployer.janitor').info('deleting lab-r1-w1: run succeeded')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "janitor deleting lab-r1-w1: run succeeded" in proc.stdout
    assert "Request URL" not in proc.stdout + proc.stderr


def test_a_long_submission_shows_a_line_every_few_seconds_without_a_terminal() -> None:
    from deployer.cli.output import err
    from deployer.cli.run import show

    clock = iter([0.0, 5.0, 10.0, 15.0, 21.0, 40.0])
    with (
        err.capture() as captured,
        show.Submitting(live=False, every=10.0, clock=lambda: next(clock)) as shown,
    ):
        for sent in range(1, 6):
            shown(sent, 5)
    assert captured.get().splitlines() == ["queued 2 of 5 jobs", "queued 4 of 5 jobs"]
