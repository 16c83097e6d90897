"""Run ids and the run record: everything a restarted janitor or another machine needs.

The record is plain data; :mod:`deployer.run.store` keeps it in Table storage (one entity
per run plus one per batch), so the janitor's loop is level-triggered: each pass reads the
record, the job rows and the groups, and decides from those alone.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from blast_client.joblog import FINAL as JOB_FINAL
from blast_client.messages import JobSpec, ShardRef

from deployer.protocol import PINNED_PROTOCOL, shard_queue

RUN_ID = re.compile(r"^r[0-9a-f]{8}$")
"""``r`` and 8 hex digits: short enough for ``<deployment>-<run>-janitor`` (at most 63)."""

ACTIVE = ("submitting", "running")
FINAL = ("succeeded", "failed", "cancelled", "expired")
STATES = (*ACTIVE, *FINAL)
"""Run states (a job's are ``blast_client.joblog.STATUSES``)."""


def new_run_id() -> str:
    """Return a fresh run id, e.g. ``r1a2b3c4d``."""
    return f"r{secrets.token_hex(4)}"


def is_run_id(text: str) -> bool:
    """True for a well-formed run id."""
    return bool(RUN_ID.match(text))


def queue_name(run_id: str) -> str:
    """The run's own job queue (its poison queue is ``<queue>-poison``)."""
    return f"run-{run_id}"


def run_queues(run_id: str, shards: int, pinned: bool) -> tuple[str, ...]:
    """The queues a run's jobs are put on (pure): one per shard when its workers are pinned
    to shards, else the run's own queue."""
    queue = queue_name(run_id)
    if not pinned or shards < 2:
        return (queue,)
    return tuple(shard_queue(queue, k) for k in range(1, shards + 1))


@dataclass(frozen=True)
class Batch:
    """One batch of a run.

    Args:
        index (int): 1-based position; batches are contiguous, so index order is query order.
        job_id (str): The batch's BLAST job id (a sharded batch's first shard's).
        queries (int): Number of query records in it.
        shards (tuple[str, ...]): Job ids of its shards, in shard order, when the database is
            searched in shards (one job per shard); empty when it is searched whole.
    """

    index: int
    job_id: str
    queries: int
    shards: tuple[str, ...] = ()

    @property
    def jobs(self) -> tuple[str, ...]:
        """Every job id of the batch: its shards', or its own."""
        return self.shards or (self.job_id,)


_WORST = ("poisoned", "failed", "cancelled")
"""A finished batch of shards takes the worst of its shards' final states, in this order."""


def batch_state(batch: Batch, jobs: Mapping[str, str]) -> str:
    """A batch's state (a job's, ``blast_client.joblog.STATUSES``) from its jobs' (pure).

    A batch of shards is done when all its shards are: ``succeeded`` when all succeeded,
    else the worst of their final states; ``running`` while any shard runs or has finished,
    ``queued`` before. A missing job row counts as queued.

    Args:
        batch (Batch): The batch.
        jobs (Mapping[str, str]): State of each job id.
    """
    states = [jobs.get(j, "queued") for j in batch.jobs]
    if len(states) == 1:
        return states[0]
    if all(s in JOB_FINAL for s in states):
        return next((w for w in _WORST if w in states), "succeeded")
    return "running" if any(s != "queued" for s in states) else "queued"


@dataclass(frozen=True)
class GroupBill:
    """What one container group was billed for, from its own start and stop times.

    Args:
        group (str): Group name.
        kind (str): ``workers`` or ``janitor``.
        vcpu (float): Requested vCPU of the group.
        memory_gb (float): Requested GB of the group.
        start (float): Epoch seconds its first container started.
        stop (float): Epoch seconds its last container stopped (or it was deleted).
        priority (str): ``Regular`` or ``Spot``: the price it is billed at.
        location (str): Its region (empty when unknown).
    """

    group: str
    kind: str
    vcpu: float
    memory_gb: float
    start: float
    stop: float
    priority: str = "Regular"
    location: str = ""

    @property
    def seconds(self) -> float:
        """Billed seconds (never negative)."""
        return max(0.0, self.stop - self.start)


@dataclass(frozen=True)
class Run:
    """The record of one run.

    Args:
        run_id (str): Its id.
        deployment (str): The deployment (workload file) it belongs to.
        status (str): One of :data:`STATES`.
        created (float): Epoch seconds it was started.
        params (dict[str, Any]): Program, database, options, outfmt, batch length: what the
            manifest records.
        queries (int): Query records submitted.
        batches (tuple[Batch, ...]): Its batches in query order.
        groups (tuple[str, ...]): Every group the run created (workers and janitor).
        janitor (str | None): The janitor group's name (None when the CLI is the janitor).
        deadline (float | None): Epoch seconds at which ``deployment.ttl`` ends it.
        reason (str): Why it ended (or is ending), for people.
        finished (float | None): Epoch seconds it became final.
        bills (tuple[GroupBill, ...]): Groups billed so far (recorded before each delete).
        deleted (tuple[str, ...]): Groups already deleted.
        scale (str): The autoscaler's state (:class:`deployer.scaler.ScaleState` as JSON);
            empty for a run without ``blast.autoscale``.
        protocol (int): The run protocol it needs (:func:`deployer.protocol.run_protocol`; 1
            for a record that names none: started before protocols were recorded).
    """

    run_id: str
    deployment: str
    status: str
    created: float
    params: dict[str, Any] = field(default_factory=dict)
    queries: int = 0
    batches: tuple[Batch, ...] = ()
    groups: tuple[str, ...] = ()
    janitor: str | None = None
    deadline: float | None = None
    reason: str = ""
    finished: float | None = None
    bills: tuple[GroupBill, ...] = ()
    deleted: tuple[str, ...] = ()
    scale: str = ""
    protocol: int = 1

    @property
    def autoscaled(self) -> bool:
        """True when the janitor scales the run's workers (``blast.autoscale``)."""
        return bool(self.params.get("autoscale"))

    @property
    def final(self) -> bool:
        """True once the run has ended (its groups may still be being deleted)."""
        return self.status in FINAL

    @property
    def queue(self) -> str:
        """The run's job queue (a run pinned to shards puts its jobs on :attr:`queues`)."""
        return queue_name(self.run_id)

    @property
    def shards(self) -> int:
        """Shards its database is searched in (1: whole)."""
        return int(self.params.get("shards") or 1)

    @property
    def pinned(self) -> bool:
        """True when each shard's jobs have a queue of their own and every worker group serves
        one shard (run protocol 3; a sharded run of protocol 2 put them all on one queue)."""
        return self.shards > 1 and self.protocol >= PINNED_PROTOCOL

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues its jobs are on: one per shard when :attr:`pinned`, else its own."""
        return run_queues(self.run_id, self.shards, self.pinned)

    @property
    def all_queues(self) -> tuple[str, ...]:
        """Every queue the run may have (to drop them all): its own and its shards'."""
        return tuple(dict.fromkeys((self.queue, *run_queues(self.run_id, self.shards, True))))

    def billed(self, group: str) -> bool:
        """True when ``group`` already has a bill."""
        return any(b.group == group for b in self.bills)

    def with_bill(self, bill: GroupBill) -> Run:
        """Return the record with ``bill`` added (once per group)."""
        if self.billed(bill.group):
            return self
        return replace(self, bills=(*self.bills, bill))

    def with_deleted(self, group: str) -> Run:
        """Return the record with ``group`` marked deleted."""
        if group in self.deleted:
            return self
        return replace(self, deleted=(*self.deleted, group))


def shard_jobs(spec: JobSpec, count: int) -> tuple[JobSpec, ...]:
    """A batch's jobs: itself when the database is searched whole (``count`` 1), else one job
    per shard, ``<job id>-s1`` ... ``-s<count>`` (pure).

    Args:
        spec (JobSpec): The batch's job.
        count (int): Shards of its database.
    """
    if count == 1:
        return (spec,)
    return tuple(
        replace(spec, job_id=f"{spec.job_id}-s{i + 1}", shard=ShardRef(i, count))
        for i in range(count)
    )
