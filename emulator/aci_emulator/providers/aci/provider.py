"""Azure Container Instances (``Microsoft.ContainerInstance``, api-version 2023-05-01).

Behaviour reproduced from the spec, SDK recordings and ACI's documented errors:

* PUT of a new group answers **201** with ``provisioningState: "Pending"`` (what ACI
  returns; recorded responses show it) and an ``Azure-AsyncOperation`` header; the
  operation reports ``InProgress`` until :attr:`AciProvider.provisioning_delay` has
  passed, then ``Succeeded``, and the group is ``Succeeded`` / ``Running`` with an
  IP (private for subnet groups) and ``fqdn = <dnsNameLabel>.<location>.azurecontainer.io``.
* PUT of an existing group answers **200**; changing a property ACI cannot update in
  place answers 400 ``InvalidContainerGroupUpdate`` with ACI's own message, so the
  deployer must delete and recreate.
* DELETE answers **202** with ``Azure-AsyncOperation`` and ``Location`` and finishes
  after :attr:`AciProvider.delete_delay`; DELETE of a missing group answers 204; PUT
  while a delete is in flight answers 409.
* GET/list render the read-only fields the SDK deserialises; secure environment
  variable values are never returned, as in ACI.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .server import ArmRequest, ArmResponse, ResourceProvider, arm_error
from .spec import SPECS_DIR, SwaggerSpec, deep_copy_json

if TYPE_CHECKING:
    from .emulator import DockerRuntime

ACI_SPEC_NAME = "containerinstance-2023-05-01.json"
ACI_SPEC_FILE = SPECS_DIR / ACI_SPEC_NAME
"""The spec the ACI provider serves (azure-mgmt-containerinstance 10.1.0's version)."""

GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"

DEFAULT_USAGE_LIMITS: dict[str, int] = {
    "ContainerGroups": 100,
    "StandardCores": 100,
    "StandardK80Cores": 0,
    "StandardP100Cores": 0,
    "StandardV100Cores": 0,
}
"""Per-region limits reported by the usages route unless a test overrides them."""

_LOCALIZED = {
    "ContainerGroups": "Container Groups",
    "StandardCores": "Standard Cores",
    "StandardK80Cores": "Standard K80 Cores",
    "StandardP100Cores": "Standard P100 Cores",
    "StandardV100Cores": "Standard V100 Cores",
}

# ACI's own wording for updates it cannot apply in place.
_RECREATE_MESSAGE = (
    "The updates on container group '{name}' are invalid. If you are going to update the os "
    "type, restart policy, network profile, CPU, memory or GPU resources for a container "
    "group, you must delete it first and then create a new one."
)

# Lower-case letters, digits and single hyphens, 1-63 characters (ACI's naming rule).
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}[a-z0-9]$|^[a-z0-9]$")


@dataclass
class ContainerGroupState:
    """A stored container group.

    :param subscription_id: subscription as first sent.
    :param resource_group: resource group as first sent.
    :param name: group name as first sent.
    :param body: the client's last accepted PUT body (deep copy).
    :param provisioning_state: ``Pending``, ``Succeeded``, ``Deleting``, ``Failed``.
    :param ip: assigned IP, once provisioned.
    :param start_time: ISO time the containers (re)started.
    :param deleting_operation: id of the delete operation in flight, if any.
    """

    subscription_id: str
    resource_group: str
    name: str
    body: dict[str, Any]
    provisioning_state: str = "Pending"
    ip: str | None = None
    start_time: str | None = None
    deleting_operation: str | None = None
    restart_count: int = 0

    @property
    def id(self) -> str:
        """ARM resource id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{GROUP_TYPE}/{self.name}"
        )

    @property
    def location(self) -> str:
        """Region as sent by the client."""
        return str(self.body.get("location", ""))

    @property
    def properties(self) -> dict[str, Any]:
        """The ``properties`` object of the stored body."""
        props: dict[str, Any] = self.body.setdefault("properties", {})
        return props


@dataclass
class AciProvider(ResourceProvider):
    """The ``Microsoft.ContainerInstance`` provider. Knobs are settable while running.

    :param provisioning_delay: seconds from PUT until the create/update operation
        succeeds.
    :param delete_delay: seconds from DELETE until the group is gone (0 allowed).
    :param usage_limits: per-usage ``limit`` reported by the usages route.
    :param usage_current: per-usage ``currentValue`` overrides; usages not listed are
        computed from the stored groups of that subscription and region.
    :param logs: container logs keyed by ``(group name, container name)`` (lower
        case); use :meth:`set_logs`.
    :param page_size: groups per page of the list routes; ``None`` answers one page.
        With a size, each page but the last carries a ``nextLink`` (``$skipToken``).
    :param location_limits: per-region overrides of :attr:`usage_limits`, keyed by
        location (any case, spaces ignored); use :meth:`set_quota`.
    :param spot_capacity: scripted Spot refusals; use :meth:`refuse_spot`.
    :param spec_file: the REST spec to serve (default: ``../shared/azure-specs``).
    :param runtime: the Docker runtime in emulator mode (groups become containers).
    """

    namespace: ClassVar[str] = "Microsoft.ContainerInstance"

    provisioning_delay: float = 0.05
    delete_delay: float = 0.05
    usage_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_USAGE_LIMITS))
    usage_current: dict[str, int] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    page_size: int | None = None
    groups: dict[tuple[str, str, str], ContainerGroupState] = field(default_factory=dict)
    location_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    spot_capacity: list[SpotRefusal] = field(default_factory=list)
    spec_file: Path = ACI_SPEC_FILE
    runtime: DockerRuntime | None = None

    def __post_init__(self) -> None:
        super().__init__(SwaggerSpec.load(self.spec_file))
        self._ips = itertools.count(4)

    def reset(self) -> None:
        """Forget all groups and logs (knobs are kept)."""
        self.groups.clear()
        self.logs.clear()

    def set_quota(
        self, location: str, *, cores: int | None = None, groups: int | None = None
    ) -> None:
        """Set a region's vCPU (``StandardCores``) and group (``ContainerGroups``) quota.

        Creates beyond it are refused (``ContainerGroupQuotaReached``) and the usages
        route reports it. Other regions keep :attr:`usage_limits`.

        :param location: region, e.g. ``westeurope``.
        :param cores: vCPU limit.
        :param groups: container group limit.
        """
        limits = self.location_limits.setdefault(_loc(location), {})
        if cores is not None:
            limits["StandardCores"] = cores
        if groups is not None:
            limits["ContainerGroups"] = groups

    def limits(self, location: str) -> dict[str, int]:
        """The quota of a region: :attr:`usage_limits` with its overrides.

        :param location: region.
        :return: usage name to limit.
        """
        return {**self.usage_limits, **self.location_limits.get(_loc(location), {})}

    def refuse_spot(
        self,
        *,
        location: str | None = None,
        count: int | None = 1,
        status: int = 409,
        code: str = "ServiceUnavailable",
    ) -> None:
        """Refuse the next Spot creates for lack of capacity (regular creates pass).

        The default answer is 409 ``ServiceUnavailable`` with ACI's capacity message
        ("The requested resource is not available in the location ... at this
        moment"); pass ``code="SkuNotAvailable"`` (or a 503) to exercise other codes.

        :param location: only this region; ``None`` for every region.
        :param count: how many creates to refuse; ``None`` for all until cleared.
        :param status: HTTP status of the refusal.
        :param code: ARM error code of the refusal.
        """
        self.spot_capacity.append(SpotRefusal(location and _loc(location), count, status, code))

    def evict(
        self,
        resource_group: str,
        name: str,
        *,
        restore_after: float | None = None,
        subscription_id: str | None = None,
    ) -> None:
        """Evict a Spot group (emulator mode): kill its containers as Azure does.

        The group stays, ``instanceView.state`` ``Stopped`` with a
        ``SpotContainerGroupEvicted`` event; its containers are ``Terminated`` with a
        ``Killing`` event. ACI starts an evicted group again when capacity returns:
        ``restore_after`` seconds later, or at :meth:`restore`; ``None`` keeps it
        stopped.

        :param resource_group: resource group.
        :param name: group name.
        :param restore_after: seconds until it runs again; ``None`` for never.
        :param subscription_id: default: the server's.
        :raises ValueError: the group is missing, not Spot, or not running containers.
        """
        key = self._emulated_key(resource_group, name, subscription_id)
        with self._lock():
            group = self.groups[key]
            if str(group.properties.get("priority", "Regular")).lower() != "spot":
                raise ValueError(f"group {name} is not a Spot group; only Spot groups are evicted")
        assert self.runtime is not None
        self.runtime.evict(key, restore_after)

    def restore(
        self, resource_group: str, name: str, *, subscription_id: str | None = None
    ) -> None:
        """Start an evicted group again (capacity came back).

        :param resource_group: resource group.
        :param name: group name.
        :param subscription_id: default: the server's.
        """
        key = self._emulated_key(resource_group, name, subscription_id)
        assert self.runtime is not None
        self.runtime.restore(key)

    def docker_ids(
        self, resource_group: str, name: str, *, subscription_id: str | None = None
    ) -> dict[str, str]:
        """The Docker containers of an emulated group (for ``docker inspect`` in tests).

        :param resource_group: resource group.
        :param name: group name.
        :param subscription_id: default: the server's.
        :return: ACI container name (``"(sandbox)"`` for the sandbox) to Docker id.
        """
        key = self._emulated_key(resource_group, name, subscription_id)
        assert self.runtime is not None
        return self.runtime.docker_ids(key)

    def _emulated_key(
        self, resource_group: str, name: str, subscription_id: str | None
    ) -> tuple[str, str, str]:
        if self.runtime is None:
            raise ValueError("the fake ARM server is not in emulator mode (FakeArm(emulate=True))")
        sub = subscription_id or self._server().subscription_id
        key = _key(sub, resource_group, name)
        with self._lock():
            if key not in self.groups:
                raise ValueError(f"no container group {resource_group}/{name}")
        return key

    def set_logs(self, group: str, container: str, content: str) -> None:
        """Set what the logs route answers for a container.

        :param group: container group name.
        :param container: container name within the group.
        :param content: full log text; ``tail`` is applied per request.
        """
        self.logs[(group.lower(), container.lower())] = content

    def group(
        self, resource_group: str, name: str, subscription_id: str | None = None
    ) -> ContainerGroupState | None:
        """Look a stored group up (for test assertions).

        :param resource_group: resource group name (any case).
        :param name: group name (any case).
        :param subscription_id: subscription; default: the server's.
        :return: the group, or ``None``.
        """
        sub = subscription_id or (self.server.subscription_id if self.server else "")
        with self._lock():
            if self.server:
                self.server.advance()
            return self.groups.get(_key(sub, resource_group, name))

    # --- operations -----------------------------------------------------------------

    def op_ContainerGroups_CreateOrUpdate(self, request: ArmRequest) -> ArmResponse:
        """PUT a container group: create (201) or update (200).

        :param request: the validated request.
        :return: the answer.
        """
        sub, rg, name = _group_params(request)
        body: dict[str, Any] = deep_copy_json(request.body)
        if not _NAME_RE.match(name):
            return arm_error(
                400,
                "InvalidContainerGroupName",
                f"The container group name '{name}' is invalid. A container group name must "
                "contain no more than 63 characters and must match the regex "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').",
            )
        if not body.get("location"):
            return arm_error(
                400, "LocationRequired", "The location property is required for this definition."
            )
        for container in body.get("properties", {}).get("containers", []):
            cname = str(container.get("name", ""))
            if not _NAME_RE.match(cname):
                return arm_error(
                    400,
                    "InvalidContainerName",
                    f"The container name '{cname}' in container group '{name}' is invalid. A "
                    "container name must contain no more than 63 characters and must match "
                    "the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').",
                )
        key = _key(sub, rg, name)
        existing = self.groups.get(key)
        server = self._server()
        if existing is not None and existing.deleting_operation is not None:
            return arm_error(
                409,
                "Conflict",
                f"The container group '{name}' is being deleted. Wait for the deletion to "
                "finish, then create it again.",
            )
        if existing is not None:
            if existing.location.lower() != str(body["location"]).lower():
                return arm_error(
                    400,
                    "InvalidResourceLocation",
                    f"The resource '{name}' already exists in location '{existing.location}' in "
                    f"resource group '{rg}'. A resource with the same name cannot be created in "
                    f"location '{body['location']}'. Please select a new resource name.",
                )
            reasons = _recreate_reasons(existing.body, body)
            if reasons:
                return arm_error(
                    400,
                    "InvalidContainerGroupUpdate",
                    _RECREATE_MESSAGE.format(name=existing.name),
                    details=[
                        {
                            "code": "InvalidContainerGroupUpdate",
                            "target": r,
                            "message": f"{r} changed",
                        }
                        for r in reasons
                    ],
                )
            images = self._emulator_check(body)
            if isinstance(images, ArmResponse):
                return images
            existing.body = body
            existing.provisioning_state = "Pending"
            op = self._provision(existing, key, "update", images)
            headers = server.operation_headers(request.base_url, op, location=False)
            return ArmResponse(200, self.render(existing), headers)

        refusal = (
            _spot_request_refusal(body)
            or self._quota_refusal(sub, body)
            or self._spot_refusal(body)
        )
        if refusal is not None:
            return refusal
        images = self._emulator_check(body)
        if isinstance(images, ArmResponse):
            return images
        group = ContainerGroupState(subscription_id=sub, resource_group=rg, name=name, body=body)
        self.groups[key] = group
        op = self._provision(group, key, "create", images)
        headers = server.operation_headers(request.base_url, op, location=False)
        return ArmResponse(201, self.render(group), headers)

    def _provision(
        self,
        group: ContainerGroupState,
        key: tuple[str, str, str],
        kind: str,
        images: dict[str, str] | None,
    ) -> Any:
        """Start the create/update operation; in emulator mode it ends when the
        containers have started (or failed to)."""
        server = self._server()
        outcome: dict[str, str | None] = {}

        def on_complete() -> dict[str, str] | None:
            self._provisioned(group)
            error = outcome.get("error")
            if error:
                group.provisioning_state = "Failed"
                return {"code": "ContainerGroupDeploymentFailed", "message": error}
            return None

        op = server.start_operation(
            namespace=self.namespace,
            subscription_id=group.subscription_id,
            location=group.location,
            kind=kind,
            resource_id=group.id,
            delay=self.provisioning_delay if self.runtime is None else _FOREVER,
            on_complete=on_complete,
        )
        if self.runtime is not None and images is not None:

            def done(error: str | None) -> None:
                with server.lock:
                    outcome["error"] = error
                    op.due = min(op.due, time.monotonic() + self.provisioning_delay)

            self.runtime.launch(key, group.body, images, self._aliases(group), done)
        return op

    def _aliases(self, group: ContainerGroupState) -> list[str]:
        names = [group.name]
        label = (group.properties.get("ipAddress") or {}).get("dnsNameLabel")
        if label:
            names += [str(label), f"{label}.{group.location}.azurecontainer.io"]
        return names

    def _emulator_check(self, body: dict[str, Any]) -> dict[str, str] | ArmResponse | None:
        if self.runtime is None:
            return None
        from .emulator import EmulatorError

        try:
            return self.runtime.check(body)
        except EmulatorError as exc:
            return arm_error(400, exc.code, exc.message)

    def _quota_refusal(self, subscription_id: str, body: dict[str, Any]) -> ArmResponse | None:
        location = str(body["location"])
        limits = self.limits(location)
        used = self._computed_usage(subscription_id, location)
        requested = {"ContainerGroups": 1, "StandardCores": math.ceil(_cores(body))}
        for usage, want in requested.items():
            limit = limits.get(usage)
            current = self.usage_current.get(usage, used.get(usage, 0))
            if limit is not None and current + want > limit:
                # ACI's reported wording; the code is not verified against Azure.
                return arm_error(
                    409,
                    "ContainerGroupQuotaReached",
                    f"Resource type '{GROUP_TYPE}' container group quota '{usage}' exceeded "
                    f"in region '{location}'. Limit: '{limit}', Usage: '{current}' "
                    f"Requested: '{want}'.",
                )
        return None

    def _spot_refusal(self, body: dict[str, Any]) -> ArmResponse | None:
        props = body.get("properties", {})
        if str(props.get("priority", "Regular")).lower() != "spot":
            return None
        location = _loc(str(body["location"]))
        for refusal in self.spot_capacity:
            if refusal.location not in (None, location) or refusal.remaining == 0:
                continue
            if refusal.remaining is not None:
                refusal.remaining -= 1
            requests = _totals(body)
            return arm_error(
                refusal.status,
                refusal.code,
                f"The requested resource is not available in the location '{body['location']}' "
                "at this moment. Please retry with a different resource request or in another "
                f"location. Resource requested: '{requests[0]:g}' CPU '{requests[1]:g}' GB "
                "memory 'Linux' OS, priority 'Spot'.",
            )
        return None

    def op_ContainerGroups_Get(self, request: ArmRequest) -> ArmResponse:
        """GET one container group.

        :param request: the validated request.
        :return: 200 with the group, or 404 ``ResourceNotFound``.
        """
        sub, rg, name = _group_params(request)
        group = self.groups.get(_key(sub, rg, name))
        if group is None:
            return _not_found(rg, name)
        return ArmResponse(200, self.render(group))

    def op_ContainerGroups_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a container group: 202 and an asynchronous operation, or 204.

        :param request: the validated request.
        :return: the answer.
        """
        sub, rg, name = _group_params(request)
        key = _key(sub, rg, name)
        group = self.groups.get(key)
        if group is None:
            return ArmResponse(204)
        server = self._server()
        if group.deleting_operation is None:
            group.provisioning_state = "Deleting"

            def finish() -> None:
                self.groups.pop(key, None)
                for log_key in [k for k in self.logs if k[0] == name.lower()]:
                    del self.logs[log_key]

            def on_complete() -> dict[str, str] | None:
                finish()
                return None

            op = server.start_operation(
                namespace=self.namespace,
                subscription_id=group.subscription_id,
                location=group.location,
                kind="delete",
                resource_id=group.id,
                delay=self.delete_delay if self.runtime is None else _FOREVER,
                on_complete=on_complete,
            )
            group.deleting_operation = op.id
            if self.runtime is not None:

                def removed() -> None:
                    with server.lock:
                        op.due = min(op.due, time.monotonic() + self.delete_delay)

                self.runtime.remove(key, removed)
        else:
            op = next(o for o in server.operations() if o.id == group.deleting_operation)
        return ArmResponse(202, None, server.operation_headers(request.base_url, op, location=True))

    def op_ContainerGroups_ListByResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """List the groups of one resource group.

        :param request: the validated request.
        :return: 200 ``{"value": [...]}``.
        """
        sub = request.path_params["subscriptionId"].lower()
        rg = request.path_params["resourceGroupName"].lower()
        groups = [g for k, g in sorted(self.groups.items()) if k[0] == sub and k[1] == rg]
        return self._page(request, groups)

    def op_ContainerGroups_List(self, request: ArmRequest) -> ArmResponse:
        """List the groups of the subscription.

        :param request: the validated request.
        :return: 200 ``{"value": [...]}``.
        """
        sub = request.path_params["subscriptionId"].lower()
        groups = [g for k, g in sorted(self.groups.items()) if k[0] == sub]
        return self._page(request, groups)

    def op_Containers_ListLogs(self, request: ArmRequest) -> ArmResponse:
        """Container logs, honouring ``tail`` and ``timestamps``.

        :param request: the validated request.
        :return: 200 ``{"content": ...}`` or 404.
        """
        sub, rg, name = _group_params(request)
        container = request.path_params["containerName"]
        group = self.groups.get(_key(sub, rg, name))
        if group is None:
            return _not_found(rg, name)
        names = {str(c.get("name", "")).lower() for c in group.properties.get("containers", [])}
        if container.lower() not in names:
            return arm_error(
                404,
                "ContainerNotFound",
                f"The container '{container}' is not found in container group '{name}'.",
            )
        tail = request.query.get("tail")
        if self.runtime is not None:
            text = self.runtime.logs(
                _key(sub, rg, name),
                next(
                    str(c["name"])
                    for c in group.properties.get("containers", [])
                    if str(c.get("name", "")).lower() == container.lower()
                ),
                None if tail is None else max(int(tail), 0),
                request.query.get("timestamps", "").lower() == "true",
            )
            return ArmResponse(200, {"content": text})
        lines = self.logs.get((name.lower(), container.lower()), "").splitlines(keepends=True)
        if tail is not None:
            count = int(tail)
            lines = lines[-count:] if count > 0 else []
        if request.query.get("timestamps", "").lower() == "true":
            stamp = group.start_time or _now_iso()
            lines = [f"{stamp} {line}" for line in lines]
        return ArmResponse(200, {"content": "".join(lines)})

    def op_Location_ListUsage(self, request: ArmRequest) -> ArmResponse:
        """Usages and limits for a region.

        :param request: the validated request.
        :return: 200 ``{"value": [Usage, ...]}``.
        """
        sub = request.path_params["subscriptionId"]
        location = request.path_params["location"]
        computed = self._computed_usage(sub, location)
        value = []
        for usage, limit in self.limits(location).items():
            value.append(
                {
                    "id": f"/subscriptions/{sub}/providers/{self.namespace}/locations/{location}"
                    f"/usages/{usage}",
                    "unit": "Count",
                    "currentValue": self.usage_current.get(usage, computed.get(usage, 0)),
                    "limit": limit,
                    "name": {"value": usage, "localizedValue": _LOCALIZED.get(usage, usage)},
                }
            )
        return ArmResponse(200, {"value": value})

    # --- rendering and state ---------------------------------------------------------

    def _page(self, request: ArmRequest, groups: list[ContainerGroupState]) -> ArmResponse:
        token = request.query.get("$skipToken") or request.query.get("$skiptoken") or "0"
        if not token.isdigit():
            return arm_error(400, "InvalidSkipToken", f"The $skipToken '{token}' is invalid.")
        start = int(token)
        size = self.page_size or max(1, len(groups))
        body: dict[str, Any] = {"value": [self.render(g) for g in groups[start : start + size]]}
        if start + size < len(groups):
            body["nextLink"] = (
                f"{request.base_url}{request.path}?api-version={self.spec.api_version}"
                f"&$skipToken={start + size}"
            )
        return ArmResponse(200, body)

    def render(self, group: ContainerGroupState) -> dict[str, Any]:
        """The group as ACI returns it: request fields plus read-only fields.

        :param group: a stored group.
        :return: a JSON document the SDK deserialises into ``ContainerGroup``.
        """
        body = deep_copy_json(group.body)
        props: dict[str, Any] = body.pop("properties", {})
        # In emulator mode, the containers' real state; else a fixed "Running" once provisioned.
        run = (
            self.runtime.groups.get(_key(group.subscription_id, group.resource_group, group.name))
            if self.runtime is not None
            else None
        )
        running = group.provisioning_state == "Succeeded"
        props["provisioningState"] = group.provisioning_state
        props.setdefault("sku", "Standard")
        props.setdefault("restartPolicy", "Always")
        for container in props.get("containers", []):
            cprops = container.setdefault("properties", {})
            for env in cprops.get("environmentVariables", []):
                # ACI never returns secure values.
                env.pop("secureValue", None)
            crun = run.containers.get(str(container.get("name"))) if run is not None else None
            if crun is not None:
                cprops["instanceView"] = crun.instance_view()
            elif running and run is None:
                cprops["instanceView"] = {
                    "restartCount": group.restart_count,
                    "currentState": {
                        "state": "Running",
                        "startTime": group.start_time,
                        "detailStatus": "",
                    },
                    "events": [],
                }
        for volume in props.get("volumes", []) or []:
            if volume.get("secret") is not None:
                volume["secret"] = {}  # nor secret volume contents
        ip = run.ip if run is not None else group.ip
        private = bool(props.get("subnetIds"))
        ip_address = props.get("ipAddress")
        if ip_address is None and private and ip:
            ip_address = props["ipAddress"] = {"type": "Private", "ports": []}
        if ip_address is not None:
            if ip:
                ip_address["ip"] = ip
            label = ip_address.get("dnsNameLabel")
            if label and not private:
                ip_address["fqdn"] = f"{label}.{group.location}.azurecontainer.io"
        if run is not None:
            props["instanceView"] = {"events": [dict(e) for e in run.events], "state": run.state()}
        elif running:
            props["instanceView"] = {"events": [], "state": "Running"}
        out: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "type": GROUP_TYPE,
            "location": group.location,
        }
        for key in ("tags", "zones", "identity"):
            if key in body:
                out[key] = body[key]
        out["properties"] = props
        return out

    def _provisioned(self, group: ContainerGroupState) -> dict[str, str] | None:
        props = group.properties
        if group.ip is None:
            n = next(self._ips)
            private = (
                bool(props.get("subnetIds"))
                or str(props.get("ipAddress", {}).get("type", "")).lower() == "private"
            )
            if private:
                group.ip = f"10.0.{n // 250}.{n % 250 + 4}"
            elif props.get("ipAddress") is not None:
                group.ip = f"20.61.{n // 250}.{n % 250 + 1}"
        group.provisioning_state = "Succeeded"
        group.start_time = _now_iso()
        return None

    def _computed_usage(self, subscription_id: str, location: str) -> dict[str, int]:
        groups = [
            g
            for g in self.groups.values()
            if g.subscription_id.lower() == subscription_id.lower()
            and g.location.replace(" ", "").lower() == location.replace(" ", "").lower()
        ]
        cores = 0.0
        gpu: dict[str, int] = {}
        for g in groups:
            for container in g.properties.get("containers", []):
                requests = container.get("properties", {}).get("resources", {}).get("requests", {})
                cores += float(requests.get("cpu", 0))
                if "gpu" in requests:
                    sku = str(requests["gpu"].get("sku", ""))
                    gpu[f"Standard{sku}Cores"] = gpu.get(f"Standard{sku}Cores", 0) + int(
                        requests["gpu"].get("count", 0)
                    )
        return {"ContainerGroups": len(groups), "StandardCores": math.ceil(cores), **gpu}

    def _server(self) -> Any:
        if self.server is None:
            raise RuntimeError("AciProvider is not attached to a FakeArmServer")
        return self.server

    def _lock(self) -> Any:
        return self._server().lock


_FOREVER = 10.0 * 365 * 24 * 3600
"""Delay of an operation that the emulator completes itself (it moves ``due``)."""


def _spot_request_refusal(body: dict[str, Any]) -> ArmResponse | None:
    """ACI's documented refusals of a Spot request itself (../shared/aci-notes.md, "Spot"):
    network properties (a public or private IP, ports, a subnet), a SKU other than
    Standard, or GPU resources. The codes are ACI's; the messages are ours."""
    props = body.get("properties", {})
    if str(props.get("priority", "Regular")).lower() != "spot":
        return None
    if props.get("ipAddress") or props.get("subnetIds"):
        return arm_error(
            400,
            "SpotPriorityContainerGroupNotSupportedForInboundConnectivity",
            "Container groups with priority 'Spot' do not support inbound connectivity: remove "
            "the IP address and the virtual network properties.",
        )
    if str(props.get("sku", "Standard")) != "Standard":
        return arm_error(
            400,
            "SpotPriorityContainerGroupNotSupportedInSku",
            f"Container groups with priority 'Spot' are not supported in SKU '{props['sku']}'; "
            "use SKU 'Standard'.",
        )
    for c in props.get("containers", []):
        requests = c.get("properties", {}).get("resources", {}).get("requests", {})
        if requests.get("gpu"):
            return arm_error(
                400,
                "SpotPriorityContainerGroupWithGPUResourcesNotSupported",
                "Container groups with priority 'Spot' do not support GPU resources.",
            )
    return None


@dataclass
class SpotRefusal:
    """Scripted Spot capacity refusals (see :meth:`AciProvider.refuse_spot`).

    :param location: normalised region, or ``None`` for all.
    :param remaining: creates still to refuse; ``None`` for unlimited.
    :param status: HTTP status.
    :param code: ARM error code.
    """

    location: str | None
    remaining: int | None
    status: int
    code: str


def _loc(location: str) -> str:
    return location.replace(" ", "").lower()


def _totals(body: Mapping[str, Any]) -> tuple[float, float]:
    cpu = memory = 0.0
    for container in body.get("properties", {}).get("containers", []):
        requests = container.get("properties", {}).get("resources", {}).get("requests", {})
        cpu += float(requests.get("cpu", 0) or 0)
        memory += float(requests.get("memoryInGB", 0) or 0)
    return cpu, memory


def _cores(body: Mapping[str, Any]) -> float:
    return _totals(body)[0]


def _key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    # ARM names are case-insensitive.
    return (subscription_id.lower(), resource_group.lower(), name.lower())


def _group_params(request: ArmRequest) -> tuple[str, str, str]:
    p = request.path_params
    return p["subscriptionId"], p["resourceGroupName"], p["containerGroupName"]


def _not_found(resource_group: str, name: str) -> ArmResponse:
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource '{GROUP_TYPE}/{name}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def _recreate_reasons(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Properties whose change ACI refuses to apply in place (delete and recreate)."""
    old_p: Mapping[str, Any] = old.get("properties", {})
    new_p: Mapping[str, Any] = new.get("properties", {})
    reasons: list[str] = []

    def norm(value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    for prop, default in (("osType", None), ("restartPolicy", "Always"), ("sku", "Standard")):
        if norm(old_p.get(prop, default)) != norm(new_p.get(prop, default)):
            reasons.append(f"properties.{prop}")
    if _subnets(old_p) != _subnets(new_p):
        reasons.append("properties.subnetIds")
    if norm(old_p.get("ipAddress", {}).get("type")) != norm(new_p.get("ipAddress", {}).get("type")):
        reasons.append("properties.ipAddress.type")
    if _ports(old_p.get("ipAddress", {})) != _ports(new_p.get("ipAddress", {})):
        reasons.append("properties.ipAddress.ports")
    old_c = {str(c["name"]).lower(): c.get("properties", {}) for c in old_p.get("containers", [])}
    new_c = {str(c["name"]).lower(): c.get("properties", {}) for c in new_p.get("containers", [])}
    if set(old_c) != set(new_c):
        reasons.append("properties.containers[*].name (containers added or removed)")
    for cname in sorted(set(old_c) & set(new_c)):
        if _resources(old_c[cname]) != _resources(new_c[cname]):
            reasons.append(f"properties.containers[{cname}].properties.resources")
        if _ports(old_c[cname]) != _ports(new_c[cname]):
            reasons.append(f"properties.containers[{cname}].properties.ports")
    return reasons


def _subnets(props: Mapping[str, Any]) -> list[str]:
    return sorted(str(s.get("id", "")).lower() for s in props.get("subnetIds", []) or [])


def _ports(holder: Mapping[str, Any]) -> list[tuple[int, str]]:
    return sorted(
        (int(p.get("port", 0)), str(p.get("protocol", "TCP")).upper())
        for p in holder.get("ports", []) or []
    )


def _resources(cprops: Mapping[str, Any]) -> Any:
    resources = cprops.get("resources", {})
    out = {}
    for part in ("requests", "limits"):
        section = resources.get(part) or {}
        out[part] = (
            float(section.get("cpu", 0) or 0),
            float(section.get("memoryInGB", 0) or 0),
            tuple(sorted((section.get("gpu") or {}).items())),
        )
    return out
