"""``deployer init`` and ``deployer destroy`` against the fake ARM, through the real SDKs.

The fake starts as an empty subscription: providers unregistered, no resource group (its
knobs ``require_registration`` and ``require_groups``). The only environment is the sign-in
(the fake's token, a JWT whose ``oid`` names the user) and the fake's endpoint."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.resource.resources import ResourceManagementClient
from typer.testing import CliRunner

from aci_emulator import FAKE_TOKEN, FAKE_USER_OBJECT_ID, FakeArm
from deployer import bootstrap
from deployer.arm import management_client
from deployer.bootstrap import names
from deployer.bootstrap.plan import INIT_TAG, PROVIDERS, Observed, Target, init_steps
from deployer.bootstrap.roles import STORAGE_DATA_ROLES, Principal
from deployer.cli.main import app
from deployer.settings import NO_OVERRIDES, Overrides, resolve_settings
from deployer.workload import load

WORKLOAD = """\
# The lab's BLAST service: `deployer init` writes the names it picks below.
deployment:
  name: lab
  location: westeurope   # near the data
  ttl: 8h                # nothing lives longer

workloads:
  blast:
    workers: 2
    databases:
      - {name: demo, bytes_to_cache: 1000000}
"""
BLAST_STORAGE = {
    "queues": ["blast-jobs", "blast-jobs-poison"],
    "tables": ["blastjobs"],
    "containers": ["blast-inputs", "blast-results", "blastdb"],
}


@pytest.fixture
def signed_in(
    fake_arm: FakeArm, deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Only the sign-in (the fake's token) and the fake's endpoint; an empty subscription."""
    monkeypatch.setenv("DEPLOYER_ARM_ENDPOINT", fake_arm.url)
    monkeypatch.setenv("DEPLOYER_ACCESS_TOKEN", FAKE_TOKEN)
    fake_arm.resources.require_registration = True
    fake_arm.resources.require_groups = True
    fake_arm.resources.registration_delay = 0.1
    return dict(os.environ)


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(WORKLOAD, encoding="utf-8")
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def init_args(fake_arm: FakeArm, path: Path, *more: str) -> list[str]:
    return ["init", str(path), "--subscription", fake_arm.subscription_id, *more]


def puts(fake_arm: FakeArm, path: str = "") -> list[str]:
    return [c.path for c in fake_arm.calls(method="PUT", path=path or None) if c.status < 300]


# --- pure parts ---------------------------------------------------------------------------


def test_default_names_are_valid_stable_and_differ_per_subscription() -> None:
    first = names.candidates("registry", "my-lab", "sub-a", "rg")
    again = names.candidates("registry", "my-lab", "sub-a", "rg")
    other = names.candidates("registry", "my-lab", "sub-b", "rg")
    a = [next(first) for _ in range(3)]
    assert a == [next(again) for _ in range(3)]
    assert a[0] != next(other)
    assert len(set(a)) == 3 and all(n.startswith("mylab") for n in a)
    assert all(names.is_valid("registry", n) for n in a)
    long = next(names.candidates("storage account", "a-very-long-deployment-name-x", "s", "r"))
    assert names.is_valid("storage account", long) and len(long) == 24
    assert names.registry_name("myacr.azurecr.io") == "myacr"
    assert names.registry_name("localhost:5000") is None


def test_a_complete_deployment_plans_no_step() -> None:
    target = Target(
        deployment="lab",
        subscription="s",
        location="westeurope",
        resource_group="lab",
        storage_account="acct",
        registry="reg12",
        identity=names.IdentityRef("s", "lab", "lab"),
        storage={k: tuple(v) for k, v in BLAST_STORAGE.items()},
        user=Principal("you", "u1", "User"),
    )
    empty = init_steps(target, Observed())
    kinds = [s.kind for s in empty]
    assert kinds[:5] == ["resource group", "register", "register", "register", "register"]
    assert kinds.index("storage account") < kinds.index("queue") < kinds.index("registry")
    assert kinds.index("identity") < kinds.index("role") and kinds[-1] == "role"
    assert kinds.count("role") == 9
    grants = target.grants("p1")
    full = Observed(
        resource_group=True,
        registrations=dict.fromkeys(PROVIDERS, "Registered"),
        storage_account=True,
        storage_children=frozenset((k, n) for k, v in BLAST_STORAGE.items() for n in v),
        registry=True,
        identity=("p1", "c1"),
        assignments=frozenset(str(g.name) for g in grants),
    )
    assert init_steps(target, full) == []
    # Names are deterministic: the same grant always has the same name.
    assert [g.name for g in grants] == [g.name for g in target.grants("p1")]
    assert len({g.name for g in grants}) == 9


# --- init from an empty subscription ---------------------------------------------------------


def test_init_from_an_empty_subscription_then_a_second_run_sends_no_put(
    fake_arm: FakeArm,
    signed_in: dict[str, str],
    workload: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ARM throttles now and then; the clients retry.
    fake_arm.faults.random(0.15, statuses=(429,), seed=7, retry_after=0.01)
    result = cli(*init_args(fake_arm, workload, "--yes"))
    assert result.exit_code == 0, result.output
    assert fake_arm.calls(status=429), "the fault injector throttled nothing"
    fake_arm.faults.clear()
    assert "fixed monthly cost" in result.output and "registry" in result.output

    sub = fake_arm.subscription_id
    loaded = load(workload)
    d = loaded.deployment
    assert (d.subscription, d.resource_group, d.location) == (sub, "lab", "westeurope")
    assert d.storage_account and d.registry and d.managed_identity and d.managed_identity_client_id
    text = workload.read_text()
    assert "# near the data" in text and "# nothing lives longer" in text
    assert text.index("name: lab") < text.index("location:") < text.index("ttl:")

    # What exists, tagged, with the secure settings.
    tag = {INIT_TAG[0]: INIT_TAG[1], "deployment": "lab"}
    group = fake_arm.resources.group(sub, "lab")
    assert group is not None and group.tags == tag and group.location == "westeurope"
    for namespace in PROVIDERS:
        assert fake_arm.resources.registration_state(sub, namespace) == "Registered"
    (account,) = fake_arm.storage.accounts.in_group(sub, "lab")
    assert account.name == d.storage_account and account.tags == tag
    props = account.body["properties"]
    assert (account.body["kind"], account.body["sku"]["name"]) == ("StorageV2", "Standard_LRS")
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["minimumTlsVersion"] == "TLS1_2" and props["allowBlobPublicAccess"] is False
    for kind, wanted in BLAST_STORAGE.items():
        assert fake_arm.storage.child_names(account, kind) == wanted
    (registry,) = fake_arm.registries.registries.in_group(sub, "lab")
    assert registry.body["sku"]["name"] == "Basic" and registry.tags == tag
    assert registry.body["properties"]["adminUserEnabled"] is False
    assert d.registry == registry.body["properties"]["loginServer"]
    (identity,) = fake_arm.identities.identities.in_group(sub, "lab")
    assert identity.tags == tag and d.managed_identity == identity.id
    principal = identity.body["properties"]["principalId"]
    assert d.managed_identity_client_id == identity.body["properties"]["clientId"]

    def roles(object_id: str) -> set[tuple[str, str]]:
        from aci_emulator.providers.authorization import role_name_of

        found = fake_arm.role_assignments.for_principal(object_id)
        return {(str(role_name_of(a.properties["roleDefinitionId"])), a.scope) for a in found}

    account_id, registry_id = account.id, registry.id
    group_id = f"/subscriptions/{sub}/resourceGroups/lab"
    data = {(role, account_id) for role in STORAGE_DATA_ROLES}
    assert roles(principal) == {("AcrPull", registry_id), ("Contributor", group_id), *data}
    assert roles(FAKE_USER_OBJECT_ID) == {("AcrPush", registry_id), *data}

    # build, up and run need nothing beyond the sign-in now.
    for name in ("AZURE_SUBSCRIPTION_ID", "DEPLOYER_RESOURCE_GROUP", "DEPLOYER_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    settings = resolve_settings(load(workload), NO_OVERRIDES, need_azure=True)
    assert (settings.subscription, settings.resource_group) == (sub, "lab")
    assert settings.registry == d.registry and settings.registry_auth == "identity"
    assert settings.storage_account == d.storage_account

    # Everything exists: a second run changes nothing and sends no PUT (no subscription flag).
    before = workload.read_text()
    fake_arm.clear_calls()
    again = cli("--output", "json", "init", str(workload))
    assert again.exit_code == 0, again.output
    assert '"ok": true' in again.output and '"done": []' in again.output
    assert (
        fake_arm.calls(method="PUT") == [] and fake_arm.calls(method="POST", path="/register") == []
    )
    assert workload.read_text() == before


def test_init_waits_while_a_new_identity_replicates_for_30_s(
    fake_arm: FakeArm, signed_in: dict[str, str], workload: Path
) -> None:
    fake_arm.resources.require_registration = False
    start = time.monotonic()  # the fake clock starts at the real one: the user exists already
    seconds = [start]

    def advance(by: float) -> None:
        seconds[0] += by

    # The fake's directory and the deployer share one clock: the 30 s pass without sleeping.
    fake_arm.directory.clock = lambda: seconds[0]
    fake_arm.identities.replication_delay = 30
    reports: list[tuple[str, str]] = []
    started = time.monotonic()
    result = bootstrap.init(
        workload,
        Overrides(subscription=fake_arm.subscription_id),
        confirm=lambda plan: True,
        report=lambda what, status: reports.append((what, status)),
        clock=bootstrap.Clock(sleep=advance, now=lambda: seconds[0]),
    )
    assert time.monotonic() - started < 30
    assert seconds[0] - start >= 30
    refused = [c for c in fake_arm.calls(method="PUT", path="roleAssignments") if c.status == 400]
    assert refused and all(c.response["error"]["code"] == "PrincipalNotFound" for c in refused)
    waits = [s for _, s in reports if "PrincipalNotFound" in s]
    assert waits and all(s.startswith("waiting") for s in waits)
    assert len(fake_arm.role_assignments.assignments) == 9
    assert not result.pending_roles


def test_init_without_role_assignment_rights_makes_the_rest_and_prints_az_lines(
    fake_arm: FakeArm, signed_in: dict[str, str], workload: Path
) -> None:
    fake_arm.role_assignments.can_assign_roles = False
    result = cli(*init_args(fake_arm, workload, "--yes"))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("az role assignment")]
    assert len(lines) == 9
    d = load(workload).deployment
    assert any("--role AcrPull" in line and d.registry.split(".")[0] in line for line in lines)  # type: ignore[union-attr]
    assert sum(FAKE_USER_OBJECT_ID in line for line in lines) == 4
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "AuthorizationFailed" in errors[0]
    assert "Traceback" not in result.output
    # Everything else exists, and the file names it.
    sub = fake_arm.subscription_id
    assert fake_arm.storage.accounts.in_group(sub, "lab") and d.managed_identity_client_id
    assert fake_arm.registries.registries.in_group(sub, "lab")
    assert fake_arm.role_assignments.assignments == {}
    # Once an administrator granted the right, init finishes the job.
    fake_arm.role_assignments.can_assign_roles = True
    again = cli("init", str(workload), "--yes")
    assert again.exit_code == 0, again.output
    assert len(fake_arm.role_assignments.assignments) == 9


def test_a_taken_default_registry_name_is_replaced_and_a_taken_chosen_one_is_refused(
    fake_arm: FakeArm, signed_in: dict[str, str], workload: Path, tmp_path: Path
) -> None:
    fake_arm.resources.require_registration = False
    sub = fake_arm.subscription_id
    first, second = itertools.islice(names.candidates("registry", "lab", sub, "lab"), 2)
    fake_arm.registries.taken_names.add(first)
    result = cli(*init_args(fake_arm, workload, "--yes"))
    assert result.exit_code == 0, result.output
    assert f"registry name {first} is taken; using {second}" in result.output
    assert load(workload).deployment.registry == f"{second}.azurecr.io"

    chosen = tmp_path / "chosen.yaml"
    chosen.write_text(
        WORKLOAD.replace("name: lab", "name: lab2").replace(
            "  ttl: 8h", "  registry: someonesreg.azurecr.io\n  ttl: 8h"
        )
    )
    fake_arm.registries.taken_names.add("someonesreg")
    fake_arm.clear_calls()
    refused = cli(*init_args(fake_arm, chosen, "--yes"))
    assert refused.exit_code == 2, refused.output
    free = next(names.candidates("registry", "lab2", sub, "lab2"))
    assert "someonesreg is taken" in refused.stderr and f"a free one is {free}" in refused.stderr
    assert fake_arm.calls(method="PUT") == []


def test_init_resumes_after_it_was_killed_mid_way(
    fake_arm: FakeArm, signed_in: dict[str, str], workload: Path
) -> None:
    # The registry's creation never finishes until released: init is then surely between
    # steps (the storage done, the identity not yet) when it is killed.
    fake_arm.registries.provisioning_delay = 3600
    deployer = Path(sys.executable).with_name("deployer")
    process = subprocess.Popen(
        [str(deployer), *init_args(fake_arm, workload, "--yes")],
        env=signed_in,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not puts(fake_arm, "/registries/") and process.poll() is None:
            assert time.monotonic() < deadline, "init never reached the registry"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert not fake_arm.identities.identities.in_group(fake_arm.subscription_id, "lab")
    fake_arm.registries.provisioning_delay = 0.05
    fake_arm.complete_operations()
    fake_arm.clear_calls()

    result = cli("init", str(workload), "--yes")
    assert result.exit_code == 0, result.output
    redone = [p for p in puts(fake_arm) if "/roleAssignments/" not in p]
    assert not [p for p in redone if "/storageAccounts" in p or "/registries" in p]
    assert not [p for p in redone if p.lower().endswith("/resourcegroups/lab")]
    assert any("/userAssignedIdentities/" in p for p in redone)
    assert len(fake_arm.role_assignments.assignments) == 9
    assert load(workload).deployment.managed_identity_client_id


# --- destroy --------------------------------------------------------------------------------


@pytest.fixture
def arm_resources(
    fake_arm: FakeArm, signed_in: dict[str, str]
) -> Iterator[ResourceManagementClient]:
    client = management_client(ResourceManagementClient, fake_arm.subscription_id)
    yield client
    client.close()


def test_destroy_deletes_only_what_init_made(
    fake_arm: FakeArm,
    signed_in: dict[str, str],
    workload: Path,
    arm_resources: ResourceManagementClient,
    workload_file: Callable[..., Path],
) -> None:
    sub = fake_arm.subscription_id
    # A resource group the user made, holding an account of theirs: init uses the group.
    arm_resources.resource_groups.create_or_update("research", {"location": "westeurope"})
    fake_arm.resources.require_registration = False
    from azure.mgmt.storage import StorageManagementClient
    from azure.mgmt.storage import models as sm

    with management_client(StorageManagementClient, sub) as storage:
        storage.storage_accounts.begin_create(
            "research",
            "theirs123",
            sm.StorageAccountCreateParameters(
                sku=sm.Sku(name="Standard_LRS"), kind="StorageV2", location="westeurope"
            ),
        ).result()
    assert cli(*init_args(fake_arm, workload, "--yes", "-g", "research")).exit_code == 0
    assert len(fake_arm.role_assignments.assignments) == 9

    refused = cli("destroy", str(workload))  # no terminal to ask on, no --yes
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert len(fake_arm.role_assignments.assignments) == 9

    kept = cli("destroy", str(workload), "--yes", "--keep-data")
    assert kept.exit_code == 0, kept.output
    left = {(r["type"], r["name"]) for r in fake_arm.storage.resources_in(sub, "research")}
    d = load(workload).deployment
    assert left == {
        ("Microsoft.Storage/storageAccounts", "theirs123"),
        ("Microsoft.Storage/storageAccounts", str(d.storage_account)),
    }
    assert not fake_arm.registries.registries.in_group(sub, "research")
    assert not fake_arm.identities.identities.in_group(sub, "research")
    # The user keeps their data roles on the kept account; the identity's are gone.
    remaining = list(fake_arm.role_assignments.assignments.values())
    assert len(remaining) == 3 and all(a.principal_id == FAKE_USER_OBJECT_ID for a in remaining)

    gone = cli("destroy", str(workload), "--yes")
    assert gone.exit_code == 0, gone.output
    names_left = {r["name"] for r in fake_arm.storage.resources_in(sub, "research")}
    assert names_left == {"theirs123"}
    assert fake_arm.resources.group(sub, "research") is not None  # not init's: kept
    assert fake_arm.role_assignments.assignments == {}
    assert "not made by init" in gone.output

    # A group init made goes too, once nothing else is in it.
    own = workload_file(WORKLOAD.replace("name: lab", "name: lab3"), "lab3.yaml")
    assert cli(*init_args(fake_arm, own, "--yes")).exit_code == 0
    assert fake_arm.resources.group(sub, "lab3") is not None
    assert cli("destroy", str(own), "--yes").exit_code == 0
    fake_arm.complete_operations()
    assert fake_arm.resources.group(sub, "lab3") is None
    assert fake_arm.role_assignments.assignments == {}


# --- the examples ---------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", ["blast-run.yaml", "notebook-cluster.yaml"])
def test_the_examples_are_ready_for_init(
    fake_arm: FakeArm,
    signed_in: dict[str, str],
    tmp_path: Path,
    example: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / example
    original = (EXAMPLES / example).read_text()
    path.write_text(original)
    result = cli(*init_args(fake_arm, path, "--yes"))
    assert result.exit_code == 0, result.output
    settings = resolve_settings(load(path), NO_OVERRIDES, need_azure=True)
    assert settings.registry and settings.managed_identity and settings.storage_account
    # Only lines were added: every line of the example is still there, in order.
    lines = iter(path.read_text().splitlines())
    assert all(any(line == kept for kept in lines) for line in original.splitlines())


def test_the_workload_file_round_trips_unchanged_and_new_keys_follow_the_schema_order() -> None:
    from deployer.workfile import set_values
    from deployer.workload import Deployment

    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert set_values(path.read_text(), {}) == path.read_text(), path.name
    order: dict[tuple[str, ...], list[str]] = {("deployment",): list(Deployment.model_fields)}
    text = set_values(WORKLOAD, {("deployment", "registry"): "r.azurecr.io"}, order=order)
    assert text.splitlines()[4:6] == [
        "  registry: r.azurecr.io",
        "  ttl: 8h                # nothing lives longer",
    ]
    text = set_values(WORKLOAD, {("deployment", "zzz"): "last"})
    assert "  zzz: last\n\nworkloads:" in text
