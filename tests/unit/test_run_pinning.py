"""Worker groups pinned to one shard each (pure parts): the shards' queues, how workers are
spread over the shards, the groups' queue and tag, and the autoscaler's choice of shard by
backlog (an evicted group is replaced for the shard that lost it)."""

from __future__ import annotations

from dataclasses import replace

from deployer.autoscale import (
    CreateGroups,
    DeleteGroup,
    Observation,
    ScaleSettings,
    ShardBacklog,
    WorkerGroup,
    decide,
    shard_order,
    worker_group_of,
    worker_specs,
)
from deployer.backends.base import ContainerStatus, ObservedGroup
from deployer.deployment_secrets import DeploymentSecrets
from deployer.protocol import shard_queue
from deployer.run.autoscaling import shard_backlogs
from deployer.run.decide import STALL_GRACE, CancelJobs, Finish, orphaned_shards
from deployer.run.decide import decide as decide_run
from deployer.run.groups import replaceable_shard_workers, worker_groups
from deployer.run.state import Batch, Run, run_queues, shard_jobs
from deployer.sizing import Resources, describe_pinning, shard_workers, spread
from deployer.workload import parse
from testbed.elastic import PRIMARY, elastic_setup, lab_settings, scale_settings

NOW = 1_000_000.0
SECRETS = DeploymentSecrets.generate("lab")


def _run(shards: int, protocol: int, batches: int = 3) -> Run:
    return Run(
        "r0000abcd",
        "lab",
        "running",
        NOW,
        {"shards": shards, "autoscale": True},
        batches=tuple(
            Batch(i, f"j{i}-s1", 1, tuple(f"j{i}-s{k}" for k in range(1, shards + 1)))
            for i in range(1, batches + 1)
        ),
        protocol=protocol,
    )


# --- queues ------------------------------------------------------------------------


def test_each_shard_has_a_queue_of_its_own_and_a_whole_database_keeps_the_runs_queue() -> None:
    assert shard_queue("run-r0000abcd", 2) == "run-r0000abcd-s2"
    assert run_queues("r0000abcd", 1, True) == ("run-r0000abcd",)
    assert run_queues("r0000abcd", 3, True) == tuple(f"run-r0000abcd-s{k}" for k in (1, 2, 3))
    pinned = _run(3, protocol=3)
    assert pinned.pinned and pinned.queues == run_queues("r0000abcd", 3, True)
    assert pinned.all_queues == ("run-r0000abcd", *pinned.queues)
    # A sharded run of protocol 2 (an older deployer) put every job on the run's queue.
    older = _run(3, protocol=2)
    assert not older.pinned and older.queues == ("run-r0000abcd",)
    assert older.all_queues == pinned.all_queues, "every queue is dropped, whoever made it"
    whole = replace(_run(1, protocol=1), params={})
    assert not whole.pinned and whole.queues == whole.all_queues == ("run-r0000abcd",)
    # Azure: 3..63 characters, lowercase letters, digits and single hyphens.
    longest = f"{shard_queue('run-r0000abcd', 999)}-poison"
    assert len(longest) <= 63 and "--" not in longest


def test_a_shards_job_names_the_shard_whose_queue_it_goes_to() -> None:
    from blast_client.messages import JobSpec, Query

    spec = JobSpec("j1", "blastn", "nt", Query(fasta=">q\nACGT\n"))
    jobs = shard_jobs(spec, 3)
    assert [(j.job_id, j.shard.index if j.shard else None) for j in jobs] == [
        ("j1-s1", 0),
        ("j1-s2", 1),
        ("j1-s3", 2),
    ]
    assert [shard_queue("q", j.shard.index + 1) for j in jobs if j.shard] == [
        "q-s1",
        "q-s2",
        "q-s3",
    ]


# --- workers over shards -------------------------------------------------------------


def test_workers_are_spread_evenly_with_at_least_one_per_shard_and_one_per_batch() -> None:
    assert spread(5, 3) == (2, 2, 1) and spread(0, 2) == (0, 0)
    assert shard_workers(2, 4) == (1, 1, 1, 1), "fewer workers than shards: one each"
    assert shard_workers(7, 3) == (3, 2, 2)
    assert shard_workers(8, 2, jobs=3) == (3, 3), "never more workers than a shard's jobs"
    assert shard_workers(1, 1) == (1,)
    line = describe_pinning(2, 4)
    assert line == (
        "Shards: each worker group serves one of the 4 shards from its own queue and caches "
        "only that shard; workers 2 -> 4, at least one per shard: 1, 1, 1, 1 per shard"
    )
    assert "workers 6, at least one per shard: 3, 3 per shard" in describe_pinning(6, 2)
    assert "(at most one per batch): 2, 2 per shard" in describe_pinning(6, 2, jobs=2)


WORKLOAD_TEXT = (
    "deployment: {name: lab}\nworkloads:\n  blast:\n    workers: 2\n    threads_per_worker: 1\n"
    "    databases:\n      - {name: demo, bytes_to_cache: 100000000, shards: 4}\n"
)
WORKLOAD = parse(WORKLOAD_TEXT)


def test_every_shard_gets_its_own_groups_on_its_queue_tagged_with_it() -> None:
    groups = worker_groups(
        WORKLOAD,
        lab_settings(),
        SECRETS,
        "r00000001",
        5,
        exit_when_idle="30s",
        queue="run-r00000001",
        shards=4,
    )
    assert [g.name for g in groups] == [f"lab-r00000001-w{i}" for i in range(1, 5)]
    for k, g in enumerate(groups, start=1):
        assert dict(g.tags)["shard"] == str(k) and dict(g.tags)["run"] == "r00000001"
        queues = {dict(c.env)["BLAST_QUEUE"] for c in g.containers}
        assert queues == {f"run-r00000001-s{k}"}, "all containers of a group share its shard"
    # More workers than shards: several workers of one shard share its groups' queue.
    more = parse(WORKLOAD_TEXT.replace("workers: 2", "workers: 6"))
    groups = worker_groups(
        more, lab_settings(), SECRETS, "r00000001", 5, exit_when_idle="30s", queue="q", shards=4
    )
    per_shard: dict[str, int] = {}
    for g in groups:
        for c in g.containers:
            queue = dict(c.env)["BLAST_QUEUE"]
            assert queue == f"q-s{dict(g.tags)['shard']}"
            per_shard[queue] = per_shard.get(queue, 0) + 1
    assert per_shard == {"q-s1": 2, "q-s2": 2, "q-s3": 1, "q-s4": 1}
    # A database searched whole: the run's queue, no shard tag (as before).
    whole = worker_groups(
        WORKLOAD, lab_settings(), SECRETS, "r00000001", 5, exit_when_idle="30s", queue="q"
    )
    assert all("shard" not in dict(g.tags) for g in whole)
    assert {dict(c.env)["BLAST_QUEUE"] for g in whole for c in g.containers} == {"q"}


# --- autoscaling by shard ------------------------------------------------------------


def scale(**kw: object) -> ScaleSettings:
    """1 vCPU workers, one per group; 0..4 workers, 4 batches each."""
    one = {"worker": Resources(10, 10), "workers_per_group": 1, "max_workers": 4}
    return scale_settings(**{**one, **kw})


def observe(*shards: tuple[int, int], **kw: object) -> Observation:
    backlogs = tuple(ShardBacklog(k, q, f) for k, (q, f) in enumerate(shards, start=1))
    base = Observation(
        now=NOW,
        queued=sum(q for q, _ in shards),
        in_flight=sum(f for _, f in shards),
        quota_free={PRIMARY: 100},
        shards=backlogs,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def pinned(name: str, shard: int, live: int = 1, evicted: bool = False) -> WorkerGroup:
    return WorkerGroup(name, PRIMARY, "Regular", 1, live, evicted=evicted, shard=shard)


def made(decision_creates: tuple[CreateGroups, ...]) -> list[tuple[int | None, tuple[str, ...]]]:
    return [(c.shard, c.names) for c in decision_creates]


def test_groups_are_created_only_for_the_shards_with_backlog() -> None:
    d = decide(observe((0, 0), (8, 0), (3, 0)), scale(max_workers=6))
    # max_workers 6 over 3 shards: 2 each; shard 2 wants 2, shard 3 wants 1, shard 1 none.
    assert made(d.creates) == [(2, ("lab-r1-w1", "lab-r1-w2")), (3, ("lab-r1-w3",))]
    assert (d.backlog, d.desired, d.actual) == (11, 3, 0)
    assert d.summary.startswith("shard 1: backlog 0") and "shard 2: backlog 8" in d.summary
    assert all(c.reason.startswith(f"shard {c.shard}: create") for c in d.creates)


def test_the_shard_with_the_most_backlog_is_served_first_from_the_quota() -> None:
    order = shard_order([ShardBacklog(1, 2, 0), ShardBacklog(2, 9, 1), ShardBacklog(3, 2, 0)])
    assert [s.shard for s in order] == [2, 1, 3]
    # Room for one 1-vCPU worker only: it goes to shard 2, the others wait for quota.
    d = decide(observe((2, 0), (9, 1), (2, 0), quota_free={PRIMARY: 1}), scale(max_workers=3))
    assert made(d.creates) == [(2, ("lab-r1-w1",))]
    # A shard that has a worker already and is within its target gets none.
    served = observe((4, 0), (4, 0), groups=(pinned("lab-r1-w1", 1),))
    assert made(decide(served, scale()).creates) == [(2, ("lab-r1-w2",))]


def test_every_shard_gets_a_worker_even_when_max_workers_is_below_the_shards() -> None:
    d = decide(observe((1, 0), (1, 0), (1, 0)), scale(max_workers=1))
    assert sorted(c.shard or 0 for c in d.creates) == [1, 2, 3]


def test_an_evicted_group_is_replaced_for_the_shard_that_lost_it() -> None:
    groups = (pinned("lab-r1-w1", 1, live=0, evicted=True), pinned("lab-r1-w2", 2))
    d = decide(observe((3, 1), (3, 1), groups=groups, next_index=3), scale())
    delete = d.actions[0]
    assert isinstance(delete, DeleteGroup) and delete.name == "lab-r1-w1"
    assert "evicted" in delete.reason
    assert made(d.creates) == [(1, ("lab-r1-w3",))]


def test_a_restarted_janitor_reads_each_groups_shard_back_and_adds_none() -> None:
    template, s = elastic_setup(
        "threads_per_worker: 1, autoscale: {max_workers: 4, scale_in_after: 90s}", None
    )
    first = decide(observe((4, 0), (4, 0)), scale(workers_per_group=s.workers_per_group))
    specs = [spec for c in first.creates for spec in worker_specs(c, template, s)]
    base = dict(template.containers[0].env)["BLAST_QUEUE"]
    for spec, c in zip(specs, first.creates, strict=True):
        assert dict(spec.tags)["shard"] == str(c.shard)
        assert {dict(x.env)["BLAST_QUEUE"] for x in spec.containers} == {f"{base}-s{c.shard}"}
    seen = tuple(
        worker_group_of(ObservedGroup(g.name, "Succeeded", dict(g.tags), {}, ()), PRIMARY)
        for g in specs
    )
    assert [g.shard for g in seen] == [1, 2]
    again = decide(observe((4, 0), (4, 0), groups=seen, next_index=3), scale())
    assert again.creates == ()


def test_the_backlog_of_each_shard_comes_from_its_jobs() -> None:
    run = _run(2, protocol=3)
    jobs = {"j1-s1": "succeeded", "j1-s2": "running", "j2-s1": "running", "j3-s2": "failed"}
    assert shard_backlogs(run, jobs) == (ShardBacklog(1, 1, 1), ShardBacklog(2, 1, 1))
    assert shard_backlogs(_run(2, protocol=2), jobs) == (), "an unpinned run: one pool"


# --- a shard left without workers ------------------------------------------------------


def _live(name: str, shard: int) -> ObservedGroup:
    running = ContainerStatus("w", "Running", True, started=NOW)
    return ObservedGroup(
        name, "Succeeded", {"run": "r0000abcd", "shard": str(shard)}, {}, (running,)
    )


def test_a_fixed_run_cancels_the_jobs_of_a_shard_no_worker_group_is_left_for() -> None:
    run = replace(_run(2, protocol=3), params={"shards": 2}, groups=("w1", "w2"))
    jobs = {"j1-s1": "succeeded", "j1-s2": "succeeded", "j2-s1": "running"}
    later = NOW + STALL_GRACE + 1
    # Shard 2's only group was evicted and deleted; shard 1's still runs.
    steps = decide_run(run, jobs, [_live("w1", 1)], later)
    assert steps == [
        CancelJobs(("j2-s2", "j3-s2"), "cancelled: no worker group is left for shard 2")
    ]
    assert orphaned_shards(run, jobs, [_live("w1", 1)], later) == {2: ("j2-s2", "j3-s2")}
    # Not while every shard has a group, nor right after the start, nor when autoscaled (the
    # scaler replaces the group), nor for a run of one queue (any group takes any job).
    assert decide_run(run, jobs, [_live("w1", 1), _live("w2", 2)], later) == []
    assert decide_run(run, jobs, [_live("w1", 1)], NOW + 60) == []
    assert (
        orphaned_shards(replace(run, params={"shards": 2, "autoscale": True}), jobs, [], later)
        == {}
    )
    assert orphaned_shards(replace(run, protocol=2), jobs, [_live("w1", 1)], later) == {}
    # Once the other shard's jobs are final too, the run ends failed, the done batch kept.
    done = {**jobs, "j2-s1": "succeeded", "j3-s1": "succeeded", "j2-s2": "cancelled",
            "j3-s2": "cancelled"}  # fmt: skip
    assert decide_run(run, done, [_live("w1", 1)], later)[0] == Finish(
        "failed", "2 of 3 batches did not succeed"
    )


def test_a_sharded_spot_run_is_autoscaled_so_an_evicted_shard_gets_a_new_group() -> None:
    spot = parse(
        WORKLOAD_TEXT.replace("threads_per_worker: 1", "threads_per_worker: 1\n    priority: spot")
    )
    scaled = replaceable_shard_workers(spot, 4, "45s")
    blast = scaled.workloads.blast
    assert blast is not None and blast.autoscale is not None
    auto = blast.autoscale
    # Up to the workers, at least one per shard; a worker per batch; the run's idle time.
    assert (auto.min_workers, auto.max_workers, blast.workers) == (0, 4, 4)
    assert (auto.target_backlog_per_worker, auto.scale_in_after) == (1, "45s")
    assert spot.workloads.blast is not None and spot.workloads.blast.autoscale is None, "pure"
    # The scaler then replaces an evicted group for its shard (see the eviction test above).
    settings = ScaleSettings.from_workload(scaled, PRIMARY, "lab-r00000001-w")
    assert settings.priority == "Spot" and settings.max_workers == 4
    # Regular workers are never evicted, an unsharded run has other groups for the same
    # queue, and an autoscale block given is the user's: these are left as they are.
    for same, shards in ((WORKLOAD, 4), (spot, 1)):
        assert replaceable_shard_workers(same, shards, "45s") is same
    own = parse(
        WORKLOAD_TEXT.replace("workers: 2", "priority: spot\n    autoscale: {max_workers: 8}")
    )
    assert replaceable_shard_workers(own, 4, "45s") is own
