"""Faults: a worker killed mid-job, a download killed halfway, a corrupted database blob,
and a storage outage. Every job must still end succeeded exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from blast_client.demo import DemoSpec, generate, makeblastdb_argv, write_demo
from blast_client.fasta import iter_records
from blast_client.joblog import JobLog
from blast_client.messages import result_blob
from blast_worker.worker import SUCCESS_MARKER

from testbed.blast_stack import BIG_DB, BIG_SEQS, Stack, WorkerContainer
from testbed.engine import wait_for


def big_queries() -> list[str]:
    return [r.text for r in iter_records(generate(DemoSpec(name=BIG_DB, seqs=BIG_SEQS)).queries)]


def assert_succeeded_once(stack: Stack, ids: list[str]) -> None:
    """Each job (of outfmt 6): one job row saying succeeded, one time-index row, results
    present."""
    table = stack.storage.table
    results = stack.storage.container(stack.env["BLAST_RESULTS_CONTAINER"])
    for job in ids:
        rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": job}))
        assert len(rows) == 1 and rows[0]["status"] == "succeeded", (job, rows)
        index = list(table.query_entities("job_id eq @j", parameters={"j": job}))
        assert len(index) == 1, (job, index)
        names = {b.name for b in results.list_blobs(name_starts_with=f"{job}/")}
        assert {result_blob(job, 6), f"{job}/{SUCCESS_MARKER}"} <= names
        # Tabular output only: BLAST wrote it directly, without an archive.
        assert result_blob(job, 11) not in names


def kill_mid_blast(worker: WorkerContainer, timeout: float = 60) -> str:
    """SIGKILL ``worker`` while BLAST runs for a job; return that job's id.

    The worker is frozen first and its log read: a job whose search has started but not
    finished is certainly in flight, its message not deleted. (Between a health answer of
    "busy" and a kill, a short job could otherwise finish.)

    Args:
        worker: A worker that is about to take jobs.
        timeout: Seconds to find it mid-search.
    """

    def frozen_mid_blast() -> str | None:
        worker.wait_state("busy", timeout=timeout)
        worker.freeze()
        lines = worker.logs()
        started = [x["job"] for x in lines if x.get("msg") == "job started"]
        searched = {x["job"] for x in lines if x.get("msg") == "BLAST finished"}
        if started and started[-1] not in searched:
            return str(started[-1])
        worker.thaw()
        return None

    job: str = wait_for(frozen_mid_blast, timeout, f"{worker.name} to be mid-search")
    worker.kill9()
    return job


def test_kill_9_mid_job_loses_and_duplicates_nothing(stack: Stack) -> None:
    queries = big_queries()
    w1 = stack.start_worker(BLAST_DBS=BIG_DB)
    w2 = stack.start_worker(BLAST_DBS=BIG_DB)
    w1.wait_state("idle")
    w2.wait_state("idle")
    # 20 jobs of 5 queries each, with the slower dc-megablast task, so jobs are in flight.
    fasta = "".join(queries[i % len(queries)] for i in range(100))
    ids = stack.submit(fasta, "--db", BIG_DB, "--batch-len", "2000", "--task", "dc-megablast")
    assert len(ids) == 20
    killed_job = kill_mid_blast(w1)
    stack.cli("wait", *ids, "--timeout", "240", "--interval", "0.5")
    assert_succeeded_once(stack, ids)
    row = JobLog(stack.storage.table).get(killed_job)
    assert row is not None
    assert row["attempts"] >= 2 and row["worker"] == w2.name
    assert stack.storage.queue.peek_messages() == []
    assert stack.storage.poison.peek_messages() == []
    assert w2.alive


def test_a_restarted_worker_releases_its_message_at_once_and_only_its_own(
    stack: Stack,
) -> None:
    # A visibility timeout far beyond the test's wait: the job killed mid-search can only
    # come back in time if the restarted worker hands its message back (lease journal).
    leases = stack.root / "journal-cache" / ".leases"
    leases.mkdir(parents=True)
    leases.chmod(0o777)  # the test writes a record below; the worker runs as uid 1000
    w = stack.start_worker(
        BLAST_DBS=BIG_DB,
        BLAST_VISIBILITY_TIMEOUT="900",
        BLAST_DB_CACHE=str(leases.parent),
    )
    w.wait_state("idle", timeout=120)
    queries = big_queries()
    fasta = "".join(queries[i % len(queries)] for i in range(30))
    ids = stack.submit(fasta, "--db", BIG_DB, "--batch-len", "2000", "--task", "dc-megablast")
    killed_job = kill_mid_blast(w)
    w.container.start()  # as compose's restart policy does
    stack.cli("wait", *ids, "--timeout", "300", "--interval", "0.5")
    assert_succeeded_once(stack, ids)
    row = JobLog(stack.storage.table).get(killed_job)
    assert row is not None and row["attempts"] >= 2
    released = [
        x for x in w.logs() if x.get("msg") == "released the message held before the restart"
    ]
    assert [x["job"] for x in released] == [killed_job]

    # A record whose message another worker has taken since (its timeout ran out) must not
    # release it: the old pop receipt no longer matches.
    w.kill9()
    [late] = stack.submit(queries[0], "--db", BIG_DB)
    queue = stack.storage.queue
    first = wait_for(lambda: queue.receive_message(visibility_timeout=1), 30, "the message")
    journal = leases / f"{w.container.attrs['Config']['Hostname']}.json"
    journal.write_text(
        json.dumps({"message_id": first.id, "pop_receipt": first.pop_receipt, "job_id": late})
    )
    taken = wait_for(lambda: queue.receive_message(visibility_timeout=900), 30, "redelivery")
    assert taken.id == first.id
    w.container.start()
    w.wait_state("idle", timeout=120)
    assert not journal.exists()
    lines = [x for x in w.logs() if x.get("job") == late]
    assert [x["msg"] for x in lines] == [
        "the message held before the restart is no longer ours; nothing to release"
    ]
    assert queue.peek_messages() == []  # still hidden: its holder keeps it
    queue.update_message(taken.id, taken.pop_receipt, visibility_timeout=0)  # holder gives up
    stack.cli("wait", late, "--timeout", "120", "--interval", "0.5")
    assert_succeeded_once(stack, [late])
    assert queue.peek_messages() == [] and stack.storage.poison.peek_messages() == []


def test_download_killed_halfway_resumes_and_verifies(stack: Stack, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {
        "BLAST_DBS": BIG_DB,
        "BLAST_DB_CACHE": str(cache),
        "BLAST_DOWNLOAD_CONCURRENCY": "1",
        "BLAST_DOWNLOAD_CHUNK_MIB": "0.0625",
    }
    worker = stack.start_worker("first", **env)
    staging = cache / ".staging" / BIG_DB

    def some_chunk_done() -> bool:
        return any(len(p.read_text().splitlines()) >= 2 for p in staging.glob("*.part.state"))

    wait_for(some_chunk_done, 60, "the first downloaded range", interval=0.002)
    # Freeze storage so the download cannot finish, then kill the worker outright.
    with stack.storage_paused():
        worker.kill9()
    assert list(staging.glob("*.part")), "the download finished before the kill"
    assert not (cache / BIG_DB).exists()

    again = stack.start_worker("second", **env)
    again.wait_state("idle", timeout=120)
    resumed = [line for line in again.logs() if "resumed_bytes" in line]
    assert resumed and resumed[0]["resumed_bytes"] > 0
    assert (cache / BIG_DB / ".ready.json").is_file()
    assert not list(cache.glob(f"{BIG_DB}/*.part*"))
    info = stack.run_tool(
        ["blastdbcmd", "-db", str(cache / BIG_DB / BIG_DB), "-info"]
    ).stdout.decode()
    assert f"{BIG_SEQS:,} sequences" in info
    [job] = stack.submit(big_queries()[0], "--db", BIG_DB)
    stack.cli("wait", job, "--timeout", "60", "--interval", "0.5")


def test_corrupted_blob_is_refused(stack: Stack, tmp_path: Path) -> None:
    name = "corrupt"
    spec = DemoSpec(name=name, seqs=50, seq_len=500, seed=7)
    tmp = tmp_path / "makeblastdb"
    tmp.mkdir()
    subjects, _ = write_demo(spec, tmp)
    out = tmp / "db"
    out.mkdir()
    stack.run_tool(makeblastdb_argv(subjects, out / name, name))  # the image's makeblastdb
    stack.cli("db", "upload", name, *sorted(str(p) for p in out.iterdir()))
    nsq = (out / f"{name}.nsq").read_bytes()
    damaged = nsq[:100] + bytes([nsq[100] ^ 0xFF]) + nsq[101:]
    container = stack.storage.container(stack.env["BLAST_DB_CONTAINER"])
    container.upload_blob(f"{name}/{name}.nsq", damaged, overwrite=True)  # manifest unchanged
    worker = stack.start_worker()
    [job] = stack.submit(">q\nACGTACGTACGTAGCTAGCTAGCATCGACTAGCATCGAC\n", "--db", name)
    stack.cli("wait", job, "--timeout", "60", "--interval", "0.5", check=False)
    status = stack.cli_json("status", job, check=False)
    assert status["ok"] is False and status["data"] is not None
    row = status["data"]
    assert row["status"] == "failed"
    assert "MD5 mismatch" in row["error"] and f"{name}/{name}.nsq" in row["error"]
    assert not (worker.cache / name).exists()
    assert not list((worker.cache / ".staging").rglob("*.part"))
    assert worker.alive
    # Provisioning on demand logs under the job's id, including from download threads.
    download_lines = [x for x in worker.logs() if x.get("logger") == "blast_worker.provision"]
    assert download_lines and all(x["job"] == job for x in download_lines)


def test_storage_outage_backs_off_and_recovers(stack: Stack) -> None:
    queries = big_queries()
    worker = stack.start_worker(BLAST_DBS=BIG_DB)
    worker.wait_state("idle")
    fasta = "".join(queries[i % len(queries)] for i in range(60))
    ids = stack.submit(fasta, "--db", BIG_DB, "--batch-len", "2000", "--task", "dc-megablast")
    log = JobLog(stack.storage.table)

    def first_done() -> bool:
        row = log.get(ids[0])
        return row is not None and row["status"] == "succeeded"

    wait_for(first_done, 60, "the first job")
    stack.storage_down()

    def retries() -> list[float]:
        return [line["retry_in"] for line in worker.logs() if "retry_in" in line]

    # The outage lasts until the worker has backed off a few times, not a fixed time.
    wait_for(lambda: len(retries()) >= 3, 120, "three backoff warnings", interval=0.5)
    assert worker.alive
    stack.storage_up()
    stack.cli("wait", *ids, "--timeout", "240", "--interval", "0.5")
    assert_succeeded_once(stack, ids)
    warnings = [line for line in worker.logs() if "retry_in" in line]
    assert warnings, "no backoff was logged during the outage"
    delays = [w["retry_in"] for w in warnings]
    assert max(delays) > min(delays)  # the delay grows (with jitter) instead of hammering
    health = worker.health()
    assert health is not None and health[0] == 200
    assert worker.alive
