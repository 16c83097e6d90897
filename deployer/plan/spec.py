"""The desired state's types: containers, groups and the plan of one deployment (pure data).

Secrets arrive as :class:`~deployer.deployment_secrets.Secret` and leave only inside
``secret_files``: each becomes a file in the container's secret volume at
``/run/secrets/<name>``, named by a plain ``<NAME>_FILE`` variable (the contract's
:attr:`~deployer.contract.EnvVar.secret_path`, the same path compose uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deployer import sizing
from deployer.contract import Mount
from deployer.deployment_secrets import Secret
from deployer.sizing import Resources

EnvValue = str | Secret

IPP = "ipyparallel"
BLAST = "blast"
SECRETS_TAG = "secrets-sha256"
"""Tag holding the digest of a group's secrets (ARM never returns their values)."""
RUN_TAG = "run"
"""Tag naming the run a group belongs to (``deployer run``'s workers and janitor)."""
FETCH_TAG = "db-fetch"
"""Tag naming the database a ``deployer db fetch`` group fetches."""
ONE_OFF_TAGS = (RUN_TAG, FETCH_TAG)
"""Groups with one of these tags are not the deployment's plan: ``up`` leaves them to
whoever created them (a run's janitor, ``deployer db fetch``); ``down`` still deletes them."""


@dataclass(frozen=True)
class ContainerSpec:
    """One desired container.

    Args:
        name (str): Container name, unique in the group.
        role (str): Its role in :data:`deployer.contract.ROLES`.
        image (str): Full image reference.
        resources (Resources): Its request, in tenths.
        ports (tuple[int, ...]): TCP ports it exposes.
        env (tuple[tuple[str, str], ...]): Plain environment variables (``<NAME>_FILE``
            for each secret).
        secret_files (tuple[tuple[str, Secret], ...]): (file name, value) of each secret,
            for the container's secret volume mounted at ``/run/secrets``.
        command (tuple[str, ...] | None): The command; None keeps the image's.
        probe (tuple[str, ...] | None): Readiness probe command.
        mounts (tuple[Mount, ...]): Volume mounts.
    """

    name: str
    role: str
    image: str
    resources: Resources
    ports: tuple[int, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    secret_files: tuple[tuple[str, Secret], ...] = ()
    command: tuple[str, ...] | None = None
    probe: tuple[str, ...] | None = None
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class RegistryAuth:
    """How the group pulls images: a managed identity, or admin user and password."""

    server: str
    identity: str | None = None
    username: str | None = None
    password: Secret | None = None


@dataclass(frozen=True)
class GroupSpec:
    """One desired container group.

    Args:
        name (str): Group name.
        workload (str): ``ipyparallel`` or ``blast``.
        kind (str): ``head``, ``engines`` or ``workers``.
        containers (tuple[ContainerSpec, ...]): Its containers.
        ip (str | None): ``Public``, ``Private`` or None (no IP address).
        priority (str): ``Regular``, or ``Spot`` for worker groups of ``blast.priority:
            spot`` (no IP address and no subnet: Spot has no inbound connectivity).
        location (str | None): Its region when not the deployment's (overflow).
        ports (tuple[int, ...]): Ports exposed on the IP address.
        dns_label (str | None): DNS label of a public IP.
        subnet_id (str | None): Subnet of a private IP (or of an IP-less group).
        volumes (tuple[str, ...]): emptyDir volumes.
        identity (str | None): User-assigned identity resource id.
        registry (RegistryAuth | None): Image pull credentials.
        tags (tuple[tuple[str, str], ...]): Resource tags.
        after_head (bool): Needs the head's private IP, so it is created after it.
        restart_policy (str): ``Always`` (services), ``OnFailure`` or ``Never``
            (run-to-completion, e.g. run workers and the janitor).
    """

    name: str
    workload: str
    kind: str
    containers: tuple[ContainerSpec, ...]
    ip: Literal["Public", "Private"] | None = None
    priority: Literal["Regular", "Spot"] = "Regular"
    location: str | None = None
    ports: tuple[int, ...] = ()
    dns_label: str | None = None
    subnet_id: str | None = None
    volumes: tuple[str, ...] = ()
    identity: str | None = None
    registry: RegistryAuth | None = None
    tags: tuple[tuple[str, str], ...] = ()
    after_head: bool = False
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"

    @property
    def resources(self) -> Resources:
        """The group's total request."""
        total = sizing.ZERO
        for c in self.containers:
            total = total + c.resources
        return total

    def __post_init__(self) -> None:
        if self.priority == "Spot" and (self.ip or self.subnet_id):
            raise ValueError(f"Spot group {self.name} cannot have an IP address or a subnet")


@dataclass(frozen=True)
class Plan:
    """The desired state of one deployment.

    Args:
        deployment (str): Deployment name.
        location (str): Azure region.
        groups (tuple[GroupSpec, ...]): Groups, the head first.
        endpoints (tuple[tuple[str, str], ...]): (name, URL) users connect to.
    """

    deployment: str
    location: str
    groups: tuple[GroupSpec, ...]
    endpoints: tuple[tuple[str, str], ...] = ()

    @property
    def resources(self) -> Resources:
        """Total request of every group."""
        total = sizing.ZERO
        for g in self.groups:
            total = total + g.resources
        return total
