"""One autoscaler pass against ACI: the real SDK, the fake ARM server, real quota reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from aci_emulator import FakeArm
from deployer import defaults
from deployer.autoscale import RetrySpotLater, ScaleSettings
from deployer.backends.aci import AciBackend, make_client
from deployer.backends.base import ContainerStatus
from deployer.backends.memory import MemoryBackend
from deployer.plan import ContainerSpec, GroupSpec
from deployer.scaler import ScaleState, reconcile
from deployer.sizing import Resources
from testbed.elastic import OVERFLOW, PRIMARY, elastic_setup
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP

NOW = 1_000_000.0


def _elastic(priority: str = "regular", fallback: bool = False) -> tuple[ScaleSettings, GroupSpec]:
    """2-vCPU workers, two per group, 0..8 of them, overflowing to northeurope."""
    template, scale = elastic_setup(
        f"threads_per_worker: 2, priority: {priority}, spot_fallback: {str(fallback).lower()}, "
        "autoscale: {max_workers: 8}"
    )
    return scale, template


def _refuse(fake_arm: FakeArm, status: int, code: str) -> None:
    """ACI refuses the next create with ``status`` and ARM error ``code``."""
    fake_arm.faults.script(
        status,
        method="PUT",
        path="containerGroups/",
        body={"error": {"code": code, "message": f"refused: {code}"}},
    )


def _aci(fake_arm: FakeArm) -> AciBackend:
    return AciBackend(make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, PRIMARY)


def _locations(fake_arm: FakeArm) -> dict[str, str]:
    return {
        name: str(g.body["location"])
        for (_, _, name), g in fake_arm.aci.groups.items()
        if name.startswith("lab-r1-w")
    }


def test_burst_fills_the_primary_quota_then_overflows_and_a_restart_adds_nothing(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    fake_arm.aci.usage_limits["StandardCores"] = 8
    backend = _aci(fake_arm)
    # Something else already uses 4 of westeurope's 8 cores.
    other = ContainerSpec("x", "blast-worker", "r.azurecr.io/x:1", Resources(40, 40))
    backend.create_or_update(GroupSpec("other", "blast", "workers", (other,)))
    scale, template = _elastic()
    lines: list[str] = []
    first = reconcile(
        backend,
        "lab",
        scale,
        ScaleState(),
        template,
        queued=24,
        in_flight=0,
        now=NOW,
        log=lines.append,
    )
    assert (first.decision.desired, first.decision.actual) == (6, 0)
    assert first.decision.quota_left == {PRIMARY: 4, OVERFLOW: 8}
    assert all(o.ok for o in first.outcomes)
    assert _locations(fake_arm) == {
        "lab-r1-w1": PRIMARY,
        "lab-r1-w2": OVERFLOW,
        "lab-r1-w3": OVERFLOW,
    }
    assert first.state.last_burst == NOW and first.state.next_index == 4
    assert lines[0] == first.decision.summary and "(overflow)" in " ".join(lines)
    # The janitor restarts and lost its state: it sees the groups and creates nothing.
    fake_arm.clear_calls()
    again = reconcile(
        backend, "lab", scale, ScaleState(), template, queued=24, in_flight=0, now=NOW + 1
    )
    assert again.decision.actual == 6 and not again.decision.creates
    assert fake_arm.calls("PUT") == []
    stored = ScaleState.from_json(first.state.to_json())
    assert stored == first.state


@pytest.mark.parametrize("fallback", [True, False])
def test_spot_refused_for_capacity_falls_back_or_waits(
    fake_arm: FakeArm, deployer_arm: dict[str, str], fallback: bool
) -> None:
    backend = _aci(fake_arm)
    scale, template = _elastic("spot", fallback)
    scale = replace(scale, locations=(PRIMARY,))
    _refuse(fake_arm, 409, "SkuNotAvailable")
    first = reconcile(backend, "lab", scale, ScaleState(), template, queued=4, in_flight=0, now=NOW)
    [refused] = first.outcomes
    assert not refused.ok and refused.verdict and refused.verdict.kind == "capacity"
    assert first.state.spot_refusals[PRIMARY].count == 1 and _locations(fake_arm) == {}
    later = NOW + defaults.SCALE_OUT_INTERVAL_S
    second = reconcile(
        backend, "lab", scale, first.state, template, queued=4, in_flight=0, now=later
    )
    if fallback:
        [group] = _locations(fake_arm)
        stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, group)
        assert stored is not None and "priority" not in stored.properties  # Regular
        assert "fallback" in second.decision.creates[0].reason
        return
    [wait] = second.decision.actions
    assert isinstance(wait, RetrySpotLater) and _locations(fake_arm) == {}
    third = reconcile(
        backend, "lab", scale, second.state, template, queued=4, in_flight=0, now=wait.at
    )
    [group] = _locations(fake_arm)
    stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, group)
    assert stored is not None and stored.properties["priority"] == "Spot"
    assert "ipAddress" not in stored.properties
    assert third.state.spot_refusals == {}


def test_a_bad_request_holds_creates_instead_of_retrying_every_pass(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    backend = _aci(fake_arm)
    scale, template = _elastic("spot")
    _refuse(fake_arm, 400, "SpotPriorityContainerGroupNotSupportedInSku")
    first = reconcile(backend, "lab", scale, ScaleState(), template, queued=2, in_flight=0, now=NOW)
    assert first.outcomes[0].verdict and first.outcomes[0].verdict.kind == "configuration"
    assert first.state.throttled_until == NOW + defaults.SPOT_RETRY_MAX_S
    second = reconcile(
        backend, "lab", scale, first.state, template, queued=2, in_flight=0, now=NOW + 60
    )
    assert not second.decision.creates and "held" in second.decision.summary


def test_drained_groups_are_deleted_and_busy_ones_kept(tmp_path: Path) -> None:
    backend = MemoryBackend()
    scale, template = _elastic()
    scale = replace(scale, locations=(PRIMARY,))
    first = reconcile(
        backend, "lab", scale, ScaleState(), template, queued=16, in_flight=0, now=NOW
    )
    names = sorted(backend.groups)
    assert names == ["lab-r1-w1", "lab-r1-w2"]
    # w1's workers both exited when idle; w2 still has one running.
    done = backend.groups["lab-r1-w1"]
    backend.groups["lab-r1-w1"] = replace(
        done, containers=tuple(replace(c, state="Terminated") for c in done.containers)
    )
    busy = backend.groups["lab-r1-w2"]
    first_c, *rest = busy.containers
    backend.groups["lab-r1-w2"] = replace(
        busy, containers=(ContainerStatus(first_c.name, "Terminated", False), *rest)
    )
    second = reconcile(
        backend, "lab", scale, first.state, template, queued=0, in_flight=1, now=NOW + 300
    )
    assert sorted(backend.groups) == ["lab-r1-w2"]
    assert [o.group for o in second.outcomes if o.action == "delete"] == ["lab-r1-w1"]
    assert not second.decision.creates
    # The janitor may bill and delete itself instead.
    backend.groups["lab-r1-w2"] = replace(
        busy, containers=tuple(replace(c, state="Terminated") for c in busy.containers)
    )
    third = reconcile(
        backend,
        "lab",
        scale,
        second.state,
        template,
        queued=0,
        in_flight=0,
        now=NOW + 400,
        delete_terminated=False,
    )
    assert "lab-r1-w2" in backend.groups and third.outcomes == ()


def test_a_lost_state_never_reuses_a_name_the_run_had() -> None:
    backend = MemoryBackend()
    scale, template = _elastic()
    scale = replace(scale, locations=(PRIMARY,))
    known = ["lab-r1-w1", "lab-r1-w2"]  # created, drained, billed and deleted earlier
    p = reconcile(
        backend, "lab", scale, ScaleState(), template, queued=2, in_flight=0, now=NOW, known=known
    )
    assert sorted(backend.groups) == ["lab-r1-w3"] and p.state.next_index == 4
