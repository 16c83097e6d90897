"""The chaos soak: many jobs through several workers while workers are killed, storage
restarts and a worker loses its network. Shared by the soak test and ``bench/``.

:func:`run_soak` submits one job per query, then (with ``chaos``) every
:attr:`SoakConfig.kill_every` seconds freezes a random worker, notes the job it is running
(from its log), kills it with ``-9`` and starts it again (as ``restart: unless-stopped``
would); it restarts Azurite once and disconnects one worker from the network for
:attr:`SoakConfig.disconnect_for` seconds. It waits until every job is final and returns
what happened: per job its row, per kill the job it interrupted, and the recovery time
from that kill to the job's success.
"""

from __future__ import annotations

import collections
import contextlib
import json
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
        task: The blastn task (dc-megablast: seconds per query, so kills catch jobs).
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
    """

    config: SoakConfig
    queries: dict[str, str]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    elapsed: float = 0.0
    run_s: float = 0.0

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


def soak_queries(count: int) -> list[str]:
    """``count`` distinct query records planted from the big database (then repeated)."""
    data = generate(DemoSpec(name=BIG_DB, seqs=BIG_SEQS, queries=min(count, 200), decoys=5))
    records = [r.text for r in iter_records(data.queries)]
    return [records[i % len(records)] for i in range(count)]


def in_flight_job(worker: WorkerContainer) -> str | None:
    """The job ``worker`` (frozen) is running according to its log since it last started,
    or None. (A restarted container keeps the log of its earlier runs.)"""
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

    def _kill(self) -> None:
        # Prefer a worker that is mid-job: on a quiet machine jobs are short, and a kill
        # at random would often find every worker idle and test nothing.
        candidates = self.rng.sample(self.workers, len(self.workers))
        worker = candidates[0]
        for candidate in candidates:
            with contextlib.suppress(docker.errors.APIError):
                if in_flight_job(candidate):
                    worker = candidate
                    break
        container = worker.container
        container.reload()
        if container.status != "running":
            return
        job = None
        with contextlib.suppress(docker.errors.APIError):
            worker.freeze()
            job = in_flight_job(worker)
        at = time.time()
        worker.kill9()
        kill = Kill(at, worker.name, job)
        self.result.kills.append(kill)
        container.start()  # as compose's restart policy would
        kill.started_after = time.time() - at

    def _run(self) -> None:
        try:
            cfg = self.config
            restart_at: float | None = cfg.kill_every * 2.5
            disconnect_at: float | None = cfg.kill_every * 1.5
            reconnect_at: float | None = None
            cut: WorkerContainer | None = None
            next_kill = cfg.kill_every
            next_check = 2.0
            while not self.stop.wait(0.2):
                now = time.time() - self.t0
                if now >= next_check:
                    next_check = now + 2.0
                    self._restart_exited()
                if now >= next_kill:
                    next_kill += cfg.kill_every
                    self._kill()
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
        queries: One query record per job; default :func:`soak_queries`.

    Returns:
        Rows, kills and figures; the workers are removed afterwards.
    """
    queries = queries or soak_queries(config.jobs)
    tag = secrets.token_hex(3)
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
            BLAST_DB_CACHE=str(stack.root / "soak-cache"),
        )
        for i in range(config.workers)
    ]
    for w in workers:
        w.wait_state("idle", timeout=300)
    storage = stack.storage
    log = JobLog(storage.table)
    ids = [f"soak{tag}-{i:04d}" for i in range(len(queries))]
    result = SoakResult(config, dict(zip(ids, queries, strict=True)))
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
            log.record_queued(job, "blastn", BIG_DB, None)
            storage.queue.send_message(spec.to_message())
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
