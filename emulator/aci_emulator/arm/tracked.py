"""Tracked resources (a name in a resource group, a location, tags): what most providers
store, with ARM's ids, renderings and 404s in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .messages import ArmRequest, ArmResponse, arm_error, deep_copy_json, utc_now_iso

Key = tuple[str, str, str]


def resource_key(subscription_id: str, resource_group: str, name: str) -> Key:
    """A resource's key in its table: the three, lower case (ARM names ignore case).

    :param subscription_id: the subscription.
    :param resource_group: the resource group.
    :param name: the resource name.
    :return: the key.
    """
    return (subscription_id.lower(), resource_group.lower(), name.lower())


def path_key(request: ArmRequest, name_param: str) -> Key:
    """The key a request's path names (``subscriptionId``, ``resourceGroupName`` and the
    resource's own name parameter).

    :param request: a routed request.
    :param name_param: the path parameter holding the resource name, e.g. ``accountName``.
    :return: the key.
    """
    p = request.path_params
    return resource_key(p["subscriptionId"], p["resourceGroupName"], p[name_param])


def resource_id(subscription_id: str, resource_group: str, kind: str, name: str) -> str:
    """An ARM resource id.

    :param subscription_id: the subscription.
    :param resource_group: the resource group.
    :param kind: the resource type, e.g. ``Microsoft.Storage/storageAccounts``.
    :param name: the name.
    :return: ``/subscriptions/.../resourceGroups/.../providers/<kind>/<name>``.
    """
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{kind}/{name}"
    )


@dataclass
class TrackedResource:
    """One stored resource.

    :param subscription_id: its subscription (as first written).
    :param resource_group: its resource group (as first written).
    :param kind: its type, e.g. ``Microsoft.Storage/storageAccounts``.
    :param name: its name (as first written).
    :param location: its region.
    :param tags: its tags.
    :param body: every other top-level field as ARM returns it (``sku``, ``kind``,
        ``properties`` with the read-only fields filled, ``identity``...).
    :param created: when it was created (ISO 8601).
    """

    subscription_id: str
    resource_group: str
    kind: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=utc_now_iso)

    @property
    def id(self) -> str:
        """Its ARM id."""
        return resource_id(self.subscription_id, self.resource_group, self.kind, self.name)

    @property
    def key(self) -> Key:
        """Its key in its table."""
        return resource_key(self.subscription_id, self.resource_group, self.name)

    def render(self) -> dict[str, Any]:
        """The resource as ARM returns it.

        :return: ``id``, ``name``, ``type``, ``location``, ``tags`` and the body's fields.
        """
        return {
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "location": self.location,
            "tags": dict(self.tags),
            **deep_copy_json(self.body),
        }

    def generic(self) -> dict[str, Any]:
        """The resource as ARM's generic resource list shows it.

        :return: ``id``, ``name``, ``type``, ``location``, ``tags`` (and ``sku``, ``kind``).
        """
        out = {k: v for k, v in self.render().items() if k in ("id", "name", "type", "location")}
        out["tags"] = dict(self.tags)
        for extra in ("sku", "kind"):
            if extra in self.body:
                out[extra] = deep_copy_json(self.body[extra])
        return out


class ResourceTable:
    """The resources of one type, by key.

    :param kind: the resource type, e.g. ``Microsoft.Storage/storageAccounts``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[Key, TrackedResource] = {}

    def __iter__(self) -> Iterator[TrackedResource]:
        return iter(sorted(self._items.values(), key=lambda r: r.key))

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key) -> TrackedResource | None:
        """A resource by key.

        :param key: its key.
        :return: the resource, or ``None``.
        """
        return self._items.get(key)

    def put(self, resource: TrackedResource) -> None:
        """Store (or replace) a resource.

        :param resource: the resource.
        """
        self._items[resource.key] = resource

    def pop(self, key: Key) -> TrackedResource | None:
        """Remove a resource.

        :param key: its key.
        :return: the removed resource, or ``None``.
        """
        return self._items.pop(key, None)

    def named(self, name: str) -> list[TrackedResource]:
        """Every resource of this name, in any subscription and group (names that are
        globally unique: storage accounts, registries).

        :param name: the name (any case).
        :return: the resources.
        """
        return [r for r in self if r.name.lower() == name.lower()]

    def in_group(self, subscription_id: str, resource_group: str) -> list[TrackedResource]:
        """The resources of one resource group.

        :param subscription_id: the subscription.
        :param resource_group: the resource group (any case).
        :return: the resources, by name.
        """
        sub, rg = subscription_id.lower(), resource_group.lower()
        return [r for r in self if r.key[:2] == (sub, rg)]

    def in_subscription(self, subscription_id: str) -> list[TrackedResource]:
        """The resources of one subscription.

        :param subscription_id: the subscription.
        :return: the resources.
        """
        return [r for r in self if r.key[0] == subscription_id.lower()]

    def clear(self) -> None:
        """Forget every resource."""
        self._items.clear()

    def not_found(self, resource_group: str, name: str) -> ArmResponse:
        """ARM's 404 for a missing resource of this type.

        :param resource_group: the resource group.
        :param name: the name.
        :return: the answer.
        """
        return arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{self.kind}/{name}' under resource group '{resource_group}' was not "
            "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )


def listing(resources: list[TrackedResource]) -> ArmResponse:
    """A one-page list answer.

    :param resources: the resources.
    :return: 200 ``{"value": [...]}``.
    """
    return ArmResponse(200, {"value": [r.render() for r in resources]})
