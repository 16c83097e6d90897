"""The role assignments a deployment needs, named so that re-runs find them (pure).

The deployment's managed identity pulls the images (AcrPull), reads and writes the BLAST
queue, table and blobs (the three storage data roles) and, as the janitor, deletes the
deployment's container groups (Contributor on the resource group). The signed-in user pushes
images (``deployer build``: AcrPush) and submits and reads BLAST jobs with their own Entra ID
credential (``deployer run``, ``blast-jobs``: the three storage data roles; being Owner gives
no data access).

Each assignment's name is a UUID derived from its scope, principal and role, so a second
``init`` asks for the same names and finds them.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass
from typing import Literal

STORAGE_DATA_ROLES = (
    "Storage Blob Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
)
"""What the BLAST service and its users need on the storage account."""

PrincipalType = Literal["User", "ServicePrincipal"]
_NAMESPACE = uuid.UUID("5f0b8a0e-6a3c-4c59-9d0e-6d2f2f1c1a11")
"""Namespace of the assignment names (any fixed UUID: it only has to stay the same)."""


@dataclass(frozen=True)
class Principal:
    """Who gets roles.

    Args:
        label (str): For people: ``identity <name>`` or ``you``.
        object_id (str | None): Its object id; None while unknown (an identity not yet
            created).
        kind (PrincipalType): ``User`` or ``ServicePrincipal`` (what a role assignment's
            ``principalType`` says).
    """

    label: str
    object_id: str | None
    kind: PrincipalType


@dataclass(frozen=True)
class Grant:
    """One role assignment.

    Args:
        principal (Principal): Who.
        role (str): The built-in role's name, e.g. ``AcrPull``.
        scope (str): The resource id it applies to.
        scope_label (str): For people, e.g. ``registry myacr``.
    """

    principal: Principal
    role: str
    scope: str
    scope_label: str

    @property
    def name(self) -> str | None:
        """The assignment's name: a UUID of scope, principal and role (None while the
        principal is unknown)."""
        if self.principal.object_id is None:
            return None
        key = f"{self.scope.lower()}|{self.principal.object_id.lower()}|{self.role}"
        return str(uuid.uuid5(_NAMESPACE, key))

    def describe(self) -> str:
        """E.g. ``AcrPull for identity lab on registry labab12cd``."""
        return f"{self.role} for {self.principal.label} on {self.scope_label}"

    def az_command(self) -> str:
        """The ``az`` command an administrator runs to make this assignment."""
        who = self.principal.object_id or "<object id of " + self.principal.label + ">"
        return shlex.join(
            [
                "az",
                "role",
                "assignment",
                "create",
                "--assignee-object-id",
                who,
                "--assignee-principal-type",
                self.principal.kind,
                "--role",
                self.role,
                "--scope",
                self.scope,
            ]
        )


@dataclass(frozen=True)
class Scopes:
    """The resource ids the roles apply to.

    Args:
        resource_group (str): The resource group's id.
        registry (tuple[str, str] | None): The registry's id and name; None when the
            registry is not an Azure Container Registry.
        storage_account (tuple[str, str]): The storage account's id and name.
    """

    resource_group: str
    registry: tuple[str, str] | None
    storage_account: tuple[str, str]


def grants(scopes: Scopes, identity: Principal, user: Principal | None) -> list[Grant]:
    """Every role assignment the deployment needs.

    Args:
        scopes (Scopes): Where.
        identity (Principal): The deployment's managed identity.
        user (Principal | None): The signed-in user; None when unknown (then only the
            identity's are returned).
    """
    account_id, account = scopes.storage_account
    on_account = f"storage account {account}"
    out: list[Grant] = []
    if scopes.registry is not None:
        out.append(Grant(identity, "AcrPull", scopes.registry[0], f"registry {scopes.registry[1]}"))
    out += [Grant(identity, role, account_id, on_account) for role in STORAGE_DATA_ROLES]
    out.append(Grant(identity, "Contributor", scopes.resource_group, "the resource group"))
    if user is not None:
        if scopes.registry is not None:
            out.append(Grant(user, "AcrPush", scopes.registry[0], f"registry {scopes.registry[1]}"))
        out += [Grant(user, role, account_id, on_account) for role in STORAGE_DATA_ROLES]
    return out
