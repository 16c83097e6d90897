"""The run record in Table storage (the job log's table), so any machine and a restarted
janitor see the same run.

Entities:

* ``PartitionKey="runs"``, ``RowKey=<run id>``: the record (status, parameters, groups,
  bills, deadline); listing runs is one partition query;
* ``PartitionKey="run-<run id>"``, ``RowKey=<index, 5 digits>``: one per batch (job id and
  query count), in query order.

Updates are etag-guarded: a janitor pass that raced a ``cancel`` is retried on a fresh read.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from blast_client.joblog import JobLog

from deployer.run.state import Batch, GroupBill, Run

RUNS_PARTITION = "runs"


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
    )


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
            {
                "PartitionKey": partition,
                "RowKey": f"{b.index:05d}",
                "job_id": b.job_id,
                "queries": b.queries,
                # A sharded batch's job ids, comma-separated (job ids have no commas).
                **({"shards": ",".join(b.shards)} if b.shards else {}),
            }
            for b in run.batches
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
            select=["RowKey", "job_id", "queries", "shards"],  # not Timestamp: parsed, unused
        )
        batches = tuple(
            sorted(
                (
                    Batch(
                        int(r["RowKey"]),
                        str(r["job_id"]),
                        int(r["queries"]),
                        tuple(str(r["shards"]).split(",")) if r.get("shards") else (),
                    )
                    for r in rows
                ),
                key=lambda b: b.index,
            )
        )
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
