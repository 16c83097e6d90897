"""The fake ARM server, exercised with the real azure-mgmt-containerinstance client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from aci_emulator import (
    FAKE_TOKEN,
    FakeArm,
    FakeCredential,
    LoopbackHttpPolicy,
    SwaggerSpec,
    aci_client,
    is_loopback_url,
)
from testbed.fake_arm import require_specs

RG = "rg-test"
GROUPS = "/providers/Microsoft.ContainerInstance/containerGroups"


def group(
    *,
    cpu: float = 1.0,
    image: str = "busybox:1.36",
    dns: str | None = None,
    subnet: str | None = None,
    containers: tuple[str, ...] = ("main",),
) -> m.ContainerGroup:
    """A minimal valid container group built with the SDK's models."""
    return m.ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="Never",
        tags={"purpose": "test"},
        containers=[
            m.Container(
                name=name,
                image=image,
                resources=m.ResourceRequirements(
                    requests=m.ResourceRequests(cpu=cpu, memory_in_gb=1.5)
                ),
                ports=[m.ContainerPort(port=8080)],
                environment_variables=[m.EnvironmentVariable(name="TOKEN", secure_value="s3cret")],
            )
            for name in containers
        ],
        ip_address=m.IpAddress(
            type="Private" if subnet else "Public",
            ports=[m.Port(port=8080)],
            dns_name_label=dns,
        ),
        subnet_ids=[m.ContainerGroupSubnetId(id=subnet)] if subnet else None,
    )


def raw(
    arm: FakeArm,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = FAKE_TOKEN,
    api_version: str = "2023-05-01",
) -> tuple[int, dict[str, Any]]:
    """Send one request without the SDK (its models cannot express invalid bodies)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{arm.url}{path}?api-version={api_version}", data=data, method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else {}
    except urllib.error.HTTPError as error:
        payload = error.read()
        return error.code, json.loads(payload) if payload else {}


def group_path(arm: FakeArm, name: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/resourceGroups/{RG}{GROUPS}/{name}"


def test_create_polls_until_running(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm.aci.provisioning_delay = 60
    poller = fake_arm_aci_client.container_groups.begin_create_or_update(
        RG, "cg-create", group(dns="blast-demo")
    )
    (put,) = fake_arm.calls(method="PUT")
    assert put.status == 201
    assert put.response["properties"]["provisioningState"] == "Pending"
    assert fake_arm_aci_client.container_groups.get(RG, "cg-create").provisioning_state == "Pending"
    assert not poller.done()

    assert fake_arm.complete_operations("create") == 1
    created = poller.result()

    assert created.provisioning_state == "Succeeded"
    assert created.instance_view is not None and created.instance_view.state == "Running"
    view = created.containers[0].instance_view
    assert view is not None and view.current_state is not None
    assert view.current_state.state == "Running"
    assert created.ip_address is not None and created.ip_address.ip
    assert created.ip_address.fqdn == "blast-demo.westeurope.azurecontainer.io"
    assert created.tags == {"purpose": "test"}
    # ACI never echoes secure values.
    env = created.containers[0].environment_variables
    assert env is not None and env[0].secure_value is None
    statuses = [c.response["status"] for c in fake_arm.calls(operation_id="AsyncOperationStatus")]
    assert statuses[-1] == "Succeeded"
    assert set(statuses[:-1]) <= {"InProgress"}


def test_provisioning_delay_zero_still_polls_once(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm.aci.provisioning_delay = 0
    created = fake_arm_aci_client.container_groups.begin_create_or_update(
        RG, "cg-fast", group()
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert [c.response["status"] for c in fake_arm.calls(operation_id="AsyncOperationStatus")] == [
        "Succeeded"
    ]


def test_subnet_group_gets_private_ip_and_no_fqdn(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    subnet = (
        f"/subscriptions/{fake_arm.subscription_id}/resourceGroups/{RG}/providers/"
        "Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    )
    created = fake_arm_aci_client.container_groups.begin_create_or_update(
        RG, "cg-private", group(subnet=subnet)
    ).result()
    assert created.ip_address is not None and created.ip_address.ip is not None
    assert created.ip_address.ip.startswith("10.")
    assert created.ip_address.fqdn is None


def test_list_by_resource_group_and_subscription(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "cg-a", group()).result()
    groups.begin_create_or_update("rg-other", "cg-b", group()).result()

    assert [g.name for g in groups.list_by_resource_group(RG)] == ["cg-a"]
    assert sorted(str(g.name) for g in groups.list()) == ["cg-a", "cg-b"]
    assert all(g.provisioning_state == "Succeeded" for g in groups.list())


def test_lists_page_with_next_link(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    groups = fake_arm_aci_client.container_groups
    for i in range(5):
        groups.begin_create_or_update(RG, f"cg-{i}", group(), polling=False)
    fake_arm.aci.page_size = 2
    fake_arm.clear_calls()

    assert [g.name for g in groups.list_by_resource_group(RG)] == [f"cg-{i}" for i in range(5)]
    pages = fake_arm.calls(operation_id="ContainerGroups_ListByResourceGroup")
    assert [len(c.response["value"]) for c in pages] == [2, 2, 1]
    assert "nextLink" not in pages[-1].response


def test_get_missing_group_raises_resource_not_found(
    fake_arm_aci_client: ContainerInstanceManagementClient,
) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        fake_arm_aci_client.container_groups.get(RG, "missing")
    assert info.value.error is not None and info.value.error.code == "ResourceNotFound"


def test_body_the_spec_rejects_gets_400_naming_path_and_rule(fake_arm: FakeArm) -> None:
    body = group().serialize()
    body["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpuu"] = 2
    body["properties"]["restartPolicy"] = "Sometimes"

    status, answer = raw(fake_arm, "PUT", group_path(fake_arm, "cg-bad"), body)

    assert status == 400
    error = answer["error"]
    assert error["code"] == "InvalidRequestContent"
    assert "$.properties.containers[0].properties.resources.requests.cpuu" in error["message"]
    assert "additionalProperties" in error["message"]
    assert "$.properties.restartPolicy" in error["message"] and "enum" in error["message"]
    targets = {d["target"] for d in error["details"]}
    assert "$.properties.restartPolicy" in targets
    # Rejected requests change nothing.
    assert raw(fake_arm, "GET", group_path(fake_arm, "cg-bad"))[0] == 404


def test_read_only_fields_are_not_required_and_enums_ignore_case(fake_arm: FakeArm) -> None:
    body = group().serialize()
    body["properties"]["osType"] = "linux"
    body["properties"]["ipAddress"]["type"] = "public"
    assert "provisioningState" not in body["properties"]

    status, answer = raw(fake_arm, "PUT", group_path(fake_arm, "cg-lower"), body)

    assert status == 201, answer


def test_wrong_api_version_and_unknown_route(fake_arm: FakeArm) -> None:
    status, answer = raw(fake_arm, "GET", group_path(fake_arm, "x"), api_version="2019-12-01")
    assert status == 400 and answer["error"]["code"] == "InvalidApiVersionParameter"

    status, answer = raw(fake_arm, "GET", f"/subscriptions/{fake_arm.subscription_id}/nothing")
    assert status == 404 and answer["error"]["code"] == "NotFound"


def test_missing_or_wrong_token_gets_401(fake_arm: FakeArm) -> None:
    status, answer = raw(fake_arm, "GET", group_path(fake_arm, "x"), token=None)
    assert status == 401 and answer["error"]["code"] == "AuthenticationFailed"

    with (
        ContainerInstanceManagementClient(
            FakeCredential("not-the-token"),
            fake_arm.subscription_id,
            base_url=fake_arm.url,
            per_call_policies=[LoopbackHttpPolicy()],
        ) as client,
        pytest.raises(ClientAuthenticationError),
    ):
        client.container_groups.get(RG, "x")


def test_http_is_refused_for_non_loopback_hosts() -> None:
    assert is_loopback_url("http://127.0.0.1:8080/x")
    assert is_loopback_url("http://[::1]:8080/x")
    assert not is_loopback_url("http://management.azure.com/x")
    # azure-core refuses before sending anything, so no traffic leaves the host.
    with (
        ContainerInstanceManagementClient(
            FakeCredential(),
            "sub",
            base_url="http://management.invalid",
            per_call_policies=[LoopbackHttpPolicy()],
            retry_total=0,
        ) as client,
        pytest.raises(ServiceRequestError, match="non-TLS"),
    ):
        client.container_groups.get(RG, "x")


def test_throttling_with_retry_after_is_retried_by_the_sdk(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm.faults.script(429, method="PUT", path="/containerGroups/", count=2, retry_after=0.05)

    created = fake_arm_aci_client.container_groups.begin_create_or_update(
        RG, "cg-throttled", group()
    ).result()

    assert created.provisioning_state == "Succeeded"
    puts = fake_arm.calls(method="PUT")
    assert [c.status for c in puts] == [429, 429, 201]
    assert puts[0].response["error"]["code"] == "TooManyRequests"
    assert fake_arm.faults.pending() == 0


def test_random_faults_are_seeded_and_never_change_state(fake_arm: FakeArm) -> None:
    def run(seed: int) -> list[int]:
        fake_arm.reset()
        fake_arm.faults.random(0.3, (429, 503), seed=seed, retry_after=None, method="GET")
        return [raw(fake_arm, "GET", group_path(fake_arm, f"g{i}"))[0] for i in range(30)]

    first = run(seed=7)
    assert first == run(seed=7)
    assert {429, 503} <= set(first) and 404 in first
    # A PUT answered by a fault stores nothing.
    fake_arm.faults.script(503, method="PUT")
    assert raw(fake_arm, "PUT", group_path(fake_arm, "cg-f"), group().serialize())[0] == 503
    fake_arm.faults.clear()
    assert raw(fake_arm, "GET", group_path(fake_arm, "cg-f"))[0] == 404


def test_delete_polls_to_completion_then_404(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "cg-del", group()).result()
    fake_arm.aci.delete_delay = 60

    poller = groups.begin_delete(RG, "cg-del")
    (delete,) = fake_arm.calls(method="DELETE")
    assert delete.status == 202
    assert groups.get(RG, "cg-del").provisioning_state == "Deleting"
    assert fake_arm.complete_operations("delete") == 1
    poller.result()

    statuses = [
        c.response["status"]
        for c in fake_arm.calls(operation_id="AsyncOperationStatus")
        if c.start > delete.start
    ]
    assert statuses[-1] == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        groups.get(RG, "cg-del")
    # Deleting what is gone is not an error: ARM answers 204.
    groups.begin_delete(RG, "cg-del").result()
    assert fake_arm.calls(method="DELETE")[-1].status == 204


def test_delete_location_header_answers_202_then_204(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm_aci_client.container_groups.begin_create_or_update(RG, "cg-loc", group()).result()
    fake_arm.aci.delete_delay = 60
    fake_arm_aci_client.container_groups.begin_delete(RG, "cg-loc", polling=False).result()
    (delete,) = fake_arm.calls(method="DELETE")
    assert delete.status == 202
    result_path = "/operationResults/"

    def result_status() -> int:
        status_calls = len(fake_arm.calls(path=result_path))
        op = fake_arm.operations("delete")[0]
        raw_path = (
            f"/subscriptions/{fake_arm.subscription_id}/providers/Microsoft.ContainerInstance"
            f"/locations/westeurope{result_path}{op.id}"
        )
        status = raw(fake_arm, "GET", raw_path, api_version="2018-06-01")[0]
        assert len(fake_arm.calls(path=result_path)) == status_calls + 1
        return status

    assert result_status() == 202
    fake_arm.complete_operations("delete")
    assert result_status() == 204


def test_put_while_deleting_is_a_conflict(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "cg-busy", group()).result()
    fake_arm.aci.delete_delay = 30
    groups.begin_delete(RG, "cg-busy", polling=False).result()

    assert groups.get(RG, "cg-busy").provisioning_state == "Deleting"
    with pytest.raises(ResourceExistsError) as info:
        groups.begin_create_or_update(RG, "cg-busy", group())
    assert info.value.status_code == 409


def test_update_in_place_and_update_that_needs_recreate(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    groups = fake_arm_aci_client.container_groups
    groups.begin_create_or_update(RG, "cg-upd", group()).result()

    updated = groups.begin_create_or_update(RG, "cg-upd", group(image="busybox:1.37")).result()
    assert updated.containers[0].image == "busybox:1.37"
    assert [c.status for c in fake_arm.calls(method="PUT")] == [201, 200]

    with pytest.raises(HttpResponseError) as info:
        groups.begin_create_or_update(RG, "cg-upd", group(cpu=2.0))
    assert info.value.status_code == 400
    assert info.value.error is not None
    assert info.value.error.code == "InvalidContainerGroupUpdate"
    assert "you must delete it first" in str(info.value.error.message)
    assert groups.get(RG, "cg-upd").containers[0].resources.requests.cpu == 1.0


def usage_by_name(client: ContainerInstanceManagementClient) -> dict[str, Any]:
    # The SDK's Usage model declares its read-only attributes as None, so type them Any.
    usages: list[Any] = list(client.location.list_usage("westeurope"))
    return {u.name.value: u for u in usages}


def test_usages_report_configurable_limits_and_current_values(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm_aci_client.container_groups.begin_create_or_update(
        RG, "cg-use", group(cpu=1.5, containers=("a", "b"))
    ).result()
    fake_arm.aci.usage_limits["StandardCores"] = 10

    usages = usage_by_name(fake_arm_aci_client)

    assert (usages["StandardCores"].current_value, usages["StandardCores"].limit) == (3, 10)
    assert usages["ContainerGroups"].current_value == 1
    fake_arm.aci.usage_current["StandardCores"] = 9
    usages = usage_by_name(fake_arm_aci_client)
    assert usages["StandardCores"].current_value == 9


def test_logs_are_configurable_and_tail_is_honoured(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient
) -> None:
    fake_arm_aci_client.container_groups.begin_create_or_update(RG, "cg-log", group()).result()
    fake_arm.aci.set_logs("cg-log", "main", "one\ntwo\nthree\n")
    containers = fake_arm_aci_client.containers

    assert containers.list_logs(RG, "cg-log", "main").content == "one\ntwo\nthree\n"
    assert containers.list_logs(RG, "cg-log", "main", tail=2).content == "two\nthree\n"
    with pytest.raises(ResourceNotFoundError):
        containers.list_logs(RG, "cg-log", "nope")


def test_recording_shows_concurrent_creates_overlapping(fake_arm: FakeArm) -> None:
    # Latency makes each PUT take a while, as on Azure; the long provisioning delay holds
    # every group in Pending until the test releases them.
    fake_arm.latency = 0.3
    fake_arm.aci.provisioning_delay = 60
    names = [f"cg-{i}" for i in range(4)]
    with aci_client(fake_arm) as client, ThreadPoolExecutor(len(names)) as pool:
        pollers = list(
            pool.map(
                lambda n: client.container_groups.begin_create_or_update(RG, n, group()), names
            )
        )
        fake_arm.latency = 0
        fake_arm.complete_operations()
        results = [p.result() for p in pollers]

    assert [r.provisioning_state for r in results] == ["Succeeded"] * 4
    puts = fake_arm.calls(method="PUT")
    assert sorted(c.path.rsplit("/", 1)[-1] for c in puts) == names
    assert any(a.overlaps(b) for a in puts for b in puts if a is not b)
    creates = fake_arm.operations("create")
    assert len(creates) == 4
    assert max(op.started for op in creates) < min(op.finished or 0 for op in creates)


def test_validator_is_generic_across_specs(azure_specs: Path) -> None:
    # The ACR build spec uses a discriminator; the same validator handles it.
    acr = SwaggerSpec.load(azure_specs / "containerregistry-build-2019-06-01-preview.json")
    run = acr.operation("Registries_ScheduleRun")
    ok = {"type": "DockerBuildRequest", "dockerFilePath": "Dockerfile", "platform": {"os": "Linux"}}
    assert acr.validate_body(run, ok) == []
    typo = {**ok, "imagename": ["x"]}
    assert [p.path for p in acr.validate_body(run, typo)] == ["$.imagename"]
    assert [p.rule for p in acr.validate_body(run, {"type": "Nope"})] == ["enum"]
    matched = acr.match(
        "POST",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/"
        "registries/bad_name/scheduleRun",
    )
    assert matched is not None
    assert [p.rule for p in acr.check_parameters(matched[0], matched[1], {})] == ["pattern"]


def test_missing_specs_skip_locally_and_fail_under_ci(tmp_path: Path) -> None:
    missing = tmp_path / "azure-specs"
    with pytest.raises(pytest.skip.Exception, match="Azure REST specs not found"):
        require_specs(missing, ci=False)
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_specs(missing, ci=True)
    missing.mkdir()
    assert require_specs(missing, ci=True) == missing
