"""``Microsoft.Authorization`` (api-version 2022-04-01, azure-mgmt-authorization 4.0.0): role
assignments (:class:`RoleAssignmentsProvider`) and the built-in role definitions, looked up
by name (:class:`RoleDefinitionsProvider`). Two specs, so two providers of one namespace.

Role assignments behave as ARM's do for the cases a bootstrap meets:

* the caller needs ``Microsoft.Authorization/roleAssignments/write`` (and ``delete``):
  :attr:`RoleAssignmentsProvider.can_assign_roles` off refuses with 403
  ``AuthorizationFailed``, ARM's message naming the caller's object id and the scope;
* the principal must exist in the server's directory (a new identity replicates first):
  400 ``PrincipalNotFound`` until then;
* the role definition must exist: 400 ``RoleDefinitionDoesNotExist``;
* a second assignment of one role to one principal at one scope under another name gets 409
  ``RoleAssignmentExists``; a PUT of the same name with another principal or role gets 400
  ``RoleAssignmentUpdateNotPermitted``; the same PUT again answers 201 with the assignment;
* deleting a resource group deletes the assignments at or below it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..arm import ArmRequest, ArmResponse, ResourceProvider, arm_error
from ..arm.auth import FAKE_TENANT_ID
from ..arm.messages import utc_now_iso
from ..spec import SPECS_DIR

ROLE_ASSIGNMENTS_SPEC_NAME = "authorization-roleassignments-2022-04-01.json"
ROLE_DEFINITIONS_SPEC_NAME = "authorization-roledefinitions-2022-04-01.json"
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"

BUILTIN_ROLES: dict[str, str] = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "User Access Administrator": "18d7d88d-4e73-4bd1-8e8f-d2cd26eb5a1c",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
}
"""The built-in roles the fake knows: name -> role definition id (Azure's, the same in every
tenant)."""

_ROLE_NAME_FILTER = re.compile(r"roleName\s+eq\s+'([^']*)'", re.IGNORECASE)
_PRINCIPAL_FILTER = re.compile(r"principalId\s+eq\s+'([^']*)'", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"^/?subscriptions/([^/]+)", re.IGNORECASE)


def _scope(raw: str) -> str:
    return "/" + raw.strip("/")


def _within(scope: str, outer: str) -> bool:
    """Whether ``scope`` is ``outer`` or below it."""
    a, b = scope.lower().rstrip("/"), outer.lower().rstrip("/")
    return a == b or a.startswith(b + "/")


def role_name_of(definition_id: str) -> str | None:
    """The built-in role a role definition id names.

    :param definition_id: ``.../roleDefinitions/<guid>``.
    :return: the role's name, or ``None``.
    """
    guid = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return next((n for n, g in BUILTIN_ROLES.items() if g == guid), None)


@dataclass
class RoleAssignment:
    """One role assignment.

    :param scope: its scope (``/subscriptions/...``).
    :param name: its name (a GUID).
    :param properties: the properties sent.
    :param created_by: the caller's object id.
    :param created_on: when (ISO 8601).
    """

    scope: str
    name: str
    properties: dict[str, Any]
    created_by: str
    created_on: str

    @property
    def principal_id(self) -> str:
        """The principal it grants the role to."""
        return str(self.properties["principalId"]).lower()

    @property
    def role(self) -> str:
        """The role definition's GUID (lower case)."""
        return str(self.properties["roleDefinitionId"]).rstrip("/").rsplit("/", 1)[-1].lower()

    def render(self) -> dict[str, Any]:
        """The assignment as ARM returns it."""
        return {
            "id": f"{self.scope}/providers/{ASSIGNMENT_TYPE}/{self.name}",
            "name": self.name,
            "type": ASSIGNMENT_TYPE,
            "properties": {
                "principalType": "User",
                **self.properties,
                "scope": self.scope,
                "createdOn": self.created_on,
                "updatedOn": self.created_on,
                "createdBy": self.created_by,
                "updatedBy": self.created_by,
            },
        }


class RoleAssignmentsProvider(ResourceProvider):
    """Role assignments. Knobs are settable while running.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.Authorization"
    spec_name: ClassVar[str] = ROLE_ASSIGNMENTS_SPEC_NAME

    def __init__(self, spec_file: Path = SPECS_DIR / ROLE_ASSIGNMENTS_SPEC_NAME) -> None:
        super().__init__(spec_file)
        self.can_assign_roles = True
        """The signed-in caller holds ``Microsoft.Authorization/roleAssignments/write``
        (Owner, User Access Administrator); off: 403 ``AuthorizationFailed``."""
        self.assignments: dict[tuple[str, str], RoleAssignment] = {}

    def reset(self) -> None:
        """Forget every assignment (knobs are kept)."""
        self.assignments.clear()

    def delete_resource_group(self, subscription_id: str, resource_group: str) -> None:
        """Delete the assignments at or below a deleted group."""
        group = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        for key in [k for k, a in self.assignments.items() if _within(a.scope, group)]:
            del self.assignments[key]

    def for_principal(self, principal_id: str) -> list[RoleAssignment]:
        """A principal's assignments (for test assertions).

        :param principal_id: its object id.
        :return: the assignments.
        """
        return [a for a in self.assignments.values() if a.principal_id == principal_id.lower()]

    def _refused(self, request: ArmRequest, action: str, scope: str) -> ArmResponse | None:
        if self.can_assign_roles:
            return None
        return arm_error(
            403,
            "AuthorizationFailed",
            f"The client '{request.caller}' with object id '{request.caller}' does not have "
            f"authorization to perform action 'Microsoft.Authorization/roleAssignments/{action}' "
            f"over scope '{scope}/providers/Microsoft.Authorization/roleAssignments/"
            f"{request.path_params.get('roleAssignmentName', '')}' or the scope is invalid. If "
            "access was recently granted, please refresh your credentials.",
        )

    def op_RoleAssignments_Create(self, request: ArmRequest) -> ArmResponse:
        """PUT a role assignment."""
        scope = _scope(request.path_params["scope"])
        name = request.path_params["roleAssignmentName"]
        refused = self._refused(request, "write", scope)
        if refused is not None:
            return refused
        props = dict(request.body["properties"])
        if role_name_of(str(props["roleDefinitionId"])) is None:
            return arm_error(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{props['roleDefinitionId']}' does not "
                "exist.",
            )
        principal = str(props["principalId"])
        if self.attached().directory.find(principal) is None:
            return arm_error(
                400,
                "PrincipalNotFound",
                f"Principal {principal.replace('-', '')} does not exist in the directory "
                f"{FAKE_TENANT_ID}. Check that you have the correct principal ID. If you are "
                "creating this principal and then immediately assigning a role, this error "
                "might be related to a replication delay. In this case, set the role assignment "
                "principalType property to a value, such as ServicePrincipal, User, or Group. "
                "See https://aka.ms/docs-principaltype",
            )
        new = RoleAssignment(scope, name, props, request.caller, utc_now_iso())
        existing = self.assignments.get((scope.lower(), name.lower()))
        if existing is not None:
            if (existing.principal_id, existing.role) != (new.principal_id, new.role):
                return arm_error(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            return ArmResponse(201, existing.render())
        for other in self.assignments.values():
            same = (other.principal_id, other.role, other.scope.lower())
            if same == (new.principal_id, new.role, scope.lower()):
                return arm_error(409, "RoleAssignmentExists", "The role assignment already exists.")
        self.assignments[(scope.lower(), name.lower())] = new
        return ArmResponse(201, new.render())

    def op_RoleAssignments_Get(self, request: ArmRequest) -> ArmResponse:
        """GET a role assignment, or 404 ``RoleAssignmentNotFound``."""
        scope = _scope(request.path_params["scope"])
        name = request.path_params["roleAssignmentName"]
        found = self.assignments.get((scope.lower(), name.lower()))
        if found is None:
            return arm_error(
                404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
            )
        return ArmResponse(200, found.render())

    def op_RoleAssignments_Delete(self, request: ArmRequest) -> ArmResponse:
        """DELETE a role assignment: 200 with it, or 204 when there was none."""
        scope = _scope(request.path_params["scope"])
        refused = self._refused(request, "delete", scope)
        if refused is not None:
            return refused
        found = self.assignments.pop(
            (scope.lower(), request.path_params["roleAssignmentName"].lower()), None
        )
        return ArmResponse(204) if found is None else ArmResponse(200, found.render())

    def _list(self, request: ArmRequest, scope: str) -> ArmResponse:
        wanted = _PRINCIPAL_FILTER.search(request.query.get("$filter", ""))
        found = [
            a.render()
            for a in sorted(self.assignments.values(), key=lambda a: (a.scope, a.name))
            if (_within(a.scope, scope) or _within(scope, a.scope))
            and (wanted is None or a.principal_id == wanted[1].lower())
        ]
        return ArmResponse(200, {"value": found})

    def op_RoleAssignments_ListForScope(self, request: ArmRequest) -> ArmResponse:
        """The assignments at, above or below a scope (``principalId eq`` filter honoured)."""
        return self._list(request, _scope(request.path_params["scope"]))

    def op_RoleAssignments_ListForResourceGroup(self, request: ArmRequest) -> ArmResponse:
        """The assignments at, above or below a resource group."""
        p = request.path_params
        return self._list(
            request, f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        )

    def op_RoleAssignments_ListForSubscription(self, request: ArmRequest) -> ArmResponse:
        """The assignments of the subscription."""
        return self._list(request, f"/subscriptions/{request.path_params['subscriptionId']}")


class RoleDefinitionsProvider(ResourceProvider):
    """The built-in role definitions (:data:`BUILTIN_ROLES`), listed and looked up by name.

    :param spec_file: the REST spec to serve.
    """

    namespace: ClassVar[str] = "Microsoft.Authorization"
    spec_name: ClassVar[str] = ROLE_DEFINITIONS_SPEC_NAME

    def __init__(self, spec_file: Path = SPECS_DIR / ROLE_DEFINITIONS_SPEC_NAME) -> None:
        super().__init__(spec_file)

    @staticmethod
    def render(scope: str, name: str) -> dict[str, Any]:
        """A built-in role definition as ARM returns it under a scope.

        :param scope: the scope it was asked at.
        :param name: the role's name.
        :return: its JSON.
        """
        sub = _SUBSCRIPTION.match(scope.lstrip("/"))
        prefix = f"/subscriptions/{sub[1]}" if sub else ""
        guid = BUILTIN_ROLES[name]
        return {
            "id": f"{prefix}/providers/{DEFINITION_TYPE}/{guid}",
            "name": guid,
            "type": DEFINITION_TYPE,
            "properties": {
                "roleName": name,
                "description": f"The built-in role {name}.",
                "type": "BuiltInRole",
                "permissions": [],
                "assignableScopes": ["/"],
            },
        }

    def op_RoleDefinitions_List(self, request: ArmRequest) -> ArmResponse:
        """The built-in roles; ``$filter=roleName eq '<name>'`` selects one."""
        scope = _scope(request.path_params["scope"])
        wanted = _ROLE_NAME_FILTER.search(request.query.get("$filter", ""))
        names = [n for n in BUILTIN_ROLES if wanted is None or n.lower() == wanted[1].lower()]
        return ArmResponse(200, {"value": [self.render(scope, n) for n in names]})

    def op_RoleDefinitions_Get(self, request: ArmRequest) -> ArmResponse:
        """One built-in role by its id, or 404 ``RoleDefinitionDoesNotExist``."""
        scope = _scope(request.path_params["scope"])
        guid = request.path_params["roleDefinitionId"]
        name = role_name_of(guid)
        if name is None:
            return arm_error(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{guid}' does not exist.",
            )
        return ArmResponse(200, self.render(scope, name))
