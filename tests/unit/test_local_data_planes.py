"""The deployer finds the data planes that stand behind resources through ARM, through the real
SDKs against the fake: a storage account that is an Azurite behind the local emulator opens
with its key, and a registry is named by its login server whatever that server is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry import models as cm
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage import models as sm

from aci_emulator import FakeArm
from deployer import bootstrap
from deployer.arm import management_client
from deployer.imagebuild import registry_name
from deployer.scope import local_storage, storage_client
from deployer.settings import Settings
from deployer.workload import load
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP as GROUP

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devacct;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10000/devacct;QueueEndpoint=http://127.0.0.1:10001/devacct;"
    "TableEndpoint=http://127.0.0.1:10002/devacct;"
)


def _account(fake_arm: FakeArm, name: str) -> Settings:
    with management_client(StorageManagementClient, fake_arm.subscription_id) as client:
        client.storage_accounts.begin_create(
            GROUP,
            name,
            sm.StorageAccountCreateParameters(
                sku=sm.Sku(name="Standard_LRS"), kind="StorageV2", location="westeurope"
            ),
        ).result()
    return Settings(
        deployment="lab",
        location="westeurope",
        registry="r.azurecr.io",
        image_tag="1",
        storage_account=name,
        subscription=fake_arm.subscription_id,
        resource_group=GROUP,
    )


def test_an_azurite_account_behind_the_emulator_opens_with_its_key(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    fake_arm.storage.azurite = AZURITE
    settings = local_storage(_account(fake_arm, "labdata1"))
    assert settings.storage_account is None and settings.storage_connection_string
    conn = settings.storage_connection_string.reveal()
    # The account Azurite signs for is the one its path-style endpoints name.
    assert "AccountName=devacct;AccountKey=a2V5;" in conn
    assert "QueueEndpoint=http://127.0.0.1:10001/devacct;" in conn
    client = storage_client("q1", settings)
    assert client.config.connection_string == conn and client.config.queue == "q1"


def test_an_account_with_azure_endpoints_or_towards_azure_signs_in_with_entra(
    fake_arm: FakeArm, deployer_arm: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _account(fake_arm, "labdata2")  # https://labdata2.blob.core.windows.net/...
    assert local_storage(settings) == settings
    fake_arm.storage.azurite = AZURITE
    fake_arm.clear_calls()
    monkeypatch.setenv("DEPLOYER_ARM_ENDPOINT", "https://management.azure.com")
    assert local_storage(settings) == settings
    assert fake_arm.calls() == []  # towards Azure nothing is asked


def test_a_registry_is_named_by_its_login_server_whatever_the_server(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    fake_arm.registries.data_plane = "127.0.0.1:5999"
    with management_client(ContainerRegistryManagementClient, fake_arm.subscription_id) as client:
        client.registries.begin_create(
            GROUP, "labreg1", cm.Registry(location="westeurope", sku=cm.Sku(name="Basic"))
        ).result()
    sub = fake_arm.subscription_id
    assert registry_name(sub, GROUP, "127.0.0.1:5999") == "labreg1"
    # No registry has that server (or ARM cannot say): the first label is the guess.
    assert registry_name(sub, GROUP, "other.azurecr.io") == "other"
    assert registry_name(sub, "nogroup", "127.0.0.1:5999") == "127"


def test_init_writes_the_login_server_arm_reports_and_finds_the_registry_by_it_again(
    fake_arm: FakeArm, deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    fake_arm.registries.data_plane = "127.0.0.1:5999"
    path = workload_file(
        """
        deployment:
          name: lab
          location: westeurope
        workloads:
          blast:
            workers: 1
            databases:
              - {name: demo, bytes_to_cache: 1000000}
        """
    )
    bootstrap.init(path, confirm=lambda plan: True)
    assert load(path).deployment.registry == "127.0.0.1:5999"
    (registry,) = fake_arm.registries.registries.in_subscription(fake_arm.subscription_id)
    fake_arm.clear_calls()
    again = bootstrap.init(path, confirm=lambda plan: True)
    assert again.done == [] and fake_arm.calls(method="PUT") == []
    # destroy knows the registry by its login server too: its role assignments go with it.
    bootstrap.destroy(path, confirm=lambda preview: True)
    fake_arm.complete_operations()
    assert fake_arm.registries.registries.get(registry.key) is None
    assert fake_arm.role_assignments.assignments == {}
