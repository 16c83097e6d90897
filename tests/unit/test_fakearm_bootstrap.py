"""The fake ARM's bootstrap providers (resource groups and registration, storage, registries,
identities, role assignments), exercised with the real SDKs: every body validated against
its spec (refs into the shared common-types files followed), and the faults a first
``deployer init`` meets."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as aci_models
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry import models as acr
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage import models as sm

from aci_emulator import FAKE_TOKEN, FAKE_USER_OBJECT_ID, FakeArm, SwaggerSpec
from aci_emulator.spec import UnsupportedRefError
from aci_emulator.spec.refs import SpecDocuments, document_file
from deployer.arm import LoopbackAuthPolicy

RG = "rg-boot"
LOCATION = "westeurope"


def sdk(arm: FakeArm, kind: Any, **kwargs: Any) -> Any:
    """A real management client of ``kind`` pointed at the fake.

    The auth policy itself allows http to loopback (not a per-call policy): azure-mgmt-core's
    automatic provider registration sends its own requests past the per-call policies.
    """
    credential = arm.credential()
    options = {
        "base_url": arm.url,
        "authentication_policy": LoopbackAuthPolicy(
            credential, "https://management.azure.com/.default"
        ),
        "polling_interval": 0.01,
        "retry_backoff_factor": 0.01,
        **kwargs,
    }
    return kind(credential, arm.subscription_id, **options)


def raw(arm: FakeArm, method: str, path: str, body: Any, api_version: str) -> tuple[int, Any]:
    """One request without the SDK (its models cannot express invalid bodies)."""
    request = urllib.request.Request(
        f"{arm.url}{path}?api-version={api_version}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {FAKE_TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def code(exc: HttpResponseError) -> str:
    """ARM's error code."""
    return str(exc.error.code) if exc.error else ""


def message(exc: HttpResponseError) -> str:
    """ARM's error message."""
    return str(exc.error.message) if exc.error else ""


@pytest.fixture
def clients(fake_arm: FakeArm) -> Iterator[dict[str, Any]]:
    found = {
        "resources": sdk(fake_arm, ResourceManagementClient),
        "storage": sdk(fake_arm, StorageManagementClient),
        "registries": sdk(fake_arm, ContainerRegistryManagementClient),
        "identities": sdk(fake_arm, ManagedServiceIdentityClient),
        "authorization": sdk(fake_arm, AuthorizationManagementClient),
    }
    found["resources"].resource_groups.create_or_update(RG, {"location": LOCATION})
    yield found
    for client in found.values():
        client.close()


# --- specs: refs into the shared files ------------------------------------------------


def test_refs_map_to_the_flat_specs_folder_as_sources_md_says() -> None:
    v5 = "../../../../../common-types/resource-management/v5/types.json"
    assert (
        document_file(v5, "storage-2026-09-01.json")
        == "common-types-resource-management-v5-types.json"
    )
    assert (
        document_file("./common-types.json", "authorization-roleassignments-2022-04-01.json")
        == "authorization-common-types-2022-04-01.json"
    )
    assert (
        document_file("./managedidentity.json", "common-types-resource-management-v6-types.json")
        == "common-types-resource-management-v6-managedidentity.json"
    )
    assert document_file("", "x.json") == "x.json"
    with pytest.raises(UnsupportedRefError, match="no file of the specs directory"):
        document_file("../elsewhere/other.json", "storage-2026-09-01.json")


def test_every_spec_loads_and_every_body_schema_converts(azure_specs: Path) -> None:
    for path in sorted(azure_specs.glob("*.json")):
        if "common-types" in path.name:
            continue
        spec = SwaggerSpec.load(path)
        bodies = [op for op in spec.operations if op.body_parameter is not None]
        assert bodies, path.name
        for op in bodies:
            # Converting follows every ref; a JSON array is never a valid ARM body.
            assert spec.validate_body(op, [1]), (path.name, op.operation_id)
    # The known quirk: systemData (lower case) is found as SystemData in v4.
    identity = SpecDocuments(azure_specs / "managedidentity-2024-11-30.json")
    target = identity.resolve(
        "../../../../../common-types/resource-management/v4/types.json#/definitions/systemData",
        "managedidentity-2024-11-30.json",
    )
    assert target.name == "SystemData"


def test_a_scope_spans_segments_and_a_whole_id_route_matches_nothing(fake_arm: FakeArm) -> None:
    scope = f"/subscriptions/{fake_arm.subscription_id}/resourceGroups/{RG}/providers/x/y/z"
    status, answer = raw(
        fake_arm,
        "GET",
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/n",
        None,
        "2022-04-01",
    )
    assert (status, answer["error"]["code"]) == (404, "RoleAssignmentNotFound")
    # "/{roleAssignmentId}" would match any path: an unknown path is still 404 NotFound.
    status, answer = raw(fake_arm, "GET", "/no/such/route", None, "2022-04-01")
    assert (status, answer["error"]["code"]) == (404, "NotFound")


BAD_BODIES = [
    # (what, method, path under the subscription, api-version, body, the JSON path named)
    (
        "resource group",
        "PUT",
        f"/resourcegroups/{RG}x",
        "2025-04-01",
        {"location": LOCATION, "tagz": {}},
        "$.tagz",
    ),
    (
        "storage account",
        "PUT",
        f"/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/acct123",
        "2026-09-01",
        {
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "location": LOCATION,
            "properties": {"minimumTlsVersoin": "TLS1_2"},
        },
        "$.properties.minimumTlsVersoin",
    ),
    (
        "registry",
        "PUT",
        f"/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/reg12345",
        "2025-04-01",
        {"location": LOCATION, "sku": {"name": "Basic"}, "properties": {"adminUserEnbled": False}},
        "$.properties.adminUserEnbled",
    ),
    (
        "identity",
        "PUT",
        f"/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        "2024-11-30",
        {"location": LOCATION, "properties": {"isolationScope": "Everywhere"}},
        "$.properties.isolationScope",
    ),
    (
        "role assignment",
        "PUT",
        f"/resourceGroups/{RG}/providers/Microsoft.Authorization/roleAssignments/"
        "11111111-2222-3333-4444-555555555555",
        "2022-04-01",
        {"properties": {"roleDefinitionId": "x"}},
        "$.properties.principalId",
    ),
    (
        "role definition",
        "PUT",
        "/providers/Microsoft.Authorization/roleDefinitions/11111111-2222-3333-4444-555555555555",
        "2022-04-01",
        {"properties": {"roleNmae": "mine"}},
        "$.properties.roleNmae",
    ),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "api_version", "body", "named"),
    BAD_BODIES,
    ids=[b[0] for b in BAD_BODIES],
)
def test_each_provider_rejects_a_bad_body_naming_its_path(
    fake_arm: FakeArm, what: str, method: str, path: str, api_version: str, body: Any, named: str
) -> None:
    full = f"/subscriptions/{fake_arm.subscription_id}{path}"
    status, answer = raw(fake_arm, method, full, body, api_version)
    assert status == 400, (what, answer)
    assert answer["error"]["code"] == "InvalidRequestContent"
    assert named in [d["target"] for d in answer["error"]["details"]], answer


# --- resource groups, registration, the group checks ------------------------------------


def test_groups_registration_and_arms_checks(fake_arm: FakeArm, clients: dict[str, Any]) -> None:
    resources, storage = clients["resources"], clients["storage"]
    assert resources.resource_groups.check_existence(RG)
    assert not resources.resource_groups.check_existence("nope")
    fake_arm.resources.require_registration = True
    fake_arm.resources.require_groups = True
    fake_arm.resources.registration_delay = 0.2
    aci = sdk(fake_arm, ContainerInstanceManagementClient)
    group = aci_models.ContainerGroup(
        location=LOCATION,
        os_type="Linux",
        containers=[
            aci_models.Container(
                name="c",
                image="busybox",
                resources=aci_models.ResourceRequirements(
                    requests=aci_models.ResourceRequests(cpu=1, memory_in_gb=1)
                ),
            )
        ],
    )
    # The ACI provider is refused too (the knob applies to every provider namespace). The
    # SDK's automatic registration asks with api-version 2016-02-01, which the fake refuses,
    # so the refusal comes through.
    with pytest.raises(HttpResponseError) as refused:
        aci.container_groups.begin_create_or_update(RG, "cg", group).result()
    assert code(refused.value) == "MissingSubscriptionRegistration"
    assert (
        resources.providers.get("Microsoft.ContainerInstance").registration_state == "NotRegistered"
    )
    assert (
        resources.providers.register("Microsoft.ContainerInstance").registration_state
        == "Registering"
    )
    time.sleep(0.25)
    assert resources.providers.get("Microsoft.ContainerInstance").registration_state == "Registered"
    with pytest.raises(HttpResponseError) as missing:
        aci.container_groups.begin_create_or_update("nope", "cg", group).result()
    assert code(missing.value) == "ResourceGroupNotFound"
    aci.container_groups.begin_create_or_update(RG, "cg", group).result()
    # Microsoft.Resources and Microsoft.Authorization need no registration.
    assert resources.providers.get("Microsoft.Authorization").registration_state == "Registered"
    with pytest.raises(HttpResponseError) as storage_refused:
        storage.storage_accounts.check_name_availability(
            sm.StorageAccountCheckNameAvailabilityParameters(name="acct1")
        )
    assert code(storage_refused.value) == "MissingSubscriptionRegistration"
    # Deleting the group deletes what it holds, whatever the provider.
    listed = [r.name for r in resources.resources.list_by_resource_group(RG)]
    assert listed == ["cg"]
    resources.resource_groups.begin_delete(RG).result()
    assert not resources.resource_groups.check_existence(RG)
    fake_arm.complete_operations()
    assert fake_arm.aci.group(RG, "cg") is None


def test_throttling_is_retried_by_the_sdk(fake_arm: FakeArm, clients: dict[str, Any]) -> None:
    fake_arm.faults.script(
        429, method="PUT", path="/userAssignedIdentities/", count=2, retry_after=0.05
    )
    made = clients["identities"].user_assigned_identities.create_or_update(
        RG, "id1", {"location": LOCATION}
    )
    assert made.principal_id
    statuses = [c.status for c in fake_arm.calls(method="PUT", path="userAssignedIdentities")]
    assert statuses == [429, 429, 201]


# --- names taken ------------------------------------------------------------------------


def test_storage_and_registry_names_taken(fake_arm: FakeArm, clients: dict[str, Any]) -> None:
    storage, registries = clients["storage"], clients["registries"]
    fake_arm.storage.taken_names.add("someonesacct")
    fake_arm.registries.taken_names.add("someonesreg")
    answer = storage.storage_accounts.check_name_availability(
        sm.StorageAccountCheckNameAvailabilityParameters(name="someonesacct")
    )
    assert (answer.name_available, answer.reason) == (False, "AlreadyExists")
    with pytest.raises(HttpResponseError) as taken:
        storage.storage_accounts.begin_create(
            RG,
            "someonesacct",
            sm.StorageAccountCreateParameters(
                sku=sm.Sku(name="Standard_LRS"), kind="StorageV2", location=LOCATION
            ),
        ).result()
    assert code(taken.value) == "StorageAccountAlreadyTaken"
    status = registries.registries.check_name_availability(
        acr.RegistryNameCheckRequest(name="someonesreg")
    )
    assert not status.name_available and "already in use" in status.message
    with pytest.raises(HttpResponseError) as reg_taken:
        registries.registries.begin_create(
            RG, "someonesreg", acr.Registry(location=LOCATION, sku=acr.Sku(name="Basic"))
        ).result()
    assert code(reg_taken.value) == "AlreadyInUse"
    # Our own new names are free, and then taken for everyone.
    made = registries.registries.begin_create(
        RG, "ourreg123", acr.Registry(location=LOCATION, sku=acr.Sku(name="Basic"))
    ).result()
    assert made.login_server == "ourreg123.azurecr.io" and not made.admin_user_enabled
    assert not registries.registries.check_name_availability(
        acr.RegistryNameCheckRequest(name="ourreg123")
    ).name_available
    with pytest.raises(HttpResponseError) as admin:
        registries.registries.list_credentials(RG, "ourreg123")
    assert code(admin.value) == "UnAuthorizedForCredentialOperations"


# --- identities and role assignments -----------------------------------------------------


def _acr_pull(clients: dict[str, Any], scope: str) -> str:
    found = list(
        clients["authorization"].role_definitions.list(scope, filter="roleName eq 'AcrPull'")
    )
    assert [d.role_name for d in found] == ["AcrPull"]
    return str(found[0].id)


def test_a_new_identity_is_not_found_until_it_replicates(
    fake_arm: FakeArm, clients: dict[str, Any]
) -> None:
    now = [1000.0]
    fake_arm.directory.clock = lambda: now[0]
    fake_arm.identities.replication_delay = 30
    identity = clients["identities"].user_assigned_identities.create_or_update(
        RG, "id1", {"location": LOCATION}
    )
    scope = f"/subscriptions/{fake_arm.subscription_id}/resourceGroups/{RG}"
    params = {
        "properties": {
            "roleDefinitionId": _acr_pull(clients, scope),
            "principalId": identity.principal_id,
            "principalType": "ServicePrincipal",
        }
    }
    name = str(uuid.uuid4())
    assignments = clients["authorization"].role_assignments
    now[0] += 29
    with pytest.raises(HttpResponseError) as early:
        assignments.create(scope, name, params)
    assert code(early.value) == "PrincipalNotFound"
    now[0] += 1
    made = assignments.create(scope, name, params)
    assert made.principal_id == identity.principal_id and made.scope == scope
    assert assignments.get(scope, name).id.endswith(name)
    # The same assignment under another name exists already.
    with pytest.raises(HttpResponseError) as twice:
        assignments.create(scope, str(uuid.uuid4()), params)
    assert code(twice.value) == "RoleAssignmentExists"
    with pytest.raises(ResourceNotFoundError):
        assignments.get(scope, str(uuid.uuid4()))


def test_a_user_without_the_right_gets_authorization_failed(
    fake_arm: FakeArm, clients: dict[str, Any]
) -> None:
    fake_arm.role_assignments.can_assign_roles = False
    scope = f"/subscriptions/{fake_arm.subscription_id}/resourceGroups/{RG}"
    params = {
        "properties": {
            "roleDefinitionId": _acr_pull(clients, scope),
            "principalId": FAKE_USER_OBJECT_ID,
        }
    }
    with pytest.raises(HttpResponseError) as refused:
        clients["authorization"].role_assignments.create(scope, str(uuid.uuid4()), params)
    assert refused.value.status_code == 403
    assert code(refused.value) == "AuthorizationFailed"
    assert FAKE_USER_OBJECT_ID in message(refused.value)
    assert "Microsoft.Authorization/roleAssignments/write" in message(refused.value)


def test_storage_account_queues_tables_containers_and_keys(
    fake_arm: FakeArm, clients: dict[str, Any]
) -> None:
    storage = clients["storage"]
    account = storage.storage_accounts.begin_create(
        RG,
        "acct123",
        sm.StorageAccountCreateParameters(
            sku=sm.Sku(name="Standard_LRS"),
            kind="StorageV2",
            location=LOCATION,
            tags={"created-by": "test"},
            properties=sm.StorageAccountPropertiesCreateParameters(
                enable_https_traffic_only=True,
                minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
            ),
        ),
    ).result()
    assert account.properties.provisioning_state == "Succeeded"
    assert account.properties.minimum_tls_version == "TLS1_2"
    assert account.properties.primary_endpoints.queue == "https://acct123.queue.core.windows.net/"
    storage.queue.create(RG, "acct123", "jobs", sm.StorageQueue())
    storage.table.create(RG, "acct123", "jobtable")
    storage.blob_containers.create(RG, "acct123", "results", sm.BlobContainer())
    assert storage.queue.get(RG, "acct123", "jobs").name == "jobs"
    with pytest.raises(ResourceNotFoundError):
        storage.table.get(RG, "acct123", "other")
    keys = storage.storage_accounts.list_keys(RG, "acct123")["keys"]
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
