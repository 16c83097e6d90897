"""The chaos soak: many jobs through several workers while workers are killed, storage
restarts and a worker loses its network. Shared by the soak test and ``bench/``.

:func:`run_soak` sizes the jobs from a rate it measures first (so they outlast the faults
on a fast machine and take no longer than needed on a slow one) and submits them. With
``chaos``, every :attr:`SoakConfig.kill_every` seconds it kills with ``-9`` a worker whose log
shows it mid-job (frozen first, so it stays mid-job until the kill) and starts it again (as
``restart: unless-stopped`` would); it restarts Azurite once and disconnects one worker from
the network for :attr:`SoakConfig.disconnect_for` seconds. It waits until every job is final
and returns what happened: per job its row, per kill the job it interrupted, and the recovery
time from that kill to the job's success.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import secrets
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
from blast_client.demo import DemoSpec, generate
from blast_client.fasta import iter_records
from blast_client.joblog import JobLog
from blast_client.messages import JobSpec, Options, Query

from testbed.blast_stack import BIG_DB, BIG_SEQS, Stack, WorkerContainer
from testbed.engine import wait_for

FINAL = ("succeeded", "failed", "poisoned")


@dataclass(frozen=True)
class SoakConfig:
    """How hard to shake the service.

    Attributes:
        jobs: Jobs to run, one query each.
        workers: Worker containers (1 CPU each, 1 BLAST thread).
        chaos: Kill, restart and disconnect during the run; False runs it calm.
        kill_every: Seconds between kills of a random worker.
        disconnect_for: Seconds one worker spends off the network.
        visibility_timeout: The workers' ``BLAST_VISIBILITY_TIMEOUT`` in seconds.
        task: The blastn task.
        job_s: Seconds of BLAST each job takes at least (at the rate measured before the
            run), so a kill has a job to land in.
        kills: Kills the run must outlast: the jobs together take (at the measured rate, on
            ``min(workers, CPUs)`` CPUs) at least one kill interval more than these.
        timeout: Seconds the whole run may take before it fails.
        seed: Seed of the random choices (which worker, when).
        log_dir: Where to keep each worker's JSON log lines (``<worker>.jsonl``); None
            keeps nothing.
    """

    jobs: int = 60
    workers: int = 4
    chaos: bool = True
    kill_every: float = 10.0
    disconnect_for: float = 30.0
    visibility_timeout: int = 60
    task: str = "dc-megablast"
    job_s: float = 1.0
    kills: int = 3
    timeout: float = 1800.0
    seed: int = 13
    log_dir: Path | None = None


@dataclass
class Kill:
    """One ``kill -9``: when, which worker, the job it interrupted (if any), and how long
    each step of the recovery took (seconds after the kill, from the workers' logs).

    Attributes:
        at: Epoch of the kill.
        worker: The killed worker's name.
        job: The job it was running, or None.
        recovered_after: Until that job's success.
        started_after: Until ``docker start`` of the killed container returned.
        restarted_after: Until the restarted worker logged ``worker starting``.
        working_after: Until the restarted worker started its next job.
        retaken_after: Until some worker started the interrupted job again.
    """

    at: float
    worker: str
    job: str | None
    recovered_after: float | None = None
    started_after: float | None = None
    restarted_after: float | None = None
    working_after: float | None = None
    retaken_after: float | None = None


@dataclass
class SoakResult:
    """What a soak run did and saw.

    Attributes:
        config: The run's settings.
        queries: Query FASTA of each job, by job id.
        rows: Final job-log row of each job, by job id.
        kills: Every kill, with recovery times filled in.
        events: Other faults, as (seconds from start, description).
        elapsed: Seconds from the first submission to the last job's end.
        run_s: Median seconds of one job from its start to its success (single-attempt jobs).
        sizing: How the jobs were sized (from the rate measured before the run).
    """

    config: SoakConfig
    queries: dict[str, str]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    elapsed: float = 0.0
    run_s: float = 0.0
    sizing: str = ""

    @property
    def throughput(self) -> float:
        """Jobs per minute."""
        return 60 * len(self.rows) / self.elapsed if self.elapsed else 0.0

    @property
    def recoveries(self) -> list[float]:
        """Seconds from the last kill that interrupted each job to that job's success."""
        return [k.recovered_after for k in self.kills if k.recovered_after is not None]

    def steps(self) -> dict[str, list[float]]:
        """Each measured recovery step of the kills (see :class:`Kill`), by name."""
        return {
            "container started": [k.started_after for k in self.kills if k.started_after],
            "restarted": [k.restarted_after for k in self.kills if k.restarted_after is not None],
            "next job": [k.working_after for k in self.kills if k.working_after is not None],
            "job retaken": [k.retaken_after for k in self.kills if k.retaken_after is not None],
        }

    @property
    def interrupted_jobs(self) -> set[str]:
        """Jobs that at least one kill interrupted."""
        return {k.job for k in self.kills if k.job}

    @property
    def attempts(self) -> Counter[int]:
        """How many jobs took 1, 2, ... attempts."""
        return Counter(int(r.get("attempts") or 0) for r in self.rows.values())

    @property
    def recovery_target(self) -> float:
        """Visibility timeout + one job's run time + 10 s: the most a recovery may take."""
        return self.config.visibility_timeout + self.run_s + 10.0

    def summary(self) -> list[str]:
        """Lines for people: jobs, kills, attempts, recovery median and max."""
        rec = self.recoveries
        attempts = ", ".join(f"{n} x{a}" for a, n in sorted(self.attempts.items()))
        lines = [
            f"{len(self.rows)} jobs, {self.config.workers} workers, "
            f"{'chaos' if self.config.chaos else 'calm'}: {self.elapsed:.1f} s, "
            f"{self.throughput:.1f} jobs/min; one job (start to success) median {self.run_s:.1f} s",
            f"kills: {len(self.kills)} ({sum(1 for k in self.kills if k.job)} interrupted a job; "
            f"{len(self.interrupted_jobs)} jobs interrupted, recovery counted from each one's "
            "last kill); other faults: "
            + ("; ".join(f"{t:.0f}s {what}" for t, what in self.events) or "none"),
            f"attempts per job: {attempts}",
            self.sizing,
        ]
        if rec:
            lines.append(
                f"recovery after a kill: median {statistics.median(rec):.1f} s, max "
                f"{max(rec):.1f} s (target <= {self.recovery_target:.1f} s = visibility "
                f"{self.config.visibility_timeout} s + one job {self.run_s:.1f} s + 10 s)"
            )
        steps = [
            f"{name} median {statistics.median(v):.1f} s, max {max(v):.1f} s"
            for name, v in self.steps().items()
            if v
        ]
        if steps:
            lines.append("after a kill: " + "; ".join(steps))
        return lines


def soak_records() -> list[str]:
    """200 distinct query records planted from the big database, and 5 decoys."""
    data = generate(DemoSpec(name=BIG_DB, seqs=BIG_SEQS, queries=200, decoys=5))
    return [r.text for r in iter_records(data.queries)]


def soak_queries(count: int, records_per_job: int = 1, distinct: int = 10) -> list[str]:
    """The queries of ``count`` jobs of ``records_per_job`` records each (from
    :func:`soak_records`), ``distinct`` different ones in turn, so checking every job's result
    takes ``distinct`` direct searches.

    Args:
        count: Jobs.
        records_per_job: Query records in each job.
        distinct: Different queries among the jobs.
    """
    records = soak_records()
    texts = [
        "".join(records[(d * records_per_job + j) % len(records)] for j in range(records_per_job))
        for d in range(distinct)
    ]
    return [texts[i % distinct] for i in range(count)]


def job_seconds(config: SoakConfig, cpus: int | None = None) -> float:
    """Seconds of BLAST per job, so that the jobs outlast ``config.kills`` + 1 kill intervals
    on ``min(workers, cpus)`` CPUs, and each takes at least ``config.job_s`` (pure).

    Args:
        config: The run.
        cpus: CPUs of the machine (default: ``os.cpu_count()``).
    """
    parallel = min(config.workers, cpus or os.cpu_count() or 1)
    span = (config.kills + 1) * config.kill_every if config.chaos else 0.0
    return max(config.job_s, span * parallel / config.jobs)


def sized_queries(stack: Stack, config: SoakConfig, db: Path) -> tuple[list[str], str]:
    """Measure the task's rate on ``db`` (the workers' copy), then size the jobs with it.

    Args:
        stack: The stack (its BLAST tools).
        config: The run.
        db: The big database's path on the host.

    Returns:
        The queries, and a line for people saying how they were sized.
    """
    argv = ["blastn", "-task", config.task, "-db", str(db), "-num_threads", "1"]
    cost = stack.tools.cost(argv, soak_records())
    want = job_seconds(config)
    records = cost.records_for(want)
    return soak_queries(config.jobs, records), (
        f"jobs of {records} queries: BLAST {cost.seconds(records):.1f} s each alone (wanted "
        f">= {want:.1f} s; measured {cost.fixed_s:.2f} s + {cost.per_record_s:.3f} s per query)"
    )


def in_flight_job(worker: WorkerContainer) -> str | None:
    """The job ``worker`` is running according to its log since it last started, or None;
    None as well once that job's BLAST has finished (killed later, it may have succeeded).
    (A restarted container keeps the log of its earlier runs.)"""
    container = worker.container
    container.reload()
    started = datetime.fromisoformat(container.attrs["State"]["StartedAt"][:19] + "+00:00")
    text = container.logs(since=int(started.timestamp())).decode(errors="replace")
    started_jobs: list[str] = []
    done: set[str] = set()
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        job = line.get("job") if isinstance(line, dict) else None
        if not job:
            continue
        if line.get("msg") == "job started":
            started_jobs.append(str(job))
        elif line.get("msg") in (
            "BLAST finished",
            "job succeeded",
            "job had already succeeded in another delivery; kept that record",
            "job failed",
            "rejected message: %s",
        ) or str(line.get("msg", "")).startswith("job already"):
            done.add(str(job))
    return started_jobs[-1] if started_jobs and started_jobs[-1] not in done else None


class Chaos:
    """The faults, run in a thread while the jobs drain.

    Args:
        stack: The stack under test.
        workers: Its workers.
        config: Timings.
        t0: ``time.time()`` of the first submission.
        result: Receives kills and events.
    """

    def __init__(
        self,
        stack: Stack,
        workers: list[WorkerContainer],
        config: SoakConfig,
        t0: float,
        result: SoakResult,
    ) -> None:
        self.stack, self.workers, self.config, self.t0, self.result = (
            stack,
            workers,
            config,
            t0,
            result,
        )
        self.rng = random.Random(config.seed)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self.network = docker.from_env().networks.get(stack.azurite.network)

    def __enter__(self) -> Chaos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        if self.error is not None:
            raise AssertionError(f"the chaos thread failed: {self.error!r}") from self.error

    def _event(self, what: str) -> None:
        self.result.events.append((time.time() - self.t0, what))

    def _kill(self) -> bool:
        """Kill -9 a worker that its log shows mid-job, observed again while it is frozen, so
        the kill lands in that job. False when no worker is mid-job now (try again later)."""
        for worker in self.rng.sample(self.workers, len(self.workers)):
            with contextlib.suppress(docker.errors.APIError):  # exited or restarting
                if in_flight_job(worker) and self._kill_if_mid_job(worker):
                    return True
        return False

    def _kill_if_mid_job(self, worker: WorkerContainer) -> bool:
        """Freeze ``worker``; kill it if it is still mid-job, else thaw it. True if killed."""
        worker.freeze()
        try:
            job = in_flight_job(worker)
        except BaseException:
            worker.thaw()
            raise
        if job is None:  # its job's BLAST ended between the look and the freeze
            worker.thaw()
            return False
        at = time.time()
        worker.kill9()
        kill = Kill(at, worker.name, job)
        self.result.kills.append(kill)
        with contextlib.suppress(docker.errors.APIError):  # else _restart_exited retries
            worker.container.start()  # as compose's restart policy would
            kill.started_after = time.time() - at
        return True

    def _run(self) -> None:
        try:
            cfg = self.config
            restart_at: float | None = cfg.kill_every * 2.5
            disconnect_at: float | None = cfg.kill_every * 1.5
            reconnect_at: float | None = None
            cut: WorkerContainer | None = None
            next_kill = cfg.kill_every
            kill_due = False  # from each kill time until a worker is found mid-job
            next_check = 2.0
            while not self.stop.wait(0.2):
                now = time.time() - self.t0
                if now >= next_check:
                    next_check = now + 2.0
                    self._restart_exited()
                if now >= next_kill:
                    next_kill += cfg.kill_every
                    kill_due = True
                if kill_due and self._kill():
                    kill_due = False
                if restart_at is not None and now >= restart_at:
                    restart_at = None
                    self.stack.azurite.container().restart(timeout=5)
                    self.stack.azurite.wait_answering(timeout=120)
                    self._event("Azurite restarted")
                if disconnect_at is not None and now >= disconnect_at:
                    disconnect_at = None
                    cut = self.rng.choice(self.workers)
                    self.network.disconnect(cut.container, force=True)
                    reconnect_at = now + cfg.disconnect_for
                    self._event(f"{cut.name} disconnected for {cfg.disconnect_for:.0f} s")
                if reconnect_at is not None and cut is not None and now >= reconnect_at:
                    self._reconnect(cut)
                    reconnect_at = None
            if reconnect_at is not None and cut is not None:
                self._reconnect(cut)
        except BaseException as exc:  # noqa: BLE001 (any failure is re-raised by __exit__)
            self.error = exc

    def _restart_exited(self) -> None:
        """Start workers that exited on their own (compose's restart policy would)."""
        for worker in self.workers:
            with contextlib.suppress(docker.errors.APIError):
                worker.container.reload()
                if worker.container.status == "exited":
                    worker.container.start()
                    self._event(f"{worker.name} exited by itself; restarted")

    def _reconnect(self, worker: WorkerContainer) -> None:
        with contextlib.suppress(docker.errors.APIError):  # a kill may have raced it
            self.network.connect(worker.container)
        self._event(f"{worker.name} reconnected")


def run_soak(stack: Stack, config: SoakConfig, queries: list[str] | None = None) -> SoakResult:
    """Run ``config.jobs`` jobs through ``config.workers`` workers, with or without chaos.

    Args:
        stack: A fresh stack (its own queue and table).
        config: The run.
        queries: The query of each job; default: sized from a rate measured first
            (:func:`sized_queries`). Reuse ``result.queries`` to run the same jobs again.

    Returns:
        Rows, kills and figures; the workers are removed afterwards.
    """
    tag = secrets.token_hex(3)
    cache = stack.root / "soak-cache"
    workers = [
        stack.start_worker(
            f"soak{tag}-{i}",
            BLAST_DBS=BIG_DB,
            BLAST_THREADS="1",
            BLAST_POLL_INTERVAL="0.2",
            BLAST_VISIBILITY_TIMEOUT=str(config.visibility_timeout),
            BLAST_STOP_TIMEOUT="5",
            # A kill every 10 s can catch one message several times (each counts as a
            # delivery); the README's advice for crash-prone workers: raise the limit.
            BLAST_MAX_DEQUEUE="20",
            BLAST_DB_CACHE=str(cache),
        )
        for i in range(config.workers)
    ]
    for w in workers:
        w.wait_state("idle", timeout=300)
    sizing = "jobs given"
    if not queries:
        queries, sizing = sized_queries(stack, config, cache / BIG_DB / BIG_DB)
    storage = stack.storage
    log = JobLog(storage.table)
    client = stack.client
    ids = [f"soak{tag}-{i:04d}" for i in range(len(queries))]
    result = SoakResult(config, dict(zip(ids, queries, strict=True)), sizing=sizing)
    t0 = time.time()
    waiting = collections.deque(ids)
    outstanding: set[str] = set()
    # Jobs arrive as the workers take them: `window` visible messages, enough that no worker
    # waits for work, few enough that a redelivered job is not queued behind the whole run.
    window = 2 * config.workers

    def top_up() -> None:
        # Keep `window` messages visible (peek sees only those): messages that a killed
        # worker took wait out their visibility timeout without starving the others.
        if not waiting:
            return
        visible = len(storage.queue.peek_messages(max_messages=32))
        for _ in range(min(len(waiting), window - visible)):
            job = waiting[0]  # taken off only once sent: a send can fail while Azurite restarts
            spec = JobSpec(job, "blastn", BIG_DB, Query(fasta=result.queries[job]), options)
            client.submit([spec])  # records it as queued; a large query goes as a blob
            outstanding.add(waiting.popleft())

    def all_final() -> bool:
        with contextlib.suppress(Exception):  # Azurite may be restarting: poll again
            for job in sorted(outstanding):
                row = log.get(job)
                if row is not None and row["status"] in FINAL:
                    result.rows[job] = row
                    outstanding.discard(job)
            top_up()
        return not waiting and not outstanding

    options = Options(task=config.task)
    with Chaos(stack, workers, config, t0, result) if config.chaos else contextlib.nullcontext():
        top_up()
        wait_for(all_final, config.timeout, f"{len(ids)} soak jobs", interval=0.5)
    result.elapsed = max(_epoch(r["finished"]) for r in result.rows.values()) - t0
    # One job's run time: from its (last) start to its success, median of the calm ones.
    runs = [
        _epoch(r["finished"]) - _epoch(r["started"])
        for r in result.rows.values()
        if r.get("started") and r.get("finished") and int(r.get("attempts") or 0) == 1
    ]
    result.run_s = statistics.median(runs) if runs else 0.0
    # A job killed again on its next delivery recovers from its last kill: the time from
    # each kill to success would count the visibility timeout once per kill.
    for kill in result.kills:
        row = result.rows.get(kill.job or "")
        if row is not None and row.get("finished") and _epoch(row["finished"]) <= kill.at:
            kill.job = None  # it had succeeded already; only its log line was still to come
    last_kill = {k.job: k for k in result.kills if k.job}
    for kill in last_kill.values():
        row = result.rows.get(kill.job or "")
        if row is not None and row["status"] == "succeeded":
            kill.recovered_after = _epoch(row["finished"]) - kill.at
    _time_steps(result, workers)
    if config.log_dir is not None:
        config.log_dir.mkdir(parents=True, exist_ok=True)
        for w in workers:
            (config.log_dir / f"{w.name}.jsonl").write_text(w.text())
    for w in workers:
        w.remove()
    stack.workers = [w for w in stack.workers if w not in workers]
    return result


def _time_steps(result: SoakResult, workers: list[WorkerContainer]) -> None:
    """Fill in each kill's restart, next-job and retake times from the workers' logs."""
    lines = {w.name: [x for x in w.logs() if "ts" in x] for w in workers}
    started = sorted(
        (float(x["ts"]), str(x["job"]))
        for logs in lines.values()
        for x in logs
        if x.get("msg") == "job started"
    )
    for kill in result.kills:
        own = [x for x in lines.get(kill.worker, []) if float(x["ts"]) > kill.at]
        first = next((float(x["ts"]) for x in own if x.get("msg") == "worker starting"), None)
        job = next((float(x["ts"]) for x in own if x.get("msg") == "job started"), None)
        again = next((t for t, j in started if j == kill.job and t > kill.at), None)
        kill.restarted_after = None if first is None else first - kill.at
        kill.working_after = None if job is None else job - kill.at
        kill.retaken_after = None if again is None else again - kill.at


def _epoch(value: Any) -> float:
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
