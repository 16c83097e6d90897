"""``deployer run``'s pure parts: run ids, merging, billing, the run's groups, the janitor's
decisions."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from blast_client import JobStatus

from deployer.backends.base import ContainerStatus, ObservedGroup
from deployer.deployment_secrets import DeploymentSecrets
from deployer.errors import WorkloadFileError
from deployer.plan.janitor import janitor_group
from deployer.pricing import PriceSheet
from deployer.run import merge
from deployer.run.billing import bill_of, price
from deployer.run.decide import (
    Bill,
    CancelJobs,
    Delete,
    DeleteSelf,
    DropQueues,
    Finish,
    decide,
    ending_look,
    group_size,
    may_end_within,
    next_look,
)
from deployer.run.groups import worker_groups
from deployer.run.state import Batch, GroupBill, Run, is_run_id, new_run_id, queue_name
from deployer.settings import Settings
from deployer.workload import duration_seconds, parse

SECRETS = DeploymentSecrets.generate("demo")
IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/id"
)


def test_run_ids_are_short_and_distinct() -> None:
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200 and all(is_run_id(i) for i in ids)
    assert not is_run_id("r123") and not is_run_id("../etc")
    assert len(f"{'d' * 40}-{next(iter(ids))}-janitor") <= 63
    assert queue_name("r0000abcd") == "run-r0000abcd"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("60m", 3600), ("8h", 28800)])
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["8", "h", "0m", "1.5h", "-1h", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


def test_workload_keys_ttl_and_idle_shutdown() -> None:
    w = parse(
        "deployment: {name: demo, ttl: 8h}\nworkloads:\n  ipyparallel: {engines: 2, "
        "idle_shutdown: 60m}\n"
    )
    assert w.deployment.ttl == "8h" and w.workloads.ipyparallel is not None
    assert w.workloads.ipyparallel.idle_shutdown == "60m"
    with pytest.raises(WorkloadFileError, match=r"deployment\.ttl"):
        parse("deployment: {name: demo, ttl: soon}\nworkloads:\n  ipyparallel: {engines: 2}\n")


# --- merge ---------------------------------------------------------------------


def _fmt7(queries: list[tuple[str, list[str]]]) -> bytes:
    out = ""
    for q, hits in queries:
        out += f"# BLASTN 2.16.0+\n# Query: {q}\n# Database: demo\n"
        if hits:
            out += "# Fields: query acc.ver, subject acc.ver\n"
        out += f"# {len(hits)} hits found\n" + "".join(f"{q}\t{h}\n" for h in hits)
    n = len(queries)
    return (out + f"# BLAST processed {n} {'query' if n == 1 else 'queries'}\n").encode()


def test_merge_7_equals_one_run_of_all_queries() -> None:
    a = [("q1", ["s1", "s2"]), ("q2", [])]
    b = [("q3", ["s9"])]
    assert merge.merge(7, [_fmt7(a), _fmt7(b)]) == _fmt7(a + b)
    assert merge.merge(7, [_fmt7(b)]) == _fmt7(b)


def test_merge_7_rejects_a_truncated_part() -> None:
    with pytest.raises(merge.MergeError, match="batch 2"):
        merge.merge(7, [_fmt7([("q1", [])]), b"# BLASTN 2.16.0+\n# Query: q2\n"])


def test_merge_6_concatenates() -> None:
    assert merge.merge(6, [b"q1\ts1\n", b"", b"q3\ts3\n"]) == b"q1\ts1\nq3\ts3\n"


def test_merge_15_is_one_document_with_every_report() -> None:
    parts = [
        json.dumps({"BlastOutput2": [{"report": {"q": i}} for i in range(j, j + 2)]}).encode()
        for j in (0, 2, 4)
    ]
    doc = json.loads(merge.merge(15, parts))
    assert [r["report"]["q"] for r in doc["BlastOutput2"]] == list(range(6))
    with pytest.raises(merge.MergeError, match="batch 1"):
        merge.merge(15, [b"{}"])


def test_a_run_refuses_to_merge_without_a_batch_and_names_each_bad_one() -> None:
    # The merge is blast_client's (the web page's too); a run writes no merged file that
    # misses a batch.
    good = json.dumps({"BlastOutput2": [{"report": {"q": 1}}]}).encode()
    with pytest.raises(merge.MergeError) as info:
        merge.merge(15, [b"not json", good, b'{"BlastOutput2": 3}'])
    assert str(info.value) == (
        "batch 1: outfmt 15 result is not BLAST JSON; batch 3: BlastOutput2 is not a list"
    )
    assert merge.batch_file(3, "job-1", 11) == "batches/00003-job-1.asn1"


def test_manifest_lists_batches_hashes_and_parameters() -> None:
    run = Run(
        "r00000001",
        "demo",
        "succeeded",
        1.0,
        params={"program": "blastn", "db": "demo"},
        queries=3,
        batches=(Batch(1, "j1", 2), Batch(2, "j2", 1)),
    )
    files = {"results.6.tsv": b"x\n"}
    m = merge.manifest(run, files, {"j1": "succeeded", "j2": "succeeded"})
    assert m["parameters"] == {"program": "blastn", "db": "demo"}
    assert [b["job_id"] for b in m["batches"]] == ["j1", "j2"]
    # A batch searched whole keeps no archive (only a merge of shards reads them).
    assert all("archive" not in b for b in m["batches"])
    assert m["files"]["results.6.tsv"]["sha256"] == merge.sha256(b"x\n")


# --- billing -------------------------------------------------------------------


def _group(
    name: str, *states: tuple[str, float | None, float | None], kind: str = "workers"
) -> ObservedGroup:
    return ObservedGroup(
        name=name,
        provisioning_state="Succeeded",
        tags={"kind": kind, "run": "r00000001"},
        canonical={
            "recreate": {
                "containers": {f"c{i}": {"cpu": 20, "memory": 35} for i in range(len(states))}
            }
        },
        containers=tuple(
            ContainerStatus(f"c{i}", state, False, started=start, finished=stop)
            for i, (state, start, stop) in enumerate(states)
        ),
    )


def test_bill_spans_first_start_to_last_stop() -> None:
    g = _group("w1", ("Terminated", 100.0, 160.0), ("Terminated", 110.0, 190.0))
    assert group_size(g) == (4.0, 7.0)
    bill = bill_of(g, "workers", 4.0, 7.0, now=1000.0)
    assert bill is not None and (bill.start, bill.stop, bill.seconds) == (100.0, 190.0, 90.0)
    running = bill_of(_group("w2", ("Running", 100.0, None)), "workers", 2, 3.5, now=130.0)
    assert running is not None and running.seconds == 30.0
    assert bill_of(_group("w3", ("Waiting", None, None)), "workers", 2, 3.5, now=130.0) is None


def test_price_sums_vcpu_and_gb_seconds() -> None:
    sheet = PriceSheet(0.01, 0.001, "USD", "test")
    total = price(
        [GroupBill("w1", "workers", 2, 4, 0, 10), GroupBill("j", "janitor", 0.5, 1, 0, 20)], sheet
    )
    assert total.vcpu_seconds == 30 and total.gb_seconds == 60
    assert total.cost == pytest.approx(30 * 0.01 + 60 * 0.001)
    assert [line.group for line in total.lines] == ["w1", "j"]


# --- decisions -----------------------------------------------------------------

RUN = Run(
    "r00000001",
    "demo",
    "running",
    0.0,
    batches=(Batch(1, "j1", 1), Batch(2, "j2", 1)),
    groups=("demo-r00000001-w1", "demo-r00000001-w2", "demo-r00000001-janitor"),
    janitor="demo-r00000001-janitor",
)
W1_DONE = _group("demo-r00000001-w1", ("Terminated", 10.0, 50.0))
W2_RUNNING = _group("demo-r00000001-w2", ("Running", 10.0, None))
JANITOR = _group("demo-r00000001-janitor", ("Running", 5.0, None), kind="janitor")


def test_a_terminated_worker_group_is_billed_then_deleted() -> None:
    steps = decide(RUN, {"j1": "succeeded", "j2": "running"}, [W1_DONE, W2_RUNNING, JANITOR], 60.0)
    assert [type(s) for s in steps] == [Bill, Delete]
    assert isinstance(steps[1], Delete) and steps[1].group == W1_DONE.name


def test_final_run_deletes_everything_janitor_last() -> None:
    steps = decide(RUN, {"j1": "succeeded", "j2": "succeeded"}, [JANITOR, W2_RUNNING], 60.0)
    assert steps[0] == Finish("succeeded", "all 2 batches succeeded")
    assert isinstance(steps[-1], DeleteSelf) and steps[-1].group == JANITOR.name
    assert [s.group for s in steps if isinstance(s, Delete)] == [W2_RUNNING.name]


def test_a_failed_batch_fails_the_run_but_keeps_going_to_the_end() -> None:
    steps = decide(RUN, {"j1": "succeeded", "j2": "poisoned"}, [], 60.0)
    assert steps == [Finish("failed", "1 of 2 batches did not succeed")]


def test_ttl_cancels_unfinished_batches_and_says_why() -> None:
    run = replace(RUN, deadline=50.0)
    steps = decide(run, {"j1": "succeeded"}, [W2_RUNNING, JANITOR], 60.0)
    assert isinstance(steps[0], Finish) and steps[0].status == "expired"
    assert "deployment.ttl reached" in steps[0].reason
    # Batches are cancelled once no worker is left to mark them running again.
    kinds = [type(s) for s in steps]
    assert kinds.index(CancelJobs) > kinds.index(Delete)
    assert CancelJobs(("j2",), "cancelled: deployment.ttl reached") in steps
    assert isinstance(steps[-1], DeleteSelf)


def test_a_restarted_janitor_does_not_bill_twice() -> None:
    done = replace(RUN, status="succeeded").with_bill(
        GroupBill(W2_RUNNING.name, "workers", 2, 3.5, 10, 40)
    )
    steps = decide(done, {}, [W2_RUNNING, JANITOR], 60.0)
    assert [type(s) for s in steps] == [Delete, DropQueues, Bill, DeleteSelf]


def test_lost_workers_fail_the_run_instead_of_hanging() -> None:
    gone = replace(RUN, deleted=("demo-r00000001-w1", "demo-r00000001-w2"))
    steps = decide(gone, {"j1": "succeeded", "j2": "queued"}, [JANITOR], 60.0)
    assert isinstance(steps[0], Finish) and steps[0].status == "failed"
    assert steps[1] == CancelJobs(("j2",), "cancelled: no worker left to run it")
    # Right after the start a missing worker group may still be being created.
    assert decide(RUN, {"j2": "queued"}, [JANITOR], 60.0) == []
    assert isinstance(decide(RUN, {"j2": "queued"}, [JANITOR], 1000.0)[0], Finish)


def test_nothing_to_do_while_work_runs() -> None:
    assert decide(RUN, {"j1": "running"}, [W2_RUNNING, JANITOR], 60.0) == []


def _jobs(*spec: tuple[str, str, float | None, float | None]) -> dict[str, JobStatus]:
    """Job statuses by id from (id, status, started, finished)."""
    return {j: JobStatus(j, status, started=s, finished=f) for j, status, s, f in spec}


RUN3 = replace(RUN, batches=(*RUN.batches, Batch(3, "j3", 1)))
DONE_IN_30 = ("j3", "succeeded", 0.0, 30.0)


@pytest.mark.parametrize(
    ("jobs", "seconds", "may_end"),
    [
        # The last round: every unfinished batch runs.
        (_jobs(DONE_IN_30, ("j2", "running", 30, None), ("j1", "succeeded", 0, 1)), 10, True),
        (_jobs(DONE_IN_30, ("j1", "running", 0, None), ("j2", "running", 0, None)), 10, True),
        # One queued behind one running: a round at the 30-s pace, against twice the time to
        # the next pass (the estimate's margin).
        (_jobs(DONE_IN_30, ("j1", "running", 0, None), ("j2", "queued", None, None)), 10, False),
        (_jobs(DONE_IN_30, ("j1", "running", 0, None), ("j2", "queued", None, None)), 15, False),
        (_jobs(DONE_IN_30, ("j1", "running", 0, None), ("j2", "queued", None, None)), 16, True),
        # Queued with no pace known yet, nothing running, or nothing left.
        (_jobs(("j1", "running", 0, None), ("j2", "queued", None, None)), 1e9, False),
        (_jobs(DONE_IN_30, ("j1", "succeeded", 0, 1), ("j2", "queued", None, None)), 1e9, False),
        (_jobs(DONE_IN_30, ("j1", "running", 0, None)), 10, False),  # j2 has no row: queued
        (_jobs(DONE_IN_30, ("j1", "succeeded", 0, 1), ("j2", "failed", 1, 2)), 10, False),
        ({}, 10, False),
    ],
)
def test_the_end_may_come_before_the_next_pass(
    jobs: dict[str, JobStatus], seconds: float, may_end: bool
) -> None:
    assert may_end_within(RUN3, jobs, seconds) is may_end


LAST_ROUND = (DONE_IN_30, ("j1", "running", 30.0, None), ("j2", "running", 32.0, None))
"""At the 30-s pace the last round (j1, j2) ends at 62 s; its window is 59 s to 68 s."""


@pytest.mark.parametrize(
    ("jobs", "now", "wait"),
    [
        # Before the window, half the time to it: an early end is seen, in a few looks.
        (_jobs(*LAST_ROUND), 40.0, 9.5),
        (_jobs(*LAST_ROUND), 58.0, 0.5),
        (_jobs(*LAST_ROUND), 58.9, 0.1),
        (_jobs(*LAST_ROUND), 59.5, 0.1),
        (_jobs(*LAST_ROUND), 67.0, 0.1),  # a batch slower than the mean: still looked at
        (_jobs(*LAST_ROUND), 70.0, 0.5),  # far slower (stuck?): coarse again, not 10 reads/s
        # An earlier round, no pace, a running row without its start, nothing left: coarse.
        (_jobs(DONE_IN_30, ("j1", "running", 30, None), ("j2", "queued", None, None)), 59.5, 0.5),
        (_jobs(("j1", "running", 30, None), ("j2", "running", 32, None)), 59.5, 0.5),
        (_jobs(DONE_IN_30, ("j1", "running", 30, None), ("j2", "running", None, None)), 59.5, 0.5),
        (_jobs(DONE_IN_30, ("j1", "succeeded", 0, 1), ("j2", "failed", 1, 2)), 59.5, 0.5),
    ],
)
def test_looks_come_often_only_around_the_expected_end(
    jobs: dict[str, JobStatus], now: float, wait: float
) -> None:
    assert next_look(RUN3, jobs, now, 0.5) == pytest.approx(wait)


def test_waits_for_a_final_runs_groups_double_up_to_the_finish_check() -> None:
    assert [ending_look(n) for n in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


# --- groups --------------------------------------------------------------------


def _settings() -> Settings:
    return Settings(
        deployment="demo",
        location="eastus",
        registry="r.azurecr.io",
        image_tag="1.0",
        managed_identity=IDENTITY,
        managed_identity_client_id="client-id",
        storage_account="data",
        subscription="sub",
        resource_group="rg",
    )


WORKLOAD = parse(
    "deployment: {name: demo}\nworkloads:\n  blast:\n    workers: 4\n    threads_per_worker: 1\n"
    "    databases:\n      - {name: demo, bytes_to_cache: 100000000}\n"
)


def test_run_workers_finish_and_use_the_run_queue() -> None:
    groups = worker_groups(
        WORKLOAD, _settings(), SECRETS, "r00000001", 2, exit_when_idle="30s", queue="run-r00000001"
    )
    workers = [c for g in groups for c in g.containers]
    assert len(workers) == 2, "never more workers than batches"
    ports = [dict(c.env)["BLAST_HEALTH_PORT"] for c in groups[0].containers]
    assert len(set(ports)) == len(ports), "workers of a group share localhost"
    assert all(
        g.restart_policy == "OnFailure" and dict(g.tags)["run"] == "r00000001" for g in groups
    )
    assert all(g.name.startswith("demo-r00000001-w") for g in groups)
    env = dict(workers[0].env)
    assert env["BLAST_QUEUE"] == "run-r00000001" and env["BLAST_EXIT_WHEN_IDLE"] == "30s"
    assert env["BLAST_VISIBILITY_TIMEOUT"] == "15", "a lost batch reappears before others exit"


def test_run_workers_honour_blast_priority_spot() -> None:
    spot = parse(
        "deployment: {name: demo}\nworkloads:\n  blast:\n    workers: 2\n    priority: spot\n"
        "    databases:\n      - {name: demo, bytes_to_cache: 8000000000}\n"
    )
    groups = worker_groups(
        spot, _settings(), SECRETS, "r00000001", 5, exit_when_idle="30s", queue="run-r00000001"
    )
    assert len(groups) == 2
    # Spot groups have no IP address and no subnet (ACI refuses both).
    assert all(g.priority == "Spot" and g.ip is None and g.subnet_id is None for g in groups)
    assert all(g.restart_policy == "OnFailure" for g in groups)
    regular = worker_groups(
        WORKLOAD, _settings(), SECRETS, "r00000001", 2, exit_when_idle="30s", queue="q"
    )
    assert all(g.priority == "Regular" for g in regular)


def test_janitor_uses_the_managed_identity_and_no_token_in_azure() -> None:
    spec = janitor_group(_settings(), {"AZURE_STORAGE_ACCOUNT": "data"}, run_id="r00000001")
    assert spec.name == "demo-r00000001-janitor" and spec.restart_policy == "OnFailure"
    assert spec.identity == IDENTITY
    (c,) = spec.containers
    env = dict(c.env)
    assert env["AZURE_CLIENT_ID"] == "client-id" and env["JANITOR_RUN"] == "r00000001"
    assert "DEPLOYER_ACCESS_TOKEN" not in env and not c.secret_files
    assert c.image == "r.azurecr.io/deployer:1.0"
    tags = dict(spec.tags)
    # `deployer down` deletes every group with the deployment and tool tags: the janitor too.
    assert tags["deployment"] == "demo" and tags["tool"] == "aci-research-deployer"


# --- deployment janitor ----------------------------------------------------------

from deployer.plan.janitor import deployment_janitor, ending_notes  # noqa: E402
from deployer.run import deployment_janitor as dj  # noqa: E402


def test_kernels_busy_or_recent_activity_resets_idle_time() -> None:
    body = json.dumps(
        [
            {"execution_state": "idle", "last_activity": "2026-11-30T10:00:00.000000Z"},
            {"execution_state": "idle", "last_activity": "2026-11-30T10:05:00Z"},
        ]
    ).encode()
    act = dj.parse_kernels(body)
    assert not act.busy and act.last is not None
    assert dj.idle_since(0.0, act, now=act.last + 100) == act.last
    busy = dj.parse_kernels(b'[{"execution_state": "busy", "last_activity": null}]')
    assert busy.busy and dj.idle_since(0.0, busy, now=500.0) == 500.0
    assert dj.idle_since(300.0, dj.parse_kernels(b"[]"), now=900.0) == 300.0


def _ipp_line(**fields: object) -> str:
    doc = {"event": "ipp-activity", "time": 1000.0, "interval": 10.0, "pending": 0}
    doc.update({"running": 0, "engines": 2, "last_activity": None, **fields})
    return json.dumps(doc)


def test_ipp_log_parsing_takes_the_latest_activity_line_and_skips_the_rest() -> None:
    log = "\n".join(
        [
            _ipp_line(time=900.0, running=3),
            "2026-11-30 10:00:00.000 [IPController] task::task 'x' finished on 0",
            _ipp_line(time=990.0, running=1, last_activity=985.5),
            '{"event": "ipp-activity", "time": "broken"',
            '{"event": "other", "time": 1.0}',
            "[W 10:00] ipp-activity exited (1); restarting it in 10 s",
        ]
    )
    report = dj.parse_ipp_log(log)
    assert report == dj.IppReport(990.0, 10.0, 0, 1, 985.5)
    assert dj.parse_ipp_log("") is None and dj.parse_ipp_log("no json here\n{}") is None
    assert dj.parse_ipp_log("prefix " + _ipp_line()) == dj.IppReport(1000.0, 10.0, 0, 0, None)


def test_ipp_activity_is_busy_while_tasks_are_pending_or_running_or_unknown() -> None:
    idle = dj.IppReport(1000.0, 10.0, 0, 0, 950.0)
    assert dj.ipp_activity(idle, now=1005.0) == dj.Activity(False, 950.0)
    assert dj.ipp_activity(replace(idle, pending=2), 1005.0).busy
    assert dj.ipp_activity(replace(idle, running=1), 1005.0).busy
    # No report yet, or a stale one (reporter or controller stopped): never cull on it.
    assert dj.ipp_activity(None, 1005.0).busy
    assert not dj.ipp_activity(idle, 1000.0 + 3 * 10 + 60).busy
    assert dj.ipp_activity(idle, 1000.0 + 3 * 10 + 61).busy


def test_idle_needs_both_the_notebook_and_the_controller_idle() -> None:
    kernels = dj.Activity(busy=False, last=100.0)
    tasks = dj.Activity(busy=False, last=400.0)
    both = dj.combine(kernels, tasks)
    assert both == dj.Activity(False, 400.0)
    # The idle time counts from the latest activity of either signal.
    assert dj.idle_since(0.0, both, now=450.0) == 400.0
    assert dj.verdict(459.0, None, 60.0, dj.idle_since(0.0, both, 459.0)) is None
    reason = dj.verdict(460.0, None, 60.0, dj.idle_since(0.0, both, 460.0))
    assert reason is not None and "ipyparallel task" in reason
    # A task running keeps an idle notebook alive, and a busy kernel an idle controller.
    running = dj.Activity(busy=True)
    assert dj.combine(kernels, running).busy and dj.combine(running, tasks).busy
    assert dj.idle_since(0.0, dj.combine(kernels, running), now=900.0) == 900.0
    # Without a notebook only the controller counts.
    assert dj.combine(tasks) == tasks and dj.combine() == dj.Activity(False, None)


def test_unreadable_controller_logs_count_as_busy() -> None:
    from deployer.backends.memory import MemoryBackend

    # A missing head group (ARM error) or a log without a report never culls the cluster.
    backend = MemoryBackend()
    assert dj.read_ipp_activity(backend, "demo-head", "ipcontroller", 1000.0).busy


def test_controller_reports_activity_at_a_fraction_of_idle_shutdown() -> None:
    from deployer.plan import activity_interval

    assert activity_interval(None) is None
    assert activity_interval("1m") == "10" and activity_interval("10s") == "5"
    assert activity_interval("60m") == "30"


def test_verdict_ttl_then_idle() -> None:
    assert dj.verdict(100.0, 200.0, None, 0.0) is None
    ttl = dj.verdict(200.0, 200.0, None, 0.0)
    assert ttl is not None and "deployment.ttl" in ttl
    assert dj.verdict(100.0, None, 60.0, 50.0) is None
    idle = dj.verdict(111.0, None, 60.0, 50.0)
    assert idle is not None and "idle_shutdown" in idle


def test_ttl_counts_from_the_first_container_start() -> None:
    groups = [_group("a", ("Running", 50.0, None)), _group("b", ("Running", 20.0, None))]
    assert dj.deadline_of(groups, 60.0) == 80.0
    assert dj.deadline_of(groups, None) is None and dj.deadline_of([], 60.0) is None


def test_plan_adds_the_deployment_janitor_only_when_something_ends_it() -> None:
    from deployer import plan as planner

    settings = _settings()
    text = "deployment: {name: demo%s}\nworkloads:\n  ipyparallel: {engines: 2%s}\n"
    plain = parse(text % ("", ""))
    p = deployment_janitor(planner.build(plain, settings, SECRETS), plain, settings, SECRETS)
    assert not any(g.kind == "janitor" for g in p.groups)
    both = parse(text % (", ttl: 8h", ", idle_shutdown: 60m"))
    p = deployment_janitor(planner.build(both, settings, SECRETS), both, settings, SECRETS)
    janitor = p.groups[-1]
    assert janitor.name == "demo-janitor" and janitor.kind == "janitor"
    env = dict(janitor.containers[0].env)
    assert env["JANITOR_TTL"] == "28800" and env["JANITOR_IDLE_SHUTDOWN"] == "3600"
    assert env["JANITOR_NOTEBOOK_URL"].endswith(":8888/")
    assert env["JANITOR_IPP_LOGS"] == "demo-head/ipcontroller"
    head = next(g for g in p.groups if g.name == "demo-head")
    controller = dict(next(c for c in head.containers if c.name == "ipcontroller").env)
    assert controller["IPP_ACTIVITY_INTERVAL"] == "30"
    assert [k for k, _ in janitor.containers[0].secret_files] == ["notebook_token"]
    notes = " ".join(ending_notes(both, settings))
    assert "deployment.ttl 8h" in notes and "idle_shutdown 60m" in notes
    assert "Contributor role on resource group rg" in notes


def test_the_run_janitor_and_the_deployment_janitor_share_one_default_interval() -> None:
    from deployer import defaults
    from deployer import plan as planner

    settings = _settings()
    run = janitor_group(settings, {}, run_id="r00000001")
    ending = parse("deployment: {name: demo, ttl: 1h}\nworkloads:\n  ipyparallel: {engines: 2}\n")
    plan = planner.build(ending, settings, SECRETS)
    deployment = deployment_janitor(plan, ending, settings, SECRETS).groups[-1]
    expected = f"{defaults.JANITOR_INTERVAL_S:g}"
    assert dict(run.containers[0].env)["JANITOR_INTERVAL"] == expected
    assert dict(deployment.containers[0].env)["JANITOR_INTERVAL"] == expected
