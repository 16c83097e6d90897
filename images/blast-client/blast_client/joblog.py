"""The job log table: one row per job, plus a time index for ``recent``.

Layout (both kinds of entity live in the one table ``BLAST_JOB_TABLE``):

* Job row: ``PartitionKey=<job id>``, ``RowKey="job"``. A point read finds a job by id.
  Fields: status (one of :data:`STATUSES`), program, db, name, run_id,
  submitted, started, finished, updated (UTC datetimes), worker, attempts, hits, error,
  results (JSON ``{"6": url, ...}``), results_expiry, and durations: download_s (database
  and query), blast_s (the search), upload_s (blast_formatter and uploads, which overlap);
  cached (what the worker's cache held when the job succeeded: its databases and shards,
  e.g. ``nt.shard2of4``, comma-separated; the memory a worker's searches need).
* Time index: ``PartitionKey="t<YYYYMMDDHH>"`` (UTC hour of submission),
  ``RowKey="<epoch ms, 13 digits>-<job id>"``. ``recent --since 15m`` reads one or two
  partitions with a RowKey range instead of scanning the table.
* Run index: ``PartitionKey="run.<run id>"``, ``RowKey="<job id>"`` for jobs whose message
  named a run. The dot keeps it apart from job rows (job ids have no dots).

A run's job rows are read with one range query, not a point read each: job ids start with
their submission time, so a run's rows lie between its first and last job id
(:meth:`JobLog.run_rows`), filtered by ``run_id`` and, for a reader that keeps what it read
before, by ``Timestamp`` (the rows changed since). Index entries are written in batch
transactions of at most :data:`MAX_TRANSACTION` entities, one partition each.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

STATUSES = ("queued", "running", "succeeded", "failed", "poisoned", "cancelled")
"""Every status a job row can have. The client writes ``queued`` (not for a run's jobs, whose
rows the worker's first write creates: a run's readers count a job without a row as queued),
the worker the next four;
``cancelled`` is written by ``deployer run cancel`` and by a run's janitor (deployment.ttl
reached, or no worker left to run the job)."""
FINAL = frozenset({"succeeded", "failed", "poisoned", "cancelled"})
"""Statuses that never change again: a wait ends, and a worker drops a redelivered message.
Every write after the row is created goes through :meth:`JobLog.update_unless_final` or
:meth:`JobLog.finish_once`, both conditional on the row's etag, so none can overwrite one."""
STATE_COLUMNS = (
    "PartitionKey", "Timestamp", "status", "attempts", "hits", "error", "started", "finished",
)  # fmt: skip
"""The columns of a job row that say where a job is, why it failed or was cancelled, and when
it ran (the janitor's pace of a run's batches), for a reader of many rows: a row's result
links and other times are most of its bytes and of the time it takes to read; ``error`` is
empty on a row that succeeded."""
WRITE_ATTEMPTS = 5
"""Conditional writes tried before giving up on a row that keeps changing under them."""
JOB_ROW = "job"
RUN_PREFIX = "run."
MAX_TRANSACTION = 100
"""Entities per batch transaction (Table storage's limit)."""
MAX_PAGE = 1000
"""Entities per page of a query at most (Table storage's limit)."""
TRANSACTION_THREADS = 4
"""Batch transactions in flight at once. A partition takes about 2,000 entities a second, and
four transactions of 100 at Azure's ~0.2 s each are about that; one answered 503 (too fast) is
retried by the SDK."""


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def index_partition(epoch: float) -> str:
    """Time-index partition for an instant: ``t`` plus the UTC hour.

    Args:
        epoch: Seconds since the epoch.
    """
    return "t" + _utc(epoch).strftime("%Y%m%d%H")


def index_row(epoch: float, job_id: str) -> str:
    """Time-index row key: zero-padded epoch milliseconds, then the job id (sorts by time).

    Args:
        epoch: Seconds since the epoch.
        job_id: The job id.
    """
    return f"{int(epoch * 1000):013d}-{job_id}"


def run_partition(run_id: str) -> str:
    """Run-index partition of a run: ``run.<run id>``.

    Args:
        run_id: The run id.
    """
    return RUN_PREFIX + run_id


def index_partitions_since(since: float, now: float) -> list[str]:
    """Every hourly index partition that overlaps ``[since, now]``.

    Args:
        since: Start of the window (epoch seconds).
        now: End of the window (epoch seconds).
    """
    parts: list[str] = []
    hour = int(since // 3600) * 3600
    while hour <= now:
        parts.append(index_partition(hour))
        hour += 3600
    return parts


def to_jsonable(entity: dict[str, Any]) -> dict[str, Any]:
    """A job row as plain JSON: datetimes become epoch seconds, results become an object.

    Args:
        entity: The entity as read from the table.
    """
    doc: dict[str, Any] = {"job_id": entity.get("PartitionKey")}
    for key, value in entity.items():
        if key in ("PartitionKey", "RowKey"):
            continue
        if isinstance(value, dt.datetime):
            value = value.timestamp()
        elif key == "results" and isinstance(value, str):
            value = json.loads(value) if value else {}
        doc[key] = value
    return doc


_TIMES = frozenset({"submitted", "started", "finished", "results_expiry"})


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields as table columns: epoch times become datetimes, ``results`` JSON; None is
    left out (the column keeps its value)."""
    columns: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _TIMES and isinstance(value, int | float):
            value = _utc(value)
        elif key == "results" and isinstance(value, dict):
            value = json.dumps(value)
        elif value is None:
            continue
        columns[key] = value
    return columns


def queued_row(
    job_id: str, program: str, db: str, name: str | None, now: float, run_id: str | None
) -> dict[str, Any]:
    """The row of a job just submitted (pure)."""
    entity: dict[str, Any] = {
        "PartitionKey": job_id,
        "RowKey": JOB_ROW,
        "status": "queued",
        "program": program,
        "db": db,
        "name": name or "",
        "submitted": _utc(now),
        "updated": _utc(now),
        "attempts": 0,
    }
    if run_id is not None:
        entity["run_id"] = run_id
    return entity


def index_entries(job_id: str, now: float, run_id: str | None) -> list[dict[str, Any]]:
    """A job's time-index entry and, for a run's job, its run-index entry (pure)."""
    entries: list[dict[str, Any]] = [
        {"PartitionKey": index_partition(now), "RowKey": index_row(now, job_id), "job_id": job_id}
    ]
    if run_id is not None:
        entries.append({"PartitionKey": run_partition(run_id), "RowKey": job_id})
    return entries


def transactions(entities: Iterable[dict[str, Any]]) -> list[Sequence[dict[str, Any]]]:
    """Entities in batch transactions: grouped by partition (first seen first), at most
    :data:`MAX_TRANSACTION` each, order kept within a partition (pure)."""
    parts: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        parts.setdefault(str(entity["PartitionKey"]), []).append(entity)
    return [
        rows[i : i + MAX_TRANSACTION]
        for rows in parts.values()
        for i in range(0, len(rows), MAX_TRANSACTION)
    ]


@dataclass(frozen=True)
class Written:
    """What a conditional write of a job row did.

    Attributes:
        etag: The row's etag after the write, if the service said (None when not written).
        final: The final status the row already had, in which case nothing was written.
    """

    etag: str | None
    final: str | None = None

    @property
    def done(self) -> bool:
        """True when the fields were written."""
        return self.final is None


def _etag(written: Any) -> str | None:
    etag = written.get("etag") if isinstance(written, dict) else None
    return etag if isinstance(etag, str) else None


class JobLog:
    """Reads and writes job rows.

    Args:
        table: The job table client.
    """

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job row, or None if there is none.

        Args:
            job_id: The job id.
        """
        try:
            return dict(self.table.get_entity(job_id, JOB_ROW))
        except ResourceNotFoundError:
            return None

    def record_queued(
        self,
        job_id: str,
        program: str,
        db: str,
        name: str | None,
        now: float | None = None,
        run_id: str | None = None,
    ) -> None:
        """Create the row for a newly submitted job and its index entries.

        Args:
            job_id: The job id.
            program: BLAST program.
            db: Database name.
            name: Optional label.
            now: Submission time (epoch seconds); defaults to the clock.
            run_id: The run the job belongs to, if any.
        """
        now = time.time() if now is None else now
        self.table.upsert_entity(
            queued_row(job_id, program, db, name, now, run_id), mode=UpdateMode.REPLACE
        )
        self._index(job_id, now, run_id)

    def _index(self, job_id: str, now: float, run_id: str | None) -> None:
        for entry in index_entries(job_id, now, run_id):
            self.table.upsert_entity(entry)

    def upsert_batched(
        self, entities: Iterable[dict[str, Any]], threads: int = TRANSACTION_THREADS
    ) -> int:
        """Upsert (replace) entities in batch transactions: one partition and at most
        :data:`MAX_TRANSACTION` entities each, ``threads`` transactions at once (each entity
        is written once, so their order does not matter).

        Args:
            entities: Entities with their keys.
            threads: Transactions in flight at once.

        Returns:
            The number of transactions sent.
        """
        chunks = transactions(entities)

        def send(chunk: Sequence[dict[str, Any]]) -> None:
            self.table.submit_transaction(
                [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in chunk]
            )

        if threads > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(threads, len(chunks))) as pool:
                list(pool.map(send, chunks))
        else:
            for chunk in chunks:
                send(chunk)
        return len(chunks)

    def read(self, job_id: str) -> tuple[dict[str, Any], str] | None:
        """The job row and its etag (for :meth:`update_unless_final`), or None if there is none.

        Args:
            job_id: The job id.
        """
        try:
            entity = self.table.get_entity(job_id, JOB_ROW)
        except ResourceNotFoundError:
            return None
        return dict(entity), str(entity.metadata["etag"])

    def update_unless_final(self, job_id: str, etag: str | None = None, **fields: Any) -> Written:
        """Merge ``fields`` into the job row unless it is final, creating it (and its index
        entries) if missing; the write is conditional on the row's etag, so a row that
        another writer made final after it was read is never overwritten.

        Args:
            job_id: The job id.
            etag: The etag of the row as the caller read it (:meth:`read`) and found it not
                final; None reads it first.
            fields: Columns to set (as :meth:`update`).

        Returns:
            The etag after the write, or the final status found instead (nothing written).

        Raises:
            RuntimeError: when the row changed under every one of :data:`WRITE_ATTEMPTS`
                tries.
        """
        columns = _columns(fields)
        for _ in range(WRITE_ATTEMPTS):
            now = time.time()
            entity: dict[str, Any] = {"PartitionKey": job_id, "RowKey": JOB_ROW, **columns}
            entity["updated"] = _utc(now)
            if etag is None:
                found = self.read(job_id)
                if found is None:
                    entity.setdefault("submitted", _utc(now))
                    try:
                        written = self.table.create_entity(entity)
                    except ResourceExistsError:
                        continue  # created meanwhile: read it again
                    run_id = fields.get("run_id")
                    # Indexed by submission, as the client indexes the rows it writes.
                    when = fields.get("submitted")
                    self._index(
                        job_id,
                        float(when) if isinstance(when, (int, float)) else now,
                        run_id if isinstance(run_id, str) else None,
                    )
                    return Written(_etag(written))
                row, etag = found
                if row.get("status") in FINAL:
                    return Written(None, str(row["status"]))
            try:
                written = self.table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                etag = None  # changed since it was read: read it again
                continue
            return Written(_etag(written))
        raise RuntimeError(f"job {job_id}: the row kept changing while updating it")

    def create(self, job_id: str, **fields: Any) -> bool:
        """Create a job's row with ``fields`` (without its index entries); False, with nothing
        written, when it already has one.

        Args:
            job_id: The job id.
            fields: Columns to set (as :meth:`update`).
        """
        now = time.time()
        entity: dict[str, Any] = {"PartitionKey": job_id, "RowKey": JOB_ROW, **_columns(fields)}
        entity["updated"] = _utc(now)
        entity.setdefault("submitted", _utc(now))
        try:
            self.table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    def finish_once(self, job_id: str, etag: str | None = None, **fields: Any) -> bool:
        """Mark a job succeeded unless its row is already final (another delivery succeeded,
        or it was cancelled); etag-guarded.

        Args:
            job_id: The job id.
            etag: The etag of this delivery's own last write to the row, if known: while the
                row is unchanged since, it cannot be final, and one write suffices.
            fields: Columns to set along with ``status="succeeded"``.

        Returns:
            True if this call recorded the success, False if the row was already final.
        """
        columns = _columns(fields)
        for _ in range(WRITE_ATTEMPTS):
            if etag is None:
                row = self.table.get_entity(job_id, JOB_ROW)
                if row.get("status") in FINAL:
                    return False
                etag = row.metadata["etag"]
            entity = {"PartitionKey": job_id, "RowKey": JOB_ROW, **columns}
            entity.update({"status": "succeeded", "updated": _utc(time.time())})
            try:
                self.table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
                return True
            except ResourceModifiedError:
                etag = None
                continue
        raise RuntimeError(f"job {job_id}: the row kept changing while recording success")

    def run_jobs(self, run_id: str) -> list[dict[str, Any]]:
        """Job rows of one run, by job id: the run index gives the run's first and last job
        id, one range query the rows.

        Args:
            run_id: The run id.
        """
        entries = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": run_partition(run_id)}, select=["RowKey"]
        )
        ids = [str(e["RowKey"]) for e in entries]
        if not ids:
            return []
        return sorted(self.run_rows(run_id, min(ids), max(ids)), key=lambda r: r["PartitionKey"])

    def run_rows(
        self,
        run_id: str,
        first: str,
        last: str,
        since: dt.datetime | None = None,
        select: Sequence[str] | None = None,
        unless_status: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Job rows of one run between two job ids (a range of partitions), optionally only
        those changed at or after ``since`` (by their ``Timestamp``, the service's clock).

        Args:
            run_id: The run id.
            first: Its smallest job id.
            last: Its largest job id.
            since: Only rows whose Timestamp is at or after it; None for every row.
            select: Only these columns (e.g. :data:`STATE_COLUMNS`); None for all.
            unless_status: Leave out the rows in this status (e.g. ``queued``).
        """
        query = "PartitionKey ge @first and PartitionKey le @last and RowKey eq @row"
        query += " and run_id eq @run"
        params: dict[str, Any] = {"first": first, "last": last, "row": JOB_ROW, "run": run_id}
        if unless_status is not None:
            query += " and status ne @unless"
            params["unless"] = unless_status
        if since is not None:
            query += " and Timestamp ge @since"
            params["since"] = since
        if select is None:
            yield from self.table.query_entities(query, parameters=params)
        else:
            yield from self.table.query_entities(query, parameters=params, select=list(select))

    def recent(self, since: float, now: float | None = None) -> Iterator[dict[str, Any]]:
        """Job rows submitted at or after ``since``, oldest first.

        Args:
            since: Window start, epoch seconds.
            now: Window end; defaults to the clock.
        """
        now = time.time() if now is None else now
        low = f"{int(since * 1000):013d}"
        for part in index_partitions_since(since, now):
            entries = self.table.query_entities(
                "PartitionKey eq @pk and RowKey ge @low",
                parameters={"pk": part, "low": low},
            )
            for entry in sorted(entries, key=lambda e: str(e["RowKey"])):
                row = self.get(str(entry["job_id"]))
                if row is not None:
                    yield row
