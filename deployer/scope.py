"""Where the deployer acts in Azure, and the clients it acts through.

The one home of what :mod:`deployer.api` (``plan``, ``up``, ``status``, ``logs``, ``down``),
:mod:`deployer.run` (BLAST runs) and the janitor all need: the Azure scope of a deployment
known by its workload file or only by its name, the backend built from settings, the BLAST
storage client of runs, and how a janitor group signs in to ARM. The settings chain itself
is :mod:`deployer.settings`; the ARM credential and clients are :mod:`deployer.arm`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from blast_client import BlastClient, BlastClientError

from deployer import hints
from deployer.arm import is_loopback, management_client
from deployer.backends.aci import AciBackend, make_client
from deployer.backends.base import Backend
from deployer.defaults import Env
from deployer.deployment_secrets import Secret
from deployer.errors import InputError, MissingSettingError
from deployer.settings import Overrides, Settings, resolve_azure_scope
from deployer.workload import Workload

BackendFactory = Callable[[Settings], Backend]
"""Builds the backend of a deployment from its settings (tests pass their own)."""


def aci_backend(settings: Settings) -> Backend:
    """Build the ACI backend for ``settings`` (subscription and resource group required)."""
    subscription, resource_group = settings.require_azure()
    return AciBackend(make_client(subscription), resource_group, settings.location)


def scope_settings(
    workload: Workload | None, deployment: str | None, overrides: Overrides
) -> Settings:
    """Settings that name the deployment and its Azure scope, and nothing else.

    ``status``, ``logs``, ``down``, the run commands and the janitor list, read or delete
    groups: they need no registry, secrets or storage settings.

    Args:
        workload (Workload | None): The workload file, which names the deployment; None
            when only its name is known.
        deployment (str | None): The deployment's name when there is no workload file.
        overrides (Overrides): Command-line settings.

    Raises:
        InputError: When neither a workload nor a deployment name is given.
        MissingAzureScopeError: Naming the flag, field and variable that set a missing
            subscription or resource group.
    """
    if workload is not None:
        d = workload.deployment
        name, location = d.name, overrides.location or d.location or ""
    elif deployment:
        name, location = deployment, overrides.location or ""
    else:
        raise InputError(
            "give a workload FILE or --deployment NAME", hint="e.g. `deployer status cluster.yaml`"
        )
    sub, rg = resolve_azure_scope(workload, overrides)
    return Settings(
        deployment=name,
        location=location,
        registry="",
        image_tag="",
        subscription=sub,
        resource_group=rg,
    )


STORAGE_RETRIES = 6
"""SDK-level retries of the control plane's storage requests, with exponential backoff (about
30 s in all): a throttled account (503 ServerBusy) slows a run's submit, janitor and merge
down instead of failing them."""


def storage_client(queue: str | None = None, settings: Settings | None = None) -> BlastClient:
    """The BLAST client of the run's storage: the deployment's account, else the environment.

    Args:
        queue (str | None): The run's queue.
        settings (Settings | None): Resolved settings (their storage account wins).

    Raises:
        MissingSettingError: when no storage is configured.
    """
    try:
        if settings is not None and settings.storage_account:
            return BlastClient(
                account_name=settings.storage_account, queue=queue, retries=STORAGE_RETRIES
            )
        if settings is not None and settings.storage_connection_string:
            return BlastClient(
                settings.storage_connection_string.reveal(), queue=queue, retries=STORAGE_RETRIES
            )
        return BlastClient.from_env(queue=queue, retries=STORAGE_RETRIES)
    except BlastClientError as exc:
        raise MissingSettingError(
            f"no storage for the run: {exc.message}",
            hint="set deployment.storage_account, or export AZURE_STORAGE_CONNECTION_STRING",
        ) from None


@dataclass(frozen=True)
class ArmAccess:
    """How a janitor group reaches ARM.

    Args:
        endpoint (str | None): ``DEPLOYER_ARM_ENDPOINT`` as the containers see it; None for
            the public cloud.
        token (str | None): A static ARM token, only towards the local emulator; in Azure
            the janitor signs in with the group's managed identity.
    """

    endpoint: str | None
    token: str | None

    @property
    def local(self) -> bool:
        """The endpoint is the local emulator (a loopback URL the containers reach too)."""
        return bool(self.endpoint and is_loopback(urlsplit(self.endpoint).hostname))


def janitor_arm_access() -> ArmAccess:
    """How this process's janitor groups will sign in to ARM, from the environment.

    The local emulator has no managed identity endpoint, so its groups take this process's
    token; Azure never gets a token from here.
    """
    access = ArmAccess(os.environ.get(Env.ARM_ENDPOINT), None)
    if access.local:
        return ArmAccess(access.endpoint, os.environ.get(Env.ACCESS_TOKEN))
    return access


def local_storage(settings: Settings) -> Settings:
    """Settings that open the deployment's storage account when it is an Azurite behind the
    local emulator; otherwise ``settings`` unchanged.

    Towards the local emulator (a loopback ARM endpoint) a storage account may report plain
    http endpoints on loopback: an Azurite, which takes no Entra ID token. The deployer and the
    groups then open it with the key ARM lists and the endpoints it reports, as a connection
    string. Towards Azure nothing changes: everyone signs in to storage with Entra ID.

    Args:
        settings (Settings): Resolved settings (subscription and resource group included).

    Raises:
        DeployerError: When ARM refuses to show the account or its keys.
    """
    if not settings.storage_account or not ArmAccess(os.environ.get(Env.ARM_ENDPOINT), None).local:
        return settings
    from azure.core.exceptions import AzureError as SdkAzureError
    from azure.mgmt.storage import StorageManagementClient

    subscription, group = settings.require_azure()
    name = settings.storage_account
    try:
        with management_client(StorageManagementClient, subscription) as client:
            found = client.storage_accounts.get_properties(group, name).primary_endpoints
            urls = {
                "Blob": found.blob if found else None,
                "Queue": found.queue if found else None,
                "Table": found.table if found else None,
            }
            if not all(u and _loopback_http(u) for u in urls.values()):
                return settings
            # The model is a Mapping: its `keys` field is `keys_property`.
            keys = client.storage_accounts.list_keys(group, name).keys_property or []
    except SdkAzureError as exc:
        raise hints.from_exception(exc, f"reading storage account {name}") from None
    key = next((k.value for k in keys if k.value), None)
    if key is None:
        return settings
    # Azurite's endpoints are path-style: their path names the account Azurite signs for.
    account = urlsplit(str(urls["Blob"])).path.strip("/").split("/")[0] or name
    conn = f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};" + "".join(
        f"{service}Endpoint={str(url).rstrip('/')};" for service, url in urls.items()
    )
    return replace(settings, storage_account=None, storage_connection_string=Secret(conn))


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and is_loopback(parts.hostname)


def registry_with_login_server(registries: Any, resource_group: str, server: str) -> str | None:
    """The name of the resource group's registry whose login server is ``server``, or None.

    A login server is ``<name>.azurecr.io`` only by default (a domain name label scope adds a
    hash, and the local emulator reports its own address), so only ARM can say which
    registry serves it.

    Args:
        registries (Any): A ``ContainerRegistryManagementClient`` (registry management).
        resource_group (str): Where to look.
        server (str): The workload's registry (a login server).

    Raises:
        azure.core.exceptions.AzureError: When ARM cannot list the registries.
    """
    for found in registries.registries.list_by_resource_group(resource_group):
        if found.name and str(found.login_server or "").lower() == server.lower():
            return str(found.name)
    return None
