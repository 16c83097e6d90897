"""What the janitor does next for one run (pure, level-triggered).

Each pass observes the run record, the job rows and the run's groups, and
:func:`decide` returns the steps that move the world towards the run's end. Nothing is
remembered between passes except what the steps write to the record, so a restarted janitor
(or a second one) carries on where the last left off, and a reconcile loop (autoscaling) can
be added beside it.

Rules:

* a worker group whose containers have all terminated is billed, then deleted;
* when every batch is final the run becomes ``succeeded`` (all batches succeeded) or
  ``failed`` (some failed or were poisoned; the others' results are kept);
* at ``deadline`` (``deployment.ttl``) the unfinished batches are cancelled and the run becomes
  ``expired``, with the reason;
* when no worker group is left while batches are unfinished (lost workers), those batches are
  cancelled and the run becomes ``failed`` instead of waiting for ever; an autoscaled run
  (``blast.autoscale``) gets new workers from the janitor's scaling pass instead, and only
  ``deployment.ttl`` ends it early;
* likewise, when no worker group is left for one shard of a run pinned to shards (its groups
  were evicted or failed) while that shard has unfinished jobs, those jobs are cancelled (no
  other group takes them: each serves its own shard's queue), and the run ends ``failed``
  once the other shards' jobs are final, their batches kept;
* a run that needs a newer run protocol than the janitor's own (:data:`RUN_PROTOCOL`: the
  janitor's image is older than the deployer that started the run) is ended at once, its
  unfinished batches cancelled, ``failed`` with a reason that says so, rather than mis-handled
  (an older janitor knows no shards, and would end a run when each batch's first shard is
  done);
* once the run is final every group is billed and deleted, then the run's queues are
  dropped (the poison queue only when empty), the janitor itself last.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blast_client import JobStatus
from blast_client.joblog import FINAL as JOB_FINAL

from deployer import defaults
from deployer.autoscale import TAG_SHARD
from deployer.backends.base import ObservedGroup
from deployer.protocol import PROTOCOLS, RUN_PROTOCOL
from deployer.run.billing import bill_of
from deployer.run.state import FINAL, GroupBill, Run, batch_state


@dataclass(frozen=True)
class Finish:
    """Mark the run final with ``status`` and ``reason``."""

    status: str
    reason: str


@dataclass(frozen=True)
class CancelJobs:
    """Mark these unfinished jobs ``cancelled`` (their messages are dropped with the queue)."""

    job_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Bill:
    """Record a group's billing times before it is deleted."""

    bill: GroupBill


@dataclass(frozen=True)
class Delete:
    """Delete a worker group."""

    group: str
    reason: str


@dataclass(frozen=True)
class DropQueues:
    """Delete the run's queue, and its poison queue when empty (else keep it for reading)."""


@dataclass(frozen=True)
class DeleteSelf:
    """Delete the janitor's own group: always the last step."""

    group: str


Step = Finish | CancelJobs | Bill | Delete | DropQueues | DeleteSelf


def group_size(group: ObservedGroup) -> tuple[float, float]:
    """(vCPU, GB) requested by an observed group, from its canonical form."""
    containers = (group.canonical.get("recreate") or {}).get("containers") or {}
    cpu = sum(int(c.get("cpu", 0)) for c in containers.values())
    memory = sum(int(c.get("memory", 0)) for c in containers.values())
    return cpu / 10, memory / 10


def _bill(run: Run, group: ObservedGroup, now: float) -> list[Step]:
    if run.billed(group.name):
        return []
    vcpu, gb = group_size(group)
    bill = bill_of(group, group.tags.get("kind", "workers"), vcpu, gb, now)
    return [Bill(bill)] if bill else []


def unfinished(run: Run, jobs: Mapping[str, str]) -> list[str]:
    """Job ids of the run's batches (each shard's) that are not final (a missing row counts
    as queued)."""
    return [j for b in run.batches for j in b.jobs if jobs.get(j, "queued") not in JOB_FINAL]


ESTIMATE_MARGIN = 2.0
""":func:`may_end_within` says yes up to this many times ``seconds``: its estimate is rough (a
worker between two batches runs none, which doubles a 2-worker run's rounds; batches vary),
and a look too many costs one small read, a pass missed a whole interval."""


def may_end_within(run: Run, jobs: Mapping[str, JobStatus], seconds: float) -> bool:
    """True when the run's last batch may finish within ``seconds`` (pure): some of its jobs
    run, and the queued ones take less than :data:`ESTIMATE_MARGIN` times that at the pace
    of those finished so far (a round of the running ones per mean finished job's time). With
    none finished yet, only when none is queued: the run's last round."""
    statuses = {j: job.status for j, job in jobs.items()}
    left = unfinished(run, statuses)
    running = sum(1 for j in left if statuses.get(j) == "running")
    if not running:
        return False
    queued = len(left) - running
    if not queued:
        return True
    mean = pace(jobs)
    if mean is None:
        return False
    return math.ceil(queued / running) * mean < ESTIMATE_MARGIN * seconds


def pace(jobs: Mapping[str, JobStatus]) -> float | None:
    """Mean seconds a finished job took, from its row's start and finish (pure); None before
    any has finished with both times."""
    took = [
        job.finished - job.started
        for job in jobs.values()
        if job.final and job.started is not None and job.finished is not None
    ]
    return sum(took) / len(took) if took else None


END_WINDOW = 0.1
""":func:`next_look` looks often from this share of the mean batch's time before the last
round's expected end to three times that after it (one run's batches vary by a few percent;
a window missed costs a coarse look, an overrun a bounded few reads)."""


def next_look(run: Run, jobs: Mapping[str, JobStatus], now: float, every: float) -> float:
    """Seconds to the next look at a run's job rows while its end may be near (pure):
    :data:`~deployer.defaults.FINE_LOOK_S` in a window around the time its last round should
    end (every unfinished job runs; each started when its row says, and takes the mean
    finished job's time); before it, half the time to it (a batch may end early: each look
    halves how late it is seen, and a 15-s last round has a handful of looks, not 30); after
    it, ``every``. Without a pace, a start time, or in an earlier round: ``every``."""
    statuses = {j: job.status for j, job in jobs.items()}
    left = unfinished(run, statuses)
    running = [jobs[j] for j in left if statuses.get(j) == "running"]
    if not running or len(running) < len(left):
        return every
    mean = pace(jobs)
    starts = [job.started for job in running if job.started is not None]
    if mean is None or len(starts) < len(running):
        return every
    window = max(END_WINDOW * mean, every)
    opens = max(starts) + mean - window
    if now < opens:
        return max((opens - now) / 2, defaults.FINE_LOOK_S)
    return defaults.FINE_LOOK_S if now <= opens + 3 * window else every


def ending_look(looks: int) -> float:
    """Seconds before the next look (``looks`` made so far) at a run whose batches are all
    final: its ending pass and group deletes are a fraction of a second away on the
    emulator, seconds on ACI, so the waits double from
    :data:`~deployer.defaults.FINE_LOOK_S` up to :data:`~deployer.defaults.FINISH_CHECK_S`
    (ARM's reads are rationed)."""
    return min(defaults.FINE_LOOK_S * 2.0**looks, defaults.FINISH_CHECK_S)


def _unfinished_batches(run: Run, jobs: Mapping[str, str]) -> int:
    return sum(1 for b in run.batches if batch_state(b, jobs) not in JOB_FINAL)


STALL_GRACE = 300.0
"""Seconds after the start before missing worker groups count as lost (creates may lag)."""


def _stalled(run: Run, groups: Sequence[ObservedGroup], now: float) -> bool:
    """True when no worker group exists and none will: all were deleted as terminated, or
    they are missing well after the start (a run without autoscaling)."""
    if any(g.name != run.janitor for g in groups):
        return False
    planned = [n for n in run.groups if n != run.janitor]
    return all(n in run.deleted for n in planned) or now - run.created > STALL_GRACE


def orphaned_shards(
    run: Run, jobs: Mapping[str, str], groups: Sequence[ObservedGroup], now: float
) -> dict[int, tuple[str, ...]]:
    """The unfinished jobs of each shard that no live worker group serves (pure): only for a
    fixed-size run pinned to shards (an autoscaled one gets new groups), and only after
    :data:`STALL_GRACE` (creates may lag). Shards are 1-based, as the ``shard`` tag."""
    if not run.pinned or run.autoscaled or now - run.created <= STALL_GRACE:
        return {}
    served = {g.tags.get(TAG_SHARD) for g in groups if g.name != run.janitor and not g.terminated}
    found = {}
    for k in range(1, run.shards + 1):
        if str(k) in served:
            continue
        left = tuple(
            b.jobs[k - 1]
            for b in run.batches
            if len(b.jobs) >= k and jobs.get(b.jobs[k - 1], "queued") not in JOB_FINAL
        )
        if left:
            found[k] = left
    return found


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def decide(
    run: Run, jobs: Mapping[str, str], groups: Sequence[ObservedGroup], now: float
) -> list[Step]:
    """The steps of one janitor pass, in the order they must be carried out.

    Args:
        run (Run): The run record as stored.
        jobs (Mapping[str, str]): State of each of the run's job ids (from the job log).
        groups (Sequence[ObservedGroup]): The run's existing groups (tag ``run``).
        now (float): Epoch seconds.
    """
    steps: list[Step] = []
    # Cancelled after the groups' deletes are sent. A worker still stopping cannot undo a
    # cancel: every job row write after the first is conditional on its etag and leaves a
    # final row as it is (blast_client.joblog.FINAL).
    cancels: list[Step] = []
    status = run.status
    if status == "running":
        left = unfinished(run, jobs)
        if run.protocol > RUN_PROTOCOL:
            reason = (
                f"the janitor's deployer image speaks run protocol {RUN_PROTOCOL} "
                f"({PROTOCOLS[RUN_PROTOCOL]}), but the run needs protocol {run.protocol}, which "
                "it would mis-handle: ended, and its unfinished batches cancelled; run "
                "`deployer build` so that the janitor's image is the deployer's, then start it "
                "again"
            )
            if left:
                cancels.append(CancelJobs(tuple(left), "cancelled: the janitor's image is older"))
            steps.append(Finish("failed", reason))
            status = "failed"
        elif run.deadline is not None and now >= run.deadline:
            reason = (
                f"deployment.ttl reached at {_when(run.deadline)}: deleted every group; "
                f"{_unfinished_batches(run, jobs)} of {len(run.batches)} batches were "
                "unfinished and are cancelled"
            )
            if left:
                cancels.append(CancelJobs(tuple(left), "cancelled: deployment.ttl reached"))
            steps.append(Finish("expired", reason))
            status = "expired"
        elif left and not run.autoscaled and _stalled(run, groups, now):
            reason = (
                f"no worker group is left and {_unfinished_batches(run, jobs)} of "
                f"{len(run.batches)} batches are unfinished (workers lost); their results are "
                "missing, the others are kept"
            )
            cancels.append(CancelJobs(tuple(left), "cancelled: no worker left to run it"))
            steps.append(Finish("failed", reason))
            status = "failed"
        elif left and (orphaned := orphaned_shards(run, jobs, groups, now)):
            cancels += [
                CancelJobs(ids, f"cancelled: no worker group is left for shard {k}")
                for k, ids in orphaned.items()
            ]
        elif not left:
            bad = [b for b in run.batches if batch_state(b, jobs) != "succeeded"]
            status = "failed" if bad else "succeeded"
            reason = (
                f"{len(bad)} of {len(run.batches)} batches did not succeed"
                if bad
                else f"all {len(run.batches)} batches succeeded"
            )
            steps.append(Finish(status, reason))
    final = status in FINAL
    janitor = None
    for group in sorted(groups, key=lambda g: g.name):
        if group.name == run.janitor:
            janitor = group
            continue
        if final or group.terminated:
            why = f"run {status}" if final else "all its containers have terminated"
            if not final and group.evicted:
                why = "evicted (Spot): its containers were killed; its batches return to the queue"
            steps += _bill(run, group, now)
            steps.append(Delete(group.name, why))
    steps += cancels
    if final and (janitor is not None or any(isinstance(s, Delete) for s in steps)):
        steps.append(DropQueues())
    if final and janitor is not None:
        steps += _bill(run, janitor, now)
        steps.append(DeleteSelf(janitor.name))
    return steps
