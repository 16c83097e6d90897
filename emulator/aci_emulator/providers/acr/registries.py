"""Azure Container Registry management (``Microsoft.ContainerRegistry`` api-version 2025-04-01,
what azure-mgmt-containerregistry 14.0.0 sends for registries by default).

* ``checkNameAvailability`` answers ``AlreadyExists`` for a registry of any subscription and
  for :attr:`RegistriesProvider.taken_names` (registry names are global: they are DNS names);
* a PUT of a new registry answers 201 and an ``Azure-AsyncOperation`` (the spec's
  ``final-state-via: azure-async-operation``); a taken name gets 409 ``AlreadyInUse``
  (ACR's message; the code is the fake's guess);
* a registry's ``loginServer`` is :meth:`RegistriesProvider.login_server`: ``<name>.azurecr.io``,
  or the address of a local registry standing in for ACR's data plane
  (:attr:`~RegistriesProvider.data_plane`);
* ``listCredentials`` refuses while the admin user is off, as ACR does.

The runs of :mod:`.provider` (another spec, 2019-06-01-preview) do not look registries up.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from ...arm import ArmRequest, ArmResponse, ResourceProvider, arm_error, deep_copy_json
from ...arm.tracked import ResourceTable, TrackedResource, listing, path_key
from ...spec import SPECS_DIR

REGISTRIES_SPEC_NAME = "containerregistry-2025-04-01.json"
REGISTRIES_SPEC_FILE = SPECS_DIR / REGISTRIES_SPEC_NAME
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"


class RegistriesProvider(ResourceProvider):
    """The registry management side of ``Microsoft.ContainerRegistry``. Knobs are settable
    while running.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.ContainerRegistry"
    spec_name: ClassVar[str] = REGISTRIES_SPEC_NAME

    def __init__(self, spec_file: Path = REGISTRIES_SPEC_FILE) -> None:
        super().__init__(spec_file)
        self.taken_names: set[str] = set()
        """Registry names other Azure customers hold (global DNS names): never available."""
        self.provisioning_delay = 0.05
        """Seconds until a new registry is provisioned."""
        self.delete_delay = 0.05
        """Seconds a registry delete takes."""
        self.data_plane: str | None = None
        """``host:port`` of a local registry that stands in for every registry's data plane;
        ``None``: ``<name>.azurecr.io``."""
        self.registries = ResourceTable(REGISTRY_TYPE)

    def tables(self) -> list[ResourceTable]:
        """The registries."""
        return [self.registries]

    def login_server(self, name: str) -> str:
        """The login server a registry reports (the one place that decides it).

        :param name: the registry name.
        :return: ``<name>.azurecr.io``, or :attr:`data_plane` when set.
        """
        return self.data_plane or f"{name.lower()}.azurecr.io"

    def is_taken(self, name: str) -> bool:
        """Whether a registry name is in use anywhere (here or by someone else).

        :param name: the name.
        :return: ``True`` when taken.
        """
        taken = {n.lower() for n in self.taken_names}
        return name.lower() in taken or bool(self.registries.named(name))

    def op_Registries_CheckNameAvailability(self, request: ArmRequest) -> ArmResponse:
        """Whether a registry name may be used."""
        name = str(request.body["name"])
        if self.is_taken(name):
            return ArmResponse(
                200,
                {
                    "nameAvailable": False,
                    "reason": "AlreadyExists",
                    "message": f"The registry {name} is already in use.",
                },
            )
        return ArmResponse(200, {"nameAvailable": True})

    def op_Registries_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT a registry: 201 (new) or 200 (update) with an asynchronous operation."""
        key = path_key(request, "registryName")
        p = request.path_params
        body: dict[str, Any] = deep_copy_json(request.body)
        server = self.attached()
        existing = self.registries.get(key)
        if existing is None and self.is_taken(p["registryName"]):
            return arm_error(
                409,
                "AlreadyInUse",
                f"The registry DNS name {p['registryName'].lower()}.azurecr.io is already in use. "
                "You can check if the name is already claimed using following API: "
                "https://docs.microsoft.com/en-us/rest/api/containerregistry/registries/"
                "checknameavailability",
            )
        if existing is not None and existing.location.lower() != str(body["location"]).lower():
            return arm_error(
                409,
                "InvalidResourceLocation",
                f"The resource '{existing.name}' already exists in location '{existing.location}' "
                f"in resource group '{existing.resource_group}'. A resource with the same name "
                f"cannot be created in location '{body['location']}'. Please select a new "
                "resource name.",
            )
        registry = existing or TrackedResource(
            subscription_id=p["subscriptionId"],
            resource_group=p["resourceGroupName"],
            kind=REGISTRY_TYPE,
            name=p["registryName"],
            location=str(body["location"]),
        )
        registry.tags = dict(body.get("tags") or {})
        props = {"adminUserEnabled": False, **dict(body.get("properties") or {})}
        props.update(
            {
                "loginServer": self.login_server(registry.name),
                "creationDate": registry.created,
                "provisioningState": "Creating" if existing is None else "Updating",
            }
        )
        sku = dict(body["sku"])
        sku["tier"] = sku["name"]
        registry.body = {"sku": sku, "properties": props}
        if body.get("identity"):
            registry.body["identity"] = body["identity"]
        self.registries.put(registry)

        def on_complete() -> dict[str, str] | None:
            registry.body["properties"]["provisioningState"] = "Succeeded"
            return None

        op = server.async_operations.start(
            namespace=self.namespace,
            subscription_id=registry.subscription_id,
            location=registry.location,
            kind="create" if existing is None else "update",
            resource_id=registry.id,
            delay=self.provisioning_delay,
            on_complete=on_complete,
        )
        headers = server.operation_headers(request.base_url, op, location=False)
        return ArmResponse(201 if existing is None else 200, registry.render(), headers)

    def _registry(self, request: ArmRequest) -> TrackedResource | ArmResponse:
        found = self.registries.get(path_key(request, "registryName"))
        if found is None:
            return self.registries.not_found(
                request.path_params["resourceGroupName"], request.path_params["registryName"]
            )
        return found

    def op_Registries_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a registry."""
        found = self._registry(request)
        return found if isinstance(found, ArmResponse) else ArmResponse(200, found.render())

    def op_Registries_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a registry: 202 with ``Location``, gone after :attr:`delete_delay`; 204
        when it did not exist."""
        key = path_key(request, "registryName")
        found = self.registries.get(key)
        if found is None:
            return ArmResponse(204)
        server = self.attached()
        found.body["properties"]["provisioningState"] = "Deleting"

        def on_complete() -> dict[str, str] | None:
            self.registries.pop(key)
            return None

        op = server.async_operations.start(
            namespace=self.namespace,
            subscription_id=found.subscription_id,
            location=found.location,
            kind="delete",
            resource_id=found.id,
            delay=self.delete_delay,
            on_complete=on_complete,
        )
        return ArmResponse(202, None, server.operation_headers(request.base_url, op, location=True))

    def op_Registries_ListByResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """The registries of a group."""
        p = request.path_params
        return listing(self.registries.in_group(p["subscriptionId"], p["resourceGroupName"]))

    def op_Registries_List(self, request: ArmRequest) -> ArmResponse:
        """The registries of the subscription."""
        return listing(self.registries.in_subscription(request.path_params["subscriptionId"]))

    def op_Registries_ListCredentials(self, request: ArmRequest) -> ArmResponse:
        """The admin user's credentials; refused while the admin user is disabled."""
        found = self._registry(request)
        if isinstance(found, ArmResponse):
            return found
        if not found.body["properties"].get("adminUserEnabled"):
            return arm_error(
                400,
                "UnAuthorizedForCredentialOperations",
                f"Cannot perform credential operations for {found.id} as admin user is "
                "disabled. Kindly enable admin user as per docs: "
                "https://docs.microsoft.com/azure/container-registry/container-registry-"
                "authentication#admin-account",
            )
        secret = hashlib.sha256(found.id.encode()).hexdigest()
        return ArmResponse(
            200,
            {
                "username": found.name,
                "passwords": [
                    {"name": "password", "value": secret[:32]},
                    {"name": "password2", "value": secret[32:]},
                ],
            },
        )
