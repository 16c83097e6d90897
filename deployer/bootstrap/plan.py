"""What ``deployer init`` and ``deployer destroy`` do, from what is needed and what exists (pure).

:func:`init_steps` compares the :class:`Target` (the names, the location, the storage
resources BLAST needs, the roles) with what :mod:`.azure` observed and returns the steps that
are missing, in the order they must run: the resource group, provider registration, the
storage account and its queues, tables and containers, the registry, the identity, then the
role assignments (last, so a user who may not assign roles still gets everything else). Each
step is idempotent, so a run that was interrupted resumes where it stopped, and a run after a
complete one has no step at all.

:func:`destroy_steps` picks, among what exists, what ``init`` made (its tag) and only that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.bootstrap.names import IdentityRef
from deployer.bootstrap.roles import Grant, Principal, Scopes, grants

PROVIDERS = (
    "Microsoft.ContainerInstance",
    "Microsoft.ContainerRegistry",
    "Microsoft.Storage",
    "Microsoft.ManagedIdentity",
)
"""The resource providers a deployment uses; a new subscription must register them."""

INIT_TAG = ("created-by", "deployer-init")
"""The tag on every resource ``init`` creates: ``destroy`` deletes only what carries it."""

REGISTRY_SKU = "Basic"
STORAGE_SKU = "Standard_LRS"
STORAGE_KIND = "StorageV2"

STORAGE_CHILD_KINDS = ("queues", "tables", "containers")
"""The storage resources BLAST needs, by kind (blast_client's ``StorageConfig.resources``)."""


def init_tags(deployment: str) -> dict[str, str]:
    """The tags of what ``init`` creates for a deployment."""
    return {INIT_TAG[0]: INIT_TAG[1], "deployment": deployment}


def made_by_init(tags: Mapping[str, str] | None, deployment: str) -> bool:
    """Whether a resource carries ``init``'s tag for this deployment."""
    tags = tags or {}
    return tags.get(INIT_TAG[0]) == INIT_TAG[1] and tags.get("deployment") == deployment


@dataclass(frozen=True)
class Target:
    """What the deployment needs.

    Args:
        deployment (str): Its name.
        subscription (str): The subscription.
        location (str): Where everything is created.
        resource_group (str): The resource group.
        storage_account (str): The storage account's name.
        registry (str | None): The ACR's name; None when the workload's registry is not an
            Azure Container Registry (nothing to create then).
        identity (IdentityRef): The user-assigned identity.
        storage (Mapping[str, tuple[str, ...]]): ``queues``, ``tables``, ``containers``:
            what ``blast-jobs init`` makes.
        user (Principal | None): The signed-in user; None when the token does not say.
    """

    deployment: str
    subscription: str
    location: str
    resource_group: str
    storage_account: str
    registry: str | None
    identity: IdentityRef
    storage: Mapping[str, tuple[str, ...]]
    user: Principal | None

    @property
    def group_id(self) -> str:
        """The resource group's id."""
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"

    def resource_id(self, kind: str, name: str) -> str:
        """A resource id in the resource group, e.g. kind ``Microsoft.Storage/storageAccounts``."""
        return f"{self.group_id}/providers/{kind}/{name}"

    @property
    def account_id(self) -> str:
        """The storage account's id."""
        return self.resource_id("Microsoft.Storage/storageAccounts", self.storage_account)

    @property
    def registry_id(self) -> str | None:
        """The registry's id."""
        if self.registry is None:
            return None
        return self.resource_id("Microsoft.ContainerRegistry/registries", self.registry)

    def grants(self, identity_object_id: str | None) -> list[Grant]:
        """The role assignments, with the identity's object id once known."""
        registry_id = self.registry_id
        scopes = Scopes(
            resource_group=self.group_id,
            registry=None
            if registry_id is None or self.registry is None
            else (registry_id, self.registry),
            storage_account=(self.account_id, self.storage_account),
        )
        identity = Principal(
            f"identity {self.identity.name}", identity_object_id, "ServicePrincipal"
        )
        return grants(scopes, identity, self.user)


@dataclass(frozen=True)
class Observed:
    """What exists (as :mod:`.azure` found it).

    Args:
        resource_group (bool): The resource group exists.
        registrations (Mapping[str, str]): Provider namespace -> registration state.
        storage_account (bool): The storage account exists in the resource group.
        storage_children (frozenset[tuple[str, str]]): ``(kind, name)`` of the queues,
            tables and containers that exist.
        registry (bool): The registry exists in the resource group.
        identity (tuple[str, str] | None): The identity's (principal id, client id) when it
            exists.
        assignments (frozenset[str]): Names of the role assignments that exist.
    """

    resource_group: bool = False
    registrations: Mapping[str, str] = field(default_factory=dict)
    storage_account: bool = False
    storage_children: frozenset[tuple[str, str]] = frozenset()
    registry: bool = False
    identity: tuple[str, str] | None = None
    assignments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Step:
    """One thing ``init`` or ``destroy`` does.

    Args:
        kind (str): ``resource group``, ``register``, ``storage account``, ``queue``,
            ``table``, ``container``, ``registry``, ``identity``, ``role``.
        name (str): What it acts on: a name, a namespace, a role.
        detail (str): For people: where, how.
        grant (Grant | None): The role assignment of a ``role`` step.
    """

    kind: str
    name: str
    detail: str = ""
    grant: Grant | None = None

    def describe(self) -> str:
        """One line for people."""
        if self.kind == "register":
            return f"register {self.name}"
        if self.kind == "role":
            return f"assign {self.detail}"
        if self.kind == "delete":
            return f"delete {self.name}"
        return f"{self.kind} {self.name}" + (f" ({self.detail})" if self.detail else "")


_CHILD_KIND = {"queues": "queue", "tables": "table", "containers": "container"}


def init_steps(target: Target, observed: Observed) -> list[Step]:
    """The steps ``init`` still has to take, in order (none when everything exists).

    Args:
        target (Target): What the deployment needs.
        observed (Observed): What exists.
    """
    steps: list[Step] = []
    if not observed.resource_group:
        steps.append(Step("resource group", target.resource_group, target.location))
    for namespace in PROVIDERS:
        if observed.registrations.get(namespace) != "Registered":
            steps.append(Step("register", namespace))
    if not observed.storage_account:
        steps.append(
            Step(
                "storage account",
                target.storage_account,
                f"{STORAGE_KIND}, {STORAGE_SKU}, HTTPS only, TLS 1.2, no anonymous blob access",
            )
        )
    for kind in STORAGE_CHILD_KINDS:
        for name in target.storage.get(kind, ()):
            if (kind, name) not in observed.storage_children:
                steps.append(Step(_CHILD_KIND[kind], name, f"in {target.storage_account}"))
    if target.registry is not None and not observed.registry:
        steps.append(Step("registry", target.registry, f"{REGISTRY_SKU}, admin user off"))
    if observed.identity is None and target.identity.resource_group == target.resource_group:
        steps.append(Step("identity", target.identity.name, "user-assigned"))
    principal = observed.identity[0] if observed.identity else None
    for grant in target.grants(principal):
        if grant.name is None or grant.name not in observed.assignments:
            steps.append(Step("role", grant.role, grant.describe(), grant))
    return steps


# --- fixed costs ------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedCost:
    """A monthly cost that does not depend on running anything.

    Args:
        what (str): E.g. ``registry labab12cd (Basic)``.
        per_month (float | None): The amount; None when it depends on use only.
        note (str): How it is billed.
    """

    what: str
    per_month: float | None
    note: str


DAYS_PER_MONTH = 30.4


def fixed_costs(target: Target, prices: Mapping[str, Any]) -> list[FixedCost]:
    """The monthly cost of what ``init`` creates, running nothing (from the price file).

    Args:
        target (Target): What the deployment needs.
        prices (Mapping[str, Any]): ``deployer/data/fixed-prices.json``.
    """
    out = []
    if target.registry is not None:
        per_day = float(prices["registry"][REGISTRY_SKU]["per_day"])
        out.append(
            FixedCost(
                f"registry {target.registry} ({REGISTRY_SKU})",
                round(per_day * DAYS_PER_MONTH, 2),
                f"{per_day} {prices['currency']} a day, {prices['registry'][REGISTRY_SKU]['note']}",
            )
        )
    per_gb = float(prices["storage"][STORAGE_SKU]["per_gb_month"])
    out.append(
        FixedCost(
            f"storage account {target.storage_account} ({STORAGE_SKU})",
            None,
            f"{per_gb} {prices['currency']} per GB stored a month, plus transactions; "
            "nothing while empty",
        )
    )
    out.append(FixedCost(f"identity {target.identity.name}", 0.0, "free"))
    return out


# --- destroy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One resource of the resource group, as ARM lists it.

    Args:
        id (str): Its id.
        name (str): Its name.
        type (str): Its type, e.g. ``Microsoft.Storage/storageAccounts``.
        tags (Mapping[str, str]): Its tags.
    """

    id: str
    name: str
    type: str
    tags: Mapping[str, str] = field(default_factory=dict)


DELETE_ORDER = (
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.Storage/storageAccounts",
)
"""The types ``init`` creates, in the order ``destroy`` deletes them."""

_LABELS = {
    "Microsoft.ContainerRegistry/registries": "registry",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "identity",
    "Microsoft.Storage/storageAccounts": "storage account",
    "Microsoft.ContainerInstance/containerGroups": "container group",
}


def label(resource: Resource) -> str:
    """For people: ``registry labab12cd``, ``container group lab-head``."""
    kind = _LABELS.get(resource.type, resource.type)
    return f"{kind} {resource.name}"


@dataclass(frozen=True)
class DestroyPlan:
    """What ``destroy`` does.

    Args:
        assignments (list[Grant]): Role assignments to delete (those ``init`` makes).
        resources (list[Resource]): Resources to delete, in order.
        delete_group (bool): Delete the resource group too (``init`` made it, and nothing
            else is left in it).
        kept (list[str]): What stays, and why, for people.
    """

    assignments: list[Grant]
    resources: list[Resource]
    delete_group: bool
    kept: list[str]


def destroy_plan(
    target: Target,
    group_tags: Mapping[str, str] | None,
    resources: list[Resource],
    existing_assignments: list[Grant],
    *,
    keep_data: bool,
) -> DestroyPlan:
    """What ``destroy`` deletes: what ``init`` made, and only that.

    Args:
        target (Target): The deployment's names.
        group_tags (Mapping[str, str] | None): The resource group's tags; None when it does
            not exist.
        resources (list[Resource]): Everything in the resource group.
        existing_assignments (list[Grant]): ``init``'s role assignments that exist.
        keep_data (bool): Keep the storage account (and the user's roles on it).
    """
    ours = [
        r for r in resources if made_by_init(r.tags, target.deployment) and r.type in DELETE_ORDER
    ]
    kept: list[str] = []
    if keep_data:
        data = [r for r in ours if r.type == "Microsoft.Storage/storageAccounts"]
        kept += [f"storage account {r.name} (--keep-data)" for r in data]
        ours = [r for r in ours if r not in data]
    ours.sort(key=lambda r: DELETE_ORDER.index(r.type))
    others = [r for r in resources if r not in ours]
    kept += [
        f"{label(r)} (not made by init)"
        for r in others
        if not made_by_init(r.tags, target.deployment)
    ]
    assignments = [
        g
        for g in existing_assignments
        if not (keep_data and g.principal.kind == "User" and g.scope == target.account_id)
    ]
    ours_group = group_tags is not None and made_by_init(group_tags, target.deployment)
    if group_tags is not None and not ours_group:
        kept.append(f"resource group {target.resource_group} (not made by init)")
    elif ours_group and others:
        kept.append(
            f"resource group {target.resource_group} (it still holds {len(others)} resources)"
        )
    return DestroyPlan(assignments, ours, ours_group and not others, kept)
