"""The ``blast-worker`` service: poll the queue, run BLAST, store results, keep the job log.

Delivery contract (at-least-once, idempotent by job id):

1. Receive one message with ``BLAST_VISIBILITY_TIMEOUT``; the lease is extended every third of
   that while the job runs (``update_message``).
2. A message delivered more than ``BLAST_MAX_DEQUEUE`` times moves to ``<queue>-poison`` with
   the reason, and the job row says ``poisoned``.
3. A message that cannot be parsed: with a job id the row says ``failed`` with the reason;
   without one it is poisoned (there is nothing else to record it against).
4. A job whose row already says ``succeeded`` (or ``failed``/``poisoned``/``cancelled``) is a
   redelivery: the message is deleted without running anything. Every write to a row is
   conditional on its etag and skipped once the row is final
   (``JobLog.update_unless_final``, ``finish_once``): a delivery that read the row before
   another one finished it cannot turn it back to ``running``, ``queued`` or ``failed``.
5. Results go to ``<results container>/<job id>/`` (same names on every attempt), then the row
   is marked succeeded (etag-guarded, so only once), then the message is deleted.
6. The message in hand and its latest pop receipt are kept in a lease journal on the cache
   volume (:mod:`blast_worker.journal`); a worker restarted after ``kill -9`` makes that
   message visible again at once instead of leaving it hidden for the rest of its timeout.
7. With ``BLAST_EXIT_WHEN_IDLE`` the worker exits 0 once the queue has been empty (or absent)
   that long; it only checks between jobs, so it never holds a lease when it exits.
8. On SIGTERM the worker takes no new message; the current job may finish within
   ``BLAST_STOP_TIMEOUT``, else BLAST is killed and the message is made visible again.
9. Storage errors that are transient (no connection, 5xx, 429) are retried with exponential
   backoff and full jitter; anything else is a bug and propagates.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.queue import QueueMessage
from blast_client.config import ConfigError
from blast_client.fasta import MAX_BLOB_QUERY_BYTES, FastaError, validate_fasta
from blast_client.joblog import FINAL, JobLog, Written
from blast_client.messages import (
    FORMAT_FILES,
    HIT_FASTA_FILE,
    HIT_FASTA_NOT_ASKED,
    JobSpec,
    MessageError,
    Options,
    decode_body,
    keeps_archive,
    parse_message,
    peek_job_id,
)
from blast_client.shards import shard_max_target_seqs
from blast_client.storage import Storage

from blast_worker import jsonlog
from blast_worker.backoff import Backoff, is_transient
from blast_worker.config import WorkerConfig, load_worker_config
from blast_worker.health import HealthState, serve
from blast_worker.hitseqs import archive_subject_ids, subject_ids, write_hit_fasta
from blast_worker.journal import LeaseJournal
from blast_worker.jsonlog import job_context, kv
from blast_worker.provision import Provisioner, ProvisionError
from blast_worker.ready import ReadyTools, ToolKey
from blast_worker.runner import (
    BlastError,
    blast_argv,
    count_hits,
    run,
    tabular_from_commented,
)

log = logging.getLogger("blast_worker.worker")
T = TypeVar("T")

SUCCESS_MARKER = "_SUCCESS.json"
GUESSED_FASTA = "hits.guessed.fasta"
"""The hit sequences of the ids guessed from the archive (renamed to hits.fasta if right)."""
Guess = tuple[list[str], str | None] | None
"""The subject ids guessed from the archive and why there are no sequences for them (None:
written to GUESSED_FASTA), or None when the archive does not tell."""
# JSON escaping can grow a body up to 6x; the envelope must fit a 64 KiB queue message.
POISON_BODY_LIMIT = 8 * 1024


class JobFailed(Exception):
    """The job cannot succeed whatever the retries (bad query, unknown database, ...)."""


class Released(Exception):
    """The worker is stopping and gave the message back to the queue."""


class Lease:
    """A received message and its current pop receipt.

    Args:
        worker: The owning worker (for its queue, config, health and lease journal).
        msg: The received message.
        job_id: Its job id if known (for the journal).
    """

    def __init__(self, worker: Worker, msg: QueueMessage, job_id: str | None = None) -> None:
        self.worker = worker
        self.msg = msg
        self.id: str = msg.id
        self.receipt: str | None = msg.pop_receipt
        self.job_id = job_id
        self.lost = False
        self.last_extended = time.monotonic()
        self.journal()

    def journal(self) -> None:
        """Record the current receipt in the worker's lease journal (if it has one)."""
        if self.worker.journal is not None and self.receipt:
            self.worker.journal.record(self.id, self.receipt, self.job_id)

    def due(self) -> bool:
        """True when a third of the visibility timeout has passed since the last extension."""
        return time.monotonic() - self.last_extended >= self.worker.cfg.visibility_timeout / 3

    def extend(self) -> None:
        """Push the message's visibility out by another timeout; tolerate outages."""
        if self.lost:
            return
        self.last_extended = time.monotonic()
        try:
            updated = self.worker.storage.queue.update_message(
                self.id, self.receipt, visibility_timeout=self.worker.cfg.visibility_timeout
            )
            self.receipt = updated.pop_receipt
            self.journal()
            self.worker.health.touch()
        except AzureError as exc:
            if lease_gone(exc):
                self.lost = True
                log.warning("lost the message lease (another worker may redeliver it)")
                return
            if not is_transient(exc):
                raise
            log.warning("could not extend the message lease: %s", _brief(exc))

    def delete(self) -> None:
        """Delete the message; a lease lost to another delivery is not an error."""
        if self.lost:
            log.info("message lease was lost; leaving its deletion to the current holder")
            return
        try:
            self.worker.retry(
                lambda: self.worker.storage.queue.delete_message(self.id, self.receipt)
            )
        except HttpResponseError as exc:
            if not lease_gone(exc):
                raise
            log.info("message already gone (redelivered elsewhere); results are idempotent")
        except Released:
            log.warning(
                "stopping before the message could be deleted; it will be delivered "
                "again and recognised as finished"
            )

    def release(self) -> None:
        """Make the message visible again right away."""
        if self.lost:
            return
        try:
            self.worker.storage.queue.update_message(self.id, self.receipt, visibility_timeout=0)
            log.info("message released back to the queue")
        except AzureError as exc:
            log.warning(
                "could not release the message (%s); it reappears after its timeout", _brief(exc)
            )


def lease_gone(exc: BaseException) -> bool:
    """True when a queue call failed because the pop receipt no longer holds the message:
    it was deleted (404), or its visibility ran out and another receive changed the receipt
    (400 PopReceiptMismatch).

    Args:
        exc: The exception of ``update_message`` or ``delete_message``.
    """
    if isinstance(exc, ResourceNotFoundError):
        return True
    return (
        isinstance(exc, HttpResponseError)
        and exc.status_code == 400
        and getattr(exc, "error_code", None) == "PopReceiptMismatch"
    )


def _epoch(when: Any) -> float:
    """A queue message's insertion time (a datetime) in epoch seconds; now if it has none."""
    return float(when.timestamp()) if when is not None else time.time()


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class Worker:
    """One BLAST worker process.

    Args:
        cfg: Validated configuration.
        storage: Storage clients; built from ``cfg`` when omitted.
    """

    def __init__(self, cfg: WorkerConfig, storage: Storage | None = None) -> None:
        self.cfg = cfg
        self.storage = storage or Storage(cfg.storage)
        self.health = HealthState(cfg.worker_id, stale_after=cfg.health_stale_after)
        self.joblog = JobLog(self.storage.table)
        self.stop_event = threading.Event()
        self.stop_requested_at: float | None = None
        self.backoff = Backoff()
        self.journal: LeaseJournal | None = None
        self.rows = ThreadPoolExecutor(max_workers=1, thread_name_prefix="row")
        """Writes of a job row made beside the job's work (see _handle)."""
        self.ready: ReadyTools | None = None
        """Formatters and blastdbcmd started between jobs for the next one (see ready.py)."""
        self.provisioner = Provisioner(
            self.storage.container(cfg.storage.db_container),
            cfg.db_cache,
            concurrency=cfg.download_concurrency,
            chunk_size=cfg.download_chunk,
            status=lambda s: self.health.set(s, self.health.job),
        )

    # -- control -----------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Stop taking jobs; the current one gets ``BLAST_STOP_TIMEOUT`` seconds.

        Args:
            signum: The signal received, if any.
            _frame: Unused (signal handler signature).
        """
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
            self.health.stopping = True
            log.info("stop requested (signal %s); taking no new jobs", signum)
        self.stop_event.set()

    def stop_deadline_passed(self) -> bool:
        """True once the stop timeout has run out after a stop request."""
        return (
            self.stop_requested_at is not None
            and time.monotonic() - self.stop_requested_at >= self.cfg.stop_timeout
        )

    def retry(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` until it succeeds, backing off on transient storage errors.

        Args:
            fn: The storage operation.

        Raises:
            Released: when stopping and the deadline passed.
            Exception: non-transient errors propagate unchanged.
        """
        backoff = Backoff()
        while True:
            try:
                result = fn()
                self.health.touch()
                return result
            except AzureError as exc:
                if not is_transient(exc):
                    raise
                if self.stop_deadline_passed():
                    raise Released() from exc
                delay = backoff.next_delay()
                log.warning(
                    "storage unavailable (%s); retrying in %.1f s",
                    _brief(exc),
                    delay,
                    extra=kv(retry_in=round(delay, 2), attempt=backoff.attempt),
                )
                time.sleep(delay)

    # -- main loop ---------------------------------------------------------------------

    def open_journal(self) -> None:
        """Lock this worker's lease journal; a journal that cannot be used is logged and
        the worker runs without one (a restart then waits out the visibility timeout)."""
        try:
            self.journal = LeaseJournal.open(self.cfg.db_cache)
        except OSError as exc:
            log.warning("no lease journal in %s: %s", self.cfg.db_cache, _brief(exc))

    def release_held(self) -> None:
        """Make the message that this worker held when it last died visible again at once.

        The update uses the recorded pop receipt, so it succeeds only while no one else has
        received the message since and it was not deleted (see :mod:`blast_worker.journal`).
        """
        held = self.journal.held() if self.journal is not None else None
        if self.journal is None or held is None:
            return
        with job_context(held.job_id):
            try:
                self.retry(
                    lambda: self.storage.queue.update_message(
                        held.message_id, held.pop_receipt, visibility_timeout=0
                    )
                )
                log.info(
                    "released the message held before the restart",
                    extra=kv(
                        message_id=held.message_id,
                        held_s=round(time.time() - held.recorded_at, 3),
                    ),
                )
            except Released:
                return  # stopping: keep the record for the next start
            except HttpResponseError as exc:
                if not lease_gone(exc):
                    raise
                # Deleted, taken by another worker after its timeout, or released already.
                log.info(
                    "the message held before the restart is no longer ours; nothing to release",
                    extra=kv(message_id=held.message_id, status=exc.status_code),
                )
        self.journal.clear()

    def provision_startup(self) -> None:
        """Provision ``BLAST_DBS``; a database that cannot be verified is logged, not fatal."""
        for name in self.cfg.dbs:
            if self.stop_event.is_set():
                return
            self.health.set("provisioning")
            try:
                self.retry(lambda name=name: self.provisioner.ensure(name))  # type: ignore[misc]
            except ProvisionError as exc:
                log.error("database %s not provisioned: %s", name, exc, extra=kv(db=name))
            except Released:
                return

    def drained(self, idle_since: float | None, now: float) -> bool:
        """True when exit-when-idle is on and the queue has been empty since ``idle_since``
        for at least ``BLAST_EXIT_WHEN_IDLE`` seconds.

        Args:
            idle_since: Monotonic time of the first empty poll in a row, or None.
            now: The current monotonic time.
        """
        limit = self.cfg.exit_when_idle
        return limit is not None and idle_since is not None and now - idle_since >= limit

    def run(self) -> int:
        """Provision databases, then poll until stopped (or drained, in exit-when-idle mode).

        Returns:
            The process exit code (0).
        """
        log.info(
            "worker starting",
            extra=kv(
                queue=self.cfg.storage.queue,
                dbs=list(self.cfg.dbs),
                threads=self.cfg.threads,
                cache=str(self.cfg.db_cache),
            ),
        )
        self.open_journal()
        self.release_held()
        self.provision_startup()
        self.health.set("idle")
        # Monotonic time of the first empty poll in a row (exit-when-idle mode).
        idle_since: float | None = None
        while not self.stop_event.is_set():
            try:
                msg = self.storage.queue.receive_message(
                    visibility_timeout=self.cfg.visibility_timeout
                )
            except ResourceNotFoundError:
                if self.cfg.exit_when_idle is not None:
                    # A run's queue deleted under us (cancel) is an empty queue.
                    idle_since = time.monotonic() if idle_since is None else idle_since
                    if self.drained(idle_since, time.monotonic()):
                        break
                self._wait_backoff(
                    f"queue {self.cfg.storage.queue!r} does not exist yet: run `blast-jobs init`"
                )
                continue
            except AzureError as exc:
                if not is_transient(exc):
                    raise
                self._wait_backoff(f"storage unavailable ({_brief(exc)})")
                continue
            self.health.touch()
            self.backoff.reset()
            if msg is None:
                self.health.set("idle")
                idle_since = time.monotonic() if idle_since is None else idle_since
                if self.drained(idle_since, time.monotonic()):
                    break
                self.stop_event.wait(self.cfg.poll_interval)
                continue
            idle_since = None
            self.handle(msg)
            self.health.set("idle")
        if self.ready is not None:
            self.ready.close()
        if self.stop_event.is_set():
            log.info("worker stopped")
        else:
            log.info(
                "queue drained; exiting",
                extra=kv(exit_when_idle=self.cfg.exit_when_idle),
            )
        return 0

    def _wait_backoff(self, why: str) -> None:
        delay = self.backoff.next_delay()
        self.health.set("backoff")
        log.warning(
            "%s; retrying in %.1f s",
            why,
            delay,
            extra=kv(retry_in=round(delay, 2), attempt=self.backoff.attempt),
        )
        self.stop_event.wait(delay)

    # -- one message -------------------------------------------------------------------

    def handle(self, msg: QueueMessage) -> None:
        """Process one received message to its end: succeeded, failed, poisoned or released.

        Args:
            msg: The received message.
        """
        body = msg.content if isinstance(msg.content, str) else str(msg.content)
        try:
            hint = peek_job_id(decode_body(body))
        except MessageError:
            hint = None
        lease = Lease(self, msg, hint)
        with job_context(hint):
            try:
                self._handle(lease, body, hint)
            except Released:
                lease.release()
                if hint:
                    self._safe_update(
                        hint,
                        status="queued",
                        error="released by a stopping worker; will be retried",
                    )
        # Done with the message (deleted, released or poisoned). After an unexpected error
        # the record stays, and the restarted worker releases the message at once.
        if self.journal is not None:
            self.journal.clear()

    def _handle(self, lease: Lease, body: str, hint: str | None) -> None:
        msg = lease.msg
        count = int(msg.dequeue_count or 1)
        if count > self.cfg.max_dequeue:
            last = self.retry(lambda: self.joblog.get(hint)) if hint else None
            if last is not None and last.get("status") in FINAL:
                log.info("job already %s; dropping the redelivered message", last["status"])
                lease.delete()
                return
            why = f"delivered {count} times (BLAST_MAX_DEQUEUE={self.cfg.max_dequeue})"
            if last and last.get("error"):
                why += f"; last error: {last['error']}"
            self.poison(lease, body, why, hint)
            return
        default_db = self.cfg.dbs[0] if self.cfg.dbs else None
        try:
            spec = parse_message(body, default_db)
        except MessageError as exc:
            bad_id, reason = exc.job_id, f"invalid message: {exc.reason}"
            if bad_id is not None:
                log.warning("rejected message: %s", reason)
                self.retry(
                    lambda: self.joblog.update_unless_final(
                        bad_id,
                        status="failed",
                        error=reason,
                        finished=time.time(),
                        worker=self.cfg.worker_id,
                        attempts=count,
                    )
                )
                lease.delete()
            else:
                self.poison(lease, body, reason, None)
            return
        found = self.retry(lambda: self.joblog.read(spec.job_id))
        if found is not None and found[0].get("status") in FINAL:
            log.info("job already %s; dropping the redelivered message", found[0]["status"])
            lease.delete()
            return
        self.health.set("busy", spec.job_id)
        # The "running" write goes on beside the search: every later write to the row waits
        # for it (so none lands before it), and success is recorded against its etag. It is
        # conditional on the etag read above: if another delivery finished the job since, the
        # row stays final (and this delivery's success is not recorded).
        running = self.rows.submit(
            contextvars.copy_context().run,
            self.retry,
            lambda: self.joblog.update_unless_final(
                spec.job_id,
                found[1] if found is not None else None,
                status="running",
                started=time.time(),
                worker=self.cfg.worker_id,
                attempts=count,
                program=spec.program,
                db=spec.db,
                name=spec.name,
                run_id=spec.run_id,
                message_id=msg.id,
                error="",
                # A run's job has no row until this write: it was submitted when queued.
                **({"submitted": _epoch(msg.inserted_on)} if found is None else {}),
            ),
        )
        log.info("job started", extra=kv(program=spec.program, db=spec.db, attempt=count))
        try:
            self.execute(spec, lease, running)
        except (JobFailed, ProvisionError, BlastError, FastaError) as exc:
            if isinstance(exc, BlastError) and self.stop_deadline_passed():
                raise Released() from exc
            reason = str(exc)
            log.error("job failed: %s", reason)
            etag = running.result().etag
            self.retry(
                lambda: self.joblog.update_unless_final(
                    spec.job_id,
                    etag,
                    status="failed",
                    error=reason[:30000],
                    finished=time.time(),
                    worker=self.cfg.worker_id,
                )
            )
            lease.delete()
        finally:
            futures_wait([running])  # a release's "queued" must land after it too

    def poison(self, lease: Lease, body: str, reason: str, job_id: str | None) -> None:
        """Move the message to the poison queue with ``reason`` and record it.

        Args:
            lease: The message lease.
            body: The original message text.
            reason: Why, for the poison entry and the job row.
            job_id: The job id if known; otherwise ``msg-<message id>`` is recorded.
        """
        msg = lease.msg
        record_id = job_id or f"msg-{msg.id}"
        envelope = {
            "reason": reason,
            "job_id": job_id,
            "record_id": record_id,
            "message_id": msg.id,
            "dequeue_count": msg.dequeue_count,
            "worker": self.cfg.worker_id,
            "poisoned_at": time.time(),
            "body": body[:POISON_BODY_LIMIT],
            "body_truncated": len(body) > POISON_BODY_LIMIT,
        }
        log.error("poisoning message: %s", reason, extra=kv(record_id=record_id))
        self.retry(lambda: self.storage.poison.send_message(json.dumps(envelope)))
        self.retry(
            lambda: self.joblog.update_unless_final(
                record_id,
                status="poisoned",
                error=reason[:30000],
                finished=time.time(),
                worker=self.cfg.worker_id,
                attempts=int(msg.dequeue_count or 0),
            )
        )
        lease.delete()

    def _safe_update(self, job_id: str, **fields: Any) -> None:
        try:
            self.joblog.update_unless_final(job_id, **fields)
        except AzureError as exc:
            log.warning("could not update the job row: %s", _brief(exc))

    def with_lease(self, lease: Lease, fn: Callable[[], T]) -> T:
        """Run ``fn`` (retrying transient storage errors) in a helper thread while extending
        the message lease.

        Args:
            lease: The message lease to keep alive.
            fn: The work.

        Raises:
            Released: when stopping and the stop timeout ran out.
        """
        box: dict[str, Any] = {}
        ctx = contextvars.copy_context()

        def target() -> None:
            try:
                box["value"] = ctx.run(self.retry, fn)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, re-raised below
                box["error"] = exc

        thread = threading.Thread(target=target, name="job-step", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
            if lease.due():
                lease.extend()
            if self.stop_deadline_passed():
                raise Released()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def execute(self, spec: JobSpec, lease: Lease, running: Future[Written]) -> None:
        """Fetch database and query, run BLAST, upload results, record success, delete.

        Args:
            spec: The validated job.
            lease: Its message lease.
            running: The write of the "running" row.

        Raises:
            JobFailed, ProvisionError, BlastError, FastaError: the job cannot succeed.
            Released: the worker is stopping.
        """
        workdir = self.cfg.work_dir / spec.job_id
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        tools: ReadyTools | None = None
        try:
            t0 = time.monotonic()
            db_path, _ = self.with_lease(lease, lambda: self._provision(spec))
            self.health.set("busy", spec.job_id)
            formats = sorted(set(spec.options.outfmt) | {6})
            archived = keeps_archive(spec.options.outfmt, spec.shard is not None)
            options = search_options(spec)
            # Without an archive there is nothing for blast_formatter: only blastdbcmd waits,
            # for a job that asked for its hit sequences.
            derived = tuple(formats) if archived else ()
            key = ToolKey(db_path, derived, options.max_target_seqs, spec.hit_fasta)
            tools = self._tools(key)  # they start up while the search runs
            query = workdir / "query.fa"
            query.write_text(self.with_lease(lease, lambda: self._query_text(spec)))
            download_s = time.monotonic() - t0

            searched = 11 if archived else 7
            argv = blast_argv(
                spec.program,
                db_path,
                query,
                workdir / FORMAT_FILES[searched],
                options,
                self.cfg.threads,
                outfmt=searched,
            )
            result = run(
                argv,
                workdir,
                self.cfg.job_timeout,
                tick=lease.extend,
                tick_every=self.cfg.visibility_timeout / 3,
                should_abort=self.stop_deadline_passed,
            )
            blast_s = result.seconds
            cpu = {} if result.cpu_s is None else {"blast_cpu_s": round(result.cpu_s, 3)}
            log.info("BLAST finished", extra=kv(blast_s=round(blast_s, 3), **cpu))

            t1 = time.monotonic()
            ready = tools
            links, expiry, hits, no_fasta, steps = self.with_lease(
                lease, lambda: self._results(spec, workdir, ready, formats, archived)
            )
            upload_s = time.monotonic() - t1
            etag = running.result().etag
            t2 = time.monotonic()
            recorded = self.retry(
                lambda: self.joblog.finish_once(
                    spec.job_id,
                    etag,
                    finished=time.time(),
                    worker=self.cfg.worker_id,
                    hits=hits,
                    download_s=round(download_s, 3),
                    blast_s=round(blast_s, 3),
                    upload_s=round(upload_s, 3),
                    results=links,
                    results_expiry=expiry,
                    hit_fasta=no_fasta is None,
                    hit_fasta_note=no_fasta or "",
                    error="",
                    stderr=result.stderr[-4000:],
                    cached=",".join(self.provisioner.cached()),
                )
            )
            row_s = time.monotonic() - t2
            if recorded:
                log.info(
                    "job succeeded",
                    extra=kv(
                        hits=hits,
                        archive=archived,
                        download_s=round(download_s, 3),
                        blast_s=round(blast_s, 3),
                        **cpu,
                        upload_s=round(upload_s, 3),
                        row_s=round(row_s, 3),
                        **{k: round(v, 3) for k, v in steps.items()},
                    ),
                )
            else:
                log.info("the job's row was already final (another delivery); kept that record")
            lease.delete()
            self._start_ready(key)
        finally:
            if tools is not None:
                tools.close()
            shutil.rmtree(workdir, ignore_errors=True)

    def _provision(self, spec: JobSpec) -> tuple[Path, float]:
        """The job's database, or only its shard, ready in the cache."""
        if spec.shard is None:
            return self.provisioner.ensure(spec.db)
        return self.provisioner.ensure_shard(spec.db, spec.shard)

    def _tools(self, key: ToolKey) -> ReadyTools:
        """The tools started between jobs if they fit ``key``, else new ones."""
        ready, self.ready = self.ready, None
        if ready is not None and ready.key == key:
            return ready
        if ready is not None:
            ready.close()
        return ReadyTools(key, self.cfg.work_dir)

    def _start_ready(self, key: ToolKey) -> None:
        """Start the next job's tools now, guessing it uses the same database and formats."""
        if self.stop_event.is_set():
            return
        try:
            self.ready = ReadyTools(key, self.cfg.work_dir)
        except (BlastError, OSError) as exc:  # the next job starts its own (or says why not)
            log.warning("could not start the next job's tools: %s", exc)

    def _query_text(self, spec: JobSpec) -> str:
        if spec.query.fasta is not None:
            return spec.query.fasta
        container = self.cfg.storage.inputs_container
        name = spec.query.blob or ""
        blob = self.storage.container(container).get_blob_client(name)
        try:
            size = blob.get_blob_properties().size
        except ResourceNotFoundError:
            raise JobFailed(
                f"query blob {name!r} not found in container {container!r}; upload it first"
            ) from None
        if size > MAX_BLOB_QUERY_BYTES:
            raise JobFailed(
                f"query blob {name!r} is {size} bytes; the limit is {MAX_BLOB_QUERY_BYTES}: "
                "split it with `blast-jobs submit` (it batches large files)"
            )
        try:
            text = blob.download_blob(max_concurrency=4).readall().decode("utf-8")
        except UnicodeDecodeError:
            raise JobFailed(f"query blob {name!r} is not UTF-8 text") from None
        validate_fasta(text, spec.program)
        return text

    def _results(
        self, spec: JobSpec, workdir: Path, tools: ReadyTools, formats: list[int], archived: bool
    ) -> tuple[dict[str, str], float | None, int, str | None, dict[str, float]]:
        """Make the formats, write the hit FASTA if the job asked for it and upload
        everything, each step as soon as its input exists; the success marker goes after every
        result file.

        With the archive (``archived``) each format is derived from it with blast_formatter,
        and the hit FASTA is fetched beside them for the ids the archive names, when they prove
        right. Without it the search wrote 7, and 6 is 7 without its comment lines.

        Returns:
            The result links, their expiry, the number of hits, why there is no hit FASTA
            (None when it is stored), and when each step ended (seconds from the start).
        """
        t0 = time.monotonic()
        steps: dict[str, float] = {}

        def derive(fmt: int) -> None:
            tools.formatter(fmt).finish(
                workdir / FORMAT_FILES[11], workdir / FORMAT_FILES[fmt], self.cfg.job_timeout,
                self.stop_deadline_passed,
            )  # fmt: skip

        def derive_and_upload(fmt: int) -> tuple[str, float | None]:
            derive(fmt)
            return self._upload_file(spec, workdir, fmt)

        def fasta_step(guess: Future[Guess] | None) -> str | None:
            reason = self._hit_fasta(spec, workdir, tools, guess)
            steps["fasta_s"] = time.monotonic() - t0
            return reason

        stored = [11, *formats] if archived else formats
        with ThreadPoolExecutor(max_workers=len(formats) + 4) as pool:

            def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
                # copy_context: log lines from these threads keep the job id
                return pool.submit(contextvars.copy_context().run, fn, *args)

            uploads: dict[int, Future[tuple[str, float | None]]] = {}
            guess: Future[Guess] | None = None
            counted: int | None = None
            if archived:
                uploads[11] = submit(self._upload_file, spec, workdir, 11)
                uploads.update({f: submit(derive_and_upload, f) for f in formats if f != 6})
                if spec.hit_fasta:
                    guess = submit(self._guess_hit_fasta, workdir, tools)
                derive(6)
            else:
                if 7 in formats:
                    uploads[7] = submit(self._upload_file, spec, workdir, 7)
                src, dst = workdir / FORMAT_FILES[7], workdir / FORMAT_FILES[6]
                counted = tabular_from_commented(src, dst)
            steps["tabular_s"] = time.monotonic() - t0
            fasta = submit(fasta_step, guess) if spec.hit_fasta else None
            uploads[6] = submit(self._upload_file, spec, workdir, 6)
            hits = counted if counted is not None else count_hits(workdir / FORMAT_FILES[6])
            done = {fmt: future.result() for fmt, future in uploads.items()}
            steps["files_s"] = time.monotonic() - t0
            marker = submit(self.retry, lambda: self._upload_marker(spec, stored, hits))
            no_fasta = fasta.result() if fasta is not None else HIT_FASTA_NOT_ASKED
            marker.result()
        links = {str(fmt): done[fmt][0] for fmt in stored}
        return links, done[6][1], hits, no_fasta, steps

    def _guess_hit_fasta(self, workdir: Path, tools: ReadyTools) -> Guess:
        """Fetch the hit sequences of the subject ids guessed from the archive, beside
        blast_formatter: the ids and why there are no sequences (None: written), or None when
        the archive does not tell."""
        ids = archive_subject_ids(workdir / FORMAT_FILES[11])
        if ids is None:
            return None
        return ids, self._fetch_hits(workdir, tools, ids, workdir / GUESSED_FASTA)

    def _fetch_hits(
        self, workdir: Path, tools: ReadyTools, ids: list[str], out: Path | None
    ) -> str | None:
        """:func:`write_hit_fasta` with the ready blastdbcmd: to ``out`` (None: the stored
        name); None once written, else why not."""
        return write_hit_fasta(
            tools.dbcmd(),
            tools.key.db,
            workdir,
            ids,
            self.cfg.job_timeout,
            should_abort=self.stop_deadline_passed,
            out=out,
        )

    def _hit_fasta(
        self,
        spec: JobSpec,
        workdir: Path,
        tools: ReadyTools,
        guess: Future[Guess] | None,
    ) -> str | None:
        """Store ``hits.fasta`` (whole hit subjects); None once stored, else why not.

        The sequences fetched for the ids guessed from the archive (``guess``) are kept only
        when those are exactly the ids of the tabular results; otherwise they are fetched for
        those.
        """
        ids = subject_ids(workdir / FORMAT_FILES[6])
        guessed = guess.result() if guess is not None else None
        if guessed is not None and guessed[0] == ids:
            reason = guessed[1]
            if reason is None:
                (workdir / GUESSED_FASTA).replace(workdir / HIT_FASTA_FILE)
        else:
            (workdir / GUESSED_FASTA).unlink(missing_ok=True)
            reason = self._fetch_hits(workdir, tools, ids, None)
        if reason is not None:
            log.info("no hit sequences: %s", reason)
            return reason
        name = f"{spec.job_id}/{HIT_FASTA_FILE}"

        def put() -> None:
            with (workdir / HIT_FASTA_FILE).open("rb") as fh:
                self.storage.container(self.cfg.storage.results_container).upload_blob(
                    name, fh, overwrite=True, max_concurrency=4
                )

        self.retry(put)
        return None

    def _upload_file(self, spec: JobSpec, workdir: Path, fmt: int) -> tuple[str, float | None]:
        results = self.cfg.storage.results_container
        name = f"{spec.job_id}/{FORMAT_FILES[fmt]}"

        def put() -> None:
            with (workdir / FORMAT_FILES[fmt]).open("rb") as fh:
                self.storage.container(results).upload_blob(
                    name, fh, overwrite=True, max_concurrency=4
                )

        self.retry(put)
        url, exp = self.storage.blob_link(results, name)
        return url, exp.timestamp() if exp is not None else None

    def _upload_marker(self, spec: JobSpec, formats: list[int], hits: int) -> None:
        marker = {
            "job_id": spec.job_id,
            "hits": hits,
            "formats": formats,
            "worker": self.cfg.worker_id,
            "finished": time.time(),
        }
        self.storage.container(self.cfg.storage.results_container).upload_blob(
            f"{spec.job_id}/{SUCCESS_MARKER}", json.dumps(marker), overwrite=True
        )


def search_options(spec: JobSpec) -> Options:
    """The options the job searches with: a shard is asked for the margin the merge needs
    over the user's ``max_target_seqs`` (:func:`blast_client.shards.shard_max_target_seqs`)."""
    if spec.shard is None:
        return spec.options
    limit = shard_max_target_seqs(spec.options.max_target_seqs)
    return dataclasses.replace(spec.options, max_target_seqs=limit)


def _fatal(message: str) -> int:
    log.critical(message)
    print(f"blast-worker: {message}", file=sys.stderr)
    return 1


def main() -> None:
    """Entry point of ``blast-worker``: exit 2 on bad configuration, else run until SIGTERM."""
    try:
        cfg = load_worker_config()
    except ConfigError as exc:
        print(f"blast-worker: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    missing = [b for b in ("blastn", "blast_formatter", "blastdbcmd") if not shutil.which(b)]
    if missing:
        print(
            f"blast-worker: {', '.join(missing)} not found on PATH: install ncbi-blast+",
            file=sys.stderr,
        )
        sys.exit(2)
    jsonlog.setup(cfg.worker_id)
    worker = Worker(cfg)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    if cfg.health_port:
        try:
            serve(worker.health, cfg.health_port)
        except OSError as exc:
            print(
                f"blast-worker: BLAST_HEALTH_PORT={cfg.health_port} cannot be used "
                f"({exc.strerror}); pick a free port",
                file=sys.stderr,
            )
            sys.exit(2)
    try:
        code = worker.run()
    except ClientAuthenticationError as exc:
        code = _fatal(
            f"cannot sign in to storage: {_brief(exc)}; check AZURE_CLIENT_ID and "
            "the managed identity, or the connection string's key"
        )
    except HttpResponseError as exc:
        if exc.status_code not in (401, 403):
            raise
        code = _fatal(
            f"storage refused access ({exc.status_code}): the identity needs the Storage Queue "
            "Data Contributor, Storage Table Data Contributor and Storage Blob Data Contributor "
            "roles on the account (or use a connection string)"
        )
    sys.stdout.flush()
    # A download thread may still be running after a stop; do not wait for it.
    os._exit(code)


if __name__ == "__main__":
    main()
