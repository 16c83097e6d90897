"""One pass of the autoscaler against a backend: observe, decide, act (the I/O edge).

The janitor (or a local loop against the emulator) calls :func:`reconcile` every few
seconds with the backlog it read from the queue and the job log, and stores the returned
:class:`ScaleState` in the run record. Everything else is read from Azure on each pass, so
a restarted loop carries on without doubling or losing groups. The decision itself is
:func:`deployer.autoscale.decide` (pure).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from deployer import defaults
from deployer.autoscale import (
    CreateGroups,
    Decision,
    DeleteGroup,
    Observation,
    ScaleSettings,
    ShardBacklog,
    SpotRefusal,
    decide,
    next_free_index,
    worker_group_of,
    worker_specs,
)
from deployer.backends.base import Backend
from deployer.errors import DeployerError
from deployer.plan import GroupSpec
from deployer.spot import Verdict, classify_error


@dataclass(frozen=True)
class ScaleState:
    """What the loop keeps between passes (in the run record; JSON via :meth:`to_json`).

    Args:
        last_burst (float | None): Epoch seconds of the last create burst.
        next_index (int): Lowest index a new worker group may take.
        spot_refusals (dict[str, SpotRefusal]): Regions where Spot was refused lately.
        throttled_until (float | None): No creates before then (ARM throttled or failed).
    """

    last_burst: float | None = None
    next_index: int = 1
    spot_refusals: dict[str, SpotRefusal] = field(default_factory=dict)
    throttled_until: float | None = None

    def to_json(self) -> str:
        """The state as a JSON string (one Table property)."""
        refusals = {k: [v.at, v.count] for k, v in sorted(self.spot_refusals.items())}
        return json.dumps(
            {
                "last_burst": self.last_burst,
                "next_index": self.next_index,
                "spot_refusals": refusals,
                "throttled_until": self.throttled_until,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> ScaleState:
        """Read :meth:`to_json`'s output; None or empty gives a fresh state."""
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        return cls(
            last_burst=data.get("last_burst"),
            next_index=int(data.get("next_index", 1)),
            spot_refusals={
                k: SpotRefusal(float(at), int(n))
                for k, (at, n) in (data.get("spot_refusals") or {}).items()
            },
            throttled_until=data.get("throttled_until"),
        )


@dataclass(frozen=True)
class Outcome:
    """What happened to one group this pass.

    Args:
        group (str): Group name.
        action (str): ``create`` or ``delete``.
        ok (bool): It succeeded.
        verdict (Verdict | None): For a refused create, what the refusal means.
        message (str): One line for the log.
    """

    group: str
    action: str
    ok: bool
    verdict: Verdict | None = None
    message: str = ""


@dataclass(frozen=True)
class Pass:
    """One pass: the decision, the state to store, and what happened."""

    decision: Decision
    state: ScaleState
    outcomes: tuple[Outcome, ...]


def observe(
    backend: Backend,
    deployment: str,
    settings: ScaleSettings,
    state: ScaleState,
    *,
    queued: int,
    in_flight: int,
    now: float,
    idle_since: Mapping[str, float] | None = None,
    known: Iterable[str] = (),
    shards: Sequence[ShardBacklog] = (),
) -> Observation:
    """Read the run's worker groups and each region's free vCPU quota.

    Args:
        backend (Backend): ACI (or the in-memory backend in tests).
        deployment (str): The deployment whose groups are listed.
        settings (ScaleSettings): Its ``name_prefix`` selects the run's worker groups.
        state (ScaleState): The stored state.
        queued (int): Batches waiting on the run's queue.
        in_flight (int): Batches a worker holds (job log: running).
        now (float): Epoch seconds.
        idle_since (Mapping[str, float] | None): Per group, since when none of its workers
            holds a batch (from the job log). Default: unknown.
        known (Iterable[str]): Every group name the run ever had (its record), so a lost
            state never reuses the name of a deleted (and billed) group. Default: none.
        shards (Sequence[ShardBacklog]): Each shard's backlog when the groups are pinned to
            shards. Default: none (every group takes every job).
    """
    idle = idle_since or {}
    groups = [
        worker_group_of(g, settings.locations[0], idle.get(g.name))
        for g in backend.list(deployment)
        if g.name.startswith(settings.name_prefix)
    ]
    quota = {}
    for loc in settings.locations:
        usage = backend.usage(loc)
        quota[loc] = usage.cores_limit - usage.cores_used
    return Observation(
        now=now,
        queued=queued,
        in_flight=in_flight,
        quota_free=quota,
        groups=tuple(sorted(groups, key=lambda g: g.name)),
        last_burst=state.last_burst,
        next_index=max(state.next_index, next_free_index(known, settings.name_prefix)),
        spot_refusals=dict(state.spot_refusals),
        throttled_until=state.throttled_until,
        shards=tuple(shards),
    )


def _create(backend: Backend, spec: GroupSpec) -> Outcome:
    try:
        # Only the PUT: refusals come with it, and a pass never waits for provisioning.
        backend.start_create(spec)
    except DeployerError as exc:
        verdict = classify_error(exc)
        return Outcome(spec.name, "create", False, verdict, f"{exc.message} [{verdict.reason}]")
    return Outcome(spec.name, "create", True, message=f"created {spec.name}")


def act(
    backend: Backend,
    decision: Decision,
    state: ScaleState,
    settings: ScaleSettings,
    template: GroupSpec,
    now: float,
    *,
    delete_terminated: bool = True,
    parallelism: int = defaults.DEFAULT_PARALLELISM,
) -> tuple[ScaleState, list[Outcome]]:
    """Carry out a decision and return the state to store.

    Creates are sent concurrently, so a burst's last request leaves within moments. A Spot
    create refused for capacity records a refusal for its region (the next pass falls back
    or waits); a success there clears it; a transient refusal holds creates for one interval.

    Args:
        backend (Backend): Where the groups live.
        decision (Decision): From :func:`deployer.autoscale.decide`.
        state (ScaleState): The stored state.
        settings (ScaleSettings): The scaler's settings.
        template (GroupSpec): A run worker group (see :func:`deployer.autoscale.worker_specs`).
        now (float): Epoch seconds.
        delete_terminated (bool): Delete terminated groups here; False when the caller
            bills and deletes them itself (the janitor does). Default: True.
        parallelism (int): Most creates in flight. Default: 16.
    """
    outcomes: list[Outcome] = []
    if delete_terminated:
        for a in decision.actions:
            if isinstance(a, DeleteGroup):
                gone = backend.delete(a.name)
                outcomes.append(Outcome(a.name, "delete", True, message=a.reason if gone else ""))
    creates = decision.creates
    if not creates:
        return state, outcomes
    specs: list[tuple[CreateGroups, GroupSpec]] = [
        (a, spec) for a in creates for spec in worker_specs(a, template, settings)
    ]
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(specs)))) as pool:
        made = list(pool.map(lambda pair: _create(backend, pair[1]), specs))
    outcomes += made
    refusals = dict(state.spot_refusals)
    throttled = state.throttled_until
    # Per region: one capacity refusal in the burst counts, even beside accepted creates
    # (ACI had room for some groups only); a region is cleared when all were accepted.
    refused = {
        a.location
        for (a, _), o in zip(specs, made, strict=True)
        if a.priority == "Spot" and o.verdict is not None and o.verdict.kind == "capacity"
    }
    for loc in refused:
        before = refusals.get(loc)
        refusals[loc] = SpotRefusal(now, (before.count if before else 0) + 1)
    for (action, _), outcome in zip(specs, made, strict=True):
        kind = outcome.verdict.kind if outcome.verdict else None
        if action.priority == "Spot" and outcome.ok and action.location not in refused:
            refusals.pop(action.location, None)
        # A wrong request will not right itself: hold creates long enough to be noticed.
        hold = {"retry": settings.scale_out_interval, "configuration": defaults.SPOT_RETRY_MAX_S}
        if kind in hold:
            throttled = max(throttled or now, now + hold[kind])
    last = next_free_index((n for a in creates for n in a.names), settings.name_prefix) - 1
    return (
        replace(
            state,
            last_burst=now,
            next_index=max(state.next_index, last + 1),
            spot_refusals=refusals,
            throttled_until=throttled,
        ),
        outcomes,
    )


def reconcile(
    backend: Backend,
    deployment: str,
    settings: ScaleSettings,
    state: ScaleState,
    template: GroupSpec,
    *,
    queued: int,
    in_flight: int,
    now: float,
    idle_since: Mapping[str, float] | None = None,
    known: Iterable[str] = (),
    delete_terminated: bool = True,
    log: Callable[[str], None] | None = None,
    shards: Sequence[ShardBacklog] = (),
) -> Pass:
    """One pass: :func:`observe`, :func:`deployer.autoscale.decide`, :func:`act`.

    Args:
        backend (Backend): Where the groups live.
        deployment (str): The deployment (its groups are listed by tag).
        settings (ScaleSettings): The scaler's settings.
        state (ScaleState): The stored state (``ScaleState()`` for a new run).
        template (GroupSpec): A run worker group to copy.
        queued (int): Batches waiting on the run's queue.
        in_flight (int): Batches workers hold.
        now (float): Epoch seconds.
        idle_since (Mapping[str, float] | None): Per group, since when it is idle.
        known (Iterable[str]): Every group name the run ever had (see :func:`observe`).
        delete_terminated (bool): See :func:`act`. Default: True.
        log (Callable[[str], None] | None): Gets the decision's summary and one line per
            action and outcome. Default: None.
        shards (Sequence[ShardBacklog]): Each shard's backlog when the groups are pinned to
            shards (see :func:`observe`). Default: none.

    Returns:
        Pass: The decision (its inputs included), the new state and the outcomes.
    """
    obs = observe(
        backend,
        deployment,
        settings,
        state,
        queued=queued,
        in_flight=in_flight,
        now=now,
        idle_since=idle_since,
        known=known,
        shards=shards,
    )
    decision = decide(obs, settings)
    new_state, outcomes = act(
        backend, decision, state, settings, template, now, delete_terminated=delete_terminated
    )
    if log:
        log(decision.summary)
        for a in decision.actions:
            log(a.reason)
        for o in outcomes:
            if not o.ok:
                log(f"{o.group}: {o.message}")
    return Pass(decision, new_state, tuple(outcomes))
