"""The worker's run-to-completion mode (``BLAST_EXIT_WHEN_IDLE``) on real storage and BLAST:
it finishes every job it can see, then exits 0; it never exits mid-job."""

from __future__ import annotations

import time

from blast_client.fasta import iter_records, join_records
from blast_client.joblog import JobLog

from testbed.blast_stack import DEMO_DB, Stack


def test_worker_drains_the_queue_then_exits_0(stack: Stack, demo_queries: str) -> None:
    records = list(iter_records(demo_queries))[:6]
    ids = stack.submit(join_records(records), "--db", DEMO_DB, "--batch-len", "1")
    worker = stack.start_worker(BLAST_DBS=DEMO_DB, BLAST_EXIT_WHEN_IDLE="3s")
    code = worker.wait(timeout=300)
    exited = time.time()
    assert code == 0, worker.tail()
    log = JobLog(stack.storage.table)
    rows = [log.get(job) for job in ids]
    assert all(r is not None and r["status"] == "succeeded" for r in rows), rows
    last = max(r["finished"].timestamp() for r in rows if r is not None)
    # It waited for the idle time after its last job, and did not linger much beyond it.
    assert exited - last >= 3, "exited before the queue had been empty for 3 s"
    assert any(line.get("msg") == "queue drained; exiting" for line in worker.logs())


def test_service_mode_keeps_running_on_an_empty_queue(stack: Stack) -> None:
    worker = stack.start_worker(BLAST_DBS=DEMO_DB)
    worker.wait_state("idle")
    # Longer than the drain test's idle time: the service mode never drains.
    time.sleep(8)
    assert worker.alive, "a service worker exited on an empty queue"
