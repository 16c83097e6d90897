"""The generic cluster layer, with the in-memory dummy backend (no cloud)."""

from __future__ import annotations

import pytest

from deployer import plan
from deployer.backends.memory import MemoryBackend
from deployer.cluster import Cluster, raise_for_failures
from deployer.deployment_secrets import DeploymentSecrets
from deployer.errors import AzureError, QuotaError
from deployer.plan import Action
from deployer.settings import Settings
from deployer.workload import parse

SETTINGS = Settings(
    deployment="demo", location="eastus", registry="r.io", image_tag="1", registry_auth="admin"
)
SECRETS = DeploymentSecrets.generate("demo")


def _plan(engines: int, vcpu: float = 1) -> plan.Plan:
    text = (
        "deployment: {name: demo}\nworkloads:\n  ipyparallel:\n"
        f"    engines: {engines}\n    vcpu_per_engine: {vcpu}\n"
    )
    return plan.build(parse(text), SETTINGS, SECRETS)


def _up(cluster: Cluster, p: plan.Plan) -> list[Action]:
    observed = cluster.observe("demo")
    changes = cluster.changes(p, observed)
    cluster.check_quota(changes, observed, "eastus")
    outcomes = cluster.apply(changes)
    raise_for_failures(outcomes, "come up")
    return [o.action for o in outcomes]


def test_apply_creates_every_group_then_changes_nothing() -> None:
    backend = MemoryBackend()
    cluster = Cluster(backend, poll_interval=0)
    assert _up(cluster, _plan(8)) == [Action.CREATE] * 3
    assert backend.count("put") == 3
    assert _up(cluster, _plan(8)) == [Action.UNCHANGED] * 3
    assert backend.count("put") == 3  # the second run wrote nothing


def test_recreate_deletes_then_creates_and_scale_down_deletes() -> None:
    backend = MemoryBackend()
    cluster = Cluster(backend, poll_interval=0)
    _up(cluster, _plan(8))
    assert _up(cluster, _plan(8, vcpu=0.5)) == [Action.UNCHANGED, Action.RECREATE, Action.DELETE]
    ops = [(op, name) for op, name, _ in backend.calls if op in ("put", "delete")][3:]
    assert ops.index(("delete", "demo-engines-1")) < ops.index(("put", "demo-engines-1"))
    assert sorted(backend.groups) == ["demo-engines-1", "demo-head"]


def test_waits_until_every_container_is_ready() -> None:
    backend = MemoryBackend(ready_after=3)
    seen: list[tuple[str, str]] = []
    cluster = Cluster(backend, poll_interval=0, progress=lambda g, s: seen.append((g, s)))
    outcomes = cluster.apply(cluster.changes(_plan(4), {}))
    assert all(o.observed is not None and o.observed.ready for o in outcomes)
    assert ("demo-head", "waiting for ipcontroller, notebook") in seen
    assert seen[-1][1] == "ready" and backend.count("get") >= 2 * 4


def test_one_failing_group_does_not_stop_the_others() -> None:
    backend = MemoryBackend(fail={"demo-engines-1"})
    cluster = Cluster(backend, poll_interval=0)
    outcomes = cluster.apply(cluster.changes(_plan(8), {}))
    assert sorted(backend.groups) == ["demo-engines-2", "demo-head"]
    with pytest.raises(AzureError) as info:
        raise_for_failures(outcomes, "come up")
    assert "1 of 3 group(s) failed" in info.value.message
    assert "demo-engines-1" in info.value.message and info.value.code == "InjectedFailure"


def test_quota_is_checked_before_any_write() -> None:
    backend = MemoryBackend(cores_limit=6)
    cluster = Cluster(backend, poll_interval=0)
    with pytest.raises(QuotaError):
        _up(cluster, _plan(8))  # 2 (head) + 8 engines = 10 cores
    assert backend.count("put") == 0


def test_readiness_timeout_names_the_waiting_containers() -> None:
    backend = MemoryBackend(ready_after=10**6)
    cluster = Cluster(backend, poll_interval=0.01, ready_timeout=0.05)
    [outcome, *_] = cluster.apply(cluster.changes(_plan(1), {}))
    assert outcome.error is not None and outcome.error.code == "ReadinessTimeout"
    assert "ipcontroller" in outcome.error.message


def test_teardown_deletes_only_the_deployment_and_leaves_nothing() -> None:
    backend = MemoryBackend()
    cluster = Cluster(backend, poll_interval=0)
    _up(cluster, _plan(8))
    other = plan.build(
        parse("deployment: {name: other}\nworkloads:\n  ipyparallel: {engines: 1}\n"),
        Settings(
            deployment="other",
            location="eastus",
            registry="r.io",
            image_tag="1",
            registry_auth="admin",
        ),
        SECRETS,
    )
    cluster.apply(cluster.changes(other, {}))
    outcomes = cluster.teardown("demo")
    assert sorted(o.name for o in outcomes) == ["demo-engines-1", "demo-engines-2", "demo-head"]
    assert cluster.observe("demo") == {}
    assert sorted(backend.groups) == ["other-engines-1", "other-head"]
