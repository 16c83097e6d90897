"""The library API behind every CLI command: each function returns data.

I/O happens here and in the backend: reading the workload file, the secrets
state file, TLS files, and talking to Azure. Planning and sizing stay pure.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer import contract, defaults, deployment_secrets, pricing, sizing
from deployer.autoscale import plan_notes
from deployer.backends.base import Backend, ObservedGroup
from deployer.cluster import Cluster, Outcome, Progress, raise_for_failures
from deployer.dbsizes import resolve_sizes
from deployer.defaults import Env
from deployer.deployment_secrets import Secret
from deployer.errors import (
    AzureError,
    DeployerError,
    InputError,
    MissingAzureScopeError,
)
from deployer.imagerefs import deploy_settings, group_images, missing_images, require_images
from deployer.plan import (
    LABEL_SUFFIX_UNKNOWN,
    Action,
    Change,
    GroupSpec,
    Plan,
    build,
    group_names,
    mpi_notes,
    mpi_worlds,
    signed_in_links,
)
from deployer.plan.databases import (
    DatabaseSize,
    require_known,
    require_unsharded,
    worker_sizing,
)
from deployer.plan.janitor import deployment_janitor, ending_notes
from deployer.plan.tuning import RunQuery, tune_query
from deployer.scope import BackendFactory, aci_backend, janitor_arm_access, scope_settings
from deployer.settings import NO_OVERRIDES, Overrides, Settings
from deployer.workfile import set_values
from deployer.workload import Tls, Workload, load, parse


def _cluster(backend: Backend, progress: Progress | None) -> Cluster:
    return Cluster(
        backend,
        progress=progress,
        poll_interval=defaults.env_float(Env.POLL_INTERVAL, defaults.DEFAULT_POLL_INTERVAL_S),
        ready_timeout=defaults.env_float(Env.READY_TIMEOUT, defaults.DEFAULT_READY_TIMEOUT_S),
    )


def _tls(workload: Workload, base: Path) -> tuple[Secret, Secret] | None:
    ipp = workload.workloads.ipyparallel
    return _read_tls(ipp.tls if ipp else None, base, "notebook", "ipyparallel.tls")


def _web_tls(workload: Workload, base: Path) -> tuple[Secret, Secret] | None:
    blast = workload.workloads.blast
    page = blast.web_page if blast else None
    return _read_tls(page.tls if page else None, base, "BLAST web page", "blast.web.tls")


def _read_tls(tls: Tls | None, base: Path, what: str, where: str) -> tuple[Secret, Secret] | None:
    if not tls or tls.mode != "provided" or not tls.cert_file or not tls.key_file:
        return None
    try:
        cert = (base / tls.cert_file).read_text(encoding="utf-8")
        key = (base / tls.key_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read the {what} TLS file {exc.filename}: {exc.strerror}",
            hint=f"workloads.{where}.cert_file and key_file are relative to the workload file",
        ) from None
    return Secret(cert), Secret(key)


# --- plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    """One group of a plan, for display."""

    name: str
    workload: str
    kind: str
    containers: list[str]
    images: list[str]
    vcpu: str
    memory_gb: str
    ports: list[int]
    ip: str
    priority: str
    cost_per_hour_regular: float
    cost_per_hour_spot: float | None
    action: str
    reasons: list[str]
    cost_per_hour: float
    mpi_worlds: dict[str, int] = field(default_factory=dict)
    """MPI world size per engines container (empty without ``mpi: true``)."""


@dataclass(frozen=True)
class ImageRow:
    """One exact image reference a plan deploys, and the groups whose containers run it."""

    ref: str
    groups: list[str]
    found: bool | None = None
    """Whether the registry holds it; None when the plan did not ask (offline)."""


def image_rows(groups: list[GroupRow], missing: list[str] | None = None) -> list[ImageRow]:
    """Each distinct image of ``groups`` with the groups that run it, by reference (pure).

    Args:
        groups (list[GroupRow]): The plan's rows.
        missing (list[str] | None): The references the registry lacks; None: not checked.
    """
    users: dict[str, list[str]] = {}
    for g in groups:
        for ref in g.images:
            users.setdefault(ref, []).append(g.name)
    return [
        ImageRow(ref, names, None if missing is None else ref not in missing)
        for ref, names in sorted(users.items())
    ]


@dataclass(frozen=True)
class PlanResult:
    """What ``deployer plan`` shows."""

    deployment: str
    location: str
    groups: list[GroupRow]
    deletes: list[str]
    vcpu: str
    memory_gb: str
    cost_per_hour: float
    cost_per_hour_regular: float
    cost_per_hour_spot: float
    currency: str
    price_source: str
    price_read_on: str | None
    notes: list[str] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    protections: list[str] = field(default_factory=lambda: list(contract.ACI_PROTECTIONS))
    """What ACI itself provides in place of compose's hardening (capabilities etc.)."""
    databases: list[DatabaseSize] = field(default_factory=list)
    """Each BLAST database's bytes-to-cache and where it came from."""
    images: list[ImageRow] = field(default_factory=list)
    """The exact reference of every container's image, with the groups that run it."""
    searches: list[str] = field(default_factory=list)
    """How each BLAST database is searched: whole or in shards, standard or large groups, why."""
    tuning: str | None = None
    """With ``--queries``: the workers, threads and batch length ``deployer run`` would choose
    for them, and why (:mod:`deployer.plan.tuning`)."""

    @property
    def counts(self) -> dict[str, int]:
        """Number of groups per action."""
        out: dict[str, int] = {}
        for g in self.groups:
            out[g.action] = out.get(g.action, 0) + 1
        if self.deletes:
            out["delete"] = len(self.deletes)
        return out


def _ip_text(spec: GroupSpec, plan: Plan) -> str:
    return spec.ip.lower() if spec.ip else "none"


def plan_result(
    plan: Plan,
    changes: list[Change],
    prices: pricing.PriceSheet,
    notes: list[str],
    databases: tuple[DatabaseSize, ...] = (),
    missing_images: list[str] | None = None,
) -> PlanResult:
    """What ``deployer plan`` shows for ``plan``: rows, totals and costs per hour (pure).

    Args:
        plan (Plan): The desired groups.
        changes (list[Change]): What ``up`` would do to each.
        prices (pricing.PriceSheet): The price sheet of the region.
        notes (list[str]): Notes to print under the table.
        databases (tuple[DatabaseSize, ...]): The BLAST databases' sizes and sources.
        missing_images (list[str] | None): The references the registry lacks; None when
            the registry was not asked.
    """
    by_name = {c.name: c for c in changes}
    rows = []
    regular = spot = 0.0
    for spec in plan.groups:
        change = by_name.get(spec.name, Change(spec.name, Action.CREATE, spec))
        # Only BLAST worker groups may run as Spot; the others have one price.
        can_spot = spec.workload == "blast" and spec.kind == "workers"
        at_regular = prices.per_hour(spec.resources)
        at_spot = prices.per_hour(spec.resources, "Spot") if can_spot else None
        regular += at_regular
        spot += at_regular if at_spot is None else at_spot
        rows.append(
            GroupRow(
                name=spec.name,
                workload=spec.workload,
                kind=spec.kind,
                containers=[c.name for c in spec.containers],
                images=sorted({c.image for c in spec.containers}),
                vcpu=sizing.fmt(spec.resources.cpu),
                memory_gb=sizing.fmt(spec.resources.memory),
                ports=list(spec.ports),
                ip=_ip_text(spec, plan),
                priority=spec.priority,
                cost_per_hour_regular=round(at_regular, 4),
                cost_per_hour_spot=None if at_spot is None else round(at_spot, 4),
                action=change.action.value,
                reasons=list(change.reasons),
                cost_per_hour=round(prices.per_hour(spec.resources, spec.priority), 4),
                mpi_worlds=mpi_worlds(spec),
            )
        )
    notes = [*notes, *mpi_notes(plan)]
    if prices.region_note:
        notes = [*notes, prices.region_note]
    if prices.spot_note and any(r.cost_per_hour_spot is not None for r in rows):
        notes = [*notes, prices.spot_note]
    return PlanResult(
        deployment=plan.deployment,
        location=plan.location,
        groups=rows,
        deletes=[c.name for c in changes if c.action is Action.DELETE],
        vcpu=sizing.fmt(plan.resources.cpu),
        memory_gb=sizing.fmt(plan.resources.memory),
        cost_per_hour=round(sum(prices.per_hour(g.resources, g.priority) for g in plan.groups), 4),
        currency=prices.currency,
        price_source=prices.source,
        price_read_on=prices.read_on,
        notes=notes,
        endpoints=dict(plan.endpoints),
        cost_per_hour_regular=round(regular, 4),
        cost_per_hour_spot=round(spot, 4),
        databases=list(databases),
        images=image_rows(rows, missing_images),
    )


@dataclass
class _Prepared:
    workload: Workload
    settings: Settings
    secrets: deployment_secrets.DeploymentSecrets
    tls: tuple[Secret, Secret] | None
    web_tls: tuple[Secret, Secret] | None = None
    databases: tuple[DatabaseSize, ...] = ()

    def plan(self, head_private_ip: str | None = None) -> Plan:
        """Build the plan; in subnet mode pass the head's private IP once known.

        With ``deployment.ttl`` or ``idle_shutdown`` the plan holds the deployment janitor.
        """
        access = janitor_arm_access()
        return deployment_janitor(
            build(
                self.workload,
                self.settings,
                self.secrets,
                head_private_ip=head_private_ip,
                notebook_tls=self.tls,
                web_tls=self.web_tls,
            ),
            self.workload,
            self.settings,
            self.secrets,
            arm_endpoint=access.endpoint,
            access_token=access.token,
            interval=defaults.env_float(Env.JANITOR_INTERVAL, defaults.JANITOR_INTERVAL_S),
        )


def _prepare(
    file: Path,
    workload: Workload,
    overrides: Overrides,
    *,
    need_azure: bool,
    persist: bool,
    read_storage: bool = True,
) -> _Prepared:
    """Resolve the settings, the secrets, the TLS files and the databases' sizes (the
    manifests in storage for those the file does not size, unless ``read_storage`` is off)."""
    settings = deploy_settings(workload, overrides, need_azure=need_azure)
    secs = deployment_secrets.load_or_generate(settings.deployment, persist=persist)
    workload, sizes = resolve_sizes(workload, settings, read=read_storage)
    return _Prepared(
        workload,
        settings,
        secs,
        _tls(workload, file.parent),
        _web_tls(workload, file.parent),
        sizes,
    )


def _head_ip(settings: Settings, observed: dict[str, ObservedGroup]) -> str | None:
    """The head's private IP, which engines pin in subnet mode; None otherwise."""
    if not settings.subnet_id:
        return None
    head = observed.get(f"{settings.deployment}-head")
    return head.ip if head else None


def plan(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    offline: bool = False,
    prices_file: Path | None = None,
    backend_factory: BackendFactory = aci_backend,
    run_query: RunQuery | None = None,
) -> PlanResult:
    """Size the workload and compare it with what exists.

    Args:
        file (Path): The workload file.
        overrides (Overrides): Command-line settings. Default: none.
        offline (bool): Do not ask Azure what exists; every group shows as create.
            Default: False (compare when subscription and resource group are set).
        prices_file (Path | None): Price file override (``--prices``). Default: None.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.
        run_query (RunQuery | None): Queries of a run to show the tuning of (``--queries``).

    Raises:
        InputError: For ``run_query`` on a workload without BLAST, an unknown program or
            database, or queries that cannot be read.
    """
    workload = load(file)
    if run_query is not None:
        tune_query(workload, run_query)  # bad queries, program or database: before Azure
    notes: list[str] = []
    prep: _Prepared | None = None
    read_storage = not offline
    if not offline:
        try:
            prep = _prepare(file, workload, overrides, need_azure=True, persist=False)
        except MissingAzureScopeError as exc:
            notes.append(f"not compared with Azure: {exc.message} ({exc.hint})")
            offline = True
    if prep is None:
        prep = _prepare(
            file, workload, overrides, need_azure=False, persist=False, read_storage=read_storage
        )
    notes += plan_notes(prep.workload, prep.settings.location, bool(prep.settings.subnet_id))
    if offline:
        desired = prep.plan()
        changes = [Change(g.name, Action.CREATE, g) for g in desired.groups]
    else:
        cluster = _cluster(backend_factory(prep.settings), None)
        observed = cluster.observe(prep.settings.deployment)
        desired = prep.plan(_head_ip(prep.settings, observed))
        changes = cluster.changes(desired, observed)
    if any(LABEL_SUFFIX_UNKNOWN in url for _, url in desired.endpoints):
        notes.append(
            f"DNS labels end in a hash of the subscription and resource group "
            f"({LABEL_SUFFIX_UNKNOWN} above), so no two deployments share one; set both to see "
            "it, or give the workload's dns_label"
        )
    missing: list[str] | None = None
    refs = group_images(desired.groups)
    if not prep.settings.images and not prep.settings.image_tag_pinned:
        notes.append(
            f"no `deployer build` is recorded for registry {prep.settings.registry} on this "
            f"machine, so the images are tagged {prep.settings.image_tag}; `deployer build "
            f"{file}` builds, pushes and records them"
        )
    if offline:
        notes.append(f"did not check that registry {prep.settings.registry} holds the images")
    else:
        try:
            missing = missing_images(refs, prep.settings)
        except DeployerError as exc:
            notes.append(f"could not check the images: {exc.message}")
        notes += [
            f"image {ref} is not in registry {prep.settings.registry}: `up` refuses until "
            f"`deployer build {file}` pushes it"
            for ref in missing or []
        ]
    prices = pricing.load(prep.settings.location, prices_file, workload.deployment.prices)
    result = plan_result(
        desired,
        changes,
        prices,
        [*notes, *ending_notes(workload, prep.settings)],
        prep.databases,
        missing,
    )
    if prep.workload.workloads.blast is None:
        return result
    sized = worker_sizing(prep.workload)
    blast = prep.workload.workloads.blast
    workers = blast.autoscale.max_workers if blast.autoscale else blast.workers
    searches = [
        line
        for c in sized.choices
        for line in (
            sizing.describe_choice(c, sized.worker),
            *([sizing.describe_pinning(workers, c.shards)] if c.shards > 1 else []),
        )
    ]
    tuning = tune_query(prep.workload, run_query).describe() if run_query else None
    return dataclasses.replace(result, searches=searches, tuning=tuning)


# --- up ------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupOutcome:
    """What ``up`` did to one group."""

    name: str
    action: str
    ready: bool
    ip: str | None


@dataclass(frozen=True)
class UpResult:
    """What ``deployer up`` reports."""

    deployment: str
    groups: list[GroupOutcome]
    endpoints: dict[str, str]
    secrets_file: str
    counts: dict[str, int]


def _apply(cluster: Cluster, changes: list[Change]) -> list[Outcome]:
    outcomes = cluster.apply(changes)
    raise_for_failures(outcomes, "come up")
    return outcomes


def up(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    progress: Progress | None = None,
    backend_factory: BackendFactory = aci_backend,
    workload: Workload | None = None,
) -> UpResult:
    """Create or update every group concurrently and wait until all are ready.

    Checks the quota first; sends no write for unchanged groups; recreates groups
    whose cpu, memory or ports changed. In subnet mode the head comes first,
    because engines need its private IP.

    Args:
        file (Path): The workload file.
        overrides (Overrides): Command-line settings. Default: none.
        progress (Progress | None): Progress sink. Default: none.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.
        workload (Workload | None): Use this instead of reading ``file`` (``scale``).

    Raises:
        QuotaError: Before any write, when the plan does not fit the quota.
        AzureError: When a group fails; the others still complete.
    """
    prep = _prepare(file, workload or load(file), overrides, need_azure=True, persist=True)
    require_known(prep.databases, str(file))
    require_unsharded(prep.workload)
    cluster = _cluster(backend_factory(prep.settings), progress)
    observed = cluster.observe(prep.settings.deployment)
    desired = prep.plan(_head_ip(prep.settings, observed))
    changes = cluster.changes(desired, observed)
    require_images(group_images(desired.groups), prep.settings, str(file))
    cluster.check_quota(changes, observed, prep.settings.location)
    first = [c for c in changes if not (c.spec and c.spec.after_head)]
    later = [c for c in changes if c.spec and c.spec.after_head]
    head_changed = any(
        c.spec and c.spec.kind == "head" and c.action in (Action.CREATE, Action.RECREATE)
        for c in changes
    )
    if later and head_changed:
        # Engines pin the head's private IP; it exists only once the head does.
        outcomes = _apply(cluster, first)
        head = next(o for o in outcomes if o.observed and o.name.endswith("-head"))
        desired = prep.plan(head.observed.ip if head.observed else None)
        again = cluster.changes(desired, cluster.observe(prep.settings.deployment))
        outcomes += _apply(cluster, [c for c in again if c.spec and c.spec.after_head])
    else:
        outcomes = _apply(cluster, changes)
    endpoints = dict(desired.endpoints)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action.value] = counts.get(o.action.value, 0) + 1
    return UpResult(
        deployment=prep.settings.deployment,
        groups=[
            GroupOutcome(
                o.name,
                o.action.value,
                bool(o.observed and o.observed.ready),
                o.observed.ip if o.observed else None,
            )
            for o in outcomes
        ],
        endpoints=endpoints,
        secrets_file=str(deployment_secrets.path_for(prep.settings.deployment)),
        counts=counts,
    )


def access_links(deployment: str, endpoints: dict[str, str]) -> dict[str, str]:
    """The front doors of a deployment this machine brought up, with their access token.

    Args:
        deployment (str): The deployment's name (its secrets file holds the token).
        endpoints (dict[str, str]): Endpoint name -> URL, as ``up`` or ``plan`` report them.
    """
    token = deployment_secrets.load_or_generate(deployment, persist=False).notebook_token
    return signed_in_links(endpoints, token)


# --- url ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlResult:
    """What ``deployer url`` prints: each front door's URL with the access token."""

    deployment: str
    urls: dict[str, str]


def urls(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
) -> UrlResult:
    """The notebook's and the BLAST page's URLs, signed in, of a deployment that is up.

    The token comes from this machine's secrets file of the deployment (written by ``up``);
    the addresses are those ``up`` gave the groups (their DNS labels, or in subnet mode the
    head's private IP, read from Azure).

    Args:
        file (Path): The workload file.
        overrides (Overrides): Command-line settings. Default: none.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.

    Raises:
        InputError: The workload has no front door, or this machine has no token for it.
        AzureError: The deployment has no group in Azure (it is not up).
    """
    workload = load(file)
    name = workload.deployment.name
    ipp, blast = workload.workloads.ipyparallel, workload.workloads.blast
    if not ((ipp and ipp.notebook) or (blast and blast.web_page)):
        raise InputError(
            f"{file} has no notebook and no BLAST web page to open",
            hint="set workloads.ipyparallel.notebook: true or workloads.blast.web: true",
            code="NoFrontDoor",
        )
    secrets_file = deployment_secrets.path_for(name)
    if not secrets_file.exists():
        raise InputError(
            f"no access token of deployment {name} on this machine ({secrets_file})",
            hint="run `deployer url` where `deployer up` ran, or copy that file here",
            code="NoSecrets",
        )
    prep = _prepare(file, workload, overrides, need_azure=True, persist=False, read_storage=False)
    observed = _cluster(backend_factory(prep.settings), None).observe(name)
    if not observed:
        raise AzureError(
            f"deployment {name} is not up: no container group of it in resource group "
            f"{prep.settings.resource_group}",
            hint=f"`deployer up {file}` brings it up",
            code="NotDeployed",
        )
    desired = prep.plan(_head_ip(prep.settings, observed))
    links = signed_in_links(dict(desired.endpoints), prep.secrets.notebook_token)
    return UrlResult(name, links)


# --- status ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerRow:
    """One container's state."""

    name: str
    state: str | None
    ready: bool
    restarts: int
    detail: str | None


@dataclass(frozen=True)
class StatusGroup:
    """One group's state.

    ``state`` is what ``az container show`` reports: the instance view's state
    (``Running``, ``Succeeded``, ``Failed``, ``Stopped``...), else the provisioning state
    while there is no instance view. ``provisioning_state`` says only whether ARM finished
    creating the group: ``Succeeded`` for a group whose containers run.
    """

    name: str
    workload: str | None
    state: str | None
    provisioning_state: str | None
    ready: bool
    ip: str | None
    fqdn: str | None
    containers: list[ContainerRow]


@dataclass(frozen=True)
class StatusResult:
    """What ``deployer status`` shows."""

    deployment: str
    groups: list[StatusGroup]
    missing: list[str]


def status(
    file: Path | None,
    overrides: Overrides = NO_OVERRIDES,
    *,
    deployment: str | None = None,
    backend_factory: BackendFactory = aci_backend,
) -> StatusResult:
    """Report every group of the deployment and its containers' states.

    Reads no secrets: the planned group names come from sizing alone (and, for databases
    the file does not size, from their manifests in storage).

    Args:
        file (Path | None): The workload file; it names the deployment and lets
            status list planned groups that are missing.
        overrides (Overrides): Command-line settings. Default: none.
        deployment (str | None): Deployment name when no file is given.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.
    """
    workload = load(file) if file is not None else None
    settings = scope_settings(workload, deployment, overrides)
    observed = _cluster(backend_factory(settings), None).observe(settings.deployment)
    missing: list[str] = []
    if workload is not None:
        # Worker groups are named by their count, which the databases' sizes decide.
        storage = replace(settings, storage_account=workload.deployment.storage_account)
        sized, _ = resolve_sizes(workload, storage)
        missing = [n for n in group_names(sized, settings.deployment) if n not in observed]
    groups = [
        StatusGroup(
            name=g.name,
            workload=g.tags.get("workload"),
            state=g.state or g.provisioning_state,
            provisioning_state=g.provisioning_state,
            ready=g.ready,
            ip=g.ip,
            fqdn=g.fqdn,
            containers=[
                ContainerRow(c.name, c.state, c.ready, c.restarts, c.detail) for c in g.containers
            ],
        )
        for g in sorted(observed.values(), key=lambda g: g.name)
    ]
    return StatusResult(settings.deployment, groups, missing)


# --- logs ------------------------------------------------------------------------


def logs(
    group: str,
    container: str | None,
    overrides: Overrides = NO_OVERRIDES,
    *,
    file: Path | None = None,
    tail: int | None = None,
    follow: bool = False,
    backend_factory: BackendFactory = aci_backend,
) -> Iterator[str]:
    """Yield a container's log text; with ``follow``, keep yielding new text.

    Args:
        group (str): Container group name (``deployer status`` lists them).
        container (str | None): Container name. Default: the group's only or first.
        overrides (Overrides): Command-line settings. Default: none.
        file (Path | None): Workload file for subscription and resource group.
        tail (int | None): Only the last lines. Default: all.
        follow (bool): Poll for new output until interrupted. Default: False.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.
    """
    settings = scope_settings(load(file) if file is not None else None, "logs", overrides)
    backend = backend_factory(settings)
    if container is None:
        found = backend.get(group)
        if found is None or not found.containers:
            raise InputError(
                f"container group {group} not found", hint="`deployer status FILE` lists the groups"
            )
        container = found.containers[0].name
    seen = ""
    interval = defaults.env_float(Env.POLL_INTERVAL, defaults.DEFAULT_POLL_INTERVAL_S)
    while True:
        text = backend.logs(group, container, tail if not seen else None)
        # ACI returns the whole log each time; print only what is new.
        new = text[len(seen) :] if text.startswith(seen) else text
        if new:
            yield new
        seen = text
        if not follow:
            return
        time.sleep(interval)


# --- scale -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleResult:
    """What ``deployer scale`` did."""

    file: str
    workload: str
    field: str
    old: int
    new: int
    up: UpResult


SCALE_FIELDS = {"ipyparallel": "engines", "blast": "workers"}


def scale(
    file: Path,
    target: str,
    overrides: Overrides = NO_OVERRIDES,
    *,
    progress: Progress | None = None,
    backend_factory: BackendFactory = aci_backend,
) -> ScaleResult:
    """Set a workload's size in the file (``ipyparallel=N`` engines, ``blast=N``
    workers), then run ``up``. Comments and layout of the file are kept.

    Args:
        file (Path): The workload file.
        target (str): ``WORKLOAD=N``.
        overrides (Overrides): Command-line settings. Default: none.
        progress (Progress | None): Progress sink. Default: none.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.

    Raises:
        InputError: For a malformed target or a workload the file does not define.
    """
    name, sep, raw = target.partition("=")
    if not sep or name not in SCALE_FIELDS or not raw.isdigit() or int(raw) < 1:
        raise InputError(
            f"cannot scale {target!r}",
            hint=f"give WORKLOAD=N with WORKLOAD one of {', '.join(SCALE_FIELDS)} and N >= 1",
        )
    count = int(raw)
    current = load(file)
    if getattr(current.workloads, name) is None:
        raise InputError(
            f"{file} defines no {name} workload", hint=f"add workloads.{name} to the file first"
        )
    blast = current.workloads.blast
    if name == "blast" and blast is not None and blast.autoscale is not None:
        raise InputError(
            f"{file}: workloads.blast autoscales between {blast.autoscale.min_workers} and "
            f"{blast.autoscale.max_workers} workers, so it has no fixed size to scale",
            hint="edit workloads.blast.autoscale.max_workers (or min_workers) instead",
        )
    text = file.read_text(encoding="utf-8")
    field_name = SCALE_FIELDS[name]
    old = int(getattr(getattr(current.workloads, name), field_name))
    new_text = set_values(text, {("workloads", name, field_name): count}, source=str(file))
    workload = parse(new_text, str(file), file.parent)
    result = up(
        file, overrides, progress=progress, backend_factory=backend_factory, workload=workload
    )
    file.write_text(new_text, encoding="utf-8")
    return ScaleResult(str(file), name, field_name, old, count, result)


# --- down ------------------------------------------------------------------------


@dataclass(frozen=True)
class DownResult:
    """What ``deployer down`` deleted."""

    deployment: str
    deleted: list[str]


def down(
    file: Path,
    overrides: Overrides = NO_OVERRIDES,
    *,
    progress: Progress | None = None,
    backend_factory: BackendFactory = aci_backend,
) -> DownResult:
    """Delete every group tagged with the deployment, concurrently, until gone.

    Args:
        file (Path): The workload file (it names the deployment).
        overrides (Overrides): Command-line settings. Default: none.
        progress (Progress | None): Progress sink. Default: none.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.

    Raises:
        AzureError: When a group could not be deleted.
    """
    settings = scope_settings(load(file), None, overrides)
    name = settings.deployment
    outcomes = _cluster(backend_factory(settings), progress).teardown(name)
    raise_for_failures(outcomes, "delete")
    deployment_secrets.forget(name)
    return DownResult(name, sorted(o.name for o in outcomes))


def as_dict(obj: Any) -> Any:
    """Return a result as JSON-ready data (dataclasses become dicts)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        data = asdict(obj)
        if isinstance(obj, PlanResult):
            data["counts"] = obj.counts
        return data
    return obj


__all__ = [
    "DeployerError",
    "DownResult",
    "Overrides",
    "PlanResult",
    "ScaleResult",
    "StatusResult",
    "UpResult",
    "UrlResult",
    "access_links",
    "down",
    "logs",
    "plan",
    "scale",
    "status",
    "up",
    "urls",
]
