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
from dataclasses import dataclass
from urllib.parse import urlsplit

from blast_client import BlastClient, BlastClientError

from deployer.arm import is_loopback
from deployer.backends.aci import AciBackend, make_client
from deployer.backends.base import Backend
from deployer.defaults import Env
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
