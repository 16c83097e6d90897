"""A final job row is never overwritten (Azurite's Table storage, its etags): the writes a
worker, a stopping worker and a run's janitor make after a row exists are conditional on it.

The interleavings are made by hand, so each holds by construction: a second delivery reads
the row while the first still runs it, the first then finishes the job, and only then does
the second write ``running`` (the write that left a row ``running`` for good when the groups
were deleted before the second delivery finished)."""

from __future__ import annotations

import time

from blast_client.joblog import JobLog, run_partition

from testbed.blast_stack import Stack


def test_a_write_based_on_a_read_before_the_job_finished_leaves_it_final(stack: Stack) -> None:
    log = JobLog(stack.storage.table)
    log.record_queued("j1", "blastn", "demo", None, run_id="r00000001")
    first = log.update_unless_final("j1", status="running", worker="a", attempts=1)
    assert first.done and first.etag
    found = log.read("j1")  # a second delivery of the message reads the row: running
    assert found is not None and found[0]["status"] == "running"
    assert log.finish_once("j1", first.etag, worker="a", hits=3)  # the first finishes
    late = log.update_unless_final("j1", found[1], status="running", worker="b", attempts=2)
    assert not late.done and late.final == "succeeded" and late.etag is None
    row = log.get("j1")
    assert row is not None and (row["status"], row["worker"], row["hits"]) == ("succeeded", "a", 3)

    # Nor does a write that reads the row itself (a release's "queued", a janitor's cancel),
    # nor a success recorded over a cancelled job.
    for status in ("queued", "failed", "poisoned", "cancelled"):
        assert log.update_unless_final("j1", status=status).final == "succeeded"
    log.record_queued("j2", "blastn", "demo", None)
    assert log.update_unless_final("j2", status="cancelled", finished=time.time()).done
    assert not log.finish_once("j2", worker="late")
    assert log.update_unless_final("j2", status="queued").final == "cancelled"
    row = log.get("j2")
    assert row is not None and row["status"] == "cancelled" and "worker" not in row


def test_a_conditional_write_retries_a_row_changed_under_it_and_creates_a_missing_one(
    stack: Stack,
) -> None:
    log = JobLog(stack.storage.table)
    log.record_queued("j3", "blastn", "demo", None)
    found = log.read("j3")
    assert found is not None
    assert log.update_unless_final("j3", status="running", worker="a").done
    # The etag read is stale now and the row is not final: read again, then write.
    again = log.update_unless_final("j3", found[1], status="running", worker="b")
    assert again.done and again.etag and again.etag != found[1]
    row = log.get("j3")
    assert row is not None and row["worker"] == "b"

    # A missing row is created with its index entries (a message whose row was never written).
    made = log.update_unless_final("j4", status="cancelled", run_id="r00000002")
    assert made.done
    row = log.get("j4")
    assert row is not None and row["status"] == "cancelled" and row["submitted"]
    index = stack.storage.table.query_entities(
        "PartitionKey eq @p", parameters={"p": run_partition("r00000002")}
    )
    assert [e["RowKey"] for e in index] == ["j4"]
