"""``deployer run`` end to end on the local ACI emulator: real containers, Azurite, blastn.

* a 25-batch run on Spot workers (``blast.priority: spot``) whose janitor is killed once and
  one of whose worker groups is evicted mid-run: merged 6 is byte-identical to one direct
  blastn, merged 15 holds one report per query, nothing is lost or duplicated, and afterwards
  no group, no container and no queue message is left;
* ``deployment.ttl`` of 60 s on a run whose worker never finishes: everything is deleted and
  the run and its batches say why;
* bad input exits 2 with one line and creates nothing.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from azure.storage.queue import QueueServiceClient
from blast_client import BlastClient
from blast_client.fasta import iter_records

from tests.fakearm import aci_client
from tests.integration.run.conftest import (
    BIN,
    DIRECT_BLASTN,
    RESOURCE_GROUP,
    RunStack,
    wait_for,
    write,
)

pytestmark = pytest.mark.docker
BIG_WORKER = 8_000_000_000
"""bytes_to_cache that makes each worker need its own group (two worker groups)."""


def _status(stack: RunStack, run_id: str) -> dict[str, Any]:
    doc = stack.run_json("run", "status", run_id)
    data: dict[str, Any] = doc["data"]
    return data


def _queues(stack: RunStack) -> set[str]:
    service = QueueServiceClient.from_connection_string(stack.connection_string)
    return {q.name for q in service.list_queues()}


def test_run_to_merged_results_survives_a_killed_janitor_and_an_evicted_worker_group(
    run_stack: RunStack, demo_fasta: str, tmp_path: Path
) -> None:
    stack = run_stack
    workload = stack.workload("e2e", workers=2)
    text = workload.read_text().replace(
        "bytes_to_cache: 100000000", f"bytes_to_cache: {BIG_WORKER}"
    )
    workload.write_text(text.replace("    databases:", "    priority: spot\n    databases:"))
    queries = write(tmp_path / "queries.fa", demo_fasta)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            str(BIN / "deployer"),
            "run",
            str(workload),
            str(queries),
            "--db",
            "demo",
            "--batch-len",
            "1",
            "--outfmt",
            "6,7,15",
            "--out",
            str(out),
            "--output",
            "json",
        ],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    reader.start()

    def run_id() -> str | None:
        return next(
            (line.split()[1].rstrip(":") for line in stderr if line.startswith("run r")), None
        )

    rid = wait_for(run_id, 180, "the run to be submitted")
    janitor = f"e2e-{rid}-janitor"
    w1 = f"e2e-{rid}-w1"
    # Mid-run: some batches done, some not.
    jobs = BlastClient(connection_string=stack.connection_string)

    def some_done() -> bool:
        done = sum(j.status == "succeeded" for j in jobs.run_jobs(rid))
        assert done < 20, "the run went too fast to disturb it mid-run"
        return done >= 3

    wait_for(some_done, 240, "the first batches to finish", interval=0.2)
    # Kill the janitor once: ACI (OnFailure) restarts it and it carries on from Table storage.
    stack.client.containers.get(stack.group_containers(janitor)["janitor"]).kill()

    def janitor_restarted() -> bool:
        with aci_client(stack.arm) as aci:
            group = aci.container_groups.get(RESOURCE_GROUP, janitor)
        view = group.containers[0].instance_view
        return bool(view and (view.restart_count or 0) >= 1)

    wait_for(janitor_restarted, 60, "ACI to restart the killed janitor", interval=0.5)
    # Evict one Spot worker group with whatever it holds; its leases expire and the other
    # worker redoes them. ACI would start it again later; the janitor deletes it first or
    # it drains.
    with aci_client(stack.arm) as aci:
        evicted = aci.container_groups.get(RESOURCE_GROUP, w1)
    assert evicted.priority == "Spot" and evicted.ip_address is None
    stack.arm.aci.evict(RESOURCE_GROUP, w1, restore_after=20)
    stdout, _ = proc.communicate(timeout=420)
    reader.join(5)
    assert proc.returncode == 0, "".join(stderr)[-4000:]
    summary = json.loads(stdout)["data"]
    assert summary["status"] == "succeeded" and summary["batches"] == 25
    assert summary["queries"] == 25 and summary["failed_batches"] == 0

    # The restarted janitor finished the run: its bill spans both lives.
    kinds = {line["group"]: line["kind"] for line in summary["bill"]["lines"]}
    assert kinds.get(janitor) == "janitor" and f"e2e-{rid}-w2" in kinds

    merged6 = (out / "results.6.tsv").read_bytes()
    direct = stack.in_worker_image(DIRECT_BLASTN)
    assert merged6 == direct, "merged outfmt 6 differs from one direct blastn of the whole file"
    rows = merged6.decode().splitlines()
    assert len(rows) == len(set(rows)), "a batch is duplicated in the merged output"
    report = json.loads((out / "results.15.json").read_text())
    titles = [r["report"]["results"]["search"]["query_title"] for r in report["BlastOutput2"]]
    assert [t.split()[0] for t in titles] == [r.header.split()[0] for r in iter_records(demo_fasta)]
    seven = (out / "results.7.txt").read_text()
    assert seven.count("# Query: ") == 25 and seven.endswith("# BLAST processed 25 queries\n")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len({b["job_id"] for b in manifest["batches"]}) == 25
    assert all(b["state"] == "succeeded" for b in manifest["batches"])
    assert set(manifest["files"]) >= {"results.6.tsv", "results.7.txt", "results.15.json"}
    assert len([f for f in manifest["files"] if f.startswith("batches/")]) == 25

    assert stack.groups("e2e") == []
    assert stack.containers() == [], "containers left after the run"
    assert f"run-{rid}" not in _queues(stack) or stack.queue_empty_or_gone(f"run-{rid}")
    assert stack.queue_empty_or_gone(f"run-{rid}-poison")


def test_ttl_ends_a_run_whose_worker_never_finishes_and_says_why(
    run_stack: RunStack, demo_fasta: str, tmp_path: Path
) -> None:
    stack = run_stack
    workload = stack.workload("ttl", workers=1, extra="  ttl: 60s\n")
    queries = write(tmp_path / "q.fa", demo_fasta)
    started = stack.run_json(
        "run",
        str(workload),
        str(queries),
        "--db",
        "demo",
        "--detach",
        DEPLOYER_RUN_EXIT_WHEN_IDLE="1h",
    )["data"]
    rid = started["run_id"]
    worker = f"ttl-{rid}-w1"
    ids = wait_for(lambda: stack.group_containers(worker).get("blast-worker-1"), 120, "the worker")
    # Freeze the worker: its batch never finishes, so only the TTL can end the run. (The
    # cgroup freezer can refuse while a process is in uninterruptible sleep: try again.)
    container = stack.client.containers.get(ids)

    def freeze() -> bool:
        try:
            container.pause()
        except docker.errors.APIError:
            return False
        return True

    wait_for(freeze, 60, "the worker to freeze", interval=1)
    t0 = time.monotonic()
    wait_for(lambda: stack.groups("ttl") == [], 180, "the TTL to delete every group", interval=1)
    assert time.monotonic() - t0 < 150
    status = _status(stack, rid)
    run = status["run"]
    assert run["status"] == "expired"
    assert "deployment.ttl reached" in run["reason"]
    jobs = status["jobs"]
    cancelled = [j for j in jobs if j["status"] == "cancelled"]
    assert cancelled and all("deployment.ttl" in j["error"] for j in cancelled)
    assert stack.containers() == []


def test_bad_input_exits_2_with_one_line_and_creates_nothing(
    run_stack: RunStack, demo_fasta: str, tmp_path: Path
) -> None:
    stack = run_stack
    workload = stack.workload("bad", workers=1)
    before = _queues(stack)
    protein = write(
        tmp_path / "protein.fa", ">p1\nMKWVTFISLLFLFSSAYSRGVFRRDAHKSEVAHRFKDLGEENFKALVLIAFAQYLQQ\n"
    )
    cases = {
        "empty FASTA": ("run", str(workload), str(write(tmp_path / "e.fa", "")), "--db", "demo"),
        "wrong molecule": ("run", str(workload), str(protein), "--db", "demo"),
        "unknown database": (
            "run",
            str(workload),
            str(write(tmp_path / "q.fa", demo_fasta)),
            "--db",
            "nosuchdb",
        ),
        "cancel of an unknown run": ("run", "cancel", "r00000000"),
    }
    for what, args in cases.items():
        proc = stack.deployer(*args)
        assert proc.returncode == 2, f"{what}: {proc.returncode} {proc.stderr}"
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("  hint:")]
        assert len(lines) == 1 and lines[0].startswith("error:"), f"{what}: {proc.stderr}"
        assert "Traceback" not in proc.stderr
    # --detach in Azure (not the local emulator) without a managed identity.
    proc = stack.deployer(
        "run",
        str(workload),
        str(tmp_path / "q.fa"),
        "--db",
        "demo",
        "--detach",
        DEPLOYER_ARM_ENDPOINT="https://management.azure.com",
    )
    assert proc.returncode == 2 and "managed identity" in proc.stderr, proc.stderr
    assert stack.groups("bad") == []
    assert _queues(stack) == before, "bad input created queues"
    runs = stack.run_json("run", "list")["data"]["runs"]
    assert not [r for r in runs if r["deployment"] == "bad"], "bad input recorded a run"


def test_cancel_deletes_the_groups_and_keeps_finished_results(
    run_stack: RunStack, demo_fasta: str, tmp_path: Path
) -> None:
    stack = run_stack
    workload = stack.workload("cancel", workers=1)
    queries = write(tmp_path / "q.fa", demo_fasta)
    started = stack.run_json(
        "run", str(workload), str(queries), "--db", "demo", "--batch-len", "1", "--detach"
    )["data"]
    rid = started["run_id"]
    jobs = BlastClient(connection_string=stack.connection_string)
    wait_for(lambda: any(j.status == "succeeded" for j in jobs.run_jobs(rid)), 240, "a first batch")
    cancelled = stack.run_json("run", "cancel", rid)["data"]
    assert cancelled["status"] == "cancelled"
    assert stack.groups("cancel") == []
    states = {j.status for j in jobs.run_jobs(rid)}
    assert "succeeded" in states and states <= {"succeeded", "cancelled"}, states
    out = tmp_path / "partial"
    summary = stack.run_json("run", "results", rid, "--out", str(out))["data"]
    assert summary["status"] == "cancelled" and summary["failed_batches"] > 0
    kept = (out / "results.6.tsv").read_text().splitlines()
    assert kept, "finished results are kept"
    assert stack.queue_empty_or_gone(f"run-{rid}")
