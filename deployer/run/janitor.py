"""The janitor: carries out :func:`deployer.run.decide.decide` until the run is over.

It runs as a small ACI group (``deployer-janitor`` in the ``deployer`` image, entry point
:mod:`deployer.cli.janitor`) with the deployment's managed identity, or inside ``deployer
run`` when there is no janitor group.
Every pass reads the run record, the groups and the job rows changed since the last pass
(:mod:`deployer.run.jobview`; a restarted janitor's first pass reads all but the queued
ones), so a killed janitor that ACI restarts (``restartPolicy: OnFailure``) simply carries on.

Environment of ``deployer-janitor``: ``JANITOR_DEPLOYMENT``, ``JANITOR_RUN`` (a run id; unset
for a deployment janitor, see :mod:`deployer.run.deployment_janitor`), ``JANITOR_INTERVAL``
(seconds between passes, default :data:`deployer.defaults.JANITOR_INTERVAL_S`),
``AZURE_SUBSCRIPTION_ID``, ``DEPLOYER_RESOURCE_GROUP``, ``DEPLOYER_ARM_ENDPOINT`` and the
storage variables of the workers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from blast_client import BlastClient
from blast_client.joblog import index_entries

from deployer import defaults
from deployer.backends.base import Backend, ObservedGroup
from deployer.errors import DeployerError
from deployer.plan import RUN_TAG
from deployer.plan.janitor import janitor_group_name
from deployer.run import decide as d
from deployer.run import heartbeat
from deployer.run.autoscaling import (
    RunScaler,
    decision_row,
    record_decision,
    scale_pass,
    worth_recording,
)
from deployer.run.jobview import JobView
from deployer.run.state import Run, queue_name
from deployer.run.store import Conflict, RunStore
from deployer.scope import aci_backend, scope_settings, storage_client
from deployer.settings import NO_OVERRIDES

log = logging.getLogger("deployer.janitor")


@dataclass
class Janitor:
    """One run's janitor.

    Args:
        run_id (str): The run.
        store (RunStore): The run records.
        client (BlastClient): Storage of the run (its queue).
        backend (Backend): Where the groups live.
        self_group (str | None): The janitor's own group (None inside ``deployer run``).
        clock (Callable[[], float]): Epoch seconds.
        on_step (Callable[[d.Step], None]): Told about each step before it is carried out.
        scaler (RunScaler | None): Scales the workers of an autoscaled run (after the run's
            own steps, in the same pass); None leaves the workers as they are.
        view (JobView | None): The job rows read so far (None: the first pass makes it);
            ``deployer run`` shares it with its progress display.
        wait_deletes (bool): Wait until each deleted group is gone. A pass sends its deletes
            and goes on (ARM takes seconds more, which would make the pass as long; a group
            still deleting is listed, and deleted again, in the next pass); ``run cancel``
            waits, so that its workers have stopped when it returns.
    """

    run_id: str
    store: RunStore
    client: BlastClient
    backend: Backend
    self_group: str | None = None
    clock: Callable[[], float] = time.time
    on_step: Callable[[d.Step], None] = field(default=lambda step: None)
    scaler: RunScaler | None = None
    view: JobView | None = None
    wait_deletes: bool = False
    _recorded: str = field(default="", init=False, repr=False)  # last decision key logged

    def groups(self, deployment: str) -> list[ObservedGroup]:
        """The run's existing groups."""
        return [g for g in self.backend.list(deployment) if g.tags.get(RUN_TAG) == self.run_id]

    def jobs(self, run: Run) -> dict[str, str]:
        """State of each of the run's jobs: the rows changed since the last pass, read into
        :attr:`view` (the first pass reads all but the queued ones, which count as queued
        unread)."""
        if self.view is None:
            self.view = JobView.of(run, skip_queued=True)
        self.view.refresh(self.client)
        return self.view.statuses()

    def step(self) -> tuple[Run, list[ObservedGroup]]:
        """One pass: observe, decide, act. Returns the run and the groups left after it.

        Raises:
            DeployerError: when the run does not exist.
        """
        while True:
            found = self.store.get(self.run_id)
            if found is None:
                raise DeployerError(f"run {self.run_id} not found", code="RunNotFound")
            run, etag = found
            groups = self.groups(run.deployment)
            jobs = self.jobs(run)
            steps = d.decide(run, jobs, groups, self.clock())
            try:
                run, etag = self._carry_out(run, etag, steps)
                gone = {s.group for s in steps if isinstance(s, d.Delete)}
                left = [g for g in groups if g.name not in gone]
                if self.scaler is not None and run.autoscaled and run.status == "running":
                    run, left = self._scale(run, etag, jobs, left)
            except Conflict:
                continue  # a cancel (or another janitor) changed the record: decide again
            return run, left

    def _scale(
        self, run: Run, etag: str, jobs: dict[str, str], groups: list[ObservedGroup]
    ) -> tuple[Run, list[ObservedGroup]]:
        """The autoscaling pass: reconcile, store the state, log the decision."""
        assert self.scaler is not None
        now = self.clock()
        run, done = scale_pass(self.scaler, run, jobs, self.backend, groups, now, log.info)
        self.store.save(run, etag)
        record, self._recorded = worth_recording(done.decision, self._recorded)
        if record:
            row = decision_row(done.decision, done.outcomes, now)
            record_decision(self.client.storage.table, self.run_id, row)
        return run, groups

    def _carry_out(self, run: Run, etag: str, steps: list[d.Step]) -> tuple[Run, str]:
        for step in steps:
            self.on_step(step)
            log.info("%s", describe(step))
            if isinstance(step, d.Finish):
                run = replace(run, status=step.status, reason=step.reason, finished=self.clock())
                etag = self.store.save(run, etag)
            elif isinstance(step, d.CancelJobs):
                seen = self.view.jobs if self.view is not None else {}
                unread = frozenset(j for j in step.job_ids if j not in seen)
                cancel_jobs(
                    self.client, self.run_id, step.job_ids, step.reason, self.clock(), unread
                )
            elif isinstance(step, d.Bill):
                run = run.with_bill(step.bill)
                etag = self.store.save(run, etag)
            elif isinstance(step, d.Delete):
                self._delete(step.group)
                if step.group not in run.deleted:
                    run = run.with_deleted(step.group)
                    etag = self.store.save(run, etag)
            elif isinstance(step, d.DropQueues):
                drop_queues(self.client, run.all_queues)
            elif isinstance(step, d.DeleteSelf):
                if step.group not in run.deleted:
                    run = run.with_deleted(step.group)
                    etag = self.store.save(run, etag)
                # ACI stops this container while the delete completes; nothing runs after it.
                self._delete(step.group)
        return run, etag

    def _delete(self, group: str) -> None:
        if self.wait_deletes:
            self.backend.delete(group)
        else:
            self.backend.start_delete(group)

    def until_done(
        self, interval: float, on_pass: Callable[[Run, list[ObservedGroup]], None] | None = None
    ) -> Run:
        """Pass after pass until the run is final and none of its groups is left.

        Args:
            interval (float): Seconds between passes.
            on_pass (Callable | None): Called after each pass with the run and its groups.
        """
        while True:
            run, groups = self.step()
            heartbeat.beat()
            if on_pass is not None:
                on_pass(run, groups)
            if run.final and not groups:
                return run
            assert self.view is not None, "the pass read the job rows"
            until_next_pass(run, self.view, self.client, interval)


def until_next_pass(
    run: Run,
    view: JobView,
    client: BlastClient,
    seconds: float,
    *,
    every: float = defaults.FINISH_CHECK_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> None:
    """Wait ``seconds`` for the next pass. While the run's last batch may finish before it
    (:func:`~deployer.run.decide.may_end_within`), read the changed job rows into ``view``
    meanwhile, when :func:`~deployer.run.decide.next_look` says (every ``every`` seconds,
    and often around the time the last round should end), and return as soon as none is
    unfinished: the pass that ends the run (and deletes its groups) then comes right after
    its last batch, not up to a whole interval later, with its workers idle and billed."""
    deadline = clock() + seconds
    if run.final or not d.may_end_within(run, view.jobs, seconds):
        sleep(seconds)
        return
    while (left := deadline - clock()) > 0:
        sleep(min(d.next_look(run, view.jobs, wall(), every), left))
        view.refresh(client)
        if not d.unfinished(run, view.statuses()):
            return
        left = deadline - clock()
        if not d.may_end_within(run, view.jobs, left):  # e.g. a batch went back to its queue
            sleep(max(0.0, left))
            return


CANCEL_THREADS = 16
"""Job rows marked cancelled at once (see ``blast_client.client.SUBMIT_THREADS``)."""


def cancel_jobs(
    client: BlastClient,
    run_id: str,
    job_ids: Iterable[str],
    reason: str,
    now: float,
    unread: Container[str] = frozenset(),
) -> None:
    """Mark a run's jobs ``cancelled``, creating the rows (and index entries) that are
    missing; a row a worker made final since it was read keeps its status (the write is
    conditional on the row's etag).

    A job in ``unread`` (no row seen: a run's jobs are queued without one) gets its row in one
    create, its index entries in batch transactions after; only when it has a row after all
    is that row updated. A run cancelled just after its submission has thousands of them."""
    fields: dict[str, Any] = {
        "status": "cancelled",
        "error": reason,
        "finished": now,
        "run_id": run_id,
    }

    def cancel(job_id: str) -> str | None:
        if job_id in unread and client.joblog.create(job_id, **fields):
            return job_id
        client.joblog.update_unless_final(job_id, **fields)
        return None

    with ThreadPoolExecutor(CANCEL_THREADS) as pool:
        created = [job for job in pool.map(cancel, job_ids) if job is not None]
    client.joblog.upsert_batched(e for job in created for e in index_entries(job, now, run_id))


def drop_queues(client: BlastClient, queues: Iterable[str]) -> None:
    """Delete the run's queues (:attr:`Run.all_queues`: its own and its shards'), and each
    one's poison queue if it is empty; a queue that does not exist is skipped."""
    storage = client.storage
    for name in queues:
        with contextlib.suppress(ResourceNotFoundError):
            storage.queue_client(name).delete_queue()
        poison = storage.queue_client(f"{name}-poison")
        try:
            if not poison.peek_messages(max_messages=1):
                poison.delete_queue()
        except ResourceNotFoundError:
            pass


def describe(step: d.Step) -> str:
    """One line for people (and the janitor's log) about a step."""
    if isinstance(step, d.Finish):
        return f"run {step.status}: {step.reason}"
    if isinstance(step, d.CancelJobs):
        return f"cancelling {len(step.job_ids)} unfinished batches ({step.reason})"
    if isinstance(step, d.Bill):
        b = step.bill
        return f"billed {b.group}: {b.seconds:.0f} s x {b.vcpu:g} vCPU, {b.memory_gb:g} GB"
    if isinstance(step, d.Delete):
        return f"deleting {step.group}: {step.reason}"
    if isinstance(step, d.DropQueues):
        return "dropping the run's queues"
    return f"deleting my own group {step.group}"


def main_from_env(env: Mapping[str, str]) -> Run:
    """``deployer-janitor`` for one run: passes until the run is over, itself deleted last.

    Args:
        env (Mapping[str, str]): ``JANITOR_RUN``, ``JANITOR_DEPLOYMENT``, ``JANITOR_INTERVAL``,
            ``JANITOR_AUTOSCALE`` and the Azure and storage variables (module docstring).
    """
    run_id = env["JANITOR_RUN"]
    deployment = env.get("JANITOR_DEPLOYMENT", "")
    interval = float(env.get("JANITOR_INTERVAL") or defaults.JANITOR_INTERVAL_S)
    client = storage_client(queue_name(run_id))
    backend = aci_backend(scope_settings(None, deployment, NO_OVERRIDES))
    janitor = Janitor(
        run_id,
        RunStore(client.storage.table),
        client,
        backend,
        self_group=janitor_group_name(deployment, run_id),
        scaler=RunScaler.from_env(env),
    )
    return janitor.until_done(interval)
