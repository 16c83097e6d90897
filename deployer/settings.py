"""Resolved deployment settings: the workload file's ``deployment`` block after the chain.

Each setting comes from the explicit argument, then the workload file, then the
environment (see :func:`deployer.defaults.resolve`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from deployer import defaults, hints
from deployer.defaults import Env
from deployer.deployment_secrets import Secret
from deployer.errors import MissingAzureScopeError, MissingSettingError
from deployer.workload import Workload


@dataclass(frozen=True)
class Overrides:
    """Values given on the command line; each wins over the file and the environment.

    Args:
        subscription (str | None): ``--subscription``.
        resource_group (str | None): ``--resource-group``.
        location (str | None): ``--location``.
        registry (str | None): ``--registry``.
        image_tag (str | None): ``--image-tag``.
    """

    subscription: str | None = None
    resource_group: str | None = None
    location: str | None = None
    registry: str | None = None
    image_tag: str | None = None


NO_OVERRIDES = Overrides()
"""Nothing given on the command line: every setting comes from the file or the environment."""


@dataclass(frozen=True)
class Settings:
    """Everything the planner and the backend need, resolved.

    Args:
        deployment (str): Deployment name.
        location (str): Azure region.
        registry (str): Registry login server.
        image_tag (str): Image tag.
        managed_identity (str | None): User-assigned identity resource id.
        managed_identity_client_id (str | None): That identity's client id.
        registry_auth (str): ``identity`` or ``admin``.
        registry_username (str | None): Admin user (admin mode).
        registry_password (Secret | None): Admin password (admin mode).
        storage_account (str | None): Storage account name.
        storage_connection_string (Secret | None): Used when no storage account.
        subnet_id (str | None): Subnet resource id (private IPs).
        subscription (str | None): Subscription id (None when only planning).
        resource_group (str | None): Resource group (None when only planning).
        images (tuple[tuple[str, str], ...]): (image, reference) recorded by
            ``deployer build``; the API layer fills them in unless the tag is
            pinned. Default: none.
        image_tag_pinned (bool): The tag was set by a flag, the file or the
            environment, so the build manifest is not consulted. Default: False.
    """

    deployment: str
    location: str
    registry: str
    image_tag: str
    managed_identity: str | None = None
    managed_identity_client_id: str | None = None
    registry_auth: str = "identity"
    registry_username: str | None = None
    registry_password: Secret | None = field(default=None, repr=False)
    storage_account: str | None = None
    storage_connection_string: Secret | None = field(default=None, repr=False)
    subnet_id: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    images: tuple[tuple[str, str], ...] = ()
    image_tag_pinned: bool = False

    def require_azure(self) -> tuple[str, str]:
        """Return (subscription, resource group), or raise saying what to set."""
        if not self.subscription or not self.resource_group:
            raise MissingSettingError("subscription and resource group are needed here")
        return self.subscription, self.resource_group


def resolve_azure_scope(
    workload: Workload | None,
    overrides: Overrides,
    *,
    discover_group: str = "az group list -o table",
) -> tuple[str, str]:
    """Resolve the subscription and resource group through the chain.

    Args:
        workload (Workload | None): The validated workload file; None when only the
            deployment's name is known (flags and environment only).
        overrides (Overrides): Values from the command line.
        discover_group (str): The ``az`` command the error suggests for finding the
            resource group. Default: ``az group list -o table``.

    Raises:
        MissingAzureScopeError: Naming the flag, field and variable that set a
            missing value.
    """
    d = workload.deployment if workload is not None else None
    subscription = defaults.resolve(
        "deployment.subscription" if d else "subscription",
        overrides.subscription,
        d.subscription if d else None,
        Env.SUBSCRIPTION,
        flag="--subscription",
        discover="az account list -o table",
        error=MissingAzureScopeError,
    )
    resource_group = defaults.resolve(
        "deployment.resource_group" if d else "resource group",
        overrides.resource_group,
        d.resource_group if d else None,
        Env.RESOURCE_GROUP,
        flag="--resource-group",
        discover=discover_group,
        error=MissingAzureScopeError,
    )
    return subscription, resource_group


def resolve_settings(workload: Workload, overrides: Overrides, *, need_azure: bool) -> Settings:
    """Resolve the deployment settings through the chain.

    Args:
        workload (Workload): The validated workload file.
        overrides (Overrides): Values from the command line.
        need_azure (bool): Also require subscription and resource group (every
            command that talks to Azure); ``plan`` and ``render`` do not.

    Raises:
        MissingSettingError: Naming the flag, field and variable that set a
            missing value.
    """
    d = workload.deployment
    location = defaults.resolve(
        "deployment.location",
        overrides.location,
        d.location,
        Env.LOCATION,
        flag="--location",
        discover="az account list-locations -o table",
    )
    registry = defaults.resolve(
        "deployment.registry",
        overrides.registry,
        d.registry,
        Env.REGISTRY,
        flag="--registry",
        discover="az acr list --query [].loginServer -o tsv",
    )
    pinned = overrides.image_tag or d.image_tag or os.environ.get(Env.IMAGE_TAG)
    tag = pinned or defaults.DEFAULT_IMAGE_TAG
    subscription = resource_group = None
    if need_azure:
        subscription, resource_group = resolve_azure_scope(workload, overrides)
    username = password = None
    auth = d.registry_auth
    if auth == "identity" and not d.managed_identity and os.environ.get(Env.REGISTRY_PASSWORD):
        auth = "admin"  # no identity to pull with: fall back to the registry's admin user
    if auth == "admin" and need_azure:
        username = os.environ.get(Env.REGISTRY_USERNAME)
        raw_password = os.environ.get(Env.REGISTRY_PASSWORD)
        if not (username and raw_password):
            raise hints.missing_registry_admin(registry)
        password = Secret(raw_password)
    elif auth == "identity" and not d.managed_identity:
        raise MissingSettingError(
            "deployment.managed_identity is not set, and it pulls the images (registry_auth: "
            "identity)",
            hint="set deployment.managed_identity to a user-assigned identity with AcrPull "
            "(`az identity list --query [].id -o tsv`; `deployer init` creates one), or set "
            f"registry_auth: admin and export {Env.REGISTRY_USERNAME} and {Env.REGISTRY_PASSWORD}",
        )
    conn = os.environ.get(Env.STORAGE_CONNECTION_STRING)
    return Settings(
        deployment=d.name,
        location=location,
        registry=registry,
        image_tag=tag,
        managed_identity=d.managed_identity,
        managed_identity_client_id=d.managed_identity_client_id,
        registry_auth=auth,
        registry_username=username,
        registry_password=password,
        storage_account=d.storage_account,
        storage_connection_string=Secret(conn) if conn else None,
        subnet_id=d.subnet_id,
        subscription=subscription,
        resource_group=resource_group,
        image_tag_pinned=bool(pinned),
    )
