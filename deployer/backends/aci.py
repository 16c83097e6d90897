"""The Azure Container Instances backend, on azure-mgmt-containerinstance (API 2023-05-01).

:func:`make_client` builds the SDK client for an ARM endpoint (the public cloud by
default, a fake one in tests); :class:`AciBackend` maps
:class:`~deployer.plan.GroupSpec` to SDK models and back.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError as SdkError
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from deployer import defaults, hints
from deployer.arm import management_client
from deployer.backends.base import Backend, ContainerStatus, ObservedGroup, Usage
from deployer.errors import AzureError, DeployerError
from deployer.plan import GroupSpec, secret_volume
from deployer.sizing import fmt, to_tenths

T = TypeVar("T")

PROBE_PERIOD_S = 10
"""Seconds between readiness probe runs of every container the deployer creates."""
PROBE_TIMEOUT_S = 15
"""Seconds a probe may take: the images' slowest HEALTHCHECK (ipcontroller asks its hub);
ACI's default, 1 s, fails those checks every time."""
PROBE_FAILURE_FRESH_S = 2 * PROBE_PERIOD_S + 10
"""A readiness failure newer than this means the probe is failing now. ACI reports
failures as ``Unhealthy`` events but no successes: an older one has been followed by
passing probes (the slack covers clock skew with ARM)."""

CORES_USAGE = ("StandardCores", "Standard Cores", "Cores")
"""Names under which ``location.list_usage`` reports the regional core quota."""


def make_client(
    subscription: str,
    *,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
    poll_interval: float | None = None,
) -> ContainerInstanceManagementClient:
    """Build the ACI management client (see :func:`deployer.arm.management_client`).

    Args:
        subscription (str): Subscription id (``az account list -o table``).
        endpoint (str | None): ARM endpoint. Default: ``$DEPLOYER_ARM_ENDPOINT``,
            else the public cloud.
        credential (TokenCredential | None): Default: :func:`deployer.arm.default_credential`.
        poll_interval (float | None): Seconds between LRO polls. Default:
            ``$DEPLOYER_POLL_INTERVAL``, else 5.

    Raises:
        InputError: For an endpoint that is not https (or http on loopback).
    """
    return management_client(
        ContainerInstanceManagementClient,
        subscription,
        endpoint=endpoint,
        credential=credential,
        poll_interval=poll_interval,
    )


def translate(exc: Exception, what: str) -> DeployerError:
    """Turn an SDK exception into a user-facing error with the ARM error code and the fix
    (:mod:`deployer.hints`)."""
    if isinstance(exc, SdkError):
        return hints.from_exception(exc, what)
    raise exc


def _group_missing(exc: ResourceNotFoundError) -> bool:
    """A 404 about the group itself, not about its resource group (which is an error)."""
    return not (exc.error and exc.error.code == "ResourceGroupNotFound")


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise translate(exc, what) from None


def to_model(spec: GroupSpec, location: str) -> m.ContainerGroup:
    """Map a desired group to the SDK's ContainerGroup (secrets as files of a secret volume)."""
    containers = []
    secret_volumes = []
    for c in spec.containers:
        env = [m.EnvironmentVariable(name=k, value=v) for k, v in c.env]
        if c.secret_files:
            files = {k: base64.b64encode(v.reveal().encode()).decode() for k, v in c.secret_files}
            secret_volumes.append(m.Volume(name=secret_volume(c.name), secret=files))
        probe = None
        if c.probe:
            probe = m.ContainerProbe(
                exec_property=m.ContainerExec(command=list(c.probe)),
                initial_delay_seconds=5,
                period_seconds=PROBE_PERIOD_S,
                timeout_seconds=PROBE_TIMEOUT_S,
                failure_threshold=3,
            )
        containers.append(
            m.Container(
                name=c.name,
                image=c.image,
                command=list(c.command) if c.command else None,
                ports=[m.ContainerPort(port=p, protocol="TCP") for p in c.ports] or None,
                environment_variables=env or None,
                resources=m.ResourceRequirements(
                    requests=m.ResourceRequests(
                        cpu=float(fmt(c.resources.cpu)), memory_in_gb=float(fmt(c.resources.memory))
                    )
                ),
                volume_mounts=[
                    m.VolumeMount(name=v.volume, mount_path=v.path, read_only=v.read_only or None)
                    for v in c.mounts
                ]
                or None,
                readiness_probe=probe,
            )
        )
    ip = None
    if spec.ip:
        ip = m.IpAddress(
            type=spec.ip,
            ports=[m.Port(port=p, protocol="TCP") for p in spec.ports],
            dns_name_label=spec.dns_label,
        )
    registry = None
    if spec.registry:
        r = spec.registry
        registry = [
            m.ImageRegistryCredential(
                server=r.server,
                identity=r.identity,
                username=r.username,
                password=r.password.reveal() if r.password else None,
            )
        ]
    identity = None
    if spec.identity:
        identity = m.ContainerGroupIdentity(
            type="UserAssigned",
            user_assigned_identities={spec.identity: m.UserAssignedIdentities()},
        )
    return m.ContainerGroup(
        location=location,
        tags=dict(spec.tags),
        identity=identity,
        containers=containers,
        image_registry_credentials=registry,
        restart_policy=spec.restart_policy,
        ip_address=ip,
        os_type="Linux",
        volumes=[m.Volume(name=v, empty_dir={}) for v in spec.volumes] + secret_volumes or None,
        subnet_ids=[m.ContainerGroupSubnetId(id=spec.subnet_id)] if spec.subnet_id else None,
        # Sent only for Spot, so regular groups keep the bodies they always had.
        priority="Spot" if spec.priority == "Spot" else None,
    )


def canonical_of(group: m.ContainerGroup) -> dict[str, Any]:
    """Return the fields the deployer sets, read back from ARM (see plan.canonical)."""
    ip = group.ip_address
    if ip and (ip.type or "").lower() == "private" and not ip.ports:
        ip = None  # ACI gives every subnet group a private IP; we set none without ports.
    identities = sorted((group.identity.user_assigned_identities or {}) if group.identity else {})
    creds = group.image_registry_credentials or []
    cred = creds[0] if creds else None
    containers = group.containers or []

    def probe(c: m.Container) -> list[str] | None:
        p = c.readiness_probe
        return (
            list(p.exec_property.command)
            if p and p.exec_property and p.exec_property.command
            else None
        )

    return {
        "recreate": {
            "os": group.os_type,
            "restart": group.restart_policy,
            "ip": [ip.type, sorted(p.port for p in ip.ports or []), ip.dns_name_label]
            if ip
            else None,
            "subnet": group.subnet_ids[0].id.lower() if group.subnet_ids else None,
            "identity": identities[0].lower() if identities else None,
            "volumes": sorted(v.name for v in group.volumes or []),
            "priority": group.priority or "Regular",
            "containers": {
                c.name: {
                    "cpu": to_tenths(c.resources.requests.cpu),
                    "memory": to_tenths(c.resources.requests.memory_in_gb),
                    "ports": sorted(p.port for p in c.ports or []),
                }
                for c in containers
            },
        },
        "update": {
            "tags": dict(group.tags or {}),
            "registry": [cred.server, cred.identity, cred.username] if cred else None,
            "containers": {
                c.name: {
                    "image": c.image,
                    "command": list(c.command) if c.command else None,
                    "env": {
                        e.name: e.value
                        for e in c.environment_variables or []
                        if e.value is not None
                    },
                    "probe": probe(c),
                    "mounts": sorted(
                        [v.name, v.mount_path, bool(v.read_only)] for v in c.volume_mounts or []
                    ),
                }
                for c in containers
            },
        },
    }


def _status(c: m.Container, now: datetime) -> ContainerStatus:
    view = c.instance_view
    state = view.current_state if view else None
    events: list[m.Event] = (view.events if view else None) or []
    started = state.start_time if state else None
    # A recent readiness failure since this start means the probe is failing now.
    unhealthy = [
        e
        for e in events
        if (e.name or "").lower() == "unhealthy"
        and "readiness" in (e.message or "").lower()
        and (started is None or (e.last_timestamp and e.last_timestamp >= started))
        and (
            e.last_timestamp is None
            or (now - e.last_timestamp).total_seconds() <= PROBE_FAILURE_FRESH_S
        )
    ]
    running = bool(state and state.state == "Running")
    detail = state.detail_status if state else None
    if unhealthy:
        detail = unhealthy[-1].message
    previous = view.previous_state if view else None
    first = previous.start_time if previous and previous.start_time else started
    finished = state.finish_time if state else None
    return ContainerStatus(
        name=c.name,
        state=state.state if state else None,
        ready=running and not unhealthy,
        restarts=view.restart_count or 0 if view else 0,
        detail=detail,
        started=first.timestamp() if first else None,
        finished=finished.timestamp() if finished else None,
        exit_code=state.exit_code if state else None,
    )


SPOT_EVICTED_EVENT = "SpotContainerGroupEvicted"
"""The group-level event ACI records when it evicts a Spot group."""


def observe(group: m.ContainerGroup, now: datetime | None = None) -> ObservedGroup:
    """Map an SDK ContainerGroup to the backend-neutral observed state.

    Args:
        group (m.ContainerGroup): The group as ARM returned it.
        now (datetime | None): The time to judge probe failures by. Default: now (UTC).
    """
    now = now or datetime.now(UTC)
    ip = group.ip_address
    view = group.instance_view
    events: list[m.Event] = (view.events if view else None) or []
    return ObservedGroup(
        name=group.name or "",
        provisioning_state=group.provisioning_state,
        tags=dict(group.tags or {}),
        canonical=canonical_of(group),
        containers=tuple(_status(c, now) for c in group.containers or []),
        ip=ip.ip if ip else None,
        fqdn=ip.fqdn if ip else None,
        location=group.location,
        evicted=any(e.name == SPOT_EVICTED_EVENT for e in events),
        state=view.state if view else None,
    )


class AciBackend(Backend):
    """Container groups in one resource group of one subscription.

    Args:
        client (ContainerInstanceManagementClient): From :func:`make_client`.
        resource_group (str): Resource group (``az group list -o table``).
        location (str): Region of new groups (``az account list-locations -o table``).
    """

    def __init__(
        self, client: ContainerInstanceManagementClient, resource_group: str, location: str
    ) -> None:
        self.client = client
        self.resource_group = resource_group
        self.location = location

    def create_or_update(self, spec: GroupSpec) -> ObservedGroup:
        groups = self.client.container_groups
        model = to_model(spec, spec.location or self.location)

        def run() -> m.ContainerGroup:
            return groups.begin_create_or_update(self.resource_group, spec.name, model).result()

        result = _call(f"creating container group {spec.name}", run)
        observed = observe(result)
        if observed.provisioning_state not in ("Succeeded", None):
            raise AzureError(
                f"container group {spec.name} ended {observed.provisioning_state}",
                code=f"Provisioning{observed.provisioning_state}",
            )
        return observed

    def start_create(self, spec: GroupSpec) -> None:
        model = to_model(spec, spec.location or self.location)
        # The PUT itself carries ACI's refusals (quota, Spot); provisioning is observed later.
        _call(
            f"creating container group {spec.name}",
            lambda: self.client.container_groups.begin_create_or_update(
                self.resource_group, spec.name, model, polling=False
            ),
        )

    def delete(self, name: str) -> bool:
        def run() -> bool:
            try:
                self.client.container_groups.begin_delete(self.resource_group, name).result()
            except ResourceNotFoundError as exc:
                if _group_missing(exc):
                    return False
                raise
            return True

        return _call(f"deleting container group {name}", run)

    def start_delete(self, name: str) -> None:
        def run() -> None:
            # The DELETE's answer (202, or 204 for a missing group) is the acceptance; ARM
            # polls its operation for seconds more, which nobody here needs to wait for.
            try:
                self.client.container_groups.begin_delete(self.resource_group, name, polling=False)
            except ResourceNotFoundError as exc:
                if not _group_missing(exc):
                    raise

        _call(f"deleting container group {name}", run)

    def list(self, deployment: str) -> list[ObservedGroup]:
        def run() -> list[ObservedGroup]:
            pages: Iterator[m.ContainerGroup] = iter(
                self.client.container_groups.list_by_resource_group(self.resource_group)
            )
            return [
                observe(g)
                for g in pages
                if (g.tags or {}).get("deployment") == deployment
                and (g.tags or {}).get("tool") == defaults.TOOL_TAG
            ]

        listed = _call(f"listing container groups in {self.resource_group}", run)
        # The list view omits instance views; fetch each group for its containers' state.
        return [self.get(g.name) or g for g in listed]

    def get(self, name: str) -> ObservedGroup | None:
        def run() -> ObservedGroup | None:
            try:
                return observe(self.client.container_groups.get(self.resource_group, name))
            except ResourceNotFoundError as exc:
                if _group_missing(exc):
                    return None
                raise

        return _call(f"reading container group {name}", run)

    def logs(self, group: str, container: str, tail: int | None = None) -> str:
        def run() -> str:
            logs = self.client.containers.list_logs(
                self.resource_group, group, container, tail=tail
            )
            return logs.content or ""

        return _call(f"reading the logs of {group}/{container}", run)

    def usage(self, location: str) -> Usage:
        def run() -> Usage:
            for u in self.client.location.list_usage(location):
                name = u.name.value if u.name else None
                if name in CORES_USAGE:
                    return Usage(cores_used=u.current_value or 0, cores_limit=u.limit or 0)
            return Usage(cores_used=0, cores_limit=defaults.DEFAULT_QUOTA_CORES)

        return _call(f"reading the ACI quota of {location}", run)
