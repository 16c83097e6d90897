"""Spot worker groups in the plan, the prices and the ACI body (real SDK, fake ARM)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aci_emulator import FakeArm
from deployer import api, pricing
from deployer.backends.aci import AciBackend, make_client
from deployer.cli.main import app
from deployer.plan import ContainerSpec, GroupSpec
from deployer.sizing import Resources
from deployer.workload import Prices, SpotPrices
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, cluster_yaml


def elastic_yaml(priority: str = "spot", extra_deployment: str = "") -> str:
    """The ACI tests' workload with autoscaled workers of ``priority`` and 2 GB databases."""
    text = (
        cluster_yaml(engines=2)
        .replace("workers: 1", f"priority: {priority}\n        autoscale: {{max_workers: 4}}")
        .replace("bytes_to_cache: 1000000}", "bytes_to_cache: 2000000000}")
    )
    return text.replace(
        "storage_account: aciresearchdata",
        f"storage_account: aciresearchdata\n      {extra_deployment}",
    )


# --- prices ----------------------------------------------------------------------


def test_bundled_spot_prices_are_the_full_advertised_discount() -> None:
    sheet = pricing.load("eastus")
    assert sheet.spot_vcpu_second == pytest.approx(sheet.vcpu_second * 0.3, rel=0.01)
    assert sheet.spot_gb_second == pytest.approx(sheet.gb_second * 0.3, rel=0.01)
    group = Resources(40, 160)
    assert sheet.per_hour(group, "Spot") == pytest.approx(0.3 * sheet.per_hour(group), rel=0.01)
    assert sheet.spot_note is None and sheet.region_note is None
    other = pricing.load("westeurope")
    assert other.region_note == (
        "no prices (regular or Spot) for westeurope in aci-prices.json; used its default entries"
    )


def test_a_price_file_without_spot_prices_spot_at_the_regular_price(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"default": {"vcpu_second": 1.0, "gb_second": 0.5}}))
    sheet = pricing.load("eastus", path)
    assert sheet.rates("Spot") == sheet.rates("Regular") == (1.0, 0.5)
    assert sheet.spot_note and "regular price" in sheet.spot_note
    with_spot = {
        "default": {"vcpu_second": 1.0, "gb_second": 0.5},
        "spot": {"default": {"vcpu_second": 0.2, "gb_second": 0.1}},
    }
    path.write_text(json.dumps(with_spot))
    assert pricing.load("eastus", path).rates("Spot") == (0.2, 0.1)


def test_workload_prices_may_set_spot() -> None:
    inline = Prices(vcpu_second=1.0, gb_second=0.5, spot=SpotPrices(vcpu_second=0.3, gb_second=0.2))
    assert pricing.load("eastus", inline=inline).rates("Spot") == (0.3, 0.2)
    plain = pricing.load("eastus", inline=Prices(vcpu_second=1.0, gb_second=0.5))
    assert plain.rates("Spot") == (1.0, 0.5) and plain.spot_note


# --- plan ------------------------------------------------------------------------


def test_plan_shows_priority_and_both_prices_per_group(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(elastic_yaml(extra_deployment="overflow_locations: [eastus2]"))
    result = api.plan(path, offline=True)
    rows = {g.name: g for g in result.groups}
    workers = [g for g in result.groups if g.kind == "workers"]
    assert workers and all(g.priority == "Spot" for g in workers)
    for g in workers:
        assert g.cost_per_hour == g.cost_per_hour_spot
        assert g.cost_per_hour_spot is not None
        assert g.cost_per_hour_spot < g.cost_per_hour_regular
        assert g.ip == "none"
    for name in ("lab-head", "lab-engines-1"):
        assert rows[name].priority == "Regular" and rows[name].cost_per_hour_spot is None
    assert result.cost_per_hour_spot == result.cost_per_hour < result.cost_per_hour_regular
    notes = " ".join(result.notes)
    assert "autoscale between 0 and 4" in notes and "run as Spot" in notes
    assert "go to eastus2" in notes and "egress" in notes and "2.0 GB" in notes


def test_plan_cli_prints_priority_and_both_costs(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(elastic_yaml())
    text = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert text.exit_code == 0, text.output
    assert "priority" in text.stdout and "USD/h spot" in text.stdout
    assert "on Spot:" in text.stdout
    body = json.loads(
        CliRunner().invoke(app, ["plan", str(path), "--offline", "-o", "json"]).stdout
    )
    data = body["data"]
    worker = next(g for g in data["groups"] if g["kind"] == "workers")
    assert worker["priority"] == "Spot" and worker["cost_per_hour_spot"] > 0


def test_regular_workers_keep_one_price_and_no_spot_notes(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    result = api.plan(workload_file(elastic_yaml("regular")), offline=True)
    workers = [g for g in result.groups if g.kind == "workers"]
    assert all(
        g.priority == "Regular" and g.cost_per_hour == g.cost_per_hour_regular for g in workers
    )
    assert not any("Spot" in n for n in result.notes)


def test_spot_workers_leave_the_subnet(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    subnet = (
        "subnet_id: /subscriptions/s/resourceGroups/r/providers/Microsoft.Network/"
        "virtualNetworks/v/subnets/aci"
    )
    result = api.plan(workload_file(elastic_yaml(extra_deployment=subnet)), offline=True)
    assert any("cannot join the subnet" in n for n in result.notes)
    assert {g.ip for g in result.groups if g.kind == "workers"} == {"none"}


def test_a_spot_group_with_an_ip_or_subnet_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot have an IP address or a subnet"):
        GroupSpec("g", "blast", "workers", (), ip="Public", priority="Spot")
    with pytest.raises(ValueError, match="cannot have an IP address or a subnet"):
        GroupSpec("g", "blast", "workers", (), subnet_id="/s", priority="Spot")


# --- the body ACI receives -------------------------------------------------------


def test_up_sends_spot_workers_without_network_and_is_idempotent(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(elastic_yaml())
    first = api.up(path)
    assert set(first.counts) == {"create"}
    for name in ("lab-blast-1", "lab-blast-2"):
        stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, name)
        assert stored is not None
        assert stored.properties["priority"] == "Spot"
        assert "ipAddress" not in stored.properties and "subnetIds" not in stored.properties
    for name in ("lab-head", "lab-engines-1"):
        stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, name)
        assert stored is not None and "priority" not in stored.properties
    fake_arm.clear_calls()
    assert set(api.up(path).counts) == {"unchanged"}
    assert fake_arm.calls("PUT") == []
    # Switching to regular recreates the worker groups (priority cannot change in place).
    path.write_text(path.read_text().replace("priority: spot", "priority: regular"))
    plan = api.plan(path)
    workers = [g for g in plan.groups if g.kind == "workers"]
    assert {g.action for g in workers} == {"recreate"}
    assert "priority: Spot -> Regular" in workers[0].reasons


def test_a_group_may_name_its_own_region(fake_arm: FakeArm, deployer_arm: dict[str, str]) -> None:
    """Overflow groups go to their own region; the others to the backend's."""
    backend = AciBackend(make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, "eastus")
    worker = ContainerSpec("w", "blast-worker", "r.azurecr.io/blast-worker:1", Resources(20, 30))
    backend.create_or_update(
        GroupSpec("lab-w1", "blast", "workers", (worker,), priority="Spot", location="eastus2")
    )
    backend.create_or_update(GroupSpec("lab-w2", "blast", "workers", (worker,)))
    located = {
        name: fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, name) for name in ("lab-w1", "lab-w2")
    }
    assert {n: g.body["location"] for n, g in located.items() if g} == {
        "lab-w1": "eastus2",
        "lab-w2": "eastus",
    }
