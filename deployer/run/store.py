"""The run record in Table storage (the job log's table), so any machine and a restarted
janitor see the same run.

Entities:

* ``PartitionKey="runs"``, ``RowKey=<run id>``: the record (status, parameters, groups,
  bills, deadline); listing runs is one partition query;
* ``PartitionKey="run-<run id>"``, ``RowKey="c<5 digits>"``: the batches (index, job id,
  query count, shards), packed as JSON lines in entities of at most
  :data:`BATCHES_PER_ENTITY_CHARS`, in query order: a run of 10,000 batches is 20 entities,
  one page to read, where a partition serves about 2,000 entities a second. Runs stored one
  entity per batch (``RowKey=<index, 5 digits>``) are read as well.

Updates are etag-guarded: a janitor pass that raced a ``cancel`` is retried on a fresh read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from blast_client.joblog import JobLog

from deployer.run.state import Batch, GroupBill, Run

RUNS_PARTITION = "runs"
BATCHES_PER_ENTITY_CHARS = 30_000
"""Characters of batch lines packed in one entity (a string property holds 64 KiB)."""


class Conflict(Exception):
    """The record changed since it was read; read it again and redo the pass."""


def _batch_partition(run_id: str) -> str:
    return f"run-{run_id}"


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


def to_entity(run: Run) -> dict[str, Any]:
    """The record entity of ``run`` (without its batches)."""
    return {
        "PartitionKey": RUNS_PARTITION,
        "RowKey": run.run_id,
        "deployment": run.deployment,
        "status": run.status,
        "created": float(run.created),
        "params": json.dumps(run.params, sort_keys=True),
        "queries": run.queries,
        "batch_count": len(run.batches),
        "groups": json.dumps(list(run.groups)),
        "janitor": run.janitor or "",
        "deadline": float(run.deadline) if run.deadline is not None else -1.0,
        "reason": run.reason,
        "finished": float(run.finished) if run.finished is not None else -1.0,
        "bills": json.dumps([asdict(b) for b in run.bills]),
        "deleted": json.dumps(list(run.deleted)),
        "scale": run.scale,
        "protocol": run.protocol,
    }


def from_entity(entity: dict[str, Any], batches: tuple[Batch, ...] = ()) -> Run:
    """The run of a record entity.

    Args:
        entity (dict[str, Any]): As read from the table.
        batches (tuple[Batch, ...]): Its batches, read separately.
    """
    deadline = _epoch(entity.get("deadline"))
    finished = _epoch(entity.get("finished"))
    return Run(
        run_id=str(entity["RowKey"]),
        deployment=str(entity.get("deployment", "")),
        status=str(entity.get("status", "")),
        created=_epoch(entity.get("created")) or 0.0,
        params=json.loads(entity.get("params") or "{}"),
        queries=int(entity.get("queries", 0)),
        batches=batches,
        groups=tuple(json.loads(entity.get("groups") or "[]")),
        janitor=str(entity.get("janitor") or "") or None,
        deadline=deadline if deadline is not None and deadline >= 0 else None,
        reason=str(entity.get("reason", "")),
        finished=finished if finished is not None and finished >= 0 else None,
        bills=tuple(GroupBill(**b) for b in json.loads(entity.get("bills") or "[]")),
        deleted=tuple(json.loads(entity.get("deleted") or "[]")),
        scale=str(entity.get("scale") or ""),
        protocol=int(entity.get("protocol") or 1),
    )


def pack_batches(batches: Iterable[Batch]) -> list[dict[str, str]]:
    """The batch entities of a run without their partition (pure): each batch a JSON line
    ``[index, job id, queries, [shards]]``, packed in order into entities of at most
    :data:`BATCHES_PER_ENTITY_CHARS`, ``RowKey`` ``c00000``, ``c00001``..."""
    chunks: list[list[str]] = []
    size = 0
    for b in batches:
        line = json.dumps([b.index, b.job_id, b.queries, list(b.shards)], separators=(",", ":"))
        if not chunks or size + len(line) + 1 > BATCHES_PER_ENTITY_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return [{"RowKey": f"c{i:05d}", "batches": "\n".join(c)} for i, c in enumerate(chunks)]


def unpack_batches(rows: Iterable[Mapping[str, Any]]) -> tuple[Batch, ...]:
    """The batches in a run's batch entities, packed or one per batch, by index (pure)."""
    batches: list[Batch] = []
    for r in rows:
        if r.get("batches"):
            for line in str(r["batches"]).split("\n"):
                index, job_id, queries, shards = json.loads(line)
                batches.append(Batch(int(index), str(job_id), int(queries), tuple(shards)))
        elif r.get("job_id"):  # stored one entity per batch, before they were packed
            shards = tuple(str(r["shards"]).split(",")) if r.get("shards") else ()
            batches.append(Batch(int(r["RowKey"]), str(r["job_id"]), int(r["queries"]), shards))
    return tuple(sorted(batches, key=lambda b: b.index))


class RunStore:
    """Runs in a table.

    Args:
        table (TableClient): The job log's table (it exists once resources are ensured).
    """

    def __init__(self, table: TableClient) -> None:
        self.table = table
        self._batches_of: dict[str, tuple[Batch, ...]] = {}  # never change once written

    def create(self, run: Run) -> None:
        """Write a new record and its batches (batches first, in batch transactions: a record
        is never partial)."""
        partition = _batch_partition(run.run_id)
        JobLog(self.table).upsert_batched(
            {"PartitionKey": partition, **e} for e in pack_batches(run.batches)
        )
        self.table.upsert_entity(to_entity(run), mode=UpdateMode.REPLACE)

    def get(self, run_id: str) -> tuple[Run, str] | None:
        """The run and its etag, or None if there is no such run."""
        try:
            entity = self.table.get_entity(RUNS_PARTITION, run_id)
        except ResourceNotFoundError:
            return None
        batches = self._batches(run_id, int(entity.get("batch_count", -1)))
        return from_entity(dict(entity), batches), str(entity.metadata["etag"])

    def _batches(self, run_id: str, count: int) -> tuple[Batch, ...]:
        """The run's batches: read once (all ``count`` of them), then remembered."""
        known = self._batches_of.get(run_id)
        if known is not None and len(known) == count:
            return known
        rows = self.table.query_entities(
            "PartitionKey eq @p",
            parameters={"p": _batch_partition(run_id)},
            # Not Timestamp: parsed for every entity, and not needed.
            select=["RowKey", "batches", "job_id", "queries", "shards"],
        )
        batches = unpack_batches(rows)
        if len(batches) == count:
            self._batches_of[run_id] = batches
        return batches

    def save(self, run: Run, etag: str) -> str:
        """Replace the record if it is unchanged since ``etag`` was read; return the new etag.

        Raises:
            Conflict: when someone else changed it first.
        """
        try:
            meta = self.table.update_entity(
                to_entity(run),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise Conflict(run.run_id) from None
        return str(meta["etag"])

    def list(self) -> list[Run]:
        """Every run's record (without batches), newest first."""
        rows = self.table.query_entities("PartitionKey eq @p", parameters={"p": RUNS_PARTITION})
        runs = [from_entity(dict(r)) for r in rows]
        return sorted(runs, key=lambda r: r.created, reverse=True)
