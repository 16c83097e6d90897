"""``deployer run`` end to end on the local ACI emulator: real containers, Azurite, blastn.

* a 40-batch run on autoscaled Spot workers (0 -> 3 -> 0, ``spot_fallback``) whose first
  burst has one Spot create refused (it falls back to regular), whose janitor is killed once
  and one of whose worker groups is evicted mid-run and replaced: merged 6 is byte-identical
  to one direct blastn, merged 15 holds one report per query, nothing is lost or duplicated,
  the decisions are logged, and afterwards no group, no container and no queue message is
  left;
* ``deployment.ttl`` of 60 s on a run whose worker never finishes: everything is deleted and
  the run and its batches say why;
* bad input exits 2 with one line and creates nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient
from blast_client import BlastClient, shards
from blast_client.demo import DemoSpec, generate
from blast_client.fasta import iter_records
from blast_client.merge import json_reports
from blast_client.messages import Options
from blast_worker.runner import blast_argv

from aci_emulator import FAKE_TOKEN, FakeArm, aci_client
from deployer import contract
from deployer.backends.aci import AciBackend, make_client
from deployer.run import api
from deployer.run.decide import unfinished
from deployer.run.janitor import Janitor, cancel_jobs
from deployer.run.jobview import JobView
from deployer.run.state import Batch, Run, new_run_id, queue_name
from deployer.run.store import RunStore
from testbed import shard_data
from testbed.blast_stack import BlastTools
from testbed.elastic import ELASTIC as ELASTIC_LAB
from testbed.elastic import run_scaler_for
from testbed.engine import freeze, wait_for
from testbed.run_stack import (
    DEMO_DB,
    DIRECT_BLASTN,
    RESOURCE_GROUP,
    RunStack,
    write,
)
from testbed.shard_data import NUCL, PROT

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


ELASTIC = """\
    priority: spot
    spot_fallback: true
    autoscale: {max_workers: 3, target_backlog_per_worker: 4, scale_in_after: 15s}
"""
"""Workers of 1 vCPU, one per group (BIG_WORKER), 0..3 of them, on Spot with fallback."""


def _elastic_queries() -> str:
    """40 demo queries (35 planted, 5 decoys) against the demo database: 40 batches."""
    text: str = generate(DemoSpec(name=DEMO_DB, queries=35)).queries
    return text


class GroupWatch:
    """Polls the deployment's worker groups in the background: the most alive at once, and
    every name seen.

    A group the test evicted is in ``dead``: the janitor sends its delete and goes on, so it
    may still be listed, with no live container, beside its replacement.
    """

    def __init__(self, stack: RunStack, deployment: str) -> None:
        self.stack, self.deployment = stack, deployment
        self.peak = 0
        self.seen: set[str] = set()
        self.dead: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def workers(self) -> list[str]:
        return [g for g in self.stack.groups(self.deployment) if not g.endswith("-janitor")]

    def _poll(self) -> None:
        while not self.stop.is_set():
            try:
                names = self.workers()
            except RuntimeError:  # the emulator stopped (the test failed): stop polling
                return
            self.peak = max(self.peak, len(set(names) - self.dead))
            self.seen.update(names)
            self.stop.wait(0.3)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


HELD = 30
"""Messages of the elastic run the test holds while it evicts a worker and kills the janitor."""


def hold_messages(queue: QueueClient, count: int) -> list[QueueMessage]:
    """Receive up to ``count`` visible messages with a lease of 15 minutes (the test's own).

    Args:
        queue: The run's queue.
        count: Messages to hold.
    """
    held: list[QueueMessage] = []
    while len(held) < count:
        page = list(
            queue.receive_messages(
                messages_per_page=min(32, count - len(held)),
                max_messages=count - len(held),
                visibility_timeout=900,
            )
        )
        if not page:
            break
        held.extend(page)
    return held


def release(queue: QueueClient, held: list[QueueMessage]) -> None:
    """Make held messages visible again at once (each one delivery more, as after a crash).

    Args:
        queue: The run's queue.
        held: From :func:`hold_messages`.
    """
    for msg in held:
        queue.update_message(msg.id, msg.pop_receipt, visibility_timeout=0)


def test_elastic_run_scales_0_to_max_to_0_survives_eviction_spot_refusal_and_a_killed_janitor(
    run_stack: RunStack, tmp_path: Path
) -> None:
    """40 batches on autoscaled Spot workers (0 -> 3 -> 0): the first burst's third Spot create
    is refused and falls back to regular; the janitor is killed once and ACI restarts it
    without doubling or losing groups; a Spot group is evicted mid-run and replaced; merged 6
    is byte-identical to one direct blastn and nothing is lost or duplicated; every decision
    is in the log table and the latest in `run status`; nothing is left afterwards."""
    stack = run_stack
    # A build recorded the images by digest, and no tag is pinned: every group of the run,
    # those the janitor creates later from its template too, must name exactly those.
    built = stack.record_build()
    workload = stack.workload("e2e", workers=1)
    text = workload.read_text().replace(
        "bytes_to_cache: 100000000", f"bytes_to_cache: {BIG_WORKER}"
    )
    text = text.replace("    workers: 1\n", "")
    workload.write_text(text.replace("    databases:", ELASTIC + "    databases:"))
    fasta = _elastic_queries()
    queries = write(tmp_path / "queries.fa", fasta)
    out = tmp_path / "out"
    # ACI has no Spot capacity for the first create: that group falls back to regular.
    stack.arm.aci.refuse_spot(location="westeurope", count=1)
    watch = GroupWatch(stack, "e2e")
    run = stack.start(
        "run", str(workload), str(queries), "--db", "demo", "--batch-len", "1",
        "--outfmt", "6,7,15", "--out", str(out), "--output", "json",
        DEPLOYER_SCALE_OUT_INTERVAL="3", DEPLOYER_IMAGE_TAG="",
    )  # fmt: skip
    line = run.submitted()
    rid = line.split()[1].rstrip(":")
    janitor = f"e2e-{rid}-janitor"
    # It starts with no worker group: the janitor creates them.
    assert line.rstrip().endswith(f"groups {janitor}"), line
    jobs = BlastClient(connection_string=stack.connection_string)
    # However fast this machine runs batches, the run must still be going through the
    # eviction and the janitor's kill: the test holds 30 of the 40 messages (leased for
    # itself, still queued in the job table, so the backlog still wants 3 workers) and
    # hands them back once both are done. At most 10 batches can finish before that.
    held = hold_messages(stack.queue(queue_name(rid)), HELD)
    assert len(held) == HELD, f"only {len(held)} messages were still queued to hold"

    def done() -> int:
        return sum(j.status == "succeeded" for j in jobs.run_jobs(rid))

    def at_max_and_some_done() -> bool:
        return len(watch.workers()) == 3 and done() >= 3

    wait_for(at_max_and_some_done, 240, "3 worker groups and the first batches", interval=0.3)
    # Evict a running Spot worker group with whatever it holds: the janitor bills and deletes
    # it and creates a replacement; its leases expire and another worker redoes its batches.
    spot = stack.spot_groups(rid)
    assert spot and all(g.ip_address is None for g in spot)
    evicted = str(spot[0].name)
    before = set(watch.seen)

    def evict() -> bool:
        if not stack.evict(evicted, restore_after=60):
            return False
        watch.dead.add(evicted)
        return True

    wait_for(evict, 60, f"{evicted} to run, to evict it", interval=0.3)
    wait_for(lambda: watch.seen - before - {evicted}, 120, "a replacement group", interval=0.3)
    # The janitor sent its delete before it created the replacement: the evicted group is only
    # left out of the peak while that delete completes, never while it could run again.
    wait_for(lambda: evicted not in watch.workers(), 120, f"{evicted} to be deleted", interval=0.3)
    # Kill the janitor once: ACI (OnFailure) restarts it and it carries on from Table storage.
    stack.client.containers.get(stack.group_containers(janitor)["janitor"]).kill()
    release(stack.queue(queue_name(rid)), held)

    def janitor_restarted() -> bool:
        with aci_client(stack.arm) as aci:
            group = aci.container_groups.get(RESOURCE_GROUP, janitor)
        view = group.containers[0].instance_view
        return bool(view and (view.restart_count or 0) >= 1)

    wait_for(janitor_restarted, 60, "ACI to restart the killed janitor", interval=0.5)
    code, stdout, stderr = run.finish(timeout=420)
    watch.close()
    assert code == 0, stderr[-4000:]
    summary = json.loads(stdout)["data"]
    assert summary["status"] == "succeeded" and summary["batches"] == 40
    assert summary["queries"] == 40 and summary["failed_batches"] == 0
    # 0 -> 3 -> 0, never more than max_workers (a restarted janitor doubles nothing).
    assert watch.peak == 3, watch.peak
    assert len(watch.seen) >= 4 and evicted in watch.seen

    # Every group is billed once, at its own priority: Spot, the regular fallback, the
    # janitor (its bill spans both lives) regular.
    lines = {line["group"]: line for line in summary["bill"]["lines"]}
    assert lines[janitor]["kind"] == "janitor" and lines[janitor]["priority"] == "Regular"
    workers = {g: line["priority"] for g, line in lines.items() if g != janitor}
    assert set(workers) == watch.seen, (workers, watch.seen)
    assert workers[evicted] == "Spot" and "Regular" in workers.values()
    assert all(line["location"] == "westeurope" for line in lines.values())

    merged6 = (out / "results.6.tsv").read_bytes()
    direct = stack.in_worker_image(f"import sys; sys.argv[1:] = [{fasta!r}]\n" + DIRECT_BLASTN)
    assert merged6 == direct, "merged outfmt 6 differs from one direct blastn of the whole file"
    rows = merged6.decode().splitlines()
    assert rows and len(rows) == len(set(rows)), "a batch is duplicated in the merged output"
    report = json.loads((out / "results.15.json").read_text())
    titles = [r["report"]["results"]["search"]["query_title"] for r in report["BlastOutput2"]]
    assert [t.split()[0] for t in titles] == [r.header.split()[0] for r in iter_records(fasta)]
    seven = (out / "results.7.txt").read_text()
    assert seven.count("# Query: ") == 40 and seven.endswith("# BLAST processed 40 queries\n")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len({b["job_id"] for b in manifest["batches"]}) == 40
    assert all(b["state"] == "succeeded" for b in manifest["batches"])
    assert set(manifest["files"]) >= {"results.6.tsv", "results.7.txt", "results.15.json"}
    # Only a merge of shards reads archives: a run of the whole database keeps none.
    assert not [f for f in manifest["files"] if f.startswith("batches/")]
    assert all("archive" not in b for b in manifest["batches"])

    # The decisions, with their inputs: all in the log table, the latest in `run status`.
    table = TableClient.from_connection_string(stack.connection_string, "blastjobs")
    logged = [
        json.loads(r["decision"])
        for r in table.query_entities("PartitionKey eq @p", parameters={"p": f"scale-{rid}"})
    ]
    creates = [a for row in logged for a in row["actions"] if a["action"] == "create"]
    assert {a["priority"] for a in creates} == {"Spot", "Regular"}, creates
    assert any(row["desired"] == 3 and row["actual"] == 0 for row in logged)
    assert min(row["desired"] for row in logged) < 3, "the backlog never fell"
    refused = [o for row in logged for o in row["outcomes"] if not o["ok"]]
    assert refused and refused[0]["verdict"]["kind"] == "capacity", refused
    shown = _status(stack, rid)["decisions"]
    assert shown and set(shown[-1]) >= {"backlog", "in_flight", "quota_left", "desired", "actual"}

    # Issue 19's regression: the run's janitor and every worker group, created by the run or
    # later by the janitor, named the references the build recorded (by digest).
    named = {
        call.path.rsplit("/", 1)[1]: {
            c["properties"]["image"] for c in call.body["properties"]["containers"]
        }
        for call in stack.arm.calls("PUT", operation_id="ContainerGroups_CreateOrUpdate")
        # Accepted creates only: ACI refused the first Spot one.
        if call.path.rsplit("/", 1)[1].startswith(f"e2e-{rid}-") and call.status < 300
    }
    assert named[janitor] == {built["deployer"]}
    assert set(named) - {janitor} == watch.seen
    assert all(named[g] == {built["blast-worker"]} for g in watch.seen), named
    assert "@sha256:" in built["blast-worker"] and "@sha256:" in built["deployer"]

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
    # The tuner cuts the queries of one worker into one round: a single batch.
    assert "1 worker x 1 thread, 1 batch of at most" in started["tuning"], started["tuning"]
    worker = f"ttl-{rid}-w1"
    ids = wait_for(lambda: stack.group_containers(worker).get("blast-worker-1"), 120, "the worker")
    # Freeze the worker: its batch never finishes, so only the TTL can end the run.
    freeze(stack.client.containers.get(ids))
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
    # An image the registry does not hold: refused before anything is created, in one line
    # that names it and `deployer build`.
    proc = stack.deployer(
        "run", str(workload), str(tmp_path / "q.fa"), "--db", "demo", DEPLOYER_IMAGE_TAG="nope"
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "emulator.azurecr.io/blast-worker:nope" in lines[0], proc.stderr
    assert f"deployer build {workload}" in proc.stderr and "Traceback" not in proc.stderr
    assert stack.arm.calls("PUT", path="/bad-") == []
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
    # What the file and the command line give wins over the tuner, and the run says so.
    assert started["tuning"].startswith("Run tuning (blastn, 1 core): 1 worker x 1 thread, ")
    assert "threads_per_worker 1 in the workload file; --batch-len 1 given" in started["tuning"]
    jobs = BlastClient(connection_string=stack.connection_string)
    wait_for(lambda: any(j.status == "succeeded" for j in jobs.run_jobs(rid)), 240, "a first batch")
    cancelled = stack.run_json("run", "cancel", rid)["data"]
    assert cancelled["status"] == "cancelled"
    assert stack.groups("cancel") == []
    listed = jobs.run_jobs(rid)
    assert len(listed) == started["batches"], "every batch has a row, the unstarted ones too"
    states = {j.status for j in listed}
    assert "succeeded" in states and states <= {"succeeded", "cancelled"}, states
    out = tmp_path / "partial"
    summary = stack.run_json("run", "results", rid, "--out", str(out))["data"]
    assert summary["status"] == "cancelled" and summary["failed_batches"] > 0
    kept = (out / "results.6.tsv").read_text().splitlines()
    assert kept, "finished results are kept"
    assert stack.queue_empty_or_gone(f"run-{rid}")


def _on_fake_arm(monkeypatch: pytest.MonkeyPatch, arm: FakeArm, stack: RunStack) -> AciBackend:
    """Point the deployer (this process) at the fake ARM server and the stack's storage;
    return its ACI backend."""
    monkeypatch.setenv("DEPLOYER_ARM_ENDPOINT", arm.url)
    monkeypatch.setenv("DEPLOYER_ACCESS_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", stack.connection_string)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", arm.subscription_id)
    monkeypatch.setenv("DEPLOYER_RESOURCE_GROUP", RESOURCE_GROUP)
    return AciBackend(make_client(arm.subscription_id), RESOURCE_GROUP, "westeurope")


def test_the_in_process_janitor_scales_keeps_its_state_and_shows_its_decisions(
    run_stack: RunStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``deployer run`` without a janitor group is the janitor itself (``watch`` with the
    scaler from ``start``): its passes create the workers the backlog wants in ACI (the fake
    ARM server, no containers), store the scaler's state in the run record and the decisions
    in the table; a second janitor (a restart) creates nothing more; `run status` shows the
    decisions; `run cancel` deletes the groups."""
    stack = run_stack
    with FakeArm() as arm:
        backend = _on_fake_arm(monkeypatch, arm, stack)
        rid = new_run_id()
        scaler = run_scaler_for(ELASTIC_LAB, rid)
        client = BlastClient(connection_string=stack.connection_string, queue=queue_name(rid))
        client.ensure_resources()
        store = RunStore(client.storage.table)
        batches = tuple(Batch(i, f"{rid}-b{i}", 1) for i in range(1, 9))
        store.create(Run(rid, "lab", "running", time.time(), {"autoscale": True}, 8, batches))

        run, _ = Janitor(rid, store, client, backend, scaler=scaler).step()
        workers = sorted(g.name for g in backend.list("lab"))
        assert workers == [f"lab-{rid}-w1", f"lab-{rid}-w2"]  # 8 queued / 4 per worker
        assert set(run.groups) == set(workers) and run.scale
        arm.clear_calls()
        Janitor(rid, store, client, backend, scaler=scaler).step()  # a restart
        assert arm.calls("PUT") == [], "a restarted janitor created groups again"

        shown = api.status(rid, backend_factory=lambda s: backend)
        assert [(d["desired"], d["actual"], d["backlog"]) for d in shown.decisions][:1] == [
            (2, 0, 8)
        ]
        cancelled = api.cancel(rid, backend_factory=lambda s: backend)
        assert cancelled.status == "cancelled" and backend.list("lab") == []


def test_deployer_run_returns_once_the_groups_it_deleted_are_gone(
    run_stack: RunStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When its own pass ends a run (no janitor group is left), ``deployer run``'s watch
    returns once ARM no longer lists the run's groups, not once their deletes are sent: ARM
    (here the fake one, without containers) takes seconds to delete a group."""
    stack = run_stack
    with FakeArm() as arm:
        arm.aci.delete_delay = 3.0
        backend = _on_fake_arm(monkeypatch, arm, stack)
        rid = new_run_id()
        client = BlastClient(connection_string=stack.connection_string, queue=queue_name(rid))
        client.ensure_resources()
        store = RunStore(client.storage.table)
        batches = tuple(Batch(i, f"{rid}-b{i}", 1) for i in range(1, 9))
        store.create(Run(rid, "lab", "running", time.time(), {"autoscale": True}, 8, batches))
        # The lab scaler (deployment "lab") creates 2 worker groups for 8 queued batches.
        Janitor(rid, store, client, backend, scaler=run_scaler_for(ELASTIC_LAB, rid)).step()
        assert len(backend.list("lab")) == 2
        found = store.get(rid)
        assert found is not None
        store.save(replace(found[0], status="cancelled", finished=time.time()), found[1])

        shown = api.watch(rid, backend_factory=lambda s: backend, interval=0.2, timeout=60)
        assert shown.final and shown.groups == ()
        assert backend.list("lab") == [], "deployer run returned with groups still deleting"


@pytest.mark.parametrize("who", ["janitor", "watch"])
def test_a_run_ends_right_after_its_last_batch_not_a_pass_later(
    run_stack: RunStack, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    """While a run's last batch may finish before the next pass (here: one batch waits
    behind one running, at the pace of a finished one, a second), the janitor looks at the
    rows between passes (every ``FINISH_CHECK_S``): the pass that ends the run, and would
    delete its idle, billed workers, comes right after the last batch, not up to a pass
    interval (here 120 s) later. The same holds for ``deployer run``'s watch, the janitor
    itself when no janitor group is left."""
    stack = run_stack
    interval = 120.0
    with FakeArm() as arm:
        backend = _on_fake_arm(monkeypatch, arm, stack)
        rid = new_run_id()
        client = BlastClient(connection_string=stack.connection_string, queue=queue_name(rid))
        client.ensure_resources()
        store = RunStore(client.storage.table)
        batches = tuple(Batch(i, f"{rid}-b{i}", 1) for i in (1, 2, 3))
        # Autoscaled, with no scaler: the passes neither create workers nor miss any.
        store.create(Run(rid, "lab", "running", time.time(), {"autoscale": True}, 3, batches))
        now = time.time()
        for batch in batches:
            client.joblog.record_queued(batch.job_id, "blastn", "demo", None, run_id=rid)
        client.joblog.update_unless_final(
            batches[0].job_id, status="succeeded", started=now - 2, finished=now - 1
        )
        client.joblog.update_unless_final(batches[1].job_id, status="running", started=now)
        passes: list[float] = []
        ended: list[str] = []

        def end() -> None:
            if who == "janitor":
                run = Janitor(rid, store, client, backend).until_done(
                    interval, on_pass=lambda *_: passes.append(time.monotonic())
                )
            else:
                run = api.watch(
                    rid,
                    backend_factory=lambda s: backend,
                    interval=interval,
                    on_progress=lambda _: passes.append(time.monotonic()),
                ).run
            ended.append(run.status)

        # Without the looks it would pass again in 120 s: the join gives up first.
        thread = threading.Thread(target=end, daemon=True)
        thread.start()
        wait_for(lambda: passes, 30, "the first pass")
        for index, status in ((1, "succeeded"), (2, "running"), (2, "succeeded")):
            client.joblog.update_unless_final(batches[index].job_id, status=status)
        done_at = time.monotonic()
        thread.join(timeout=interval / 2)
        assert ended == ["succeeded"], f"the {who} did not end the run in half a pass interval"
        assert len(passes) == 2 and passes[1] - done_at < interval / 4


def test_the_janitors_first_read_leaves_queued_rows_out_and_later_reads_see_a_return(
    run_stack: RunStack,
) -> None:
    """The janitor's job view (``skip_queued``) reads a run's rows on Azurite without the
    queued ones at first, which the janitor counts as queued unread; its later reads see every
    change, a batch gone back to its queue too. The view that is shown reads every row."""
    rid = new_run_id()
    client = BlastClient(connection_string=run_stack.connection_string, queue=queue_name(rid))
    client.ensure_resources()
    batches = tuple(Batch(i, f"{rid}-b{i}", 1) for i in (1, 2, 3))
    run = Run(rid, "lab", "running", time.time(), {}, 3, batches)
    for batch in batches:
        client.joblog.record_queued(batch.job_id, "blastn", "demo", None, run_id=rid)
    first, second, third = (b.job_id for b in batches)
    client.joblog.update_unless_final(second, status="running", started=time.time())
    client.joblog.update_unless_final(third, status="succeeded", finished=time.time())

    janitors = JobView.of(run, skip_queued=True)
    assert janitors.refresh(client).keys() == {second, third}
    assert JobView.of(run).refresh(client).keys() == {first, second, third}
    assert unfinished(run, janitors.statuses()) == [first, second]

    client.joblog.update_unless_final(second, status="queued")  # e.g. its worker was evicted
    assert janitors.refresh(client)[second].status == "queued"
    seen = janitors.statuses()
    assert [seen.get(j, "queued") for j in (first, second, third)] == ["queued"] * 2 + ["succeeded"]


def test_cancelling_jobs_creates_the_missing_rows_and_leaves_final_ones(
    run_stack: RunStack,
) -> None:
    """``cancel_jobs`` creates a cancelled row for a job never started (a run's jobs are
    queued without rows), with its index entries, and cancels a row that exists even when
    the caller had not read it; a finished job keeps its row."""
    rid = new_run_id()
    client = BlastClient(connection_string=run_stack.connection_string, queue=queue_name(rid))
    client.ensure_resources()
    never, unseen, running, done = (f"{rid}-b{i}" for i in (1, 2, 3, 4))
    client.joblog.update_unless_final(unseen, status="running", started=time.time(), run_id=rid)
    client.joblog.update_unless_final(running, status="running", started=time.time(), run_id=rid)
    client.joblog.update_unless_final(done, status="succeeded", finished=time.time(), run_id=rid)

    # The caller read only the running job's row: the others are unread.
    cancel_jobs(
        client, rid, [never, unseen, running, done], "cancelled", time.time(), {never, unseen, done}
    )
    states = {j.job_id: j.status for j in client.run_jobs(rid)}
    assert states == {
        never: "cancelled",
        unseen: "cancelled",
        running: "cancelled",
        done: "succeeded",
    }
    row = client.joblog.get(never)
    assert row is not None and row["error"] == "cancelled" and row["run_id"] == rid
    assert never in {s.job_id for s in client.recent(since=3600)}


SHARDED_RUNS = [
    # Megablast (blastn's default task), -task blastn and blastp, each in 2 and in 4 shards.
    # Megablast in 2 shards with BLAST's default limit checks every merged format; the others
    # outfmt 6 only (7 and 15 merge by the same order and cut). Two cases have a limit below
    # the hits available, so the merge's cut bites.
    pytest.param(NUCL, "blastn", None, 2, None, (6, 7, 15), id="megablast-2shards"),
    pytest.param(NUCL, "blastn", None, 4, None, (6,), id="megablast-4shards"),
    pytest.param(NUCL, "blastn", "blastn", 2, None, (6,), id="blastn-task-2shards"),
    pytest.param(NUCL, "blastn", "blastn", 4, 10, (6,), id="blastn-task-4shards-max10"),
    pytest.param(PROT, "blastp", None, 2, None, (6,), id="blastp-2shards"),
    pytest.param(PROT, "blastp", None, 4, 5, (6,), id="blastp-4shards-max5"),
]


@pytest.mark.parametrize(("data", "program", "task", "count", "limit", "fmts"), SHARDED_RUNS)
def test_a_sharded_run_merges_each_batchs_shards_into_one_search_of_the_whole_database(
    run_stack: RunStack,
    docker_client: Any,
    tmp_path: Path,
    data: shard_data.ShardData,
    program: str,
    task: str | None,
    count: int,
    limit: int | None,
    fmts: tuple[int, ...],
) -> None:
    """``deployer run`` of a database of 4 or more volumes in 2 or 4 shards (``shards: N``):
    every batch is one job per shard, the merged outfmt 6 and 7 are byte-identical to one
    search of the whole database (blastn; blastp with ``--max-target-seqs`` below the hits
    available, so the merge's cut bites) and 15 equal as JSON to each batch's search of it;
    the summary counts the merged hits; the manifest names each shard and keeps its archive."""
    stack = run_stack
    tools = BlastTools(docker_client, tmp_path, f"acitest{os.getpid()}runshard{count}")
    limit_args = ["-max_target_seqs", str(limit)] if limit else []
    task_args = ["-task", task] if task else []
    try:
        fasta, queries = shard_data.write(data, tmp_path)
        db = tmp_path / data.name
        # Without -parse_seqids, 15 names each hit by its ordinal id (gnl|BL_ORD_ID|7), which
        # a shard counts from its own first sequence: the merge must renumber them.
        tools.run(shard_data.makeblastdb_argv(data, str(fasta), str(db), False))
        files = [p for p in tmp_path.glob(f"{data.name}.*") if p.suffix != ".fa"]
        BlastClient(connection_string=stack.connection_string).upload_database(data.name, files)
        direct = {
            fmt: tools.run(
                [program, "-db", str(db), "-query", str(queries), "-outfmt", str(fmt),
                 "-num_threads", "1", *limit_args, *task_args]
            ).stdout
            for fmt in fmts if fmt != 15
        }  # fmt: skip
        workload = stack.workload(f"shards{count}", workers=2, db=data.name, shards=count)
        plan = stack.run_json("plan", str(workload), "--offline")["data"]
        assert f"{count} shards" in json.dumps(plan), plan
        out = tmp_path / "out"
        ran = stack.deployer(
            "--output", "json", "run", str(workload), str(queries), "--db", data.name,
            "--program", program, "--outfmt", ",".join(map(str, fmts)),
            "--batch-len", "300" if program == "blastn" else "150", "--out", str(out),
            *(["--max-target-seqs", str(limit)] if limit else []),
            *(["--task", task] if task else []),
        )  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text())
        # 15 of one search, batch by batch as the run cut the queries, by the worker's route
        # (archive, then blast_formatter): blast_formatter repeats each archive's first
        # query's eff_space, where blastn -outfmt 15 reports each query's own.
        records = [f">{r}" for r in queries.read_text().split(">")[1:]]
        direct15: list[Any] = []
        for b in manifest["batches"] if 15 in fmts else []:
            part = tmp_path / f"batch{b['index']}.fa"
            part.write_text("".join(records[: b["queries"]]))
            del records[: b["queries"]]
            archive = part.with_suffix(".asn1")
            options = Options(task=task, max_target_seqs=limit)
            tools.run(blast_argv(program, db, part, archive, options, 1))
            formatted = tools.run(["blast_formatter", "-archive", str(archive), "-outfmt", "15"])
            direct15 += json_reports(formatted.stdout)
        assert not records or 15 not in fmts
    finally:
        tools.close()
    jobs = BlastClient(connection_string=stack.connection_string).run_jobs(manifest["run_id"])
    errors = {j.job_id: j.to_json() for j in jobs if j.status != "succeeded"}
    assert not errors, f"{ran.stderr[-3000:]}\n{errors}"
    assert ran.returncode == 0, f"{ran.stderr[-3000:]}\n{errors}"
    batches = manifest["batches"]
    assert len(batches) > 1 and manifest["parameters"]["shards"] == count
    assert manifest["parameters"]["max_target_seqs"] == limit
    for b in batches:
        assert [s["shard"] for s in b["shards"]] == list(range(1, count + 1))
        assert b["state"] == "succeeded"
        assert all(
            (out / s["archive"]).read_bytes().startswith(b"Blast4-archive") for s in b["shards"]
        )
    merged6 = (out / "results.6.tsv").read_bytes()
    assert merged6 == direct[6]
    # The summary counts the merged hits; with a limit, the shards found more between them.
    summary = json.loads(ran.stdout)["data"]
    assert summary["hits"] == len(merged6.splitlines())
    if limit:
        assert sum(j.hits or 0 for j in jobs) > summary["hits"]
    # 7 and 15 name the database as the worker caches it, not as the direct search found it.
    whole = f"{contract.BLAST_DB_CACHE}/{data.name}/{data.name}"
    if 7 in fmts:
        merged7 = (out / "results.7.txt").read_bytes()
        assert merged7 == direct[7].replace(str(db).encode(), whole.encode())
    if 15 in fmts:
        # 15's search_target.db is the only field normalised: the renumbered ordinal ids and
        # the whole database's statistics must be the direct search's.
        assert "gnl|BL_ORD_ID|" in json.dumps(direct15)
        for report in direct15:
            assert report["report"]["search_target"]["db"] == str(db)
            report["report"]["search_target"]["db"] = whole
        merged15 = json.loads((out / "results.15.json").read_bytes())
        assert merged15 == {"BlastOutput2": direct15}
    assert stack.groups(f"shards{count}") == []
    # Memory: every worker group serves one shard from that shard's queue, so each worker ran
    # (and cached: a worker caches the shard its job names) only its own shard's volumes,
    # the memory it was sized for; and every shard had a worker. Plan and run say how.
    pinning = f"each worker group serves one of the {count} shards from its own queue"
    assert pinning in json.dumps(plan) and pinning in ran.stderr, ran.stderr[-3000:]
    shards_of: dict[str, set[str]] = {}
    for job in jobs:
        assert job.worker, job.to_json()
        shards_of.setdefault(job.worker, set()).add(job.job_id.rsplit("-s", 1)[1])
    assert all(len(served) == 1 for served in shards_of.values()), shards_of
    assert set().union(*shards_of.values()) == {str(k) for k in range(1, count + 1)}
    # Each job's row says what its worker's cache held when it succeeded: its shard alone.
    for job in jobs:
        k = int(job.job_id.rsplit("-s", 1)[1])
        assert job.row.get("cached") == shards.shard_name(data.name, k - 1, count), job.to_json()
    assert not {q for q in _queues(stack) if q.startswith(f"run-{manifest['run_id']}")}
