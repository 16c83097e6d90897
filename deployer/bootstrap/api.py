"""The library API behind ``deployer init`` and ``deployer destroy``: each returns data.

``init`` resolves the names (the file's, else :mod:`.names`' defaults), observes what exists,
plans the missing steps (:mod:`.plan`), asks (``confirm``), writes the names into the workload
file, then takes the steps through :mod:`.azure`. The resource group and the provider
registrations come first; then names are checked against Azure (a registry name is global)
and the rest is planned again, so a run interrupted anywhere resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from blast_client.config import StorageConfig

from deployer import defaults, pricing
from deployer.arm import default_credential, signed_in_principal
from deployer.backends.aci import translate
from deployer.bootstrap import names
from deployer.bootstrap.azure import Azure, Clock, Report, RoleAssignmentRefused
from deployer.bootstrap.names import Choice, GlobalKind, IdentityRef
from deployer.bootstrap.plan import (
    FixedCost,
    Step,
    Target,
    destroy_plan,
    fixed_costs,
    init_steps,
    label,
)
from deployer.bootstrap.roles import Grant, Principal
from deployer.defaults import Env
from deployer.errors import DeployerError, InputError, MissingAzureScopeError
from deployer.settings import NO_OVERRIDES, Overrides
from deployer.workfile import set_values
from deployer.workload import Deployment, Workload, load

DEPLOYMENT_FIELDS = ("deployment",)


@dataclass(frozen=True)
class _Base:
    """What the workload file, the flags and the environment say, before asking Azure."""

    workload: Workload
    subscription: str
    location: str
    resource_group: str
    storage_account: str | None
    registry: str | None
    registry_is_acr: bool
    server: str | None
    identity: IdentityRef
    storage: Mapping[str, tuple[str, ...]]
    user: Principal | None


def _base(file: Path, workload: Workload, overrides: Overrides, user: Principal | None) -> _Base:
    d = workload.deployment
    subscription = defaults.resolve(
        "deployment.subscription",
        overrides.subscription,
        d.subscription,
        Env.SUBSCRIPTION,
        flag="--subscription",
        discover="az account list -o table",
        error=MissingAzureScopeError,
    )
    location = defaults.resolve(
        "deployment.location",
        overrides.location,
        d.location,
        Env.LOCATION,
        flag="--location",
        discover="az account list-locations -o table",
    )
    group = overrides.resource_group or d.resource_group or os.environ.get(Env.RESOURCE_GROUP)
    resource_group = group or d.name
    server = overrides.registry or d.registry or os.environ.get(Env.REGISTRY)
    registry = names.registry_name(server) if server else None
    if d.managed_identity:
        identity = names.parse_identity(d.managed_identity)
        if identity is None or identity.subscription.lower() != subscription.lower():
            raise InputError(
                f"{file}: deployment.managed_identity is not a user-assigned identity of "
                f"subscription {subscription}: {d.managed_identity}",
                hint="remove it and `deployer init` creates one, or give the resource id "
                "`az identity list --query [].id -o tsv` shows",
            )
    else:
        identity = IdentityRef(subscription, resource_group, d.name)
    for kind, chosen in (("storage account", d.storage_account), ("registry", registry)):
        if chosen and not names.is_valid(kind, chosen):  # type: ignore[arg-type]
            raise InputError(
                f"{file}: {chosen!r} is not a valid {kind} name",
                hint=f"use {names.rule(kind)}, or remove it and `deployer init` picks one",  # type: ignore[arg-type]
            )
    blast = workload.workloads.blast
    config = StorageConfig(
        connection_string=None,
        account_name=None,
        queue=blast.queue if blast else defaults.DEFAULT_BLAST_QUEUE,
    )
    return _Base(
        workload=workload,
        subscription=subscription,
        location=location,
        resource_group=resource_group,
        storage_account=d.storage_account,
        registry=registry,
        registry_is_acr=server is None or registry is not None,
        server=server,
        identity=identity,
        storage=config.resources(),
        user=user,
    )


def _known_registry(azure: Azure, base: _Base) -> _Base:
    """``base`` with the registry ARM names for a login server that does not say its name
    (a domain name label scope's hash, the local emulator's address)."""
    if base.registry is not None or not base.server:
        return base
    name = azure.registry_named_by(base.resource_group, base.server)
    return replace(base, registry=name, registry_is_acr=True) if name else base


def _target(azure: Azure, base: _Base) -> tuple[Target, list[str]]:
    """The target, with the global names chosen (checked against Azure once the providers
    are registered)."""
    draft = Target(
        deployment=base.workload.deployment.name,
        subscription=base.subscription,
        location=base.location,
        resource_group=base.resource_group,
        storage_account=base.storage_account or "",
        registry=base.registry,
        identity=base.identity,
        storage=base.storage,
        user=base.user,
    )
    group = azure.group_tags(base.resource_group) is not None
    notes: list[str] = []

    def pick(kind: GlobalKind, namespace: str, chosen: str | None) -> str:
        registered = azure.registration(namespace) == "Registered"
        exists: Callable[[str], bool]
        if kind == "storage account":
            exists = lambda n: group and azure.storage_account_exists(draft, n)  # noqa: E731
        else:
            exists = lambda n: group and azure.registry_login_server(draft, n) is not None  # noqa: E731
        available = (lambda n: azure.is_available(kind, n)) if registered else None
        defaults_ = names.candidates(kind, draft.deployment, base.subscription, base.resource_group)
        choice: Choice = names.choose(kind, chosen, defaults_, exists, available)
        if choice.taken:
            field_ = "storage_account" if kind == "storage account" else "registry"
            free = choice.name if kind == "storage account" else names.login_server(choice.name)
            raise InputError(
                f"the {kind} name {chosen} is taken: {choice.taken}",
                hint=f"a free one is {choice.name}: set deployment.{field_}: {free} in the "
                "workload file, or remove the line and `deployer init` picks one",
                code="NameTaken",
            )
        if choice.note:
            notes.append(choice.note)
        return choice.name

    account = pick("storage account", "Microsoft.Storage", base.storage_account)
    registry = (
        pick("registry", "Microsoft.ContainerRegistry", base.registry)
        if base.registry_is_acr
        else None
    )
    return replace(draft, storage_account=account, registry=registry), notes


@dataclass(frozen=True)
class InitPlan:
    """What ``init`` is about to do, for the question it asks.

    Args:
        file (str): The workload file.
        deployment (str): The deployment.
        subscription (str): The subscription.
        location (str): Where everything goes.
        resource_group (str): The resource group.
        steps (list[str]): What it will create, register and assign.
        writes (dict[str, str]): The workload file's fields it will set.
        costs (list[FixedCost]): What the result costs a month while nothing runs.
        currency (str): Of the costs.
        prices (str): Where the prices come from and when they were read.
        notes (list[str]): What people should know.
    """

    file: str
    deployment: str
    subscription: str
    location: str
    resource_group: str
    steps: list[str]
    writes: dict[str, str]
    costs: list[FixedCost]
    currency: str
    prices: str
    notes: list[str] = field(default_factory=list)

    @property
    def monthly(self) -> float:
        """The fixed monthly cost (what is known of it)."""
        return round(sum(c.per_month or 0.0 for c in self.costs), 2)


@dataclass(frozen=True)
class InitResult:
    """What ``init`` did.

    Args:
        file (str): The workload file.
        deployment (str): The deployment.
        done (list[str]): The steps taken.
        written (dict[str, str]): The workload file's fields it set.
        notes (list[str]): What people should know.
        pending_roles (list[str]): ``az role assignment create`` lines an administrator must
            run (the user may not assign roles); empty when all were made.
        plan (InitPlan | None): The plan it followed.
    """

    file: str
    deployment: str
    done: list[str]
    written: dict[str, str]
    notes: list[str]
    pending_roles: list[str]
    plan: InitPlan | None = None


class InitIncomplete(DeployerError):
    """``init`` made everything but the role assignments the user may not make (exit 1).

    Args:
        result (InitResult): What was made, and the ``az`` lines for an administrator.
        refusal (str): ARM's message.
    """

    def __init__(self, result: InitResult, refusal: str) -> None:
        count = len(result.pending_roles)
        super().__init__(
            f"init made everything but {count} role assignments: you may not assign roles "
            "here (AuthorizationFailed)",
            hint="an administrator (Owner or User Access Administrator) runs the "
            f"`az role assignment create` lines above, then `deployer init {result.file}` "
            "checks them",
            code="AuthorizationFailed",
        )
        self.result = result
        self.refusal = refusal


def _user(credential: TokenCredential) -> Principal | None:
    try:
        found = signed_in_principal(credential)
    except ClientAuthenticationError as exc:
        raise translate(exc, "signing in") from None
    if found is None:
        return None
    oid, kind = found
    return Principal("you", oid, "ServicePrincipal" if kind == "ServicePrincipal" else "User")


def _file_values(
    workload: Workload,
    target: Target,
    identity: tuple[str, str] | None,
    login_server: str | None,
) -> dict[str, str]:
    d = workload.deployment
    wanted: dict[str, str | None] = {
        "subscription": d.subscription or target.subscription,
        "resource_group": d.resource_group or target.resource_group,
        "location": d.location or target.location,
        # ARM's login server once the registry exists: not always <name>.azurecr.io.
        "registry": (
            d.registry
            if login_server is None or (d.registry or "").lower() == login_server.lower()
            else login_server
        )
        or (names.login_server(target.registry) if target.registry else None),
        "managed_identity": d.managed_identity or target.identity.id,
        "managed_identity_client_id": identity[1] if identity else d.managed_identity_client_id,
        "storage_account": d.storage_account or target.storage_account,
    }
    current = d.model_dump()
    return {k: v for k, v in wanted.items() if v and current.get(k) != v}


def _write(file: Path, values: Mapping[str, str]) -> Workload:
    if values:
        text = file.read_text(encoding="utf-8")
        new = set_values(
            text,
            {("deployment", k): v for k, v in values.items()},
            source=str(file),
            order={DEPLOYMENT_FIELDS: list(Deployment.model_fields)},
        )
        file.write_text(new, encoding="utf-8")
    return load(file)


def _costs(target: Target) -> tuple[list[FixedCost], str, str]:
    prices = pricing.fixed_prices()
    source = f"{prices['source']} (read on {prices['read_on']})"
    return fixed_costs(target, prices), str(prices["currency"]), source


def init(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    confirm: Callable[[InitPlan], bool],
    report: Report | None = None,
    clock: Clock | None = None,
    credential: TokenCredential | None = None,
) -> InitResult:
    """Create what the workload's deployment needs and does not have yet.

    Args:
        file (Path): The workload file; the names chosen are written into it.
        overrides (Overrides): Command-line settings. Default: none.
        confirm (Callable[[InitPlan], bool]): Shown the plan; False stops before any write.
        report (Report | None): Progress per step. Default: none.
        clock (Clock | None): Time (tests wait without sleeping). Default: the real one.
        credential (TokenCredential | None): Default: :func:`deployer.arm.default_credential`.

    Raises:
        InitIncomplete: When the user may not assign roles: everything else was made; the
            error carries the result with the ``az`` lines.
        InputError: For a name that is taken, a bad setting.
        AzureError: When Azure refuses a step.
    """
    workload = load(file)
    credential = credential or default_credential()
    base = _base(file, workload, overrides, _user(credential))
    azure = Azure(base.subscription, credential=credential, report=report, clock=clock)
    base = _known_registry(azure, base)
    target, notes = _target(azure, base)
    observed = azure.observe(target)
    steps = init_steps(target, observed)
    writes = _file_values(workload, target, observed.identity, None)
    costs, currency, source = _costs(target)
    if base.user is None:
        notes.append(
            "the sign-in names no user (its token has no oid claim): give yourself AcrPush on "
            "the registry and the three storage data roles on the account"
        )
    plan = InitPlan(
        str(file),
        target.deployment,
        target.subscription,
        target.location,
        target.resource_group,
        [s.describe() for s in steps],
        writes,
        costs,
        currency,
        source,
        notes,
    )
    if not steps and not writes:
        return InitResult(str(file), target.deployment, [], {}, notes, [], plan)
    if steps and not confirm(plan):
        raise DeployerError("init cancelled: nothing was changed", code="Cancelled")
    written = dict(writes)
    workload = _write(file, writes)
    done: list[str] = []
    first = [s for s in steps if s.kind in ("resource group", "register")]
    if first:
        for step in first:
            if step.kind == "resource group":
                _step(azure, step, lambda: azure.create_group(target))
                done.append(step.describe())
        namespaces = [s.name for s in first if s.kind == "register"]
        if namespaces:
            azure.register(namespaces)
            done += [f"register {ns}" for ns in namespaces]
        # Names can be checked against Azure only now; plan the rest again.
        target, more = _target(azure, replace(base, workload=workload))
        notes += more
        observed = azure.observe(target)
        steps = init_steps(target, observed)
        again = _file_values(workload, target, observed.identity, None)
        workload = _write(file, again)
        written.update(again)
    identity = observed.identity
    pending: list[Grant] = []
    refusal = ""
    for step in steps:
        if step.kind == "identity":
            identity = _step(azure, step, lambda: azure.create_identity(target))
        elif step.kind == "role" and step.grant is not None:
            grant = step.grant
            if grant.principal.object_id is None and identity is not None:
                grant = replace(grant, principal=replace(grant.principal, object_id=identity[0]))
            if pending:
                pending.append(grant)
                continue
            try:
                outcome = _step(
                    azure,
                    step,
                    partial(azure.assign, grant, f"deployer init: {target.deployment}"),
                )
            except RoleAssignmentRefused as exc:
                refusal = exc.message
                pending.append(grant)
                azure.report(step.describe(), "refused: AuthorizationFailed")
                continue
            if outcome == "existed":
                notes.append(f"{grant.describe()} already existed under another name")
        else:
            _step(azure, step, _creator(azure, target, step))
        done.append(step.describe())
    login = azure.registry_login_server(target) if target.registry else None
    final = _file_values(workload, target, identity, login)
    _write(file, final)
    written.update(final)
    result = InitResult(
        str(file),
        target.deployment,
        done,
        written,
        notes,
        [g.az_command() for g in pending],
        plan,
    )
    if pending:
        raise InitIncomplete(result, refusal)
    return result


def _step(azure: Azure, step: Step, action: Callable[[], Any]) -> Any:
    """Run one step, reporting it before and after."""
    azure.report(step.describe(), "working")
    outcome = action()
    azure.report(step.describe(), "done")
    return outcome


def _creator(azure: Azure, target: Target, step: Step) -> Callable[[], Any]:
    if step.kind == "storage account":
        return lambda: azure.create_storage_account(target)
    if step.kind == "registry":
        return lambda: azure.create_registry(target)
    if step.kind in ("queue", "table", "container"):
        return lambda: azure.create_child(target, step.kind, step.name)
    raise ValueError(f"no action for step {step.kind}")


# --- destroy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DestroyPreview:
    """What ``destroy`` is about to delete, for the question it asks.

    Args:
        file (str): The workload file.
        deployment (str): The deployment.
        resource_group (str): The resource group.
        deletes (list[str]): What it deletes, in order.
        kept (list[str]): What stays, and why.
    """

    file: str
    deployment: str
    resource_group: str
    deletes: list[str]
    kept: list[str]


@dataclass(frozen=True)
class DestroyResult:
    """What ``destroy`` did.

    Args:
        file (str): The workload file.
        deployment (str): The deployment.
        deleted (list[str]): What it deleted.
        kept (list[str]): What stays, and why.
    """

    file: str
    deployment: str
    deleted: list[str]
    kept: list[str]


def destroy(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    confirm: Callable[[DestroyPreview], bool],
    keep_data: bool = False,
    report: Report | None = None,
    credential: TokenCredential | None = None,
) -> DestroyResult:
    """Delete what ``init`` made for the deployment (its tag), and only that.

    Args:
        file (Path): The workload file (the names ``init`` wrote into it).
        overrides (Overrides): Command-line settings. Default: none.
        confirm (Callable[[DestroyPreview], bool]): Shown what goes; False stops.
        keep_data (bool): Keep the storage account. Default: False.
        report (Report | None): Progress. Default: none.
        credential (TokenCredential | None): Default: the deployer's.

    Raises:
        AzureError: When Azure refuses a delete.
    """
    workload = load(file)
    credential = credential or default_credential()
    base = _base(file, workload, overrides, _user(credential))
    azure = Azure(base.subscription, credential=credential, report=report)
    base = _known_registry(azure, base)
    draft = Target(
        deployment=workload.deployment.name,
        subscription=base.subscription,
        location=base.location,
        resource_group=base.resource_group,
        storage_account=base.storage_account or "",
        registry=base.registry,
        identity=base.identity,
        storage=base.storage,
        user=base.user,
    )
    group_tags = azure.group_tags(base.resource_group)
    resources = azure.group_resources(base.resource_group) if group_tags is not None else []
    identity = azure.identity(draft) if group_tags is not None else None
    grants = [g for g in draft.grants(identity[0] if identity else None) if g.name is not None]
    existing = [g for g in grants if group_tags is not None and azure.assignment_exists(g)]
    plan = destroy_plan(draft, group_tags, resources, existing, keep_data=keep_data)
    deletes = [f"role assignment {g.describe()}" for g in plan.assignments]
    deletes += [label(r) for r in plan.resources]
    if plan.delete_group:
        deletes.append(f"resource group {base.resource_group}")
    preview = DestroyPreview(str(file), draft.deployment, base.resource_group, deletes, plan.kept)
    if not deletes:
        return DestroyResult(str(file), draft.deployment, [], plan.kept)
    if not confirm(preview):
        raise DeployerError("destroy cancelled: nothing was deleted", code="Cancelled")
    deleted: list[str] = []
    for grant in plan.assignments:
        what = f"role assignment {grant.describe()}"
        try:
            _step(azure, Step("delete", what), partial(azure.unassign, grant))
        except RoleAssignmentRefused:
            raise DeployerError(
                f"destroy may not delete role assignments here ({what})",
                hint="an administrator (Owner or User Access Administrator) runs "
                f"`az role assignment delete --ids {grant.scope}/providers/"
                f"Microsoft.Authorization/roleAssignments/{grant.name}`, or destroy again",
                code="AuthorizationFailed",
            ) from None
        deleted.append(what)
    for resource in plan.resources:
        what = label(resource)
        _step(azure, Step("delete", what), partial(azure.delete, resource, base.resource_group))
        deleted.append(what)
    kept = list(plan.kept)
    if plan.delete_group:
        # Look again just before: something may have arrived since (a `deployer up`).
        left = azure.group_resources(base.resource_group)
        if left:
            kept.append(
                f"resource group {base.resource_group} (it now holds {len(left)} resources)"
            )
        else:
            what = f"resource group {base.resource_group}"
            _step(azure, Step("delete", what), lambda: azure.delete_group(base.resource_group))
            deleted.append(what)
    return DestroyResult(str(file), draft.deployment, deleted, kept)
