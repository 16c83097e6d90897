"""``Microsoft.Resources`` (api-version 2025-04-01, azure-mgmt-resource 26.0.0): resource groups,
resource provider registration, and the list of a group's resources.

Besides its operations it adds two of ARM's checks before any provider answers (the
server's gates), each behind a knob so that tests which never create a group keep working:

* :attr:`ResourcesProvider.require_registration`: a subscription must register a namespace
  (``Providers_Register``) before using it, else 409 ``MissingSubscriptionRegistration``.
  Registration takes :attr:`~ResourcesProvider.registration_delay` seconds
  (``Registering``, then ``Registered``). ``Microsoft.Resources`` and
  ``Microsoft.Authorization`` are always registered, as on Azure.
* :attr:`ResourcesProvider.require_groups`: a resource in a missing resource group gets 404
  ``ResourceGroupNotFound``.

Deleting a group deletes its resources in every provider (ARM's cascade).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..arm import ArmRequest, ArmResponse, ResourceProvider, arm_error
from ..spec import SPECS_DIR

if TYPE_CHECKING:
    from ..arm import FakeArmServer

RESOURCES_SPEC_NAME = "resources-2025-04-01.json"
RESOURCES_SPEC_FILE = SPECS_DIR / RESOURCES_SPEC_NAME
GROUP_TYPE = "Microsoft.Resources/resourceGroups"
ALWAYS_REGISTERED = frozenset({"microsoft.resources", "microsoft.authorization"})
"""Namespaces every subscription can use without registering them."""

_IN_GROUP = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)/.+", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)(/|$)", re.IGNORECASE)


@dataclass
class ResourceGroupState:
    """One resource group.

    :param subscription_id: its subscription.
    :param name: its name (as first written).
    :param location: its region.
    :param tags: its tags.
    :param managed_by: the resource managing it, if any.
    :param deleting: the id of the delete operation in flight, if any.
    """

    subscription_id: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    managed_by: str | None = None
    deleting: str | None = None

    @property
    def id(self) -> str:
        """Its ARM id."""
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"

    def render(self) -> dict[str, Any]:
        """The group as ARM returns it."""
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": GROUP_TYPE,
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {"provisioningState": "Deleting" if self.deleting else "Succeeded"},
        }
        if self.managed_by:
            body["managedBy"] = self.managed_by
        return body


@dataclass
class Registration:
    """A namespace's registration in one subscription.

    :param namespace: the namespace as the client wrote it.
    :param registered_at: ``time.monotonic()`` from which it is ``Registered``; ``None``
        while it is not registered.
    """

    namespace: str
    registered_at: float | None = None

    def state(self) -> str:
        """``NotRegistered``, ``Registering`` or ``Registered``."""
        if self.registered_at is None:
            return "NotRegistered"
        return "Registered" if time.monotonic() >= self.registered_at else "Registering"


class ResourcesProvider(ResourceProvider):
    """The ``Microsoft.Resources`` provider. Knobs are settable while running.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.Resources"
    spec_name: ClassVar[str] = RESOURCES_SPEC_NAME

    def __init__(self, spec_file: Path = RESOURCES_SPEC_FILE) -> None:
        super().__init__(spec_file)
        self.require_registration = False
        """Refuse namespaces the subscription has not registered (409)."""
        self.registration_delay = 0.05
        """Seconds a registration stays ``Registering``."""
        self.require_groups = False
        """Refuse resources in resource groups that do not exist (``ResourceGroupNotFound``)."""
        self.delete_delay = 0.05
        """Seconds a resource group delete takes."""
        self.groups: dict[tuple[str, str], ResourceGroupState] = {}
        self.registrations: dict[tuple[str, str], Registration] = {}

    def attach(self, server: FakeArmServer) -> None:
        """Register ARM's checks with the server."""
        super().attach(server)
        server.gates.append(self._registration_gate)
        server.gates.append(self._group_gate)

    def reset(self) -> None:
        """Forget every group and registration (knobs are kept)."""
        self.groups.clear()
        self.registrations.clear()

    # --- knobs and state, for tests ---------------------------------------------------

    def registration_state(self, subscription_id: str, namespace: str) -> str:
        """A namespace's registration state as ``Providers_Get`` reports it.

        :param subscription_id: the subscription.
        :param namespace: e.g. ``Microsoft.Storage``.
        :return: ``NotRegistered``, ``Registering`` or ``Registered``.
        """
        if namespace.lower() in ALWAYS_REGISTERED or not self.require_registration:
            found = self.registrations.get((subscription_id.lower(), namespace.lower()))
            return found.state() if found else "Registered"
        found = self.registrations.get((subscription_id.lower(), namespace.lower()))
        return found.state() if found else "NotRegistered"

    def group(self, subscription_id: str, name: str) -> ResourceGroupState | None:
        """A resource group (for test assertions).

        :param subscription_id: the subscription.
        :param name: the group (any case).
        :return: the group, or ``None``.
        """
        with self.attached().lock:
            self.attached().advance()
            return self.groups.get((subscription_id.lower(), name.lower()))

    # --- ARM's checks -------------------------------------------------------------------

    def _registration_gate(
        self, provider: ResourceProvider, request: ArmRequest
    ) -> ArmResponse | None:
        if not self.require_registration or provider.namespace.lower() in ALWAYS_REGISTERED:
            return None
        m = _SUBSCRIPTION.match(request.path)
        if m is None or self.registration_state(m[1], provider.namespace) == "Registered":
            return None
        message = (
            f"The subscription is not registered to use namespace '{provider.namespace}'. See "
            "https://aka.ms/rps-not-found for how to register subscriptions."
        )
        return arm_error(
            409,
            "MissingSubscriptionRegistration",
            message,
            details=[
                {
                    "code": "MissingSubscriptionRegistration",
                    "target": provider.namespace,
                    "message": message,
                }
            ],
        )

    def _group_gate(self, provider: ResourceProvider, request: ArmRequest) -> ArmResponse | None:
        if not self.require_groups:
            return None
        m = _IN_GROUP.match(request.path)
        if m is None or (m[1].lower(), m[2].lower()) in self.groups:
            return None
        return _group_not_found(m[2])

    # --- resource groups ----------------------------------------------------------------

    def _key(self, request: ArmRequest) -> tuple[str, str]:
        p = request.path_params
        return (p["subscriptionId"].lower(), p["resourceGroupName"].lower())

    def op_ResourceGroups_CheckExistence(self, request: ArmRequest) -> ArmResponse:
        """HEAD of a group: 204 when it exists, else 404."""
        return ArmResponse(204 if self._key(request) in self.groups else 404)

    def op_ResourceGroups_CreateOrUpdate(self, request: ArmRequest) -> ArmResponse:
        """PUT a group: 201 new, 200 updated (tags, managedBy); its location is fixed."""
        key = self._key(request)
        body = request.body
        existing = self.groups.get(key)
        if existing is not None:
            if existing.deleting:
                return arm_error(
                    409,
                    "ResourceGroupBeingDeleted",
                    f"The resource group '{existing.name}' is in deprovisioning state and cannot "
                    "perform this operation.",
                )
            if existing.location.lower() != str(body["location"]).lower():
                return arm_error(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{body['location']}'. The Resource group "
                    f"already exists in location '{existing.location}'.",
                )
            existing.tags = dict(body.get("tags") or {})
            existing.managed_by = body.get("managedBy")
            return ArmResponse(200, existing.render())
        group = ResourceGroupState(
            subscription_id=request.path_params["subscriptionId"],
            name=request.path_params["resourceGroupName"],
            location=str(body["location"]),
            tags=dict(body.get("tags") or {}),
            managed_by=body.get("managedBy"),
        )
        self.groups[key] = group
        return ArmResponse(201, group.render())

    def op_ResourceGroups_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a group, or 404 ``ResourceGroupNotFound``."""
        group = self.groups.get(self._key(request))
        if group is None:
            return _group_not_found(request.path_params["resourceGroupName"])
        return ArmResponse(200, group.render())

    def op_ResourceGroups_List(self, request: ArmRequest) -> ArmResponse:
        """The subscription's groups (one page)."""
        sub = request.path_params["subscriptionId"].lower()
        groups = [g.render() for k, g in sorted(self.groups.items()) if k[0] == sub]
        return ArmResponse(200, {"value": groups})

    def op_ResourceGroups_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a group and everything in it: 202, then gone after :attr:`delete_delay`."""
        key = self._key(request)
        group = self.groups.get(key)
        if group is None:
            return _group_not_found(request.path_params["resourceGroupName"])
        server = self.attached()
        if group.deleting is None:
            for provider in server.providers:
                provider.delete_resource_group(group.subscription_id, group.name)

            def on_complete() -> dict[str, str] | None:
                self.groups.pop(key, None)
                return None

            op = server.async_operations.start(
                namespace=self.namespace,
                subscription_id=group.subscription_id,
                location=group.location,
                kind="delete",
                resource_id=group.id,
                delay=self.delete_delay,
                on_complete=on_complete,
            )
            group.deleting = op.id
        else:
            op = next(o for o in server.operations() if o.id == group.deleting)
        return ArmResponse(202, None, server.operation_headers(request.base_url, op, location=True))

    def op_Resources_ListByResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """Every resource of a group, from every provider (one page, ``$filter`` ignored)."""
        sub, rg = request.path_params["subscriptionId"], request.path_params["resourceGroupName"]
        if (sub.lower(), rg.lower()) not in self.groups:
            return _group_not_found(rg)
        found = [
            r for provider in self.attached().providers for r in provider.resources_in(sub, rg)
        ]
        return ArmResponse(200, {"value": sorted(found, key=lambda r: str(r["id"]).lower())})

    # --- resource providers -------------------------------------------------------------

    def _provider_body(self, subscription_id: str, namespace: str) -> dict[str, Any]:
        served = next(
            (
                p.namespace
                for p in self.attached().providers
                if p.namespace.lower() == namespace.lower()
            ),
            namespace,
        )
        return {
            "id": f"/subscriptions/{subscription_id}/providers/{served}",
            "namespace": served,
            "registrationState": self.registration_state(subscription_id, namespace),
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [],
        }

    def op_Providers_Register(self, request: ArmRequest) -> ArmResponse:
        """Register a namespace: ``Registering`` for :attr:`registration_delay`, then
        ``Registered``."""
        sub = request.path_params["subscriptionId"]
        namespace = request.path_params["resourceProviderNamespace"]
        key = (sub.lower(), namespace.lower())
        current = self.registrations.get(key)
        if current is None or current.registered_at is None:
            self.registrations[key] = Registration(
                namespace, time.monotonic() + self.registration_delay
            )
        return ArmResponse(200, self._provider_body(sub, namespace))

    def op_Providers_Unregister(self, request: ArmRequest) -> ArmResponse:
        """Unregister a namespace."""
        sub = request.path_params["subscriptionId"]
        namespace = request.path_params["resourceProviderNamespace"]
        self.registrations[(sub.lower(), namespace.lower())] = Registration(namespace)
        return ArmResponse(200, self._provider_body(sub, namespace))

    def op_Providers_Get(self, request: ArmRequest) -> ArmResponse:
        """A namespace's registration state."""
        sub = request.path_params["subscriptionId"]
        return ArmResponse(
            200, self._provider_body(sub, request.path_params["resourceProviderNamespace"])
        )


def _group_not_found(name: str) -> ArmResponse:
    return arm_error(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
