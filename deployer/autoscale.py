"""Elastic BLAST workers: what the reconcile loop does next (pure).

:func:`decide` takes one observation (the backlog, the vCPU quota left per region, the
worker groups that exist, when the last create burst was) and returns a
:class:`Decision`: the actions to carry out, each with a one-line explanation of the
inputs it came from. The janitor's loop observes, calls :func:`decide`, carries out the
actions and records the decision; nothing is remembered between passes except what the
caller stores (``last_burst``, ``next_index``, Spot refusals), so a restarted loop decides
the same thing from the same state.

Rules (see README, "Elastic BLAST workers"):

* desired = clamp(ceil(backlog / target_backlog_per_worker), min_workers, max_workers),
  capped by what the quota left in the regions allows; backlog = queued + in flight;
* actual = workers whose containers have not terminated (pending ones count, so a create
  that is still provisioning is never repeated);
* scale out by ``desired - actual`` workers, packed into groups by the sizing rules, in
  the primary region first and then in each overflow region that has quota; only when the
  backlog exceeds the current workers' target by more than the tolerance (from zero any
  backlog starts a worker), and at most one create burst per ``scale_out_interval``;
* scale in only by draining: workers exit after ``scale_in_after`` without a batch, and a
  group is deleted once all its containers have terminated; a group with a container that
  has not terminated is never deleted;
* Spot: where Spot was refused lately, the group is created as regular
  (``spot_fallback``) or that region is skipped until :func:`deployer.spot.spot_retry_at`;
* shards: a run whose worker groups are pinned to shards (``Observation.shards``) scales
  each shard as a pool of its own, by the rules above, on its own backlog and groups (tag
  ``shard``), with ``min_workers`` and ``max_workers`` spread over the shards (at least one
  worker each, :func:`deployer.sizing.shard_workers`); the shards with the most backlog are
  served first from the quota and the burst's groups, so a replaced (evicted) group serves
  the shard that lost it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from deployer import defaults, sizing
from deployer.backends.base import ObservedGroup
from deployer.plan import GroupSpec
from deployer.plan.databases import worker_sizing
from deployer.protocol import shard_queue
from deployer.sizing import Resources, shard_workers
from deployer.spot import spot_retry_at
from deployer.workload import Workload, duration_seconds

Priority = Literal["Regular", "Spot"]

TAG_LOCATION = "location"
TAG_PRIORITY = "priority"
TAG_FLOOR = "autoscale-floor"
TAG_SHARD = "shard"
"""Tags of autoscaled worker groups, read back by :func:`worker_group_of` (``shard``, 1-based,
on every worker group of a run pinned to shards, autoscaled or not)."""


@dataclass(frozen=True)
class ScaleSettings:
    """The scaler's settings, from the workload file (:meth:`from_workload`).

    Args:
        min_workers (int): Workers kept with an empty queue.
        max_workers (int): Most workers at once.
        target_backlog_per_worker (int): Batches per worker aimed at.
        scale_in_after (int): Seconds a worker waits for a batch before it exits.
        worker (Resources): One worker's request, in tenths.
        workers_per_group (int): Most workers one group holds (sizing rules).
        locations (tuple[str, ...]): The primary region, then the overflow regions.
        priority (Priority): ``Regular`` or ``Spot`` for worker groups.
        spot_fallback (bool): Create as regular where Spot was refused.
        name_prefix (str): Group names are this plus an index (e.g. ``lab-r1a2b3c4d-w``).
        scale_out_interval (float): Least seconds between two create bursts.
        tolerance (float): Fraction by which the backlog must exceed the current workers'
            target before workers are added.
        max_groups_per_burst (int): Most groups one burst creates; the rest come in
            later bursts.
    """

    min_workers: int
    max_workers: int
    target_backlog_per_worker: int
    scale_in_after: int
    worker: Resources
    workers_per_group: int
    locations: tuple[str, ...]
    priority: Priority = "Regular"
    spot_fallback: bool = False
    name_prefix: str = "w"
    scale_out_interval: float = defaults.SCALE_OUT_INTERVAL_S
    tolerance: float = defaults.SCALE_TOLERANCE
    max_groups_per_burst: int = defaults.MAX_GROUPS_PER_BURST

    @classmethod
    def from_workload(cls, workload: Workload, location: str, name_prefix: str) -> ScaleSettings:
        """Read the settings of ``workloads.blast.autoscale``.

        Args:
            workload (Workload): A workload whose blast section has ``autoscale``.
            location (str): The resolved primary region.
            name_prefix (str): Prefix of the worker group names.

        Raises:
            ValueError: When the workload has no autoscaled blast workers.
            SizingError: When one worker does not fit in a group.
        """
        blast = workload.workloads.blast
        if blast is None or blast.autoscale is None:
            raise ValueError("the workload has no workloads.blast.autoscale")
        auto = blast.autoscale
        sized = worker_sizing(workload)
        worker = sized.worker
        overflow = [loc for loc in workload.deployment.overflow_locations if loc != location]
        return cls(
            min_workers=auto.min_workers,
            max_workers=auto.max_workers,
            target_backlog_per_worker=auto.target_backlog_per_worker,
            scale_in_after=duration_seconds(auto.scale_in_after),
            worker=worker,
            workers_per_group=sizing.units_per_group(worker, 1, sized.limits),
            locations=(location, *overflow),
            priority="Spot" if blast.priority == "spot" else "Regular",
            spot_fallback=blast.spot_fallback,
            name_prefix=name_prefix,
        )


@dataclass(frozen=True)
class WorkerGroup:
    """One existing worker group, as the scaler sees it.

    Args:
        name (str): Group name.
        location (str): Its region.
        priority (Priority): ``Regular`` or ``Spot``.
        workers (int): Worker containers in it.
        live (int): Those that have not terminated (pending or running).
        floor (bool): Created to hold ``min_workers``: its workers do not exit when idle.
        idle_since (float | None): Epoch seconds since none of its workers holds a batch;
            None when one does, or when unknown.
        evicted (bool): Its containers were killed by a Spot eviction.
        shard (int | None): The shard it serves (1-based) when pinned, else None.
    """

    name: str
    location: str
    priority: Priority
    workers: int
    live: int
    floor: bool = False
    idle_since: float | None = None
    evicted: bool = False
    shard: int | None = None

    @property
    def terminated(self) -> bool:
        """True when every container has terminated: the group may be deleted."""
        return self.live == 0


@dataclass(frozen=True)
class SpotRefusal:
    """Spot refused in a region ``count`` times in a row, the last at ``at``."""

    at: float
    count: int = 1


@dataclass(frozen=True)
class ShardBacklog:
    """One shard's backlog, of a run whose worker groups are pinned to shards.

    Args:
        shard (int): The shard, 1-based.
        queued (int): Its jobs waiting on its queue.
        in_flight (int): Its jobs a worker holds.
    """

    shard: int
    queued: int
    in_flight: int

    @property
    def backlog(self) -> int:
        """Queued plus in flight."""
        return self.queued + self.in_flight


@dataclass(frozen=True)
class Observation:
    """What one pass of the loop sees.

    Args:
        now (float): Epoch seconds.
        queued (int): Batches waiting on the queue.
        in_flight (int): Batches a worker holds.
        quota_free (Mapping[str, int]): vCPU cores left per region (limit minus used),
            read before creating; a region missing here has none.
        groups (Sequence[WorkerGroup]): The run's worker groups that exist.
        last_burst (float | None): Epoch seconds of the last create burst, if any.
        next_index (int): Lowest index a new group may take (indices are never reused).
        spot_refusals (Mapping[str, SpotRefusal]): Regions where Spot was refused lately.
        throttled_until (float | None): ARM answered 429: no creates before then.
        shards (Sequence[ShardBacklog]): Each shard's backlog when the worker groups are
            pinned to shards (``queued`` and ``in_flight`` are then their sums); empty when
            every group takes every job.
    """

    now: float
    queued: int
    in_flight: int
    quota_free: Mapping[str, int]
    groups: Sequence[WorkerGroup] = ()
    last_burst: float | None = None
    next_index: int = 1
    spot_refusals: Mapping[str, SpotRefusal] = field(default_factory=dict)
    throttled_until: float | None = None
    shards: Sequence[ShardBacklog] = ()

    @property
    def backlog(self) -> int:
        """Queued plus in-flight batches."""
        return self.queued + self.in_flight


@dataclass(frozen=True)
class CreateGroups:
    """Create these worker groups in one region with one priority.

    Args:
        location (str): The region.
        priority (Priority): ``Regular`` or ``Spot``.
        names (tuple[str, ...]): Group names, one per group.
        workers (tuple[int, ...]): Workers per group, in the same order.
        floor (bool): Groups that hold ``min_workers`` (no exit when idle).
        reason (str): One line: why, with the inputs.
        shard (int | None): The shard the groups serve (1-based) when pinned, else None.
    """

    location: str
    priority: Priority
    names: tuple[str, ...]
    workers: tuple[int, ...]
    floor: bool
    reason: str
    shard: int | None = None

    @property
    def total(self) -> int:
        """Workers created."""
        return sum(self.workers)


@dataclass(frozen=True)
class DeleteGroup:
    """Delete a worker group whose containers have all terminated."""

    name: str
    reason: str


@dataclass(frozen=True)
class RetrySpotLater:
    """``workers`` wait for Spot capacity in ``location`` until ``at`` (no fallback)."""

    location: str
    at: float
    workers: int
    reason: str


Action = CreateGroups | DeleteGroup | RetrySpotLater


@dataclass(frozen=True)
class Decision:
    """One pass's decision and its inputs, for the log, ``run status`` and the log table.

    Args:
        backlog (int): Queued plus in flight.
        queued (int): Batches waiting.
        in_flight (int): Batches held by workers.
        quota_left (dict[str, int]): vCPU cores left per region before this pass.
        wanted (int): clamp(ceil(backlog / target), min, max), before the quota cap.
        desired (int): ``wanted`` capped by what the quota allows.
        actual (int): Live workers before this pass.
        actions (tuple[Action, ...]): What to do, deletes first.
        summary (str): One line with every input and the outcome.
    """

    backlog: int
    queued: int
    in_flight: int
    quota_left: dict[str, int]
    wanted: int
    desired: int
    actual: int
    actions: tuple[Action, ...]
    summary: str

    @property
    def creates(self) -> tuple[CreateGroups, ...]:
        """The create actions."""
        return tuple(a for a in self.actions if isinstance(a, CreateGroups))

    def to_json(self) -> dict[str, object]:
        """The decision as plain data: for ``run status`` and the run's log table."""
        actions: list[dict[str, object]] = []
        for a in self.actions:
            kind = {CreateGroups: "create", DeleteGroup: "delete", RetrySpotLater: "spot-wait"}
            actions.append({"action": kind[type(a)], **asdict(a)})
        return {
            "backlog": self.backlog,
            "queued": self.queued,
            "in_flight": self.in_flight,
            "quota_left": dict(self.quota_left),
            "wanted": self.wanted,
            "desired": self.desired,
            "actual": self.actual,
            "actions": actions,
            "summary": self.summary,
        }


def wanted_workers(backlog: int, settings: ScaleSettings) -> int:
    """clamp(ceil(backlog / target_backlog_per_worker), min_workers, max_workers)."""
    raw = math.ceil(backlog / settings.target_backlog_per_worker)
    return max(settings.min_workers, min(settings.max_workers, raw))


def _room(settings: ScaleSettings, cores: int) -> int:
    """Workers that fit in ``cores`` of quota."""
    return max(0, cores * defaults.TENTHS // settings.worker.cpu)


def _index(name: str, prefix: str) -> int:
    tail = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else 0


def next_free_index(names: Iterable[str], prefix: str) -> int:
    """One more than the highest index among ``names`` of ``prefix``<index> (1 if none)."""
    return max([0, *(_index(n, prefix) for n in names)]) + 1


def _why_deleted(group: WorkerGroup) -> str:
    if group.evicted:
        return "evicted (Spot): its containers were killed; its batches return to the queue"
    return "all its containers have terminated (drained)"


def _deletes(groups: Sequence[WorkerGroup]) -> list[DeleteGroup]:
    """Delete every terminated group (drained or evicted), by name."""
    return [
        DeleteGroup(g.name, f"delete {g.name}: {_why_deleted(g)}")
        for g in sorted(groups, key=lambda g: g.name)
        if g.terminated
    ]


def _spot_at(
    location: str, obs: Observation, settings: ScaleSettings
) -> tuple[Priority | None, float | None]:
    """The priority to create with in ``location``, or (None, retry time) to skip it."""
    if settings.priority == "Regular":
        return "Regular", None
    refusal = obs.spot_refusals.get(location)
    if refusal is None:
        return "Spot", None
    retry = spot_retry_at(refusal.at, refusal.count)
    if obs.now >= retry:
        return "Spot", None
    return ("Regular", retry) if settings.spot_fallback else (None, retry)


def _hold(obs: Observation, settings: ScaleSettings, actual: int, need: int) -> str | None:
    """Why no worker is added now although ``need`` more are desired, else None."""
    floor_short = actual < settings.min_workers
    target = settings.target_backlog_per_worker * actual
    if actual > 0 and not floor_short and obs.backlog <= target * (1 + settings.tolerance):
        return (
            f"within tolerance: backlog {obs.backlog} <= {target} x {1 + settings.tolerance:g} "
            f"for {actual} workers"
        )
    if obs.throttled_until is not None and obs.now < obs.throttled_until:
        wait = obs.throttled_until - obs.now
        return f"creates held (ARM throttled or refused them): next in {wait:.0f}s"
    if obs.last_burst is not None and obs.now - obs.last_burst < settings.scale_out_interval:
        wait = settings.scale_out_interval - (obs.now - obs.last_burst)
        return f"one create burst per {settings.scale_out_interval:g}s: next in {wait:.0f}s"
    return None


def _place(
    obs: Observation,
    settings: ScaleSettings,
    quota: Mapping[str, int],
    need: int,
    floor_need: int,
    inputs: str,
) -> tuple[list[Action], int, int]:
    """Pack ``need`` workers into groups, region by region: (actions, placed, left)."""
    actions: list[Action] = []
    index = max(obs.next_index, next_free_index((g.name for g in obs.groups), settings.name_prefix))
    pending = [(True, floor_need), (False, need - floor_need)]
    budget = settings.max_groups_per_burst
    placed = 0
    skipped: list[tuple[str, float]] = []
    for loc in settings.locations:
        priority, retry = _spot_at(loc, obs, settings)
        if priority is None:
            skipped.append((loc, retry or obs.now))
            continue
        fits = _room(settings, quota[loc])
        for i, (floor, n) in enumerate(pending):
            k = min(n, fits, budget * settings.workers_per_group)
            if k <= 0:
                continue
            sizes = tuple(sizing.balanced(k, settings.workers_per_group))
            names = tuple(f"{settings.name_prefix}{index + j}" for j in range(len(sizes)))
            index += len(sizes)
            budget -= len(sizes)
            fits -= k
            placed += k
            pending[i] = (floor, n - k)
            where = loc if loc == settings.locations[0] else f"{loc} (overflow)"
            fallback = " (Spot refused lately: fallback)" if retry is not None else ""
            actions.append(
                CreateGroups(
                    loc,
                    priority,
                    names,
                    sizes,
                    floor,
                    f"create {len(sizes)} {priority}{fallback} group(s), {k} worker(s)"
                    f"{' held for min_workers' if floor else ''} in {where}: {inputs}",
                )
            )
    left = sum(n for _, n in pending)
    for loc, at in skipped:
        actions.append(
            RetrySpotLater(
                loc,
                at,
                left,
                f"Spot refused in {loc} lately: Spot is tried there again in "
                f"{at - obs.now:.0f}s (spot_fallback is off); {left} worker(s) wait",
            )
        )
    return actions, placed, left


def _draining(obs: Observation, settings: ScaleSettings, surplus: int) -> str:
    """Explain workers above desired: they leave by themselves; flag any that do not."""
    text = (
        f"{surplus} worker(s) above desired drain by themselves: a worker exits after "
        f"{settings.scale_in_after}s without a batch"
    )
    # Twice the window without exiting means a worker is stuck or ignores the timeout.
    late = [
        g.name
        for g in obs.groups
        if not g.terminated
        and not g.floor
        and g.idle_since is not None
        and obs.now - g.idle_since > 2 * settings.scale_in_after
    ]
    if late:
        text += f"; idle for over {2 * settings.scale_in_after}s yet running: {', '.join(late)}"
    return text


def decide(obs: Observation, settings: ScaleSettings) -> Decision:
    """Decide one pass of the reconcile loop.

    Args:
        obs (Observation): What the loop sees now.
        settings (ScaleSettings): The scaler's settings.

    Returns:
        Decision: Deletes of terminated groups first, then creates (at most one burst),
        then Spot waits, each with its reason; the same observation always gives the
        same decision, group names included.
    """
    if obs.shards:
        return _decide_shards(obs, settings)
    actions: list[Action] = [*_deletes(obs.groups)]
    live = [g for g in obs.groups if not g.terminated]
    actual = sum(g.live for g in live)
    floor_live = sum(g.live for g in live if g.floor)
    quota = {loc: max(0, obs.quota_free.get(loc, 0)) for loc in settings.locations}
    wanted = wanted_workers(obs.backlog, settings)
    room = sum(_room(settings, quota[loc]) for loc in settings.locations)
    desired = min(wanted, actual + room) if wanted > actual else wanted
    need = max(0, desired - actual)
    quota_text = ", ".join(f"{loc} {quota[loc]}" for loc in settings.locations)
    inputs = (
        f"backlog {obs.backlog} (queued {obs.queued}, in flight {obs.in_flight}), "
        f"quota left {quota_text} vCPU, desired {desired}"
        + (f" (wanted {wanted}, capped by quota)" if desired < wanted else "")
        + f", actual {actual}"
    )
    if not need:
        outcome = _draining(obs, settings, actual - desired) if actual > desired else "no change"
    elif hold := _hold(obs, settings, actual, need):
        outcome = hold
    else:
        floor_need = min(need, max(0, settings.min_workers - floor_live))
        placing, placed, left = _place(obs, settings, quota, need, floor_need, inputs)
        actions += placing
        outcome = f"add {placed} worker(s)" if placed else "no room to add workers now"
        if placed and left:
            outcome += f"; {left} more in a later burst"
    return _decision(obs, quota, (wanted, desired, actual), actions, f"{inputs}: {outcome}")


def _decision(
    obs: Observation,
    quota: dict[str, int],
    counts: tuple[int, int, int],
    actions: Sequence[Action],
    summary: str,
) -> Decision:
    """The decision of ``obs``: (wanted, desired, actual) workers, the actions, and the
    summary with the count of deletes."""
    deletes = sum(1 for a in actions if isinstance(a, DeleteGroup))
    if deletes:
        summary += f"; delete {deletes} terminated group(s)"
    wanted, desired, actual = counts
    return Decision(
        backlog=obs.backlog,
        queued=obs.queued,
        in_flight=obs.in_flight,
        quota_left=quota,
        wanted=wanted,
        desired=desired,
        actual=actual,
        actions=tuple(actions),
        summary=summary,
    )


def shard_order(shards: Sequence[ShardBacklog]) -> list[ShardBacklog]:
    """The order shards are served in from the quota and a burst's groups (pure): the most
    backlog first, then by shard."""
    return sorted(shards, key=lambda s: (-s.backlog, s.shard))


def _cores(settings: ScaleSettings, workers: int) -> int:
    """Cores of quota ``workers`` take."""
    return math.ceil(workers * settings.worker.cpu / defaults.TENTHS)


def _decide_shards(obs: Observation, settings: ScaleSettings) -> Decision:
    """:func:`decide` for worker groups pinned to shards: each shard a pool of its own."""
    count = len(obs.shards)
    most = dict(zip(range(1, count + 1), shard_workers(settings.max_workers, count), strict=True))
    least = dict(zip(range(1, count + 1), sizing.spread(settings.min_workers, count), strict=True))
    deletes = _deletes(obs.groups)
    quota = {loc: max(0, obs.quota_free.get(loc, 0)) for loc in settings.locations}
    free = dict(quota)
    index = max(obs.next_index, next_free_index((g.name for g in obs.groups), settings.name_prefix))
    budget = settings.max_groups_per_burst
    parts: dict[int, Decision] = {}
    for shard in shard_order(obs.shards):
        k = shard.shard
        own = replace(
            settings,
            min_workers=least.get(k, 0),
            max_workers=most.get(k, 1),
            max_groups_per_burst=budget,
        )
        part = decide(
            replace(
                obs,
                queued=shard.queued,
                in_flight=shard.in_flight,
                quota_free=free,
                groups=[g for g in obs.groups if g.shard == k and not g.terminated],
                next_index=index,
                shards=(),
            ),
            own,
        )
        creates = part.creates
        for c in creates:
            free[c.location] = max(0, free[c.location] - _cores(settings, c.total))
        index += sum(len(c.names) for c in creates)
        budget = max(0, budget - sum(len(c.names) for c in creates))
        pinned = tuple(
            replace(a, shard=k, reason=f"shard {k}: {a.reason}")
            if isinstance(a, CreateGroups)
            else a
            for a in part.actions
        )
        parts[k] = replace(part, actions=pinned, summary=f"shard {k}: {part.summary}")
    counts = (
        sum(p.wanted for p in parts.values()),
        sum(p.desired for p in parts.values()),
        sum(p.actual for p in parts.values()),
    )
    actions = (*deletes, *(a for p in parts.values() for a in p.actions))
    summary = "; ".join(parts[k].summary for k in sorted(parts))
    return _decision(obs, quota, counts, actions, summary)


def group_tags(
    location: str, priority: Priority, floor: bool, shard: int | None = None
) -> tuple[tuple[str, str], ...]:
    """Tags a created worker group carries so :func:`worker_group_of` can read it back."""
    return (
        (TAG_FLOOR, "true" if floor else "false"),
        (TAG_LOCATION, location),
        (TAG_PRIORITY, priority),
        *(((TAG_SHARD, str(shard)),) if shard is not None else ()),
    )


def worker_group_of(
    group: ObservedGroup, default_location: str, idle_since: float | None = None
) -> WorkerGroup:
    """Map an observed group to the scaler's view (tags from :func:`group_tags`).

    Args:
        group (ObservedGroup): The group as the backend observed it.
        default_location (str): Region when the group has no location tag.
        idle_since (float | None): From the job log: since when none of its workers holds
            a batch. Default: None (busy or unknown).
    """
    tags = group.tags
    priority: Priority = "Spot" if tags.get(TAG_PRIORITY, "").lower() == "spot" else "Regular"
    failed = group.provisioning_state in ("Failed", "Canceled")
    live = sum(1 for c in group.containers if c.state != "Terminated")
    if failed:
        live = 0
    elif not group.containers:
        live = 1  # nothing known yet: never take an unknown group for a terminated one
    shard = tags.get(TAG_SHARD, "")
    return WorkerGroup(
        name=group.name,
        location=tags.get(TAG_LOCATION, default_location),
        priority=priority,
        workers=len(group.containers),
        live=live,
        floor=tags.get(TAG_FLOOR) == "true",
        idle_since=idle_since,
        evicted=group.evicted,
        shard=int(shard) if shard.isdigit() else None,
    )


def plan_notes(workload: Workload, location: str, subnet: bool) -> list[str]:
    """Notes ``deployer plan`` adds for autoscaled, Spot and overflow worker groups.

    Args:
        workload (Workload): The validated workload file.
        location (str): The resolved primary region.
        subnet (bool): The deployment uses a subnet.
    """
    blast = workload.workloads.blast
    if blast is None:
        return []
    notes: list[str] = []
    auto = blast.autoscale
    if auto is not None:
        notes.append(
            f"BLAST workers autoscale between {auto.min_workers} and {auto.max_workers} "
            f"({auto.target_backlog_per_worker} batches per worker; idle workers exit after "
            f"{auto.scale_in_after}) during `deployer run`: the worker rows show the ceiling, "
            "and workers cost only while they run"
        )
    if blast.priority == "spot":
        fallback = (
            "recreated as regular when ACI has no Spot capacity"
            if blast.spot_fallback
            else "retried as Spot with backoff when ACI has no Spot capacity"
        )
        notes.append(
            "BLAST worker groups run as Spot: evictable at any time (their batches go back to "
            f"the queue), no IP address; {fallback}"
        )
        if subnet:
            notes.append(
                "Spot worker groups cannot join the subnet: they reach the storage account "
                "over its public endpoint, so its firewall must allow them"
            )
    overflow = workload.deployment.overflow_locations
    if overflow:
        gb = sum(db.bytes_to_cache or 0 for db in blast.databases) / defaults.GB
        notes.append(
            f"worker groups beyond {location}'s vCPU quota go to {', '.join(overflow)}; the "
            f"storage account stays in {location}, so those workers add cross-region latency "
            "to every queue, table and blob request (tens of ms within a continent, more "
            f"between continents) and inter-region egress: about {gb:.1f} GB of databases per "
            "worker once, plus queries and results (see the Azure bandwidth pricing page)"
        )
    return notes


EXIT_WHEN_IDLE = "BLAST_EXIT_WHEN_IDLE"
QUEUE = "BLAST_QUEUE"


def worker_specs(
    create: CreateGroups, template: GroupSpec, settings: ScaleSettings
) -> list[GroupSpec]:
    """The groups to PUT for one create action.

    Args:
        create (CreateGroups): The action.
        template (GroupSpec): A run worker group of ``workers_per_group`` workers (e.g. the
            first of ``deployer.run.groups.worker_groups``): its containers, env, volumes,
            restart policy and tags are kept.
        settings (ScaleSettings): The scaler's settings (worker size, ``scale_in_after``).

    Returns:
        list[GroupSpec]: One per name, with the action's worker count, priority and region;
        Spot groups without subnet; floor groups without ``BLAST_EXIT_WHEN_IDLE``, the
        others with it set to ``scale_in_after``; a pinned action's groups on its shard's
        queue (``BLAST_QUEUE``); tagged by :func:`group_tags`.

    Raises:
        ValueError: When the template holds fewer workers than a group needs.
    """
    specs = []
    for name, count in zip(create.names, create.workers, strict=True):
        if count > len(template.containers):
            raise ValueError(f"template {template.name} holds fewer than {count} workers")
        containers = []
        for c in template.containers[:count]:
            env = {k: v for k, v in c.env if k != EXIT_WHEN_IDLE}
            if not create.floor:
                env[EXIT_WHEN_IDLE] = f"{settings.scale_in_after}s"
            if create.shard is not None:
                env[QUEUE] = shard_queue(env[QUEUE], create.shard)
            containers.append(replace(c, resources=settings.worker, env=tuple(sorted(env.items()))))
        # Fewer workers than the template may fall below ACI's group minimum: pad again.
        padded = sizing.pad_to_minimum(
            [sizing.ContainerSize(i, 1, c.resources) for i, c in enumerate(containers)],
            sizing.ACI,
        )
        containers = [
            replace(c, resources=p.resources) for c, p in zip(containers, padded, strict=True)
        ]
        mounted = {m.volume for c in containers for m in c.mounts}
        tags = {
            **dict(template.tags),
            **dict(group_tags(create.location, create.priority, create.floor, create.shard)),
        }
        specs.append(
            replace(
                template,
                name=name,
                containers=tuple(containers),
                volumes=tuple(v for v in template.volumes if v in mounted),
                priority=create.priority,
                subnet_id=None if create.priority == "Spot" else template.subnet_id,
                location=create.location,
                tags=tuple(sorted(tags.items())),
            )
        )
    return specs
