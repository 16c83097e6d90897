"""The reconcile loop's decision function: table tests and a small simulated world."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import defaults, workload
from deployer.autoscale import (
    CreateGroups,
    Decision,
    DeleteGroup,
    Observation,
    RetrySpotLater,
    ScaleSettings,
    SpotRefusal,
    WorkerGroup,
    decide,
    group_tags,
    next_free_index,
    worker_group_of,
    worker_specs,
)
from deployer.backends.base import ContainerStatus, ObservedGroup
from deployer.plan import GroupSpec
from deployer.sizing import Resources
from testbed.elastic import OVERFLOW, PRIMARY, elastic_setup, scale_settings

NOW = 1_000_000.0


scale = scale_settings
"""2 vCPU / 3 GB workers, two per 4-vCPU group; 0..24 workers, 4 batches each."""


def group(
    name: str,
    live: int = 2,
    workers: int = 2,
    location: str = PRIMARY,
    priority: str = "Regular",
    floor: bool = False,
    evicted: bool = False,
) -> WorkerGroup:
    return WorkerGroup(name, location, priority, workers, live, floor, None, evicted)  # type: ignore[arg-type]


def observe(queued: int, in_flight: int = 0, **kw: object) -> Observation:
    base = Observation(now=NOW, queued=queued, in_flight=in_flight, quota_free={PRIMARY: 100})
    return replace(base, **kw)  # type: ignore[arg-type]


def created(decision: Decision) -> list[tuple[str, str, tuple[int, ...], bool]]:
    return [(a.location, a.priority, a.workers, a.floor) for a in decision.creates]


def apply(obs: Observation, decision: Decision) -> Observation:
    """Carry a decision out in the simulated world: creates appear pending, deletes go."""
    gone = {a.name for a in decision.actions if isinstance(a, DeleteGroup)}
    groups = [g for g in obs.groups if g.name not in gone]
    quota = dict(obs.quota_free)
    for a in decision.creates:
        for name, n in zip(a.names, a.workers, strict=True):
            groups.append(WorkerGroup(name, a.location, a.priority, n, n, a.floor))
            quota[a.location] -= n * 2
    burst = obs.now if decision.creates else obs.last_burst
    # The caller stores the next free index, as deployer.scaler does.
    names = [n for a in decision.creates for n in a.names]
    index = max(obs.next_index, next_free_index(names, "lab-r1-w"))
    return replace(obs, groups=tuple(groups), quota_free=quota, last_burst=burst, next_index=index)


# --- scale out -------------------------------------------------------------------


def test_burst_from_zero_packs_groups_by_the_sizing_rules() -> None:
    d = decide(observe(queued=40), scale())
    assert (d.backlog, d.wanted, d.desired, d.actual) == (40, 10, 10, 0)
    assert created(d) == [(PRIMARY, "Regular", (2, 2, 2, 2, 2), False)]
    assert d.creates[0].names == tuple(f"lab-r1-w{i}" for i in range(1, 6))
    reason = d.creates[0].reason
    for fact in ("backlog 40", "queued 40", "in flight 0", "westeurope 100", "desired 10"):
        assert fact in reason
    assert "actual 0" in d.summary and "add 10 worker(s)" in d.summary


def test_in_flight_batches_count_as_backlog_and_max_caps() -> None:
    d = decide(observe(queued=100, in_flight=8), scale())
    assert (d.backlog, d.wanted, d.desired) == (108, 24, 24)
    assert sum(a.total for a in d.creates) == 24


def test_odd_worker_count_gives_balanced_groups() -> None:
    d = decide(observe(queued=12), scale(workers_per_group=4))
    assert created(d) == [(PRIMARY, "Regular", (3,), False)]


def test_any_backlog_starts_a_worker_from_zero() -> None:
    assert sum(a.total for a in decide(observe(queued=1), scale()).creates) == 1
    assert decide(observe(queued=0), scale()).actions == ()


# --- scale in --------------------------------------------------------------------


def test_drain_to_zero_deletes_only_terminated_groups() -> None:
    groups = (
        group("lab-r1-w1", live=0),
        group("lab-r1-w2", live=0, priority="Spot", evicted=True),
        group("lab-r1-w3", live=1),  # one worker still running: kept
    )
    d = decide(observe(queued=0, groups=groups), scale())
    deletes = [a for a in d.actions if isinstance(a, DeleteGroup)]
    assert [a.name for a in deletes] == ["lab-r1-w1", "lab-r1-w2"]
    assert "drained" in deletes[0].reason and "evicted" in deletes[1].reason
    assert not d.creates and d.actual == 1 and d.desired == 0


def test_a_busy_worker_is_never_scaled_in() -> None:
    groups = tuple(group(f"lab-r1-w{i}") for i in range(1, 6))
    for backlog in (0, 1, 5, 20):
        d = decide(observe(queued=backlog, groups=groups), scale())
        assert not [a for a in d.actions if isinstance(a, DeleteGroup)]
        assert not d.creates  # 10 live workers cover every one of these backlogs


def test_min_workers_are_held_without_idle_exit_and_replaced() -> None:
    d = decide(observe(queued=0), scale(min_workers=3))
    assert created(d) == [(PRIMARY, "Regular", (2, 1), True)]
    # Burst of 20 on top of the floor: the extra workers drain when idle.
    world = apply(observe(queued=0), d)
    d2 = decide(replace(world, queued=20, now=NOW + 60), scale(min_workers=3))
    assert created(d2) == [(PRIMARY, "Regular", (2,), False)]  # desired 5, actual 3
    # A floor group is evicted: it is deleted and replaced as a floor group.
    evicted = replace(world.groups[0], live=0, evicted=True)
    after = replace(world, groups=(evicted, *world.groups[1:]), now=NOW + 60)
    d3 = decide(after, scale(min_workers=3))
    assert isinstance(d3.actions[0], DeleteGroup)
    assert created(d3) == [(PRIMARY, "Regular", (2,), True)]


def test_workers_above_desired_are_explained_and_late_ones_flagged() -> None:
    groups = (
        replace(group("lab-r1-w1"), idle_since=NOW - 60),
        replace(group("lab-r1-w2"), idle_since=NOW - 600),  # should have exited long ago
        replace(group("lab-r1-w3", floor=True), idle_since=NOW - 600),  # floor: stays
    )
    d = decide(observe(queued=4, groups=groups), scale())
    assert d.actions == ()
    assert "5 worker(s) above desired drain by themselves" in d.summary
    assert "yet running: lab-r1-w2" in d.summary and "lab-r1-w3" not in d.summary


# --- quota and overflow ---------------------------------------------------------


def test_quota_caps_desired_and_says_so() -> None:
    d = decide(observe(queued=40, quota_free={PRIMARY: 6}), scale())
    assert (d.wanted, d.desired) == (10, 3)
    assert created(d) == [(PRIMARY, "Regular", (2, 1), False)]
    assert "wanted 10, capped by quota" in d.summary


def test_no_quota_left_creates_nothing() -> None:
    d = decide(observe(queued=40, quota_free={PRIMARY: 1}), scale())
    assert d.desired == 0 and not d.creates


def test_overflow_takes_what_the_primary_cannot() -> None:
    s = scale(locations=(PRIMARY, OVERFLOW))
    d = decide(observe(queued=16, quota_free={PRIMARY: 4, OVERFLOW: 100}), s)
    assert created(d) == [
        (PRIMARY, "Regular", (2,), False),
        (OVERFLOW, "Regular", (2,), False),
    ]
    assert "(overflow)" in d.creates[1].reason
    assert len(set(d.creates[0].names + d.creates[1].names)) == 2


def test_overflow_region_without_quota_is_passed_over() -> None:
    s = scale(locations=(PRIMARY, "francecentral", OVERFLOW))
    free = {PRIMARY: 0, "francecentral": 0, OVERFLOW: 8}
    d = decide(observe(queued=40, quota_free=free), s)
    assert created(d) == [(OVERFLOW, "Regular", (2, 2), False)]


# --- damping ---------------------------------------------------------------------


def test_one_create_burst_per_interval() -> None:
    s = scale()
    recent = observe(queued=40, last_burst=NOW - (defaults.SCALE_OUT_INTERVAL_S - 10))
    d = decide(recent, s)
    assert not d.creates and "one create burst per" in d.summary
    assert decide(replace(recent, last_burst=NOW - defaults.SCALE_OUT_INTERVAL_S), s).creates


def test_a_burst_creates_at_most_max_groups_per_burst() -> None:
    s = scale(max_workers=200, max_groups_per_burst=3)
    first = decide(observe(queued=400, quota_free={PRIMARY: 1000}), s)
    assert created(first) == [(PRIMARY, "Regular", (2, 2, 2), False)]
    assert "add 6 worker(s); 94 more in a later burst" in first.summary
    world = apply(observe(queued=400, quota_free={PRIMARY: 1000}), first)
    second = decide(replace(world, now=NOW + defaults.SCALE_OUT_INTERVAL_S), s)
    assert second.creates[0].names == ("lab-r1-w4", "lab-r1-w5", "lab-r1-w6")


def test_throttled_arm_delays_creates() -> None:
    d = decide(observe(queued=40, throttled_until=NOW + 5), scale())
    assert not d.creates and "throttled" in d.summary


def test_tolerance_ignores_a_backlog_just_above_the_target() -> None:
    groups = tuple(group(f"lab-r1-w{i}") for i in range(1, 6))  # 10 workers: target 40
    assert not decide(observe(queued=44, groups=groups), scale()).creates
    assert "within tolerance" in decide(observe(queued=44, groups=groups), scale()).summary
    assert decide(observe(queued=45, groups=groups), scale()).creates


def test_oscillating_backlog_does_not_flap() -> None:
    """The backlog swings around a threshold every 10 s for 10 minutes.

    Workers drain only after scale_in_after (120 s) without a batch, which the swings never
    allow, so after the first burst nothing is created and nothing is deleted.
    """
    s = scale()
    world = observe(queued=0)
    creates = deletes = 0
    for step in range(60):
        backlog = 17 if step % 2 else 23  # desired 5 <-> 6 around 20 = 4 x 5
        world = replace(world, now=NOW + 10 * step, queued=backlog)
        d = decide(world, s)
        creates += len(d.creates)
        deletes += sum(isinstance(a, DeleteGroup) for a in d.actions)
        world = apply(world, d)
    assert creates == 1 and deletes == 0
    assert sum(g.live for g in world.groups) == 6


def test_backlog_gone_and_back_replaces_drained_workers_once() -> None:
    s = scale()
    world = apply(observe(queued=40), decide(observe(queued=40), s))
    # Every worker drained after scale_in_after; the backlog comes back.
    drained = tuple(replace(g, live=0) for g in world.groups)
    world = replace(world, groups=drained, queued=8, now=NOW + 300)
    d = decide(world, s)
    assert len([a for a in d.actions if isinstance(a, DeleteGroup)]) == 5
    assert created(d) == [(PRIMARY, "Regular", (2,), False)]
    assert d.creates[0].names == ("lab-r1-w6",)  # names are never reused


# --- restarts -------------------------------------------------------------------


def test_restart_is_idempotent() -> None:
    s = scale(locations=(PRIMARY, OVERFLOW))
    obs = observe(queued=40, quota_free={PRIMARY: 8, OVERFLOW: 100})
    first = decide(obs, s)
    assert decide(obs, s) == first  # same state, same names: a repeated PUT is harmless
    # The creates happened, then the janitor restarted and lost last_burst.
    world = replace(apply(obs, first), last_burst=None, now=NOW + 1)
    again = decide(world, s)
    assert not again.creates and again.actual == 10


def test_next_index_and_existing_names_are_never_reused() -> None:
    obs = observe(queued=8, groups=(group("lab-r1-w7", live=0),), next_index=3)
    d = decide(obs, scale())
    assert d.creates[0].names == ("lab-r1-w8",)


# --- Spot ------------------------------------------------------------------------


def test_spot_groups_when_asked() -> None:
    d = decide(observe(queued=8), scale(priority="Spot"))
    assert created(d) == [(PRIMARY, "Spot", (2,), False)]


def test_spot_refused_falls_back_to_regular() -> None:
    s = scale(priority="Spot", spot_fallback=True)
    obs = observe(queued=8, spot_refusals={PRIMARY: SpotRefusal(NOW - 5)})
    d = decide(obs, s)
    assert created(d) == [(PRIMARY, "Regular", (2,), False)]
    assert "fallback" in d.creates[0].reason


def test_spot_refused_without_fallback_retries_later_or_overflows() -> None:
    s = scale(priority="Spot")
    obs = observe(queued=8, spot_refusals={PRIMARY: SpotRefusal(NOW - 5, count=2)})
    d = decide(obs, s)
    [wait] = d.actions
    assert isinstance(wait, RetrySpotLater)
    assert wait.at == NOW - 5 + 2 * defaults.SPOT_RETRY_BASE_S and wait.workers == 2
    # Once the backoff is over, Spot is tried again there.
    later = replace(obs, now=wait.at)
    assert created(decide(later, s)) == [(PRIMARY, "Spot", (2,), False)]
    # With an overflow region, the workers go there as Spot meanwhile.
    s2 = replace(s, locations=(PRIMARY, OVERFLOW))
    d2 = decide(replace(obs, quota_free={PRIMARY: 100, OVERFLOW: 100}), s2)
    assert created(d2) == [(OVERFLOW, "Spot", (2,), False)]


# --- settings and observed groups ------------------------------------------------


def test_settings_from_the_workload_file() -> None:
    loaded = workload.parse(
        """
deployment: {name: lab, overflow_locations: [northeurope]}
workloads:
  blast:
    threads_per_worker: 2
    priority: spot
    spot_fallback: true
    autoscale: {min_workers: 1, max_workers: 24, scale_in_after: 3m}
    databases: [{name: nt, bytes_to_cache: 2000000000}]
"""
    )
    s = ScaleSettings.from_workload(loaded, PRIMARY, "lab-r1-w")
    assert s.locations == (PRIMARY, OVERFLOW)
    assert (s.min_workers, s.max_workers, s.scale_in_after) == (1, 24, 180)
    assert s.worker == Resources(20, 27) and s.workers_per_group == 2
    assert (s.priority, s.spot_fallback) == ("Spot", True)


def test_observed_groups_are_read_back_from_their_tags() -> None:
    tags = dict(group_tags(OVERFLOW, "Spot", True))
    running = ContainerStatus("blast-worker-1", "Running", True)
    done = ContainerStatus("blast-worker-2", "Terminated", False)
    seen = worker_group_of(ObservedGroup("g", "Succeeded", tags, {}, (running, done)), PRIMARY)
    assert (seen.location, seen.priority, seen.floor, seen.workers, seen.live) == (
        OVERFLOW,
        "Spot",
        True,
        2,
        1,
    )
    failed = worker_group_of(ObservedGroup("f", "Failed", {}, {}, (running,)), PRIMARY)
    assert failed.terminated and failed.location == PRIMARY and failed.priority == "Regular"
    unknown = worker_group_of(ObservedGroup("u", "Creating", {}, {}, ()), PRIMARY)
    assert not unknown.terminated


# --- properties ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    queued=st.integers(0, 500),
    in_flight=st.integers(0, 50),
    primary=st.integers(0, 40),
    overflow=st.integers(0, 40),
    lives=st.lists(st.integers(0, 2), max_size=12),
    minimum=st.integers(0, 4),
)
def test_never_over_quota_or_max_and_never_deletes_a_live_group(
    queued: int, in_flight: int, primary: int, overflow: int, lives: list[int], minimum: int
) -> None:
    s = scale(locations=(PRIMARY, OVERFLOW), min_workers=minimum)
    groups = tuple(group(f"lab-r1-w{i + 1}", live=n) for i, n in enumerate(lives))
    free = {PRIMARY: primary, OVERFLOW: overflow}
    obs = observe(queued=queued, in_flight=in_flight, quota_free=free, groups=groups)
    d = decide(obs, s)
    assert d == decide(obs, s)
    live = {g.name for g in groups if g.live}
    assert not live & {a.name for a in d.actions if isinstance(a, DeleteGroup)}
    for loc in (PRIMARY, OVERFLOW):
        cpu = sum(a.total * 2 for a in d.creates if a.location == loc)
        assert cpu <= free[loc]
    added = sum(a.total for a in d.creates)
    assert d.actual + added <= max(s.max_workers, d.actual)
    assert all(n <= s.workers_per_group for a in d.creates for n in a.workers)
    names = [n for a in d.creates for n in a.names]
    assert len(set(names)) == len(names) and not set(names) & {g.name for g in groups}


@pytest.mark.parametrize("priority", ["Regular", "Spot"])
def test_every_create_names_its_priority(priority: str) -> None:
    d = decide(observe(queued=4), scale(priority=priority))
    assert d.creates[0].priority == priority and priority in d.creates[0].reason


# --- from actions to groups ------------------------------------------------------


def _template_and_settings(subnet: str | None = None) -> tuple[GroupSpec, ScaleSettings]:
    return elastic_setup(
        "threads_per_worker: 1, autoscale: {max_workers: 8, scale_in_after: 90s}", subnet
    )


def test_worker_specs_follow_the_action() -> None:
    template, s = _template_and_settings(subnet="/subnets/aci")
    assert s.workers_per_group == 4 and s.worker == Resources(10, 6)  # 1 vCPU, 0.6 GB
    create = CreateGroups(OVERFLOW, "Spot", ("lab-r1-w3", "lab-r1-w4"), (4, 1), False, "why")
    big, small = worker_specs(create, template, s)
    assert (big.name, small.name) == ("lab-r1-w3", "lab-r1-w4")
    assert [len(g.containers) for g in (big, small)] == [4, 1]
    for g in (big, small):
        assert (g.priority, g.location, g.subnet_id, g.ip) == ("Spot", OVERFLOW, None, None)
        tags = dict(g.tags)
        assert tags["deployment"] == "lab" and tags["priority"] == "Spot"
        assert tags["location"] == OVERFLOW and tags["autoscale-floor"] == "false"
        assert all(dict(c.env)["BLAST_EXIT_WHEN_IDLE"] == "90s" for c in g.containers)
        mounted = {m.volume for c in g.containers for m in c.mounts}
        assert set(g.volumes) == mounted
    # One 0.6 GB worker alone is padded up to ACI's 1 GB group minimum.
    assert small.resources == Resources(10, 10) and big.resources == Resources(40, 24)
    # Read back, they are what the scaler created.
    seen = worker_group_of(
        ObservedGroup(small.name, "Succeeded", dict(small.tags), {}, ()), PRIMARY
    )
    assert (seen.location, seen.priority, seen.floor) == (OVERFLOW, "Spot", False)


def test_floor_and_regular_worker_specs_keep_the_subnet_and_never_exit_idle() -> None:
    template, s = _template_and_settings(subnet="/subnets/aci")
    create = CreateGroups(PRIMARY, "Regular", ("lab-r1-w1",), (2,), True, "why")
    [floor] = worker_specs(create, template, s)
    assert floor.subnet_id == "/subnets/aci" and floor.priority == "Regular"
    assert all("BLAST_EXIT_WHEN_IDLE" not in dict(c.env) for c in floor.containers)
    assert dict(floor.tags)["autoscale-floor"] == "true"
    with pytest.raises(ValueError, match="fewer than 5 workers"):
        worker_specs(replace(create, workers=(5,)), template, s)


def test_a_decision_is_plain_data_for_the_log_table() -> None:
    import json

    d = decide(observe(queued=8, spot_refusals={PRIMARY: SpotRefusal(NOW)}), scale(priority="Spot"))
    data = json.loads(json.dumps(d.to_json()))
    assert data["backlog"] == 8 and data["desired"] == 2 and data["actual"] == 0
    assert data["actions"][0]["action"] == "spot-wait" and data["summary"] == d.summary


@settings(max_examples=100, deadline=None)
@given(
    backlogs=st.lists(st.integers(0, 120), min_size=5, max_size=40),
    drains=st.lists(st.booleans(), min_size=40, max_size=40),
    minimum=st.integers(0, 3),
)
def test_over_many_passes_bursts_are_spaced_and_the_ceiling_holds(
    backlogs: list[int], drains: list[bool], minimum: int
) -> None:
    """Random backlogs every 10 s; idle non-floor groups sometimes drain between passes."""
    s = scale(max_workers=12, min_workers=minimum, locations=(PRIMARY, OVERFLOW))
    world = observe(queued=0, quota_free={PRIMARY: 10, OVERFLOW: 40})
    bursts: list[float] = []
    names: set[str] = set()
    for step, backlog in enumerate(backlogs):
        now = NOW + 10 * step
        groups = tuple(
            replace(g, live=0) if drains[step] and backlog == 0 and not g.floor else g
            for g in world.groups
        )
        world = replace(world, now=now, queued=backlog, groups=groups)
        d = decide(world, s)
        live = {g.name for g in groups if not g.terminated}
        assert not live & {a.name for a in d.actions if isinstance(a, DeleteGroup)}
        if d.creates:
            bursts.append(now)
            new = {n for a in d.creates for n in a.names}
            assert not new & names  # a name is never used twice
            names |= new
        world = apply(world, d)
        assert sum(g.live for g in world.groups) <= s.max_workers
        for loc in (PRIMARY, OVERFLOW):
            assert world.quota_free[loc] >= 0
    gaps = [b - a for a, b in pairwise(bursts)]
    assert all(gap >= s.scale_out_interval for gap in gaps)
