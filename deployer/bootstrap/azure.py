"""The Azure calls of ``deployer init`` and ``deployer destroy``, through the real SDK clients.

Observing sends only reads (GET, HEAD); each step of :mod:`.plan` is one or a few writes.
ARM's answers that init handles itself:

* ``PrincipalNotFound`` on a role assignment for a new identity: Entra ID has not
  replicated it yet; retried with backoff (2 s doubling to 30 s, at most
  :data:`REPLICATION_TIMEOUT_S`), each wait reported;
* ``AuthorizationFailed`` on a role assignment: the user may not assign roles;
  :class:`RoleAssignmentRefused` lets the caller finish everything else;
* ``RoleAssignmentExists``: the user made the same assignment under another name: done;
* registration: ``register`` returns at once; :meth:`Azure.wait_registered` polls.

Throttling (429) and 5xx are retried by the clients (:func:`deployer.arm.management_client`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient

# The models of the api-version the client sends (the package's default models are older).
from azure.mgmt.authorization.v2022_04_01 import models as authz
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry import models as acr
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi import models as msi
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage import models as storage

from deployer import defaults
from deployer.arm import management_client
from deployer.backends.aci import translate
from deployer.bootstrap.names import GlobalKind
from deployer.bootstrap.plan import (
    PROVIDERS,
    REGISTRY_SKU,
    STORAGE_KIND,
    STORAGE_SKU,
    Observed,
    Resource,
    Target,
    init_tags,
    label,
)
from deployer.bootstrap.roles import Grant
from deployer.defaults import Env
from deployer.errors import AzureError
from deployer.scope import registry_with_login_server

T = TypeVar("T")
Report = Callable[[str, str], None]
"""Progress: (what, status), e.g. ``("registry labab12cd", "creating")``."""

REPLICATION_TIMEOUT_S = 600.0
"""How long a new identity may take to replicate before init gives up."""
REGISTRATION_TIMEOUT_S = 900.0
"""How long a provider registration may take before init gives up."""
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 2.0, 30.0


class RoleAssignmentRefused(Exception):
    """The signed-in user may not assign roles (``AuthorizationFailed``).

    Args:
        message (str): ARM's message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _code(exc: HttpResponseError) -> str:
    return str(exc.error.code) if exc.error and exc.error.code else ""


def backoff() -> Iterator[float]:
    """Waits between retries: 2 s, doubling, at most 30 s."""
    wait = _BACKOFF_FIRST_S
    while True:
        yield wait
        wait = min(wait * 2, _BACKOFF_MAX_S)


@dataclass
class Clock:
    """Time, injectable so that tests wait without sleeping.

    Args:
        sleep (Callable[[float], None]): Waits. Default: ``time.sleep``.
        now (Callable[[], float]): Monotonic seconds. Default: ``time.monotonic``.
    """

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


class Azure:
    """The clients of one subscription, and init's and destroy's calls.

    Args:
        subscription (str): The subscription.
        credential (TokenCredential | None): Default: :func:`deployer.arm.default_credential`.
        report (Report | None): Progress. Default: none.
        clock (Clock | None): Time. Default: the real one.
    """

    def __init__(
        self,
        subscription: str,
        *,
        credential: TokenCredential | None = None,
        report: Report | None = None,
        clock: Clock | None = None,
    ) -> None:
        def client(kind: Callable[..., T]) -> T:
            return management_client(kind, subscription, credential=credential)

        self.resources = client(ResourceManagementClient)
        self.storage = client(StorageManagementClient)
        self.registries = client(ContainerRegistryManagementClient)
        self.identities = client(ManagedServiceIdentityClient)
        self.authorization = client(AuthorizationManagementClient)
        self.report: Report = report or (lambda what, status: None)
        self.clock = clock or Clock()
        self._roles: dict[str, str] = {}

    # --- reading ----------------------------------------------------------------------

    def _read(self, what: str, fn: Callable[[], T]) -> T | None:
        """A GET: its result, or None when the resource (or its group) does not exist."""
        try:
            return fn()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return None
            raise translate(exc, what) from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except HttpResponseError as exc:
            raise translate(exc, what) from None

    def registration(self, namespace: str) -> str:
        """A provider's registration state (``Registered``, ``Registering``, ...)."""
        found = self._call(
            f"reading the registration of {namespace}",
            lambda: self.resources.providers.get(namespace),
        )
        return str(found.registration_state or "NotRegistered")

    def group_tags(self, name: str) -> dict[str, str] | None:
        """A resource group's tags; None when it does not exist."""
        found = self._read(
            f"reading resource group {name}", lambda: self.resources.resource_groups.get(name)
        )
        return None if found is None else dict(found.tags or {})

    def group_resources(self, name: str) -> list[Resource]:
        """Everything in a resource group (none when it does not exist)."""
        found = self._read(
            f"listing resource group {name}",
            lambda: list(self.resources.resources.list_by_resource_group(name)),
        )
        return [
            Resource(str(r.id), str(r.name), str(r.type), dict(r.tags or {})) for r in found or []
        ]

    def storage_account_exists(self, target: Target, name: str | None = None) -> bool:
        """Whether the storage account exists in the resource group."""
        account = name or target.storage_account
        found = self._read(
            f"reading storage account {account}",
            lambda: self.storage.storage_accounts.get_properties(target.resource_group, account),
        )
        return found is not None

    def registry_login_server(self, target: Target, name: str | None = None) -> str | None:
        """The registry's login server, None when it does not exist in the resource group."""
        registry = name or target.registry
        if registry is None:
            return None
        found = self._read(
            f"reading registry {registry}",
            lambda: self.registries.registries.get(target.resource_group, registry),
        )
        return None if found is None else str(found.login_server)

    def registry_named_by(self, resource_group: str, server: str) -> str | None:
        """The name of the group's registry whose login server is ``server``; None when none
        is (or the group does not exist)."""
        return self._read(
            f"looking for registry {server}",
            lambda: registry_with_login_server(self.registries, resource_group, server),
        )

    def identity(self, target: Target) -> tuple[str, str] | None:
        """The identity's (principal id, client id), None when it does not exist."""
        ref = target.identity
        found = self._read(
            f"reading identity {ref.name}",
            lambda: self.identities.user_assigned_identities.get(ref.resource_group, ref.name),
        )
        if found is None:
            return None
        return str(found.principal_id), str(found.client_id)

    def assignment_exists(self, grant: Grant) -> bool:
        """Whether a role assignment of that name exists at its scope."""
        name = grant.name
        if name is None:
            return False
        found = self._read(
            f"reading the role assignment {grant.describe()}",
            lambda: self.authorization.role_assignments.get(grant.scope, name),
        )
        return found is not None

    def is_available(self, kind: GlobalKind, name: str) -> tuple[bool, str]:
        """Whether a storage account or registry name is free across Azure, and why not."""
        if kind == "storage account":
            answer: Any = self._call(
                f"checking the storage account name {name}",
                lambda: self.storage.storage_accounts.check_name_availability(
                    storage.StorageAccountCheckNameAvailabilityParameters(name=name)
                ),
            )
            return bool(answer.name_available), str(answer.message or "")
        status = self._call(
            f"checking the registry name {name}",
            lambda: self.registries.registries.check_name_availability(
                acr.RegistryNameCheckRequest(name=name)
            ),
        )
        return bool(status.name_available), str(status.message or "")

    def observe(self, target: Target) -> Observed:
        """What of the target exists (reads only)."""
        group = self._call(
            f"reading resource group {target.resource_group}",
            lambda: self.resources.resource_groups.check_existence(target.resource_group),
        )
        registrations = {ns: self.registration(ns) for ns in PROVIDERS}

        def usable(namespace: str) -> bool:
            return group and registrations[namespace] == "Registered"

        account = usable("Microsoft.Storage") and self.storage_account_exists(target)
        children = frozenset(
            (kind, name)
            for kind, names in target.storage.items()
            for name in names
            if account and self._child_exists(target, kind, name)
        )
        registry = usable("Microsoft.ContainerRegistry") and bool(
            self.registry_login_server(target)
        )
        identity = (
            self.identity(target)
            if registrations["Microsoft.ManagedIdentity"] == "Registered"
            else None
        )
        exists = {target.group_id: group, target.account_id: account}
        if target.registry_id is not None:
            exists[target.registry_id] = registry
        assignments = frozenset(
            str(g.name)
            for g in target.grants(identity[0] if identity else None)
            if g.name is not None and exists.get(g.scope) and self.assignment_exists(g)
        )
        return Observed(
            resource_group=group,
            registrations=registrations,
            storage_account=account,
            storage_children=children,
            registry=registry,
            identity=identity,
            assignments=assignments,
        )

    def _child_exists(self, target: Target, kind: str, name: str) -> bool:
        rg, account = target.resource_group, target.storage_account
        get: Callable[[], Any] = {
            "queues": lambda: self.storage.queue.get(rg, account, name),
            "tables": lambda: self.storage.table.get(rg, account, name),
            "containers": lambda: self.storage.blob_containers.get(rg, account, name),
        }[kind]
        return self._read(f"reading {kind[:-1]} {name}", get) is not None

    # --- writing ----------------------------------------------------------------------

    def create_group(self, target: Target) -> None:
        """Create the resource group, tagged."""
        self._call(
            f"creating resource group {target.resource_group}",
            lambda: self.resources.resource_groups.create_or_update(
                target.resource_group,
                {"location": target.location, "tags": init_tags(target.deployment)},
            ),
        )

    def register(self, namespaces: list[str]) -> None:
        """Register providers, then wait until each is ``Registered``."""
        for namespace in namespaces:
            self.report(f"provider {namespace}", "registering")
            self._call(
                f"registering {namespace}", partial(self.resources.providers.register, namespace)
            )
        interval = defaults.env_float(Env.POLL_INTERVAL, defaults.DEFAULT_POLL_INTERVAL_S)
        deadline = self.clock.now() + REGISTRATION_TIMEOUT_S
        waiting = list(namespaces)
        while waiting:
            for ns in [ns for ns in waiting if self.registration(ns) == "Registered"]:
                waiting.remove(ns)
                self.report(f"provider {ns}", "registered")
            if not waiting:
                return
            if self.clock.now() > deadline:
                raise AzureError(
                    f"{', '.join(waiting)} not registered after {REGISTRATION_TIMEOUT_S:.0f} s",
                    hint="check `az provider show -n <namespace> --query registrationState`, "
                    "then run `deployer init` again",
                    code="RegistrationTimeout",
                )
            self.clock.sleep(interval)

    def create_storage_account(self, target: Target) -> None:
        """Create the storage account: StorageV2, Standard_LRS, HTTPS only, TLS 1.2, no
        anonymous blob access, tagged (a long-running operation)."""
        params = storage.StorageAccountCreateParameters(
            sku=storage.Sku(name=STORAGE_SKU),
            kind=STORAGE_KIND,
            location=target.location,
            tags=init_tags(target.deployment),
            properties=storage.StorageAccountPropertiesCreateParameters(
                enable_https_traffic_only=True,
                minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
            ),
        )
        self._call(
            f"creating storage account {target.storage_account}",
            lambda: self.storage.storage_accounts.begin_create(
                target.resource_group, target.storage_account, params
            ).result(),
        )

    def create_child(self, target: Target, kind: str, name: str) -> None:
        """Create a queue, table or blob container in the storage account."""
        rg, account = target.resource_group, target.storage_account
        create: Callable[[], Any] = {
            "queue": lambda: self.storage.queue.create(rg, account, name, storage.StorageQueue()),
            "table": lambda: self.storage.table.create(rg, account, name),
            "container": lambda: self.storage.blob_containers.create(
                rg, account, name, storage.BlobContainer()
            ),
        }[kind]
        self._call(f"creating {kind} {name}", create)

    def create_registry(self, target: Target) -> None:
        """Create the registry: Basic, admin user off, tagged."""
        name = target.registry
        if name is None:
            return
        registry = acr.Registry(
            location=target.location,
            sku=acr.Sku(name=REGISTRY_SKU),
            admin_user_enabled=False,
            tags=init_tags(target.deployment),
        )
        self._call(
            f"creating registry {name}",
            lambda: self.registries.registries.begin_create(
                target.resource_group, name, registry
            ).result(),
        )

    def create_identity(self, target: Target) -> tuple[str, str]:
        """Create the user-assigned identity, tagged; returns (principal id, client id)."""
        ref = target.identity
        made = self._call(
            f"creating identity {ref.name}",
            lambda: self.identities.user_assigned_identities.create_or_update(
                ref.resource_group,
                ref.name,
                msi.Identity(location=target.location, tags=init_tags(target.deployment)),
            ),
        )
        return str(made.principal_id), str(made.client_id)

    def role_definition(self, scope: str, role: str) -> str:
        """A built-in role's definition id, looked up by name."""
        if role not in self._roles:
            found = self._call(
                f"looking up the role {role}",
                lambda: list(
                    self.authorization.role_definitions.list(scope, filter=f"roleName eq '{role}'")
                ),
            )
            if not found:
                raise AzureError(f"the built-in role {role!r} was not found", code="RoleNotFound")
            self._roles[role] = str(found[0].id)
        return self._roles[role]

    def assign(self, grant: Grant, description: str) -> str:
        """Make a role assignment, waiting while its principal replicates.

        Returns:
            str: ``assigned`` or ``existed`` (the same assignment under another name).

        Raises:
            RoleAssignmentRefused: The user may not assign roles.
        """
        name = grant.name
        principal = grant.principal.object_id
        if name is None or principal is None:
            raise ValueError(f"{grant.describe()}: the principal is not known yet")
        params = authz.RoleAssignmentCreateParameters(
            role_definition_id=self.role_definition(grant.scope, grant.role),
            principal_id=principal,
            principal_type=grant.principal.kind,
            description=description,
        )
        waits = backoff()
        deadline = self.clock.now() + REPLICATION_TIMEOUT_S
        while True:
            try:
                self.authorization.role_assignments.create(grant.scope, name, params)
                return "assigned"
            except HttpResponseError as exc:
                code = _code(exc)
                if code == "AuthorizationFailed":
                    raise RoleAssignmentRefused(
                        str(exc.error.message if exc.error else exc)
                    ) from None
                if code == "RoleAssignmentExists":
                    return "existed"
                if code != "PrincipalNotFound" or self.clock.now() > deadline:
                    raise translate(exc, f"assigning {grant.describe()}") from None
            wait = next(waits)
            self.report(
                grant.describe(),
                f"waiting {wait:.0f} s: {grant.principal.label} is not replicated yet "
                "(PrincipalNotFound)",
            )
            self.clock.sleep(wait)

    # --- deleting ---------------------------------------------------------------------

    def unassign(self, grant: Grant) -> None:
        """Delete a role assignment (by its name)."""
        name = grant.name
        if name is None:
            return
        try:
            self.authorization.role_assignments.delete(grant.scope, name)
        except HttpResponseError as exc:
            if _code(exc) == "AuthorizationFailed":
                raise RoleAssignmentRefused(str(exc.error.message if exc.error else exc)) from None
            if exc.status_code != 404:
                raise translate(exc, f"deleting {grant.describe()}") from None

    def delete(self, resource: Resource, resource_group: str) -> None:
        """Delete one resource ``init`` made (registry, identity, storage account)."""
        what = f"deleting {label(resource)}"
        delete: Callable[[], Any] = {
            "Microsoft.ContainerRegistry/registries": lambda: (
                self.registries.registries.begin_delete(resource_group, resource.name).result()
            ),
            "Microsoft.ManagedIdentity/userAssignedIdentities": (
                lambda: self.identities.user_assigned_identities.delete(
                    resource_group, resource.name
                )
            ),
            "Microsoft.Storage/storageAccounts": lambda: self.storage.storage_accounts.delete(
                resource_group, resource.name
            ),
        }[resource.type]
        self._call(what, delete)

    def delete_group(self, name: str) -> None:
        """Delete the resource group (a long-running operation)."""
        self._call(
            f"deleting resource group {name}",
            lambda: self.resources.resource_groups.begin_delete(name).result(),
        )
