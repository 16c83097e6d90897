"""The deployer against the fake ARM server, through the real azure-mgmt-containerinstance SDK.

Nothing here mocks the SDK: requests go over loopback http to the fake ARM server
(aci_emulator), which validates every body against the ACI 2023-05-01 spec.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.identity import EnvironmentCredential
from typer.testing import CliRunner

from aci_emulator import FakeArm
from deployer import api, deployment_secrets
from deployer.backends.aci import AciBackend, make_client
from deployer.cli.main import app
from deployer.errors import CredentialError, InputError
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, IDENTITY, cluster_yaml


def groups_in(arm: FakeArm) -> list[str]:
    return sorted(name for (_, _, name) in arm.aci.groups)


def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


# --- concurrency -----------------------------------------------------------------


def test_up_creates_twelve_groups_concurrently(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    fake_arm.aci.provisioning_delay = 2.0
    path = workload_file(cluster_yaml(engines=40))  # head + 10 engine groups + 1 blast group
    result = api.up(path)
    assert len(result.groups) == 12 and all(g.ready for g in result.groups)
    creates = fake_arm.operations("create")
    assert len(creates) == 12
    # Every creation was in flight at one shared moment: they overlapped, not queued.
    assert max(op.started for op in creates) < min(op.due for op in creates)
    puts = fake_arm.calls("PUT", operation_id="ContainerGroups_CreateOrUpdate")
    assert len(puts) == 12
    # The DNS label ends in a hash of the scope (test_deployer_plan pins it); ACI gave the
    # head that name.
    notebook = result.endpoints["notebook"]
    assert re.fullmatch(r"https://lab-head-[0-9a-f]{6}\.eastus\.azurecontainer\.io:8888/", notebook)
    head = next(g for g in api.status(path).groups if g.name == "lab-head")
    assert notebook == f"https://{head.fqdn}:8888/"


# --- idempotence -------------------------------------------------------------------


def test_second_up_sends_zero_puts(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=6))
    first = api.up(path)
    assert first.counts == {"create": 4}
    fake_arm.clear_calls()
    second = api.up(path)
    assert second.counts == {"unchanged": 4}
    assert fake_arm.calls("PUT") == [] and fake_arm.calls("DELETE") == []
    plan = api.plan(path)
    assert {g.action for g in plan.groups} == {"unchanged"}


def test_cpu_change_is_planned_as_recreate_and_carried_out(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=4))
    api.up(path)
    path.write_text(path.read_text().replace("vcpu_per_engine: 1", "vcpu_per_engine: 0.5"))
    plan = api.plan(path)
    [engines] = [g for g in plan.groups if g.name == "lab-engines-1"]
    assert engines.action == "recreate"
    assert "containers.ipengine-1.cpu: 10 -> 5" in engines.reasons
    fake_arm.clear_calls()
    result = api.up(path)
    assert result.counts == {"recreate": 1, "unchanged": 2}
    methods = [
        (c.method, c.operation_id) for c in fake_arm.calls() if c.method in ("PUT", "DELETE")
    ]
    assert methods == [
        ("DELETE", "ContainerGroups_Delete"),
        ("PUT", "ContainerGroups_CreateOrUpdate"),
    ]
    stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, "lab-engines-1")
    assert stored is not None
    cpu = stored.properties["containers"][0]["properties"]["resources"]["requests"]["cpu"]
    assert cpu == 0.5


def test_image_tag_change_updates_in_place(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=4))
    api.up(path)
    fake_arm.clear_calls()
    result = api.up(path, api.Overrides(image_tag="1.1"))
    assert result.counts == {"update": 3}
    assert fake_arm.calls("DELETE") == [] and len(fake_arm.calls("PUT")) == 3


def test_start_delete_returns_once_accepted_and_may_be_sent_again(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    # A janitor pass sends its deletes and goes on: ARM finishes them later.
    api.up(workload_file(cluster_yaml(engines=2)))
    fake_arm.aci.delete_delay = 3600.0  # gone long after this test, so never waited for
    client = make_client(
        fake_arm.subscription_id, endpoint=fake_arm.url, credential=fake_arm.credential()
    )
    backend = AciBackend(client, DEPLOYER_RESOURCE_GROUP, "eastus")
    fake_arm.clear_calls()
    backend.start_delete("lab-head")
    deleting = backend.get("lab-head")
    assert deleting is not None and deleting.provisioning_state == "Deleting"
    backend.start_delete("lab-head")  # the next pass sends it again: accepted
    backend.start_delete("lab-nothing")  # a group already gone: nothing to do
    deletes = fake_arm.calls("DELETE")
    assert [c.status for c in deletes] == [202, 202, 204]
    assert "lab-head" in groups_in(fake_arm)


# --- faults ----------------------------------------------------------------------


def test_up_converges_and_down_leaves_nothing_with_30_percent_faults(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=20))
    fake_arm.faults.random(0.3, (429, 503), seed=7, retry_after=0.01)
    result = api.up(path)
    assert len(result.groups) == 7 and all(g.ready for g in result.groups)
    faulted = [c for c in fake_arm.calls() if c.fault == "random"]
    assert {c.status for c in faulted} == {429, 503}
    assert len(faulted) > 5
    down = api.down(path)
    assert len(down.deleted) == 7
    fake_arm.faults.clear()
    assert groups_in(fake_arm) == []


# --- status, logs, scale, down ---------------------------------------------------------


def test_status_logs_scale_and_down_through_the_cli(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file("# my lab\n" + cluster_yaml(engines=4))
    assert run_cli("up", str(path)).exit_code == 0
    status = run_cli("status", str(path), "--output", "json")
    assert status.exit_code == 0, status.output
    body = json.loads(status.stdout)
    assert body["ok"] is True
    assert [g["name"] for g in body["data"]["groups"]] == [
        "lab-blast-1",
        "lab-engines-1",
        "lab-head",
    ]
    assert all(g["ready"] for g in body["data"]["groups"])

    fake_arm.aci.set_logs("lab-head", "notebook", "line one\nline two\n")
    logs = run_cli("logs", "lab-head", "notebook", "--tail", "1")
    assert logs.exit_code == 0 and logs.stdout == "line two\n"

    scaled = run_cli("scale", str(path), "ipyparallel=8")
    assert scaled.exit_code == 0, scaled.output
    assert "workloads.ipyparallel.engines 4 -> 8" in scaled.stdout
    assert "engines: 8" in path.read_text() and path.read_text().startswith("# my lab\n")
    assert groups_in(fake_arm) == ["lab-blast-1", "lab-engines-1", "lab-engines-2", "lab-head"]

    down = run_cli("down", str(path), "--output", "json")
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout)["data"]["deleted"] == [
        "lab-blast-1",
        "lab-engines-1",
        "lab-engines-2",
        "lab-head",
    ]
    assert groups_in(fake_arm) == []
    assert not deployment_secrets.path_for("lab").exists()


def test_status_reads_no_secrets_and_lists_missing_groups(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=8))
    state = deployment_secrets.path_for("lab")
    result = api.status(path)  # nothing deployed yet: every planned group is missing
    assert result.groups == [] and result.missing == [
        "lab-head",
        "lab-engines-1",
        "lab-engines-2",
        "lab-blast-1",
    ]
    assert not state.exists()  # status generated no secrets
    assert api.up(path).counts == {"create": 4}
    fake_arm.aci.groups.pop(next(k for k in fake_arm.aci.groups if k[2] == "lab-engines-2"))
    state.write_text("not json", encoding="utf-8")  # status must not even read it
    result = api.status(path)
    assert [g.name for g in result.groups] == ["lab-blast-1", "lab-engines-1", "lab-head"]
    assert result.missing == ["lab-engines-2"]


def test_status_shows_the_instance_view_state_as_az_container_show_does(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    """A group whose containers run is ``Running``; ``Succeeded`` is only ARM's
    provisioning state. Without an instance view the provisioning state shows."""
    path = workload_file(cluster_yaml(engines=4))
    api.up(path)
    result = api.status(path)
    assert {g.state for g in result.groups} == {"Running"}
    assert {g.provisioning_state for g in result.groups} == {"Succeeded"}
    wide = CliRunner().invoke(app, ["status", str(path)], env={"COLUMNS": "200"})
    assert wide.exit_code == 0, wide.output
    rows = [line for line in wide.output.splitlines() if "lab-" in line]
    assert len(rows) == len(result.groups) and all("Running" in row for row in rows)
    assert "Succeeded" not in wide.output

    # ARM has not finished (re)creating the head: no instance view yet.
    head = next(g for k, g in fake_arm.aci.groups.items() if k[2] == "lab-head")
    head.provisioning_state = "Pending"
    states = {g.name: g.state for g in api.status(path).groups}
    assert states["lab-head"] == "Pending" and states["lab-blast-1"] == "Running"


def test_up_gives_the_deployment_janitor_the_default_interval(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    from deployer import defaults

    path = workload_file(cluster_yaml(engines=4).replace("image_tag:", "ttl: 8h\n      image_tag:"))
    api.up(path)
    janitor = next(g for k, g in fake_arm.aci.groups.items() if k[2] == "lab-janitor")
    (container,) = janitor.body["properties"]["containers"]
    env = {e["name"]: e.get("value") for e in container["properties"]["environmentVariables"]}
    assert env["JANITOR_INTERVAL"] == f"{defaults.JANITOR_INTERVAL_S:g}"


# --- secrets -------------------------------------------------------------------------


def test_no_secret_value_is_printed_logged_or_sent_in_clear(
    fake_arm: FakeArm,
    deployer_arm: dict[str, str],
    workload_file: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = workload_file(
        cluster_yaml(engines=4).replace("storage_account: aciresearchdata", "registry_auth: admin")
    )
    env = {
        **deployer_arm,
        "DEPLOYER_REGISTRY_USERNAME": "aciresearch",
        "DEPLOYER_REGISTRY_PASSWORD": "registry-password-9f8e7d",
        "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0a2V5",
    }
    outputs = []
    for args in (["up"], ["up", "-o", "json"], ["plan"], ["plan", "-o", "json"], ["status"]):
        done = subprocess.run(
            [sys.executable, "-m", "deployer.cli", *args, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    # The same run in-process with every logger at DEBUG.
    caplog.set_level(logging.DEBUG)
    for key in (
        "DEPLOYER_REGISTRY_USERNAME",
        "DEPLOYER_REGISTRY_PASSWORD",
        "AZURE_STORAGE_CONNECTION_STRING",
    ):
        import os

        os.environ[key] = env[key]
    api.up(path, api.Overrides(image_tag="1.1"))
    outputs.append(caplog.text)

    state = json.loads(deployment_secrets.path_for("lab").read_text())
    values = [
        state["ipp_key"],
        state["notebook_token"],
        state["engine_key"]["private"],
        state["host_key"]["private"],
        env["DEPLOYER_REGISTRY_PASSWORD"],
        env["AZURE_STORAGE_CONNECTION_STRING"],
        env["DEPLOYER_ACCESS_TOKEN"],
    ]
    # Private keys are checked by their base64 body lines, which are unique.
    needles = [v for v in values if "PRIVATE KEY" not in v]
    needles += [line for v in values if "PRIVATE KEY" in v for line in v.splitlines()[1:-1]]
    text = "\n".join(outputs)
    assert "with the access token: `deployer url FILE`" in text  # where, not the token
    for needle in needles:
        assert needle not in text

    # On the wire, secrets are only ever files of a secret volume (or the registry
    # password): no environment variable carries one, not even as a secureValue.
    puts = fake_arm.calls("PUT", operation_id="ContainerGroups_CreateOrUpdate")
    assert puts
    for call in puts:
        props = call.body["properties"]
        for container in props["containers"]:
            for var in container["properties"].get("environmentVariables", []):
                assert "secureValue" not in var, var["name"]
                assert not any(n in var["value"] for n in needles), var["name"]
        plain = {k: v for k, v in props.items() if k not in ("containers", "volumes")}
        props_text = json.dumps(plain)
        creds = props["imageRegistryCredentials"][0]
        assert creds["password"] == env["DEPLOYER_REGISTRY_PASSWORD"]
        assert props_text.count(env["DEPLOYER_REGISTRY_PASSWORD"]) == 1
        assert not any(n in json.dumps(props["containers"]) for n in needles)
    stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, "lab-head")
    assert stored is not None
    notebook = stored.properties["containers"][1]["properties"]
    nb = {v["name"]: v for v in notebook["environmentVariables"]}
    assert "NOTEBOOK_TOKEN" not in nb
    assert nb["NOTEBOOK_TOKEN_FILE"] == {
        "name": "NOTEBOOK_TOKEN_FILE",
        "value": "/run/secrets/notebook_token",
    }
    assert {"name": "notebook-secrets", "mountPath": "/run/secrets", "readOnly": True} in (
        notebook["volumeMounts"]
    )
    volume = next(v for v in stored.properties["volumes"] if v["name"] == "notebook-secrets")
    token = base64.b64decode(volume["secret"]["notebook_token"]).decode()
    assert token == state["notebook_token"]


# --- errors ----------------------------------------------------------------------------


def test_bad_workload_file_exits_2_naming_the_field(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml().replace("engines: 44", "engines: 0"))
    result = run_cli("up", str(path))
    assert result.exit_code == 2
    assert f"{path}:11: workloads.ipyparallel.engines: must be >= 1 (got 0)" in result.stderr
    assert "Traceback" not in result.output


def test_exceeded_quota_exits_before_any_put(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    fake_arm.aci.usage_limits["StandardCores"] = 20
    path = workload_file(cluster_yaml(engines=20))  # 2 + 20 + 2 cores
    result = run_cli("up", str(path))
    assert result.exit_code == 1
    assert "the plan needs 24 cores in eastus but only 20 of 20 are free" in result.stderr
    assert "QuotaExceeded" in result.stderr
    assert fake_arm.calls("GET", path="/usages")
    assert fake_arm.calls("PUT") == []


def test_arm_error_exits_1_with_code_and_message(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    fake_arm.faults.script(
        400,
        method="PUT",
        path="lab-head",
        body={
            "error": {
                "code": "InaccessibleImage",
                "message": "The image 'aciresearch.azurecr.io/ipcontroller:1.0' in "
                "container group 'lab-head' is not accessible.",
            }
        },
    )
    path = workload_file(cluster_yaml(engines=4))
    result = run_cli("up", str(path), "-o", "json")
    assert result.exit_code == 1
    assert "InaccessibleImage" in result.stderr
    assert "ipcontroller:1.0' in container group 'lab-head' is not accessible" in result.stderr
    assert "Traceback" not in result.stderr
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["error"]["code"] == "InaccessibleImage"
    # The other groups still came up; a second run only creates the head.
    assert groups_in(fake_arm) == ["lab-blast-1", "lab-engines-1"]
    fake_arm.clear_calls()
    assert run_cli("up", str(path)).exit_code == 0
    assert [c.path.rsplit("/", 1)[-1] for c in fake_arm.calls("PUT")] == ["lab-head"]


def test_missing_credential_says_how_to_fix_it(
    fake_arm: FakeArm, deployer_env: dict[str, str]
) -> None:
    client = make_client(
        fake_arm.subscription_id, endpoint=fake_arm.url, credential=EnvironmentCredential()
    )
    with pytest.raises(CredentialError) as info:
        AciBackend(client, DEPLOYER_RESOURCE_GROUP, "eastus").list("lab")
    hint = info.value.hint or ""
    assert "az login" in hint and "AZURE_CLIENT_SECRET" in hint and "managed identity" in hint
    assert info.value.exit_code == 1


def test_refused_token_is_an_authentication_error(
    fake_arm: FakeArm,
    deployer_arm: dict[str, str],
    workload_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEPLOYER_ACCESS_TOKEN", "not-the-token")
    result = run_cli("status", str(workload_file(cluster_yaml())))
    assert result.exit_code == 1
    assert "Azure refused the credential" in result.stderr
    assert "not-the-token" not in result.output


def test_plain_http_is_refused_for_non_loopback_hosts(fake_arm: FakeArm) -> None:
    with pytest.raises(InputError, match="only loopback hosts may"):
        make_client(
            "sub", endpoint="http://management.example.com", credential=fake_arm.credential()
        )
    for ok in ("http://127.0.0.2:1", "http://localhost:1", "http://[::1]:1", "https://x.example"):
        make_client("sub", endpoint=ok, credential=fake_arm.credential())


# --- subnet mode, tags, identity, follow -------------------------------------------------


def test_subnet_mode_creates_the_head_first_and_pins_its_private_ip(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    subnet = (
        "/subscriptions/00000000-0000-0000-0000-00000000fa4e/resourceGroups/research/providers/"
        "Microsoft.Network/virtualNetworks/lab/subnets/aci"
    )
    text = cluster_yaml(engines=8).replace(
        "storage_account: aciresearchdata",
        f"storage_account: aciresearchdata\n      subnet_id: {subnet}",
    )
    path = workload_file(text)
    result = api.up(path)
    head = next(g for g in result.groups if g.name == "lab-head")
    assert head.ip is not None and head.ip.startswith("10.")
    puts = fake_arm.calls("PUT", operation_id="ContainerGroups_CreateOrUpdate")
    order = [c.path.rsplit("/", 1)[-1] for c in puts]
    assert order.index("lab-head") < order.index("lab-engines-1")
    assert order.index("lab-head") < order.index("lab-engines-2")
    engines = next(c for c in puts if c.path.endswith("lab-engines-1")).body["properties"]
    env = {v["name"]: v for v in engines["containers"][0]["properties"]["environmentVariables"]}
    assert env["IPP_SSH_KNOWN_HOSTS"]["value"].startswith(f"[{head.ip}]:2222 ssh-ed25519 ")
    assert engines["subnetIds"] == [{"id": subnet}]
    assert result.endpoints["notebook"] == f"https://{head.ip}:8888/"
    fake_arm.clear_calls()
    assert api.plan(path).counts == {"unchanged": 4}  # planned with the head's private IP
    assert api.up(path).counts == {"unchanged": 4}
    assert fake_arm.calls("PUT") == []


def test_groups_are_tagged_and_pull_through_the_managed_identity(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    result = run_cli("up", str(workload_file(cluster_yaml(engines=4))))
    assert result.exit_code == 0, result.output
    # Not a TTY here: progress degrades to plain lines on stderr.
    assert "lab-head: ready" in result.stderr and "lab-engines-1: ready" in result.stderr
    for name in ("lab-head", "lab-engines-1", "lab-blast-1"):
        stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, name)
        assert stored is not None
        tags = stored.body["tags"]
        assert tags["deployment"] == "lab" and tags["tool"] == "aci-research-deployer"
        assert tags["workload"] in ("ipyparallel", "blast")
        assert stored.body["identity"] == {
            "type": "UserAssigned",
            "userAssignedIdentities": {IDENTITY: {}},
        }
        assert stored.properties["imageRegistryCredentials"] == [
            {"server": "aciresearch.azurecr.io", "identity": IDENTITY}
        ]
        for container in stored.properties["containers"]:
            probe = container["properties"]["readinessProbe"]
            assert probe["exec"]["command"] == ["/usr/local/bin/healthcheck"]


def test_logs_follow_prints_only_new_output(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    api.up(workload_file(cluster_yaml(engines=4)))
    fake_arm.aci.set_logs("lab-engines-1", "ipengine-1", "started\n")
    chunks = iter(api.logs("lab-engines-1", None, follow=True))
    assert next(chunks) == "started\n"
    fake_arm.aci.set_logs("lab-engines-1", "ipengine-1", "started\nregistered as engine 0\n")
    assert next(chunks) == "registered as engine 0\n"


def test_failing_readiness_probe_keeps_a_running_container_not_ready() -> None:
    from azure.mgmt.containerinstance import models as m

    from deployer.backends.aci import observe

    def group(events: list[dict[str, object]]) -> m.ContainerGroup:
        return m.ContainerGroup.deserialize(
            {
                "name": "lab-head",
                "location": "eastus",
                "properties": {
                    "provisioningState": "Succeeded",
                    "osType": "Linux",
                    "containers": [
                        {
                            "name": "notebook",
                            "properties": {
                                "image": "r/notebook:1",
                                "resources": {"requests": {"cpu": 1.0, "memoryInGB": 2.0}},
                                "instanceView": {
                                    "restartCount": 0,
                                    "currentState": {
                                        "state": "Running",
                                        "startTime": "2026-01-01T10:00:00Z",
                                    },
                                    "events": events,
                                },
                            },
                        }
                    ],
                },
            }
        )

    probe_failed = {
        "name": "Unhealthy",
        "type": "Warning",
        "count": 3,
        "message": "Readiness probe failed: unhealthy: server not answering",
        "lastTimestamp": "2026-01-01T10:00:30Z",
    }
    before_start = {**probe_failed, "lastTimestamp": "2026-01-01T09:59:00Z"}
    soon = datetime(2026, 1, 1, 10, 0, 40, tzinfo=UTC)
    assert not observe(group([probe_failed]), soon).ready
    assert observe(group([probe_failed]), soon).containers[0].detail == probe_failed["message"]
    assert observe(group([before_start]), soon).ready  # an old failure from a previous start
    assert observe(group([]), soon).ready
    # ACI reports no passing probes: a failure followed by quiet periods has recovered.
    later = datetime(2026, 1, 1, 10, 1, 30, tzinfo=UTC)
    assert observe(group([probe_failed]), later).ready


def test_probe_timeout_covers_every_image_healthcheck() -> None:
    """ACI's default probe timeout (1 s) would fail the images' own health checks."""
    import re

    from deployer.backends.aci import PROBE_TIMEOUT_S

    images = Path(__file__).resolve().parents[2] / "images"
    timeouts = [
        int(found)
        for dockerfile in images.glob("*/Dockerfile")
        for found in re.findall(r"HEALTHCHECK[^\n]*--timeout=(\d+)s", dockerfile.read_text())
    ]
    assert timeouts and max(timeouts) <= PROBE_TIMEOUT_S
