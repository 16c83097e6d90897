"""Azure Container Instances (``Microsoft.ContainerInstance``, api-version 2023-05-01).

The provider's operations and knobs: PUT answers 201 (new, ``Pending``) or 200 (update;
400 ``InvalidContainerGroupUpdate`` for what ACI cannot change in place), DELETE 202 then
gone after :attr:`AciProvider.delete_delay` (204 when missing), GET/list/logs/usages. The
resource model is :mod:`.groups`, quotas and Spot are :mod:`.capacity`; in emulator mode
groups run on :class:`~aci_emulator.runtime.DockerRuntime`. README.md has the details.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...arm import (
    ArmRequest,
    ArmResponse,
    AsyncOperation,
    ResourceProvider,
    arm_error,
    deep_copy_json,
)
from ...runtime import DockerRuntime, EmulatorError
from ...spec import SPECS_DIR
from . import capacity
from .capacity import DEFAULT_USAGE_LIMITS, SpotRefusal, loc
from .groups import (
    RECREATE_MESSAGE,
    ContainerGroupState,
    aliases,
    fake_ip,
    group_key,
    group_params,
    log_text,
    name_refusal,
    not_found,
    now_iso,
    recreate_reasons,
    render,
)

ACI_SPEC_NAME = "containerinstance-2023-05-01.json"
ACI_SPEC_FILE = SPECS_DIR / ACI_SPEC_NAME
"""The spec the ACI provider serves (azure-mgmt-containerinstance 10.1.0's version)."""

_FOREVER = 10.0 * 365 * 24 * 3600
"""Delay of an operation that the emulator completes itself (it moves ``due``)."""


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
    spec_name: ClassVar[str] = ACI_SPEC_NAME

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
        super().__init__(self.spec_file)
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
        limits = self.location_limits.setdefault(loc(location), {})
        if cores is not None:
            limits["StandardCores"] = cores
        if groups is not None:
            limits["ContainerGroups"] = groups

    def limits(self, location: str) -> dict[str, int]:
        """The quota of a region: :attr:`usage_limits` with its overrides.

        :param location: region.
        :return: usage name to limit.
        """
        return {**self.usage_limits, **self.location_limits.get(loc(location), {})}

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
        self.spot_capacity.append(SpotRefusal(location and loc(location), count, status, code))

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
        sub = subscription_id or self.attached().subscription_id
        key = group_key(sub, resource_group, name)
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
            return self.groups.get(group_key(sub, resource_group, name))

    # --- operations -----------------------------------------------------------------

    def op_ContainerGroups_CreateOrUpdate(self, request: ArmRequest) -> ArmResponse:
        """PUT a container group: create (201) or update (200).

        :param request: the validated request.
        :return: the answer.
        """
        sub, rg, name = group_params(request)
        body: dict[str, Any] = deep_copy_json(request.body)
        refused = name_refusal(name, body)
        if refused is not None:
            return refused
        key = group_key(sub, rg, name)
        existing = self.groups.get(key)
        server = self.attached()
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
            reasons = recreate_reasons(existing.body, body)
            if reasons:
                return arm_error(
                    400,
                    "InvalidContainerGroupUpdate",
                    RECREATE_MESSAGE.format(name=existing.name),
                    details=[
                        {
                            "code": "InvalidContainerGroupUpdate",
                            "target": r,
                            "message": f"{r} changed",
                        }
                        for r in reasons
                    ],
                )
            images = self._emulator_check(body, name)
            if isinstance(images, ArmResponse):
                return images
            existing.body = body
            existing.provisioning_state = "Pending"
            op = self._provision(existing, key, "update", images)
            headers = server.operation_headers(request.base_url, op, location=False)
            return ArmResponse(200, self.render(existing), headers)

        refusal = (
            capacity.spot_request_refusal(body)
            or self._quota_refusal(sub, body)
            or capacity.spot_capacity_refusal(self.spot_capacity, body)
        )
        if refusal is not None:
            return refusal
        images = self._emulator_check(body, name)
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
    ) -> AsyncOperation:
        """Start the create/update operation; in emulator mode it ends when the
        containers have started (or failed to)."""
        server = self.attached()
        outcome: dict[str, str | None] = {}

        def on_complete() -> dict[str, str] | None:
            self._provisioned(group)
            error = outcome.get("error")
            if error:
                group.provisioning_state = "Failed"
                return {"code": "ContainerGroupDeploymentFailed", "message": error}
            return None

        op = server.async_operations.start(
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

            self.runtime.launch(key, group.body, images, aliases(group), done)
        return op

    def _emulator_check(
        self, body: dict[str, Any], name: str
    ) -> dict[str, str] | ArmResponse | None:
        if self.runtime is None:
            return None
        try:
            return self.runtime.check(body, name)
        except EmulatorError as exc:
            return arm_error(400, exc.code, exc.message)

    def _quota_refusal(self, subscription_id: str, body: dict[str, Any]) -> ArmResponse | None:
        location = str(body["location"])
        used = capacity.computed_usage(self.groups.values(), subscription_id, location)
        return capacity.quota_refusal(self.limits(location), self.usage_current, used, body)

    def op_ContainerGroups_Get(self, request: ArmRequest) -> ArmResponse:
        """GET one container group.

        :param request: the validated request.
        :return: 200 with the group, or 404 ``ResourceNotFound``.
        """
        sub, rg, name = group_params(request)
        group = self.groups.get(group_key(sub, rg, name))
        if group is None:
            return not_found(rg, name)
        return ArmResponse(200, self.render(group))

    def op_ContainerGroups_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a container group: 202 and an asynchronous operation, or 204.

        :param request: the validated request.
        :return: the answer.
        """
        sub, rg, name = group_params(request)
        key = group_key(sub, rg, name)
        group = self.groups.get(key)
        if group is None:
            return ArmResponse(204)
        server = self.attached()
        op = self._start_delete(key, group)
        return ArmResponse(202, None, server.operation_headers(request.base_url, op, location=True))

    def _start_delete(
        self, key: tuple[str, str, str], group: ContainerGroupState
    ) -> AsyncOperation:
        """The group's delete operation: started now, or the one in flight."""
        server = self.attached()
        name = group.name
        if group.deleting_operation is None:
            group.provisioning_state = "Deleting"

            def finish() -> None:
                self.groups.pop(key, None)
                for log_key in [k for k in self.logs if k[0] == name.lower()]:
                    del self.logs[log_key]

            def on_complete() -> dict[str, str] | None:
                finish()
                return None

            op = server.async_operations.start(
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
            return op
        return next(o for o in server.operations() if o.id == group.deleting_operation)

    def resources_in(self, subscription_id: str, resource_group: str) -> list[dict[str, Any]]:
        """The groups of a resource group, as ARM's generic resource list shows them."""
        sub, rg = subscription_id.lower(), resource_group.lower()
        return [
            {
                k: v
                for k, v in self.render(g).items()
                if k in ("id", "name", "type", "location", "tags")
            }
            for k, g in sorted(self.groups.items())
            if k[:2] == (sub, rg)
        ]

    def delete_resource_group(self, subscription_id: str, resource_group: str) -> None:
        """Delete the container groups of a resource group being deleted."""
        sub, rg = subscription_id.lower(), resource_group.lower()
        for key, group in list(self.groups.items()):
            if key[:2] == (sub, rg):
                self._start_delete(key, group)

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
        sub, rg, name = group_params(request)
        container = request.path_params["containerName"]
        group = self.groups.get(group_key(sub, rg, name))
        if group is None:
            return not_found(rg, name)
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
                group_key(sub, rg, name),
                next(
                    str(c["name"])
                    for c in group.properties.get("containers", [])
                    if str(c.get("name", "")).lower() == container.lower()
                ),
                None if tail is None else max(int(tail), 0),
                request.query.get("timestamps", "").lower() == "true",
            )
            return ArmResponse(200, {"content": text})
        text = self.logs.get((name.lower(), container.lower()), "")
        timestamps = request.query.get("timestamps", "").lower() == "true"
        return ArmResponse(200, {"content": log_text(text, group, tail, timestamps)})

    def op_Location_ListUsage(self, request: ArmRequest) -> ArmResponse:
        """Usages and limits for a region.

        :param request: the validated request.
        :return: 200 ``{"value": [Usage, ...]}``.
        """
        sub = request.path_params["subscriptionId"]
        location = request.path_params["location"]
        computed = capacity.computed_usage(self.groups.values(), sub, location)
        current = {**computed, **self.usage_current}
        value = capacity.usages(sub, location, self.limits(location), current)
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
        # In emulator mode, the containers' real state; else a fixed "Running" once provisioned.
        run = (
            self.runtime.groups.get(
                group_key(group.subscription_id, group.resource_group, group.name)
            )
            if self.runtime is not None
            else None
        )
        return render(group, run)

    def _provisioned(self, group: ContainerGroupState) -> dict[str, str] | None:
        if group.ip is None:
            group.ip = fake_ip(group, next(self._ips))
        group.provisioning_state = "Succeeded"
        group.start_time = now_iso()
        return None

    def _lock(self) -> threading.RLock:
        return self.attached().lock
