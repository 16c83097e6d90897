"""``Microsoft.Storage`` (api-version 2026-09-01, azure-mgmt-storage 25.3.0): storage accounts,
their name availability and keys, and their queues, tables and blob containers (the
management plane's view of them).

* ``checkNameAvailability`` answers ``AlreadyExists`` for an account of any subscription and
  for :attr:`StorageProvider.taken_names` (accounts of other Azure customers: names are
  global), and ``AccountNameInvalid`` for a name outside 3-24 lower-case letters and digits;
* a PUT of a new account answers 202 with ``Location`` (the spec's ``final-state-via:
  location``); the account exists once :attr:`~StorageProvider.provisioning_delay` has
  passed, and the operation-result URL then answers it. A taken name gets 409
  ``StorageAccountAlreadyTaken``. A PUT of an existing account updates it (200);
* accounts report ``https://<name>.<service>.core.windows.net/`` endpoints, or those of a
  real Azurite when :attr:`~StorageProvider.azurite` is set (its connection string), whose
  key ``listKeys`` then answers.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any, ClassVar

from ..arm import ArmRequest, ArmResponse, ResourceProvider, arm_error, deep_copy_json
from ..arm.messages import utc_now_iso
from ..arm.tracked import Key, ResourceTable, TrackedResource, listing, path_key
from ..spec import SPECS_DIR

STORAGE_SPEC_NAME = "storage-2026-09-01.json"
STORAGE_SPEC_FILE = SPECS_DIR / STORAGE_SPEC_NAME
ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
_VALID_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_SERVICES = ("blob", "queue", "table", "file", "web", "dfs")
_CHILD_TYPES = {
    "queues": "Microsoft.Storage/storageAccounts/queueServices/queues",
    "tables": "Microsoft.Storage/storageAccounts/tableServices/tables",
    "containers": "Microsoft.Storage/storageAccounts/blobServices/containers",
}
# What Azure assumes when a create leaves these out (secure defaults since 2023).
_DEFAULTS = {
    "supportsHttpsTrafficOnly": True,
    "allowBlobPublicAccess": False,
    "minimumTlsVersion": "TLS1_2",
    "accessTier": "Hot",
}


def _azurite_parts(connection_string: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)


class StorageProvider(ResourceProvider):
    """The ``Microsoft.Storage`` provider. Knobs are settable while running.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.Storage"
    spec_name: ClassVar[str] = STORAGE_SPEC_NAME

    def __init__(self, spec_file: Path = STORAGE_SPEC_FILE) -> None:
        super().__init__(spec_file)
        self.taken_names: set[str] = set()
        """Account names other Azure customers hold (global names): never available."""
        self.provisioning_delay = 0.05
        """Seconds until a new account exists."""
        self.azurite: str | None = None
        """An Azurite connection string: accounts report its endpoints and its key."""
        self.accounts = ResourceTable(ACCOUNT_TYPE)
        # Per account key: "queues" / "tables" / "containers" -> name -> the child's body.
        self.children: dict[Key, dict[str, dict[str, dict[str, Any]]]] = {}

    def tables(self) -> list[ResourceTable]:
        """The accounts."""
        return [self.accounts]

    def reset(self) -> None:
        """Forget every account (knobs are kept)."""
        super().reset()
        self.children.clear()

    def forget(self, table: ResourceTable, key: Key) -> None:
        """Remove an account with its queues, tables and containers."""
        table.pop(key)
        self.children.pop(key, None)

    def is_taken(self, name: str) -> bool:
        """Whether an account name is in use anywhere (here or by someone else).

        :param name: the name.
        :return: ``True`` when taken.
        """
        return name.lower() in {n.lower() for n in self.taken_names} or bool(
            self.accounts.named(name)
        )

    # --- accounts -----------------------------------------------------------------------

    def op_StorageAccounts_CheckNameAvailability(self, request: ArmRequest) -> ArmResponse:
        """Whether an account name may be used."""
        name = str(request.body["name"])
        if not _VALID_NAME.fullmatch(name):
            return ArmResponse(
                200,
                {
                    "nameAvailable": False,
                    "reason": "AccountNameInvalid",
                    "message": f"{name} is not a valid storage account name. Storage account "
                    "name must be between 3 and 24 characters in length and use numbers and "
                    "lower-case letters only.",
                },
            )
        if self.is_taken(name):
            return ArmResponse(
                200,
                {
                    "nameAvailable": False,
                    "reason": "AlreadyExists",
                    "message": f"The storage account named {name} is already taken.",
                },
            )
        return ArmResponse(200, {"nameAvailable": True})

    def op_StorageAccounts_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT an account: 202 and an operation for a new one, 200 for an update."""
        key = path_key(request, "accountName")
        p = request.path_params
        body: dict[str, Any] = deep_copy_json(request.body)
        existing = self.accounts.get(key)
        if existing is not None:
            if existing.location.lower() != str(body["location"]).lower():
                return arm_error(
                    409,
                    "InvalidResourceLocation",
                    f"The resource '{existing.name}' already exists in location "
                    f"'{existing.location}' in resource group '{existing.resource_group}'. A "
                    f"resource with the same name cannot be created in location "
                    f"'{body['location']}'. Please select a new resource name.",
                )
            existing.tags = dict(body.get("tags") or {})
            existing.body = self._account_body(existing.name, body, existing.body)
            return ArmResponse(200, existing.render())
        if self.is_taken(p["accountName"]):
            return arm_error(
                409,
                "StorageAccountAlreadyTaken",
                f"The storage account named {p['accountName']} is already taken.",
            )
        account = TrackedResource(
            subscription_id=p["subscriptionId"],
            resource_group=p["resourceGroupName"],
            kind=ACCOUNT_TYPE,
            name=p["accountName"],
            location=str(body["location"]),
            tags=dict(body.get("tags") or {}),
            body=self._account_body(p["accountName"], body, None),
        )
        # It shows (provisioning "Creating") from the start, as on Azure.
        account.body["properties"]["provisioningState"] = "Creating"
        self.accounts.put(account)
        server = self.attached()

        def on_complete() -> dict[str, str] | None:
            account.body["properties"]["provisioningState"] = "Succeeded"
            return None

        op = server.async_operations.start(
            namespace=self.namespace,
            subscription_id=account.subscription_id,
            location=account.location,
            kind="create",
            resource_id=account.id,
            delay=self.provisioning_delay,
            on_complete=on_complete,
            result=account.render,
        )
        return ArmResponse(202, None, server.operation_headers(request.base_url, op, location=True))

    def _account_body(
        self, name: str, sent: dict[str, Any], before: dict[str, Any] | None
    ) -> dict[str, Any]:
        props = {**_DEFAULTS, **(before or {}).get("properties", {}), **sent.get("properties", {})}
        props.update(
            {
                "provisioningState": "Succeeded",
                "primaryEndpoints": self.endpoints(name),
                "primaryLocation": sent["location"],
                "statusOfPrimary": "available",
                "creationTime": (before or {}).get("properties", {}).get("creationTime")
                or utc_now_iso(),
            }
        )
        sku = dict(sent["sku"])
        sku.setdefault("tier", "Premium" if str(sku["name"]).startswith("Premium") else "Standard")
        body: dict[str, Any] = {"sku": sku, "kind": sent["kind"], "properties": props}
        if sent.get("identity"):
            body["identity"] = sent["identity"]
        return body

    def endpoints(self, name: str) -> dict[str, str]:
        """An account's endpoints: Azure's, or Azurite's when :attr:`azurite` is set.

        :param name: the account name.
        :return: service -> URL.
        """
        if self.azurite:
            parts = _azurite_parts(self.azurite)
            found = {
                service: parts[f"{service.capitalize()}Endpoint"].rstrip("/") + "/"
                for service in ("blob", "queue", "table")
                if f"{service.capitalize()}Endpoint" in parts
            }
            if found:
                return found
        return {s: f"https://{name}.{s}.core.windows.net/" for s in _SERVICES}

    def _account(self, request: ArmRequest) -> TrackedResource | ArmResponse:
        found = self.accounts.get(path_key(request, "accountName"))
        if found is None:
            return self.accounts.not_found(
                request.path_params["resourceGroupName"], request.path_params["accountName"]
            )
        return found

    def op_StorageAccounts_GetProperties(self, request: ArmRequest) -> ArmResponse:
        """GET an account."""
        found = self._account(request)
        return found if isinstance(found, ArmResponse) else ArmResponse(200, found.render())

    def op_StorageAccounts_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE an account (synchronous): 200, or 204 when it did not exist."""
        key = path_key(request, "accountName")
        if self.accounts.get(key) is None:
            return ArmResponse(204)
        self.forget(self.accounts, key)
        return ArmResponse(200)

    def op_StorageAccounts_ListByResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """The accounts of a group."""
        p = request.path_params
        return listing(self.accounts.in_group(p["subscriptionId"], p["resourceGroupName"]))

    def op_StorageAccounts_List(self, request: ArmRequest) -> ArmResponse:
        """The accounts of the subscription."""
        return listing(self.accounts.in_subscription(request.path_params["subscriptionId"]))

    def op_StorageAccounts_ListKeys(self, request: ArmRequest) -> ArmResponse:
        """The account's two keys (Azurite's key when :attr:`azurite` is set)."""
        found = self._account(request)
        if isinstance(found, ArmResponse):
            return found
        keys = []
        for n in (1, 2):
            if self.azurite:
                value = _azurite_parts(self.azurite).get("AccountKey", "")
            else:
                digest = hashlib.sha512(f"{found.id}/key{n}".encode()).digest()
                value = base64.b64encode(digest).decode()
            keys.append({"keyName": f"key{n}", "value": value, "permissions": "FULL"})
        return ArmResponse(200, {"keys": keys})

    # --- queues, tables, containers ------------------------------------------------------

    def _child_put(self, request: ArmRequest, kind: str, name_param: str) -> ArmResponse:
        found = self._account(request)
        if isinstance(found, ArmResponse):
            return found
        name = request.path_params[name_param]
        children = self.children.setdefault(found.key, {}).setdefault(kind, {})
        created = name not in children
        props = dict((request.body or {}).get("properties") or {})
        children[name] = props
        status = 201 if created and kind == "containers" else 200
        return ArmResponse(status, self._child(found, kind, name, props))

    def _child_get(self, request: ArmRequest, kind: str, name_param: str) -> ArmResponse:
        found = self._account(request)
        if isinstance(found, ArmResponse):
            return found
        name = request.path_params[name_param]
        props = self.children.get(found.key, {}).get(kind, {}).get(name)
        if props is None:
            return arm_error(
                404,
                {"queues": "QueueNotFound", "tables": "TableNotFound"}.get(
                    kind, "ContainerNotFound"
                ),
                f"The specified {kind[:-1]} '{name}' does not exist in account '{found.name}'.",
            )
        return ArmResponse(200, self._child(found, kind, name, props))

    def _child_delete(self, request: ArmRequest, kind: str, name_param: str) -> ArmResponse:
        found = self._account(request)
        if isinstance(found, ArmResponse):
            return found
        removed = (
            self.children.get(found.key, {})
            .get(kind, {})
            .pop(request.path_params[name_param], None)
        )
        return ArmResponse(200 if removed is not None else 204)

    def _child(
        self, account: TrackedResource, kind: str, name: str, props: dict[str, Any]
    ) -> dict[str, Any]:
        service = {"queues": "queueServices", "tables": "tableServices"}.get(kind, "blobServices")
        return {
            "id": f"{account.id}/{service}/default/{kind}/{name}",
            "name": name,
            "type": _CHILD_TYPES[kind],
            "properties": deep_copy_json(props),
        }

    def child_names(self, account: TrackedResource, kind: str) -> list[str]:
        """The queues, tables or containers of an account (for test assertions).

        :param account: the account.
        :param kind: ``queues``, ``tables`` or ``containers``.
        :return: their names.
        """
        return sorted(self.children.get(account.key, {}).get(kind, {}))

    def op_Queue_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT a queue."""
        return self._child_put(request, "queues", "queueName")

    def op_Queue_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a queue."""
        return self._child_get(request, "queues", "queueName")

    def op_Queue_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a queue."""
        return self._child_delete(request, "queues", "queueName")

    def op_Table_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT a table."""
        return self._child_put(request, "tables", "tableName")

    def op_Table_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a table."""
        return self._child_get(request, "tables", "tableName")

    def op_Table_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a table."""
        return self._child_delete(request, "tables", "tableName")

    def op_BlobContainers_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT a blob container (201 new, 200 existing)."""
        return self._child_put(request, "containers", "containerName")

    def op_BlobContainers_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a blob container."""
        return self._child_get(request, "containers", "containerName")

    def op_BlobContainers_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a blob container."""
        return self._child_delete(request, "containers", "containerName")
