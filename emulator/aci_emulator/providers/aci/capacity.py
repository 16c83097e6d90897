"""ACI's capacity rules: per-region quotas and usages, and Spot refusals.

Pure functions over the stored groups and the provider's knobs; :class:`~.provider.AciProvider`
calls them and answers what they return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...arm import ArmResponse, arm_error
from .groups import GROUP_TYPE, ContainerGroupState

DEFAULT_USAGE_LIMITS: dict[str, int] = {
    "ContainerGroups": 100,
    "StandardCores": 100,
    "StandardK80Cores": 0,
    "StandardP100Cores": 0,
    "StandardV100Cores": 0,
}
"""Per-region limits reported by the usages route unless a test overrides them."""

LOCALIZED = {
    "ContainerGroups": "Container Groups",
    "StandardCores": "Standard Cores",
    "StandardK80Cores": "Standard K80 Cores",
    "StandardP100Cores": "Standard P100 Cores",
    "StandardV100Cores": "Standard V100 Cores",
}


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


def loc(location: str) -> str:
    """A region as a key: lower case, spaces removed (``West Europe`` is ``westeurope``)."""
    return location.replace(" ", "").lower()


def totals(body: Mapping[str, Any]) -> tuple[float, float]:
    """The vCPUs and GB of memory a group body requests."""
    cpu = memory = 0.0
    for container in body.get("properties", {}).get("containers", []):
        requests = container.get("properties", {}).get("resources", {}).get("requests", {})
        cpu += float(requests.get("cpu", 0) or 0)
        memory += float(requests.get("memoryInGB", 0) or 0)
    return cpu, memory


def cores(body: Mapping[str, Any]) -> float:
    """The vCPUs a group body requests."""
    return totals(body)[0]


def computed_usage(
    groups: Iterable[ContainerGroupState], subscription_id: str, location: str
) -> dict[str, int]:
    """What the stored groups of a subscription use in a region.

    :param groups: every stored group.
    :param subscription_id: the subscription.
    :param location: the region.
    :return: usage name (``ContainerGroups``, ``StandardCores``, GPU cores) to value.
    """
    mine = [
        g
        for g in groups
        if g.subscription_id.lower() == subscription_id.lower()
        and g.location.replace(" ", "").lower() == location.replace(" ", "").lower()
    ]
    cpu = 0.0
    gpu: dict[str, int] = {}
    for g in mine:
        for container in g.properties.get("containers", []):
            requests = container.get("properties", {}).get("resources", {}).get("requests", {})
            cpu += float(requests.get("cpu", 0))
            if "gpu" in requests:
                sku = str(requests["gpu"].get("sku", ""))
                gpu[f"Standard{sku}Cores"] = gpu.get(f"Standard{sku}Cores", 0) + int(
                    requests["gpu"].get("count", 0)
                )
    return {"ContainerGroups": len(mine), "StandardCores": math.ceil(cpu), **gpu}


def quota_refusal(
    limits: Mapping[str, int],
    usage_current: Mapping[str, int],
    used: Mapping[str, int],
    body: Mapping[str, Any],
) -> ArmResponse | None:
    """ACI's answer to a create that would take a region past its quota.

    :param limits: the region's limits.
    :param usage_current: usages a test pinned (they win over ``used``).
    :param used: what the stored groups use there (:func:`computed_usage`).
    :param body: the create's body.
    :return: 409 ``ContainerGroupQuotaReached``, or ``None`` when it fits.
    """
    location = str(body["location"])
    requested = {"ContainerGroups": 1, "StandardCores": math.ceil(cores(body))}
    for usage, want in requested.items():
        limit = limits.get(usage)
        current = usage_current.get(usage, used.get(usage, 0))
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


def spot_capacity_refusal(
    refusals: Iterable[SpotRefusal], body: Mapping[str, Any]
) -> ArmResponse | None:
    """The next scripted Spot refusal that applies to a create (it is used up).

    :param refusals: the scripted refusals (:meth:`AciProvider.refuse_spot`).
    :param body: the create's body.
    :return: ACI's capacity answer, or ``None`` (not Spot, or nothing scripted here).
    """
    props = body.get("properties", {})
    if str(props.get("priority", "Regular")).lower() != "spot":
        return None
    location = loc(str(body["location"]))
    for refusal in refusals:
        if refusal.location not in (None, location) or refusal.remaining == 0:
            continue
        if refusal.remaining is not None:
            refusal.remaining -= 1
        requests = totals(body)
        return arm_error(
            refusal.status,
            refusal.code,
            f"The requested resource is not available in the location '{body['location']}' "
            "at this moment. Please retry with a different resource request or in another "
            f"location. Resource requested: '{requests[0]:g}' CPU '{requests[1]:g}' GB "
            "memory 'Linux' OS, priority 'Spot'.",
        )
    return None


def spot_request_refusal(body: Mapping[str, Any]) -> ArmResponse | None:
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


def usages(
    subscription_id: str, location: str, limits: Mapping[str, int], current: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The usages route's entries: one per limit of the region.

    :param subscription_id: the subscription.
    :param location: the region, as the route names it.
    :param limits: the region's limits.
    :param current: the current value of each usage (absent: 0).
    :return: ``Usage`` objects as ACI returns them.
    """
    return [
        {
            "id": f"/subscriptions/{subscription_id}/providers/Microsoft.ContainerInstance"
            f"/locations/{location}/usages/{usage}",
            "unit": "Count",
            "currentValue": current.get(usage, 0),
            "limit": limit,
            "name": {"value": usage, "localizedValue": LOCALIZED.get(usage, usage)},
        }
        for usage, limit in limits.items()
    ]
