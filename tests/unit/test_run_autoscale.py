"""The run janitor's autoscaling pass: real SDK against the fake ARM server (no containers).

* overflow: with the primary region's quota for 2 groups and ``max_workers`` needing 4, two
  groups land in the overflow location, and a janitor restarted from the stored record adds
  none;
* the worker template and settings reach the janitor group intact (secrets included);
* an autoscaled run with no group left waits for new workers instead of failing;
* each group is billed at its own priority's price, with its priority and region.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from aci_emulator import FakeArm
from deployer import pricing
from deployer.backends.aci import AciBackend, make_client
from deployer.backends.base import ContainerStatus, ObservedGroup
from deployer.deployment_secrets import Secret
from deployer.run import decide as d
from deployer.run.autoscaling import RunScaler, backlog, scale_pass
from deployer.run.billing import bill_of, price
from deployer.run.state import Batch, Run
from deployer.scaler import ScaleState
from deployer.workload import parse
from testbed.elastic import ELASTIC, OVERFLOW, PRIMARY, run_scaler_for
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP

NOW = 2_000_000.0


def _scaler(admin: bool = False) -> RunScaler:
    return run_scaler_for(ELASTIC, "r1a2b3c4d", admin)


def _run(batches: int) -> Run:
    return Run(
        "r1a2b3c4d",
        "lab",
        "running",
        NOW - 5,
        params={"autoscale": True},
        batches=tuple(Batch(i, f"j{i}", 1) for i in range(1, batches + 1)),
    )


def test_the_janitor_gets_the_worker_template_and_settings_intact() -> None:
    scaler = _scaler(admin=True)
    again = RunScaler.from_json(scaler.to_json())
    assert again == scaler
    assert scaler.template.name == "lab-r1a2b3c4d-w1" and scaler.settings.workers_per_group == 1
    assert scaler.settings.name_prefix == "lab-r1a2b3c4d-w"
    assert again.template.registry and again.template.registry.password == Secret("pull-secret")
    env = dict(scaler.template.containers[0].env)
    assert env["BLAST_QUEUE"] == "run-r1a2b3c4d" and env["BLAST_EXIT_WHEN_IDLE"] == "20s"
    assert "pull-secret" not in repr(again)


def test_overflow_two_groups_in_the_primary_region_two_in_the_next_and_a_restart_adds_none(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    fake_arm.aci.set_quota(PRIMARY, cores=2)
    backend = AciBackend(make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, PRIMARY)
    scaler = _scaler()
    run = _run(16)
    jobs = {"j1": "running", "j2": "succeeded"}
    assert backlog(run, jobs) == (14, 1)
    lines: list[str] = []
    run, done = scale_pass(scaler, run, jobs, backend, [], NOW, lines.append)
    assert (done.decision.wanted, done.decision.desired, done.decision.actual) == (4, 4, 0)
    assert done.decision.quota_left == {PRIMARY: 2, OVERFLOW: 100}
    where = {
        name: (str(g.body["location"]), g.properties["priority"])
        for (_, _, name), g in fake_arm.aci.groups.items()
    }
    assert sorted(where.values()) == [
        (OVERFLOW, "Spot"),
        (OVERFLOW, "Spot"),
        (PRIMARY, "Spot"),
        (PRIMARY, "Spot"),
    ]
    assert set(run.groups) == set(where) == {f"lab-r1a2b3c4d-w{i}" for i in range(1, 5)}
    assert ScaleState.from_json(run.scale).last_burst == NOW
    assert any("(overflow)" in line for line in lines)
    # A restarted janitor reads the record and the groups: nothing is created twice.
    fake_arm.clear_calls()
    groups = backend.list("lab")
    assert len(groups) == 4
    later = NOW + 60  # past the burst interval: only the groups hold it back
    run, again = scale_pass(scaler, run, jobs, backend, groups, later)
    assert again.decision.actual == 4 and not again.decision.creates
    assert fake_arm.calls("PUT") == []


def test_the_plan_notes_the_overflow_latency_and_egress() -> None:
    from deployer.autoscale import plan_notes

    notes = " ".join(plan_notes(parse(ELASTIC), PRIMARY, subnet=False))
    assert f"go to {OVERFLOW}" in notes and "latency" in notes and "egress" in notes


def test_an_autoscaled_run_without_groups_waits_for_workers_instead_of_failing() -> None:
    run = _run(3)
    later = run.created + d.STALL_GRACE + 1
    assert d.decide(run, {}, [], later) == []
    fixed = replace(run, params={}, groups=("lab-r1a2b3c4d-w1",))
    steps = d.decide(fixed, {}, [], later)
    assert [s.status for s in steps if isinstance(s, d.Finish)] == ["failed"]


def test_an_evicted_group_is_billed_and_deleted_and_says_so() -> None:
    killed = ContainerStatus("w", "Terminated", False, started=10.0, finished=70.0, exit_code=137)
    group = ObservedGroup(
        "lab-r1a2b3c4d-w1",
        "Succeeded",
        canonical={"recreate": {"priority": "Spot", "containers": {"w": {"cpu": 10}}}},
        containers=(killed,),
        evicted=True,
    )
    steps = d.decide(_run(3), {}, [group], NOW)
    assert [type(s) for s in steps] == [d.Bill, d.Delete]
    bill, delete = steps
    assert isinstance(bill, d.Bill) and bill.bill.priority == "Spot" and bill.bill.seconds == 60
    assert isinstance(delete, d.Delete) and delete.reason.startswith("evicted (Spot)")


@pytest.mark.parametrize("priority", ["Spot", "Regular"])
def test_each_group_is_billed_at_its_own_priority_with_its_region(priority: str) -> None:
    group = ObservedGroup(
        "lab-r1a2b3c4d-w1",
        "Succeeded",
        canonical={"recreate": {"priority": priority}},
        containers=(ContainerStatus("w", "Terminated", False, started=100.0, finished=1100.0),),
        location="North Europe",
    )
    bill = bill_of(group, "workers", 1.0, 8.0, 2000.0)
    assert bill is not None and (bill.priority, bill.location) == (priority, OVERFLOW)
    sheet = pricing.load(PRIMARY)
    line = price([bill], sheet).lines[0]
    per_vcpu, per_gb = sheet.rates(priority)
    assert line.cost == pytest.approx(1000 * (per_vcpu + 8 * per_gb))
    assert (line.priority, line.location) == (priority, OVERFLOW)
    if priority == "Spot":
        assert per_vcpu < sheet.vcpu_second


def test_one_spot_refusal_in_a_burst_makes_the_next_group_regular(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    """ACI accepts two Spot groups of a burst and refuses the third: the refusal counts (the
    accepted ones do not clear it), so the missing worker comes back as regular."""
    fake_arm.aci.refuse_spot(location=PRIMARY, count=1)
    backend = AciBackend(make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, PRIMARY)
    scaler = _scaler()
    fast = replace(scaler.settings, max_workers=3, locations=(PRIMARY,), scale_out_interval=3)
    scaler = replace(scaler, settings=fast)
    run, first = scale_pass(scaler, _run(40), {}, backend, [], NOW)
    # The three creates go out concurrently: whichever reaches ACI first is the refused one.
    assert sorted(o.ok for o in first.outcomes) == [False, True, True]
    assert PRIMARY in ScaleState.from_json(run.scale).spot_refusals
    run, second = scale_pass(scaler, run, {}, backend, backend.list("lab"), NOW + 4)
    [create] = second.decision.creates
    assert create.priority == "Regular" and "fallback" in create.reason
    priorities = sorted(
        g.properties.get("priority", "Regular") for g in fake_arm.aci.groups.values()
    )
    assert priorities == ["Regular", "Spot", "Spot"]


def test_an_autoscaled_sharded_run_creates_groups_for_its_shards_with_backlog_and_keeps_them(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    """A run pinned to 2 shards whose shard 1 is done: the janitor creates a group for shard
    2 only, on shard 2's queue and tagged with it; a restarted janitor reads the tag back and
    creates none; when that group is evicted, its replacement serves shard 2 again."""
    backend = AciBackend(make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, PRIMARY)
    scaler = _scaler()
    batches = tuple(Batch(i, f"j{i}-s1", 1, (f"j{i}-s1", f"j{i}-s2")) for i in range(1, 5))
    run = replace(_run(0), params={"autoscale": True, "shards": 2}, batches=batches, protocol=3)
    jobs = {f"j{i}-s1": "succeeded" for i in range(1, 5)}
    run, done = scale_pass(scaler, run, jobs, backend, [], NOW)
    [create] = done.decision.creates
    assert create.shard == 2 and "shard 1: backlog 0" in done.decision.summary
    [group] = backend.list("lab")
    assert group.tags["shard"] == "2" and run.groups == (group.name,)
    body = fake_arm.aci.groups[next(iter(fake_arm.aci.groups))].body
    env = {
        e["name"]: e.get("value") for c in body["properties"]["containers"]
        for e in c["properties"]["environmentVariables"]
    }  # fmt: skip
    assert env["BLAST_QUEUE"] == "run-r1a2b3c4d-s2"
    fake_arm.clear_calls()
    run, again = scale_pass(scaler, run, jobs, backend, backend.list("lab"), NOW + 60)
    assert not again.decision.creates and fake_arm.calls("PUT") == []
    # Evicted (the janitor's own steps delete it first): the new group serves shard 2 again.
    run, replaced = scale_pass(scaler, run, jobs, backend, [], NOW + 120)
    [create] = replaced.decision.creates
    assert create.shard == 2 and create.names == ("lab-r1a2b3c4d-w2",)
