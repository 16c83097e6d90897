"""``Microsoft.ManagedIdentity`` (api-version 2024-11-30, azure-mgmt-msi 7.1.0): user-assigned
identities.

A new identity gets a principal id, a client id and the fake's tenant, and its service
principal joins the server's directory :attr:`ManagedIdentityProvider.replication_delay`
seconds later: until then role assignments naming it get ``PrincipalNotFound``, as on
Azure while Entra ID replicates.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ClassVar

from ..arm import ArmRequest, ArmResponse, ResourceProvider, deep_copy_json
from ..arm.auth import FAKE_TENANT_ID
from ..arm.tracked import Key, ResourceTable, TrackedResource, listing, path_key
from ..spec import SPECS_DIR

IDENTITY_SPEC_NAME = "managedidentity-2024-11-30.json"
IDENTITY_SPEC_FILE = SPECS_DIR / IDENTITY_SPEC_NAME
IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


class ManagedIdentityProvider(ResourceProvider):
    """The ``Microsoft.ManagedIdentity`` provider. Knobs are settable while running.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.ManagedIdentity"
    spec_name: ClassVar[str] = IDENTITY_SPEC_NAME

    def __init__(self, spec_file: Path = IDENTITY_SPEC_FILE) -> None:
        super().__init__(spec_file)
        self.replication_delay = 0.0
        """Seconds from creating an identity until role assignments can name it."""
        self.identities = ResourceTable(IDENTITY_TYPE)

    def tables(self) -> list[ResourceTable]:
        """The identities."""
        return [self.identities]

    def forget(self, table: ResourceTable, key: Key) -> None:
        """Remove an identity and its service principal."""
        removed = table.pop(key)
        if removed is not None:
            self.attached().directory.remove(removed.body["properties"]["principalId"])

    def op_UserAssignedIdentities_CreateOrUpdate(self, request: ArmRequest) -> ArmResponse:
        """PUT an identity: 201 new (its principal replicates), 200 updated (tags)."""
        key = path_key(request, "resourceName")
        p = request.path_params
        body: dict[str, Any] = deep_copy_json(request.body)
        existing = self.identities.get(key)
        if existing is not None:
            existing.tags = dict(body.get("tags") or {})
            return ArmResponse(200, existing.render())
        principal = str(uuid.uuid4())
        identity = TrackedResource(
            subscription_id=p["subscriptionId"],
            resource_group=p["resourceGroupName"],
            kind=IDENTITY_TYPE,
            name=p["resourceName"],
            location=str(body["location"]),
            tags=dict(body.get("tags") or {}),
            body={
                "properties": {
                    "tenantId": FAKE_TENANT_ID,
                    "principalId": principal,
                    "clientId": str(uuid.uuid4()),
                    "isolationScope": (body.get("properties") or {}).get("isolationScope", "None"),
                }
            },
        )
        self.identities.put(identity)
        self.attached().directory.add(principal, "ServicePrincipal", delay=self.replication_delay)
        return ArmResponse(201, identity.render())

    def _identity(self, request: ArmRequest) -> TrackedResource | ArmResponse:
        found = self.identities.get(path_key(request, "resourceName"))
        if found is None:
            return self.identities.not_found(
                request.path_params["resourceGroupName"], request.path_params["resourceName"]
            )
        return found

    def op_UserAssignedIdentities_Get(self, request: ArmRequest) -> ArmResponse:
        """GET an identity."""
        found = self._identity(request)
        return found if isinstance(found, ArmResponse) else ArmResponse(200, found.render())

    def op_UserAssignedIdentities_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE an identity: 200, or 204 when it did not exist."""
        key = path_key(request, "resourceName")
        if self.identities.get(key) is None:
            return ArmResponse(204)
        self.forget(self.identities, key)
        return ArmResponse(200)

    def op_UserAssignedIdentities_ListByResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """The identities of a group."""
        p = request.path_params
        return listing(self.identities.in_group(p["subscriptionId"], p["resourceGroupName"]))

    def op_UserAssignedIdentities_ListBySubscription(self, request: ArmRequest) -> ArmResponse:
        """The identities of the subscription."""
        return listing(self.identities.in_subscription(request.path_params["subscriptionId"]))
