"""The library API behind ``deployer run``: start, watch, status, results, cancel, list.

Each function returns data; the CLI modules in :mod:`deployer.cli.run` only render it.
Validation happens before anything is created: a bad query file, a program that does not fit
the queries or the database, an unknown database, or ``--detach`` without a managed identity
raise :class:`~deployer.errors.InputError` (exit 2) with nothing written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from blast_client import BlastClient, BlastClientError, JobSpec, JobStatus
from blast_client.fasta import DEFAULT_BATCH_LEN, FastaError, detect_molecule, iter_records
from blast_client.joblog import FINAL as JOB_FINAL
from blast_client.messages import OUTPUT_FORMATS

from deployer import defaults, deployment_secrets, hints, pricing
from deployer.backends.base import Backend, ObservedGroup
from deployer.cluster import Cluster
from deployer.dbsizes import resolve_sizes
from deployer.defaults import Env
from deployer.deployment_secrets import Secret
from deployer.errors import AzureError, DeployerError, InputError
from deployer.imagebuild import manifest
from deployer.imagebuild.manifest import BuiltImage
from deployer.imagerefs import deploy_settings, group_images, require_images
from deployer.plan import RUN_TAG, Action, Change, GroupSpec, storage_env
from deployer.plan.databases import require_known, worker_sizing
from deployer.plan.janitor import janitor_group
from deployer.plan.tuning import Tuning, tune_run
from deployer.protocol import JANITOR_IMAGE, PROTOCOLS, run_protocol, shard_queue
from deployer.run import merge, places, shardstats
from deployer.run.autoscaling import DECISIONS_SHOWN, RunScaler, decisions, run_scaler
from deployer.run.autoscaling import ENV as AUTOSCALE_ENV
from deployer.run.billing import Bill, bill_of, price
from deployer.run.decide import ending_look, group_size, unfinished
from deployer.run.groups import replaceable_shard_workers, worker_groups
from deployer.run.janitor import Janitor, cancel_jobs, drop_queues, until_next_pass
from deployer.run.jobview import JobView
from deployer.run.state import (
    FINAL,
    Batch,
    Run,
    batch_state,
    is_run_id,
    new_run_id,
    queue_name,
    shard_jobs,
)
from deployer.run.store import Conflict, RunStore
from deployer.scope import (
    ArmAccess,
    BackendFactory,
    aci_backend,
    janitor_arm_access,
    local_storage,
    scope_settings,
    storage_client,
)
from deployer.settings import NO_OVERRIDES, Overrides, Settings
from deployer.sizing import describe_pinning
from deployer.workload import Workload, duration_seconds, load

DEFAULT_EXIT_WHEN_IDLE = "120s"
QUERY_MOLECULE = {
    "blastn": "nucleotide",
    "blastx": "nucleotide",
    "tblastx": "nucleotide",
    "blastp": "protein",
    "tblastn": "protein",
}
DB_MOLECULE = {
    "blastn": "nucleotide",
    "tblastn": "nucleotide",
    "tblastx": "nucleotide",
    "blastp": "protein",
    "blastx": "protein",
}


class ContainerEnv:
    """Variables that tune a run's containers (short idle times for local experiments)."""

    #: ``BLAST_EXIT_WHEN_IDLE`` of run workers (default 120s).
    EXIT_WHEN_IDLE = "DEPLOYER_RUN_EXIT_WHEN_IDLE"
    #: Least seconds between two create bursts of an autoscaled run (default 30).
    SCALE_OUT_INTERVAL = "DEPLOYER_SCALE_OUT_INTERVAL"


# --- start -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """What ``deployer run WORKLOAD QUERIES`` asks for.

    Args:
        workload (Path): The workload file (its ``workloads.blast`` sizes the workers).
        queries (Path): The query FASTA.
        db (str): Database name.
        program (str): BLAST program.
        task (str | None): ``-task``.
        evalue (float | None): ``-evalue``.
        outfmt (tuple[int, ...]): Merged formats (6, 7, 15).
        batch_len (int | None): Residues per batch (default after ElasticBLAST).
        detach (bool): Return once submitted; the janitor finishes the run.
        max_target_seqs (int | None): ``-max_target_seqs`` (each shard of a sharded database
            is asked for it too, and the merge cuts to it again).
    """

    workload: Path
    queries: Path
    db: str
    program: str = "blastn"
    task: str | None = None
    evalue: float | None = None
    outfmt: tuple[int, ...] = (6,)
    batch_len: int | None = None
    detach: bool = False
    max_target_seqs: int | None = None


def parse_outfmt(text: str) -> tuple[int, ...]:
    """``6,15`` -> (6, 15); only 6, 7 and 15 are merged.

    Raises:
        InputError: for anything else.
    """
    try:
        fmts = tuple(sorted({int(p) for p in text.split(",") if p.strip()}))
    except ValueError:
        fmts = ()
    if not fmts or not set(fmts) <= OUTPUT_FORMATS:
        raise InputError(
            f"--outfmt {text!r} is not a list of 6, 7 and 15", hint="e.g. --outfmt 6,15"
        )
    return fmts


def _check_molecules(client: BlastClient, fasta: str, db: str, program: str) -> None:
    if not client.database_exists(db):
        names = ", ".join(d.name for d in client.databases()) or "none"
        raise InputError(
            f"unknown database {db!r} (the account has: {names})",
            hint="upload it with `blast-jobs db upload`, or `blast-jobs init --demo-db demo`",
            code="UnknownDatabase",
        )
    query = detect_molecule(iter_records(fasta))
    if query != QUERY_MOLECULE[program]:
        raise InputError(
            f"the queries look {query}, but {program} needs {QUERY_MOLECULE[program]} queries",
            hint="choose the program for your molecules (blastn, blastp, blastx, tblastn, tblastx)",
            code="WrongMolecule",
        )
    info = next((d for d in client.databases() if d.name == db), None)
    if info is not None and info.molecule and info.molecule != DB_MOLECULE[program]:
        raise InputError(
            f"database {db} is {info.molecule}, but {program} searches a "
            f"{DB_MOLECULE[program]} database",
            code="WrongMolecule",
        )


def _janitor_access(settings: Settings, detach: bool) -> ArmAccess | None:
    """How the janitor group signs in, or None when the CLI must be the janitor.

    Raises:
        InputError: for ``--detach`` when the janitor cannot sign in.
    """
    access = janitor_arm_access()
    if access.local or (settings.managed_identity and settings.managed_identity_client_id):
        return access
    if detach:
        raise InputError(
            "--detach needs a managed identity: the janitor group finishes the run in Azure "
            "and signs in with it",
            hint="set deployment.managed_identity and managed_identity_client_id (Contributor on "
            "the resource group), or run without --detach",
            code="MissingManagedIdentity",
        )
    return None


@dataclass
class RunScope:
    """A run's record and the clients that reach it.

    Args:
        run (Run): The run record as last read.
        client (BlastClient): Storage of the run (its queue, job log and tables).
        store (RunStore): The run records.
        backend (Backend | None): Where its groups live; None when the Azure scope is unknown
            (``run status`` then shows no groups).
    """

    run: Run
    client: BlastClient
    store: RunStore
    backend: Backend | None


@dataclass(frozen=True)
class Started:
    """What ``start`` did.

    Args:
        run (Run): The run record, ``running``.
        groups (tuple[str, ...]): The groups created (workers and janitor).
        created_resources (tuple[str, ...]): Storage resources created for it.
        scaler (RunScaler | None): Scales the workers when this process is the janitor.
        scope (RunScope | None): The run's clients, for ``watch`` and ``results`` in the same
            process (so the settings are resolved once).
        tuning (Tuning | None): The workers, threads and batch length the run chose, and why.
        pinning (str | None): How the workers map to the shards (one line); None when the
            database is searched whole.
    """

    run: Run
    groups: tuple[str, ...]
    created_resources: tuple[str, ...]
    scaler: RunScaler | None = field(default=None, repr=False)
    scope: RunScope | None = field(default=None, repr=False)
    tuning: Tuning | None = None
    pinning: str | None = None


@dataclass(frozen=True)
class _Inputs:
    """A request's inputs, checked: nothing has been created yet."""

    workload: Workload
    fasta: str
    settings: Settings
    access: ArmAccess | None
    place: Settings
    """The settings as the workload resolves them, before a local Azurite's key replaces the
    account name: what :mod:`deployer.run.places` remembers."""
    shards: int = 1
    """Shards the run's database is searched in (each batch is one job per shard)."""
    tuning: Tuning | None = None
    """The tuner's choice (:mod:`deployer.plan.tuning`), already applied to ``workload``;
    None when the queries or the program are refused later, in one line."""


@dataclass(frozen=True)
class _RunGroups:
    """The groups a run starts with, and how its workers scale."""

    workers: tuple[GroupSpec, ...]
    janitor: GroupSpec | None
    scaler: RunScaler | None
    exit_when_idle: str

    @property
    def all(self) -> tuple[GroupSpec, ...]:
        return (*self.workers, *([self.janitor] if self.janitor else []))


def start(
    request: RunRequest,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
    clock: Callable[[], float] = time.time,
    on_submitted: Callable[[int, int], None] | None = None,
) -> Started:
    """Validate, submit the batches under a new run id, then create the run's groups.

    ``on_submitted`` is called with the jobs queued so far and their total, as they go.

    The workload file is read and the settings are resolved once, here; the returned
    :class:`Started` carries the clients on to :func:`watch` and :func:`results`.

    Raises:
        InputError: for bad input; nothing has been created then.
        AzureError: when the groups cannot be created (the run is then marked failed and its
            batches cancelled).
    """
    inputs = _check_inputs(request, overrides)
    if inputs.tuning is not None:
        request = replace(request, batch_len=inputs.tuning.batch_len)
    run_id = new_run_id()
    client = storage_client(queue_name(run_id), inputs.settings)
    batches = [
        shard_jobs(s, inputs.shards) for s in _plan_batches(client, request, inputs.fasta, run_id)
    ]
    specs = [job for jobs in batches for job in jobs]
    groups = _plan_groups(inputs, run_id, len(batches))
    template = (groups.scaler.template,) if groups.scaler is not None else ()
    require_images(group_images([*groups.all, *template]), inputs.settings, str(request.workload))
    run = _new_run(request, inputs, run_id, batches, groups, clock())
    cluster = Cluster(backend_factory(inputs.settings))
    changes = [Change(g.name, Action.CREATE, g) for g in groups.all]
    cluster.check_quota(changes, {}, inputs.settings.location)
    created, store = _submit(client, run, specs, on_submitted)
    places.remember(run_id, inputs.place)
    scope = RunScope(run, client, store, cluster.backend)
    _create_groups(cluster, changes, scope)
    scope = _reread(scope)
    pinning = None
    if inputs.shards > 1:
        blast = inputs.workload.workloads.blast
        assert blast is not None, "checked by _check_inputs"
        workers = groups.scaler.settings.max_workers if groups.scaler else blast.workers
        pinning = describe_pinning(workers, inputs.shards, None if groups.scaler else len(batches))
    return Started(scope.run, run.groups, created, groups.scaler, scope, inputs.tuning, pinning)


def read_queries(path: Path) -> str:
    """The query FASTA's text.

    Raises:
        InputError: When it cannot be read, in one line.
    """
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read the queries {path}: {why}") from None


class JanitorImageError(DeployerError):
    """The janitor's image speaks an older run protocol than this deployer; nothing was
    created."""


def janitor_protocol_problem(image: BuiltImage | None, tag: str, needed: int) -> str | None:
    """Why the last build's ``deployer`` image cannot be the janitor of a run that needs
    protocol ``needed``, or None (pure).

    A build records the :data:`RUN_PROTOCOL` of the source it built the image from (a build
    of an older deployer, or one from before protocols were recorded, records an older one or
    none: 1). A janitor handles every protocol up to its own.

    Args:
        image (BuiltImage | None): The build record's ``deployer`` image; None when it has
            none (the image is then not this build's to judge: the janitor itself checks).
        tag (str): The build's tag, to name it.
        needed (int): The run's protocol (:func:`deployer.protocol.run_protocol`).
    """
    theirs = (image.run_protocol or 1) if image is not None else needed
    if image is None or theirs >= needed:
        return None
    return (
        f"the janitor's image {image.ref} (build {tag}) speaks run protocol {theirs} "
        f"({PROTOCOLS[theirs]}), but this deployer's run needs {needed} "
        f"({PROTOCOLS[needed]}), which it would mis-handle; nothing was created"
    )


def require_janitor_protocol(settings: Settings, needed: int, workload_file: str) -> None:
    """Refuse, before anything is created, to deploy a janitor older than this deployer.

    With a pinned image tag no build record names the image; the janitor then ends a run it
    would mis-handle itself (:func:`deployer.run.decide.decide`).

    Raises:
        JanitorImageError: Naming both protocols and ``deployer build``.
    """
    if settings.image_tag_pinned:
        return
    found = manifest.load(settings.registry)
    if found is None:
        return
    problem = janitor_protocol_problem(found.images.get(JANITOR_IMAGE), found.tag, needed)
    if problem:
        raise JanitorImageError(
            problem,
            hint=f"`deployer build {workload_file}` rebuilds the deployer image from this source",
            code="JanitorImageTooOld",
        )


def _check_inputs(request: RunRequest, overrides: Overrides) -> _Inputs:
    """Read the workload and the queries and resolve the settings, once; create nothing.

    Raises:
        InputError: for a workload without BLAST, unreadable queries, a database whose size
            neither the file nor its manifest in storage gives, or ``--detach`` without a
            managed identity.
        MissingSettingError: for a setting the run needs.
    """
    workload = load(request.workload)
    if workload.workloads.blast is None:
        raise InputError(
            f"{request.workload} defines no blast workload",
            hint="add workloads.blast (workers, threads_per_worker, databases); see examples/",
        )
    fasta = read_queries(request.queries)
    resolved = deploy_settings(workload, overrides, need_azure=True)
    settings = local_storage(resolved)
    workload, sizes = resolve_sizes(workload, settings)
    require_known(sizes, str(request.workload))
    shards = next(
        (c.shards for c in worker_sizing(workload).choices if c.database == request.db), 1
    )
    access = _janitor_access(settings, request.detach)
    if access is not None:
        require_janitor_protocol(resolved, run_protocol(shards), str(request.workload))
    workload, tuning = _tune(workload, fasta, request)
    workload = replaceable_shard_workers(workload, shards, _exit_when_idle())
    return _Inputs(workload, fasta, settings, access, resolved, shards, tuning)


def _exit_when_idle() -> str:
    """The run workers' ``BLAST_EXIT_WHEN_IDLE``."""
    return os.environ.get(ContainerEnv.EXIT_WHEN_IDLE) or DEFAULT_EXIT_WHEN_IDLE


def _tune(workload: Workload, fasta: str, request: RunRequest) -> tuple[Workload, Tuning | None]:
    """The workload with the tuned workers and threads, and the tuning (pure); unchanged when
    the program or the queries are bad, which :func:`_plan_batches` refuses in one line."""
    if request.program not in DEFAULT_BATCH_LEN:
        return workload, None
    try:
        return tune_run(workload, fasta, request.program, request.db, request.batch_len)
    except FastaError:
        return workload, None


def _plan_batches(
    client: BlastClient, request: RunRequest, fasta: str, run_id: str
) -> list[JobSpec]:
    """Cut the queries into batches and check them against the database; submit nothing.

    Raises:
        InputError: for an unknown database or queries the program cannot search.
    """
    options: dict[str, Any] = {"outfmt": list(request.outfmt)}
    if request.task:
        options["task"] = request.task
    if request.evalue is not None:
        options["evalue"] = request.evalue
    if request.max_target_seqs is not None:
        options["max_target_seqs"] = request.max_target_seqs
    try:
        specs = client.plan(
            fasta, request.db, request.program, options, request.batch_len, run_id=run_id
        )
        _check_molecules(client, fasta, request.db, request.program)
    except BlastClientError as exc:
        raise hints.from_blast(exc) from None
    return specs


def _plan_groups(inputs: _Inputs, run_id: str, batches: int) -> _RunGroups:
    """The run's worker groups (none when autoscaled: the janitor's first pass creates them;
    pinned to shards when the database is searched in shards) and its janitor group (none
    when this process is the janitor)."""
    workload, settings = inputs.workload, inputs.settings
    exit_idle = _exit_when_idle()
    secrets = deployment_secrets.load_or_generate(settings.deployment, persist=False)
    burst = defaults.env_float(ContainerEnv.SCALE_OUT_INTERVAL, defaults.SCALE_OUT_INTERVAL_S)
    queue = queue_name(run_id)
    scaler = run_scaler(workload, settings, secrets, run_id, queue, burst)
    workers: tuple[GroupSpec, ...] = ()
    if scaler is None:
        workers = worker_groups(
            workload,
            settings,
            secrets,
            run_id,
            batches,
            exit_when_idle=exit_idle,
            queue=queue,
            shards=inputs.shards,
        )
    janitor = None
    if inputs.access is not None:
        janitor = janitor_group(
            settings,
            storage_env(settings, workload),
            run_id=run_id,
            interval=defaults.env_float(Env.JANITOR_INTERVAL, defaults.JANITOR_INTERVAL_S),
            arm_endpoint=inputs.access.endpoint,
            access_token=inputs.access.token,
            extra={AUTOSCALE_ENV: Secret(scaler.to_json())} if scaler is not None else None,
        )
    return _RunGroups(workers, janitor, scaler, exit_idle)


def _new_run(
    request: RunRequest,
    inputs: _Inputs,
    run_id: str,
    specs: list[tuple[JobSpec, ...]],
    groups: _RunGroups,
    now: float,
) -> Run:
    """The run's record as it is first stored, ``submitting`` (pure).

    Args:
        specs (list[tuple[JobSpec, ...]]): Each batch's jobs (one per shard when sharded).
    """
    workload, settings = inputs.workload, inputs.settings
    blast = workload.workloads.blast
    ttl = workload.deployment.ttl
    batches = tuple(
        Batch(
            i,
            jobs[0].job_id,
            len(list(iter_records(jobs[0].query.fasta or ""))),
            tuple(j.job_id for j in jobs) if len(jobs) > 1 else (),
        )
        for i, jobs in enumerate(specs, start=1)
    )
    scaler = groups.scaler
    return Run(
        run_id=run_id,
        deployment=settings.deployment,
        status="submitting",
        created=now,
        params={
            "program": request.program,
            "db": request.db,
            "task": request.task,
            "evalue": request.evalue,
            "max_target_seqs": request.max_target_seqs,
            "outfmt": list(request.outfmt),
            "batch_len": request.batch_len,
            "threads_per_worker": blast.threads_per_worker if blast else None,
            "tuning": inputs.tuning.describe() if inputs.tuning else None,
            "shards": len(specs[0]) if specs else 1,
            "queries_file": request.queries.name,
            "workers": sum(len(g.containers) for g in groups.workers),
            "exit_when_idle": groups.exit_when_idle,
            "autoscale": scaler is not None,
            "max_workers": scaler.settings.max_workers if scaler is not None else None,
        },
        protocol=run_protocol(len(specs[0]) if specs else 1),
        queries=sum(b.queries for b in batches),
        batches=batches,
        groups=tuple(g.name for g in groups.all),
        janitor=groups.janitor.name if groups.janitor else None,
        deadline=now + duration_seconds(ttl) if ttl else None,
    )


def _submit(
    client: BlastClient,
    run: Run,
    specs: list[JobSpec],
    on_submitted: Callable[[int, int], None] | None = None,
) -> tuple[tuple[str, ...], RunStore]:
    """Create the storage resources, store the run, submit its batches, mark it running.

    Returns:
        The storage resources created, and the run store.
    """
    pinned = run.pinned

    def queue_of(spec: JobSpec) -> str:
        assert spec.shard is not None, "every job of a sharded run names its shard"
        return shard_queue(run.queue, spec.shard.index + 1)

    try:
        created = tuple(client.ensure_resources(run.queues if pinned else None))
        store = RunStore(client.storage.table)
        store.create(run)
        # No queued rows: every reader of a run counts a job without a row as queued.
        client.submit(
            specs,
            queue_of if pinned else None,
            rows=False,
            on_sent=None if on_submitted is None else lambda n: on_submitted(n, len(specs)),
        )
        found = store.get(run.run_id)
        assert found is not None
        store.save(replace(found[0], status="running"), found[1])
    except BlastClientError as exc:
        raise hints.from_blast(exc) from None
    return created, store


def _create_groups(cluster: Cluster, changes: list[Change], scope: RunScope) -> None:
    """Send the creates without waiting; if any fails, cancel the run.

    Raises:
        AzureError: naming the groups that could not be created.
    """
    outcomes = cluster.start_creates(changes)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        run_id = scope.run.run_id
        why = "; ".join(f"{o.name}: {o.error}" for o in failed)
        cancel(run_id, scope=scope, reason=f"groups failed: {why}")
        raise AzureError(f"run {run_id}: could not create its groups: {why}", code="RunFailed")


# --- observing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run for the live display and ``run status``."""

    run: Run
    counts: dict[str, int]
    workers: int
    groups: tuple[str, ...]
    elapsed: float
    spend: float
    currency: str
    jobs: tuple[JobStatus, ...] = field(default=(), repr=False)
    decisions: tuple[dict[str, Any], ...] = ()

    @property
    def final(self) -> bool:
        """The run ended and none of its groups is left."""
        return self.run.final and not self.groups


def _counts(run: Run, jobs: Mapping[str, JobStatus]) -> dict[str, int]:
    counts = {"queued": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
    states = {j: s.status for j, s in jobs.items()}
    for b in run.batches:
        status = batch_state(b, states)
        key = {"succeeded": "done", "poisoned": "failed", "unknown": "queued"}.get(status, status)
        counts[key if key in counts else "queued"] += 1
    return counts


def _prices(run: Run) -> pricing.PriceSheet:
    location = os.environ.get(Env.LOCATION) or "default"
    return pricing.load(location)


def running_bill(run: Run, groups: list[ObservedGroup], now: float) -> Bill:
    """The bill so far: recorded groups plus the live ones up to ``now``."""
    bills = list(run.bills)
    for g in groups:
        if not run.billed(g.name):
            vcpu, gb = group_size(g)
            live = bill_of(g, g.tags.get("kind", "workers"), vcpu, gb, now)
            if live:
                bills.append(live)
    return price(bills, _prices(run))


def snapshot(
    run: Run,
    client: BlastClient,
    groups: list[ObservedGroup],
    now: float,
    jobs: Mapping[str, JobStatus] | None = None,
) -> Progress:
    """A :class:`Progress` of ``run`` from its jobs (read unless given) and groups."""
    if jobs is None:
        jobs = JobView.of(run).refresh(client)
    workers = sum(
        1 for g in groups if g.name != run.janitor for c in g.containers if c.state == "Running"
    )
    bill = running_bill(run, groups, now)
    end = run.finished if run.final and run.finished else now
    return Progress(
        run,
        _counts(run, jobs),
        workers,
        tuple(sorted(g.name for g in groups)),
        max(0.0, end - run.created),
        bill.cost,
        bill.currency,
        tuple(jobs.values()),
    )


def _open(
    run_id: str,
    overrides: Overrides,
    backend_factory: BackendFactory,
    *,
    need_backend: bool,
) -> RunScope:
    if not is_run_id(run_id):
        raise InputError(
            f"{run_id!r} is not a run id (r and 8 hex digits)",
            hint="`deployer run list` lists the runs",
            code="RunNotFound",
        )
    # A run started here recorded its account and scope: flags and the environment still win.
    place = places.recall(run_id)
    settings = local_storage(place.settings()) if place and not places.storage_in_env() else None
    if place is not None:
        overrides = replace(
            overrides,
            subscription=overrides.subscription
            or os.environ.get(Env.SUBSCRIPTION)
            or place.subscription,
            resource_group=overrides.resource_group
            or os.environ.get(Env.RESOURCE_GROUP)
            or place.resource_group,
        )
    client = storage_client(queue_name(run_id), settings)
    store = RunStore(client.storage.table)
    try:
        found = store.get(run_id)
    except ResourceNotFoundError:  # no table yet: no run at all
        found = None
    if found is None:
        raise InputError(
            f"run {run_id} not found in table {client.config.table}",
            hint="`deployer run list` lists the runs of this storage account",
            code="RunNotFound",
        )
    backend = None
    if need_backend or (
        (os.environ.get(Env.SUBSCRIPTION) or overrides.subscription)
        and (os.environ.get(Env.RESOURCE_GROUP) or overrides.resource_group)
    ):
        backend = backend_factory(scope_settings(None, found[0].deployment, overrides))
    return RunScope(found[0], client, store, backend)


def _reread(scope: RunScope) -> RunScope:
    """``scope`` with its run record read again."""
    found = scope.store.get(scope.run.run_id)
    assert found is not None
    return replace(scope, run=found[0])


def _groups(scope: RunScope) -> list[ObservedGroup]:
    if scope.backend is None:
        return []
    return [
        g
        for g in scope.backend.list(scope.run.deployment)
        if g.tags.get(RUN_TAG) == scope.run.run_id
    ]


def status(
    run_id: str,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
) -> Progress:
    """The run's state: batches by state, workers, elapsed time, spend so far."""
    scope = _open(run_id, overrides, backend_factory, need_backend=False)
    progress = snapshot(scope.run, scope.client, _groups(scope), time.time())
    if not scope.run.autoscaled:
        return progress
    latest = decisions(scope.client.storage.table, run_id, DECISIONS_SHOWN)
    return replace(progress, decisions=tuple(latest))


def watch(
    run_id: str,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
    on_progress: Callable[[Progress], None] | None = None,
    interval: float = 2.0,
    timeout: float | None = None,
    scaler: RunScaler | None = None,
    scope: RunScope | None = None,
) -> Progress:
    """Follow a run until it is final and its groups are gone.

    Without a janitor group (or once it has vanished while the run is unfinished) this
    process does the janitor's work, scaling the workers with ``scaler`` (from
    :class:`Started`) when the run is autoscaled.

    Args:
        scope (RunScope | None): The run's clients from :class:`Started`; None opens them.

    Raises:
        AzureError: on ``timeout``.
    """
    scope = scope or _open(run_id, overrides, backend_factory, need_backend=True)
    assert scope.backend is not None
    view = JobView.of(scope.run)
    janitor = Janitor(run_id, scope.store, scope.client, scope.backend, scaler=scaler, view=view)
    deadline = None if timeout is None else time.monotonic() + timeout
    ending = 0  # looks since the run's batches were all final
    while True:
        found = scope.store.get(run_id)
        assert found is not None
        run = found[0]
        groups = _groups(replace(scope, run=run))
        own_janitor = run.janitor is not None and any(g.name == run.janitor for g in groups)
        if not own_janitor and not (run.final and not groups):
            run, groups = janitor.step()  # reads the changed job rows into the view
            if run.final:
                # The pass sent its deletes without waiting: a group is gone once ARM no
                # longer lists it (the next pass deletes a group still listed again).
                groups = _groups(replace(scope, run=run))
        else:
            view.refresh(scope.client)
        progress = snapshot(run, scope.client, groups, time.time(), view.jobs)
        if on_progress is not None:
            on_progress(progress)
        if progress.final:
            return progress
        if deadline is not None and time.monotonic() > deadline:
            raise AzureError(f"run {run_id} did not finish in {timeout:g} s", code="Timeout")
        if run.final or not unfinished(run, view.statuses()):
            # The run's last pass is due (or done) and its groups are going: seconds away.
            time.sleep(min(interval, ending_look(ending)))
            ending += 1
        else:
            ending = 0  # e.g. a batch went back to its queue
            until_next_pass(run, view, scope.client, interval)


# --- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The end-of-run summary."""

    run_id: str
    status: str
    reason: str
    queries: int
    hits: int
    batches: int
    failed_batches: int
    retried_batches: int
    wall_seconds: float
    bill: Bill
    out_dir: str | None = None
    files: dict[str, str] = field(default_factory=dict)


def summarize(
    run: Run,
    jobs: Mapping[str, JobStatus],
    out_dir: Path | None = None,
    files: Mapping[str, str] | None = None,
    merged_hits: Mapping[str, int] | None = None,
) -> Summary:
    """The summary of a run from its record and job rows (pure).

    Its hits are those of the results: a batch's job's, and for a batch of shards those its
    merge kept (``merged_hits``, by batch job id, :class:`merge.Written`), never the sum of
    its shards' (each shard returns up to ``max_target_seqs`` subjects of its own); a batch of
    shards that was not merged has none.
    """
    done = {j: s.status for j, s in jobs.items()}
    merged = merged_hits or {}

    def hits(batch: Batch) -> int:
        if batch.shards:
            return merged.get(batch.job_id, 0)
        job = jobs.get(batch.job_id)
        return (job.hits or 0) if job is not None else 0

    end = run.finished or time.time()
    return Summary(
        run.run_id,
        run.status,
        run.reason,
        run.queries,
        sum(hits(b) for b in run.batches),
        len(run.batches),
        sum(1 for b in run.batches if batch_state(b, done) != "succeeded"),
        sum(1 for b in run.batches if any(_retried(jobs.get(j)) for j in b.jobs)),
        max(0.0, end - run.created),
        price(run.bills, _prices(run)),
        str(out_dir) if out_dir else None,
        dict(files or {}),
    )


def _retried(job: JobStatus | None) -> bool:
    return job is not None and (job.attempts or 0) > 1


def results(
    run_id: str,
    out_dir: Path | None = None,
    *,
    scope: RunScope | None = None,
) -> Summary:
    """Download every batch's results, merge them into ``out_dir`` and write the manifest.

    Formats: the run's ``outfmt`` merged (``results.6.tsv``, ``results.7.txt``,
    ``results.15.json``), each shard's archive under ``batches/`` (a batch of shards; a batch
    searched whole keeps none), and ``manifest.json``.
    Batches that did not succeed are listed in the manifest and left out of the merge.

    Args:
        scope (RunScope | None): The run's clients from :class:`Started`; None opens them.
    """
    scope = (
        _reread(scope) if scope else _open(run_id, NO_OVERRIDES, aci_backend, need_backend=False)
    )
    run, client = scope.run, scope.client
    jobs = JobView.of(run).refresh(client)
    states = {j: s.status for j, s in jobs.items()}
    pending = [b for b in run.batches if batch_state(b, states) not in JOB_FINAL]
    if pending and not run.final:
        raise InputError(
            f"run {run_id} is still {run.status}: {len(pending)} batches are not final",
            hint=f"wait with `deployer run status {run_id}`",
            code="RunNotFinished",
        )
    out = out_dir or Path(f"blast-run-{run_id}")
    ok = [b for b in run.batches if batch_state(b, states) == "succeeded"]
    fmts = [int(fmt) for fmt in run.params.get("outfmt") or [6]]
    shards = max((len(b.jobs) for b in ok), default=1)
    try:
        # 15 of shards renumbers ordinal ids and names the whole database's totals.
        stats = (
            shardstats.read(
                client.storage.container(client.config.db_container), str(run.params["db"]), shards
            )
            if shards > 1 and 15 in fmts
            else None
        )
        written = merge.write_run(
            out,
            ok,
            fmts,
            lambda job, fmt: client.result(job, fmt, job=jobs[job]),
            stats=stats,
            max_target_seqs=run.params.get("max_target_seqs"),
        )
    except BlastClientError as exc:
        raise hints.from_blast(exc) from None
    except merge.MergeError as exc:
        raise DeployerError(f"run {run_id}: {exc}", code="MergeFailed") from None
    doc = merge.manifest(run, written.files, {j: s.status for j, s in jobs.items()})
    (out / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    files = {p: str(out / p) for p in written.files if not p.startswith("batches/")}
    return summarize(run, jobs, out, files, written.hits)


# --- cancel and list ---------------------------------------------------------------


def cancel(
    run_id: str,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
    reason: str = "cancelled by the user",
    scope: RunScope | None = None,
) -> Run:
    """Delete the run's groups and mark its unfinished batches ``cancelled``; keep finished
    results.

    Args:
        scope (RunScope | None): The run's clients (``start`` passes its own); None opens
            them.

    Raises:
        InputError: for an unknown run.
    """
    scope = scope or _open(run_id, overrides, backend_factory, need_backend=True)
    assert scope.backend is not None
    run = scope.run
    while True:
        found = scope.store.get(run_id)
        assert found is not None
        run, etag = found
        if run.final:
            break
        try:
            scope.store.save(
                replace(run, status="cancelled", reason=reason, finished=time.time()), etag
            )
            break
        except Conflict:
            continue
    drop_queues(scope.client, run.all_queues)
    # Delete the groups first: no worker can then mark a batch running after we cancel it.
    janitor = Janitor(run_id, scope.store, scope.client, scope.backend, wait_deletes=True)
    run, _ = janitor.step()
    jobs = JobView.of(run).refresh(scope.client)
    left = unfinished(run, {j: s.status for j, s in jobs.items()})
    unread = frozenset(j for j in left if j not in jobs)
    cancel_jobs(scope.client, run_id, left, reason, time.time(), unread)
    return run


@dataclass(frozen=True)
class RunList:
    """What ``run list`` shows: every run, newest first."""

    runs: list[Run]


def list_runs() -> RunList:
    """Every run recorded in the storage account, newest first."""
    # Without storage settings, the account of the run started here last.
    place = None if places.storage_in_env() else places.latest()
    client = storage_client(settings=local_storage(place.settings()) if place else None)
    try:
        return RunList(RunStore(client.storage.table).list())
    except ResourceNotFoundError:  # no table yet: no runs
        return RunList([])


__all__ = [
    "FINAL",
    "Progress",
    "RunRequest",
    "Started",
    "Summary",
    "cancel",
    "list_runs",
    "parse_outfmt",
    "results",
    "start",
    "status",
    "watch",
]
