"""The emulator's pure rules, and the quota and Spot-capacity refusals of the fake ARM server.

The Docker side is tested in tests/integration/emulator; these need no engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from aci_emulator import FakeArm, SpecNotFoundError
from aci_emulator.cli import parse_args
from aci_emulator.runtime import (
    ContainerRun,
    add_event,
    group_state,
    image_candidates,
    nano_cpus,
    should_restart,
)

RG = "rg"


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 3, True),
        ("onfailure", 137, True),
        ("Never", 0, False),
        ("Never", 1, False),
    ],
)
def test_restart_rule_follows_aci(policy: str, code: int, restart: bool) -> None:
    assert should_restart(policy, code) is restart


@pytest.mark.parametrize(
    ("policy", "containers", "pending", "evicted", "state"),
    [
        ("Always", [("Waiting", None)], True, False, "Pending"),
        ("Always", [("Running", None), ("Terminated", 1)], False, False, "Running"),
        ("OnFailure", [("Waiting", 3), ("Terminated", 0)], False, False, "Running"),
        ("OnFailure", [("Terminated", 0), ("Terminated", 0)], False, False, "Succeeded"),
        ("Never", [("Terminated", 0), ("Terminated", 0)], False, False, "Succeeded"),
        ("Never", [("Terminated", 0), ("Terminated", 2)], False, False, "Failed"),
        ("Never", [("Running", None), ("Terminated", 2)], False, False, "Running"),
        ("OnFailure", [("Terminated", 137)], False, True, "Stopped"),
    ],
)
def test_group_state_is_derived_as_aci_does(
    policy: str,
    containers: list[tuple[str, int | None]],
    pending: bool,
    evicted: bool,
    state: str,
) -> None:
    assert group_state(policy, containers, pending=pending, evicted=evicted) == state


def test_image_references_map_to_local_images() -> None:
    ref = "myacr.azurecr.io/team/blast-worker:v2"
    assert image_candidates(ref, "aci-research", None) == [ref, "aci-research/blast-worker:v2"]
    assert image_candidates(ref, "aci-research", "tag9")[1] == "aci-research/blast-worker:tag9"
    assert image_candidates("ipengine", "p", None) == ["ipengine", "p/ipengine:latest"]
    assert image_candidates("aci-research/base:x", "aci-research", None) == ["aci-research/base:x"]
    # A digest cannot exist locally under that name; only the mapped name is tried.
    assert image_candidates("r.io/ipengine@sha256:ab", "p", "t") == ["p/ipengine:t"]


def test_cpu_is_capped_at_the_engine() -> None:
    assert nano_cpus(0.5, 2) == 500_000_000
    assert nano_cpus(4, 2) == 2_000_000_000
    assert nano_cpus(0, 2) == 10_000_000


def test_events_fold_repeats_and_instance_view_renders_states() -> None:
    run = ContainerRun(name="c", image="i")
    add_event(run.events, "Started", "Started container")
    add_event(run.events, "Started", "Started container")
    add_event(run.events, "BackOff", "Back-off restarting failed container", "Warning")
    assert [(e["name"], e["count"], e["type"]) for e in run.events] == [
        ("Started", 2, "Normal"),
        ("BackOff", 1, "Warning"),
    ]
    run.state, run.exit_code, run.finish_time, run.detail = "Terminated", 3, "T", "Error"
    view = run.instance_view()
    assert view["currentState"] == {
        "state": "Terminated",
        "detailStatus": "Error",
        "exitCode": 3,
        "finishTime": "T",
    }
    assert "previousState" not in view


def _group(cpu: float, *, spot: bool = False, location: str = "westeurope") -> m.ContainerGroup:
    return m.ContainerGroup(
        location=location,
        os_type="Linux",
        priority="Spot" if spot else None,
        containers=[
            m.Container(
                name="c",
                image="img",
                resources=m.ResourceRequirements(
                    requests=m.ResourceRequests(cpu=cpu, memory_in_gb=1)
                ),
            )
        ],
    )


def _usages(client: ContainerInstanceManagementClient, location: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for usage in client.location.list_usage(location):
        name: Any = usage.name
        out[name.value] = (usage.current_value, usage.limit)
    return out


def test_quota_is_enforced_per_region_and_reported(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    """A small quota in one region refuses the third group; another region still accepts."""
    fake_arm.aci.set_quota("West Europe", cores=2)
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "a", _group(1)).result()
    groups.begin_create_or_update(RG, "b", _group(1)).result()
    with pytest.raises(HttpResponseError) as err:
        groups.begin_create_or_update(RG, "c", _group(1))
    assert err.value.status_code == 409
    assert err.value.error is not None and err.value.error.code == "ContainerGroupQuotaReached"
    assert "Limit: '2', Usage: '2' Requested: '1'" in str(err.value.error.message)
    groups.begin_create_or_update(RG, "c", _group(1, location="northeurope")).result()

    usage = _usages(fake_arm_aci_client, "westeurope")
    assert usage["StandardCores"] == (2, 2)
    assert _usages(fake_arm_aci_client, "northeurope")["StandardCores"] == (1, 100)
    # An update of an existing group is not a new request against the quota.
    groups.begin_create_or_update(RG, "a", _group(1)).result()


def test_spot_capacity_refusals(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    """Scripted refusals hit Spot creates only, in the chosen region, count times."""
    fake_arm.aci.refuse_spot(location="westeurope", count=1)
    fake_arm.aci.refuse_spot(location="eastus", count=None, status=409, code="SkuNotAvailable")
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "regular", _group(1)).result()
    with pytest.raises(HttpResponseError) as err:
        groups.begin_create_or_update(RG, "spot", _group(1, spot=True))
    assert err.value.status_code == 409
    assert err.value.error is not None and err.value.error.code == "ServiceUnavailable"
    assert "not available in the location 'westeurope'" in str(err.value.error.message)
    groups.begin_create_or_update(RG, "spot", _group(1, spot=True)).result()  # capacity back
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            groups.begin_create_or_update(RG, "east", _group(1, spot=True, location="eastus"))
        assert err.value.error is not None and err.value.error.code == "SkuNotAvailable"
    assert fake_arm.aci.group(RG, "east") is None


def test_evict_needs_emulator_mode(fake_arm: FakeArm) -> None:
    with pytest.raises(ValueError, match="emulator mode"):
        fake_arm.aci.evict(RG, "x")


def test_specs_dir_is_a_setting(tmp_path: Path) -> None:
    with pytest.raises(SpecNotFoundError):
        FakeArm(specs_dir=tmp_path)
    args = parse_args(["--specs", str(tmp_path), "--quota", "westeurope=8", "--tag", "t"])
    assert args.specs == tmp_path and args.quota == ["westeurope=8"] and args.tag == "t"
