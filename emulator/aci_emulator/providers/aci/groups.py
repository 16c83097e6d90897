"""The ACI resource model: a stored container group, ACI's naming and update rules, and
the group as ACI renders it (request fields plus read-only fields).

Behaviour reproduced from the spec, SDK recordings and ACI's documented errors; GET/list
render the read-only fields the SDK deserialises, and secure environment variable values
are never returned, as in ACI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...arm import ArmRequest, ArmResponse, arm_error, deep_copy_json

if TYPE_CHECKING:
    from ...runtime import GroupRun

GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"

# ACI's own wording for updates it cannot apply in place.
RECREATE_MESSAGE = (
    "The updates on container group '{name}' are invalid. If you are going to update the os "
    "type, restart policy, network profile, CPU, memory or GPU resources for a container "
    "group, you must delete it first and then create a new one."
)

# Lower-case letters, digits and single hyphens, 1-63 characters (ACI's naming rule).
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}[a-z0-9]$|^[a-z0-9]$")


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


def group_key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    """The key of a group in the provider's and the runtime's tables.

    :param subscription_id: the subscription.
    :param resource_group: the resource group.
    :param name: the group name.
    :return: the three, lower case (ARM names are case-insensitive).
    """
    return (subscription_id.lower(), resource_group.lower(), name.lower())


def group_params(request: ArmRequest) -> tuple[str, str, str]:
    """The subscription, resource group and group name of a group route.

    :param request: a routed request.
    :return: the three path parameters, as sent.
    """
    p = request.path_params
    return p["subscriptionId"], p["resourceGroupName"], p["containerGroupName"]


def name_refusal(name: str, body: Mapping[str, Any]) -> ArmResponse | None:
    """ACI's answer to a PUT with an invalid group or container name, or no location.

    :param name: the group name.
    :param body: the PUT body.
    :return: a 400 answer, or ``None`` when the names are valid.
    """
    if not NAME_RE.match(name):
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
        if not NAME_RE.match(cname):
            return arm_error(
                400,
                "InvalidContainerName",
                f"The container name '{cname}' in container group '{name}' is invalid. A "
                "container name must contain no more than 63 characters and must match "
                "the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').",
            )
    return None


def not_found(resource_group: str, name: str) -> ArmResponse:
    """ARM's 404 for a missing group.

    :param resource_group: the resource group.
    :param name: the group name.
    :return: the answer.
    """
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource '{GROUP_TYPE}/{name}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def now_iso() -> str:
    """The current UTC time as ACI writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def fake_ip(group: ContainerGroupState, n: int) -> str | None:
    """The IP the fake gives a group outside emulator mode (none without ``ipAddress``).

    :param group: the group.
    :param n: a counter, unique per group.
    :return: ``10.0.x.y`` for a private group, ``20.61.x.y`` for a public one, or ``None``.
    """
    props = group.properties
    private = (
        bool(props.get("subnetIds"))
        or str(props.get("ipAddress", {}).get("type", "")).lower() == "private"
    )
    if private:
        return f"10.0.{n // 250}.{n % 250 + 4}"
    if props.get("ipAddress") is not None:
        return f"20.61.{n // 250}.{n % 250 + 1}"
    return None


def log_text(text: str, group: ContainerGroupState, tail: str | None, timestamps: bool) -> str:
    """The logs route's content for a container's stored log text (outside emulator mode).

    :param text: the whole log (``AciProvider.set_logs``).
    :param group: the container's group (its start time stamps the lines).
    :param tail: the ``tail`` query parameter: only the last N lines.
    :param timestamps: prefix each line with a time.
    :return: the content.
    """
    lines = text.splitlines(keepends=True)
    if tail is not None:
        count = int(tail)
        lines = lines[-count:] if count > 0 else []
    if timestamps:
        stamp = group.start_time or now_iso()
        lines = [f"{stamp} {line}" for line in lines]
    return "".join(lines)


def aliases(group: ContainerGroupState) -> list[str]:
    """The DNS names of a group on the emulator network: its name, DNS label and FQDN.

    :param group: the group.
    :return: the names.
    """
    names = [group.name]
    label = (group.properties.get("ipAddress") or {}).get("dnsNameLabel")
    if label:
        names += [str(label), f"{label}.{group.location}.azurecontainer.io"]
    return names


def render(group: ContainerGroupState, run: GroupRun | None) -> dict[str, Any]:
    """The group as ACI returns it: request fields plus read-only fields.

    :param group: a stored group.
    :param run: its containers in emulator mode; ``None`` shows a fixed ``Running`` once
        provisioned.
    :return: a JSON document the SDK deserialises into ``ContainerGroup``.
    """
    body = deep_copy_json(group.body)
    props: dict[str, Any] = body.pop("properties", {})
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


def recreate_reasons(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
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
