"""The BLAST service end to end: correctness, legacy messages, hostile input, poison queue,
shared-cache provisioning and SIGTERM, against real storage (Azurite) and real BLAST."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from blast_client.demo import DemoSpec, generate
from blast_client.errors import NoResult
from blast_client.fasta import MAX_INLINE_BYTES, iter_records, join_records
from blast_client.joblog import FINAL, JobLog
from blast_client.messages import hit_fasta_blob

from testbed.blast_stack import (
    BIG_DB,
    BIG_SEQS,
    BIN,
    CACHE_IN_CONTAINER,
    DEMO_DB,
    BlastCost,
    Stack,
    WorkerContainer,
)
from testbed.engine import wait_for


def big_records(count: int = 2000) -> list[str]:
    """``count`` distinct query records planted from the big database."""
    data = generate(DemoSpec(name=BIG_DB, seqs=BIG_SEQS, queries=count, decoys=0))
    return [r.text for r in iter_records(data.queries)]


def job_rows(stack: Stack, ids: list[str]) -> dict[str, dict[str, Any]]:
    log = JobLog(stack.storage.table)
    rows = {}
    for job in ids:
        row = log.get(job)
        assert row is not None, f"no row for {job}"
        rows[job] = row
    return rows


def test_tabular_output_is_byte_identical_to_direct_blastn(
    stack: Stack, demo_queries: str, tmp_path: Path
) -> None:
    worker = stack.start_worker(BLAST_DBS=DEMO_DB)
    worker.wait_state("idle")
    everything = list(iter_records(demo_queries))
    records = everything[:20]
    options = ["--db", DEMO_DB, "--evalue", "1e-5", "--max-target-seqs", "5"]
    run_id = ["--run-id", f"run-{stack.suffix}"]
    # Half the jobs ask for tabular output only (searched straight to 7, no archive), half
    # for 15 too (the archive route: blast_formatter derives every format) and for their hit
    # sequences, as the web page's jobs do.
    tabular = stack.submit(
        join_records(records[:10]), *options, "--batch-len", "1", "--outfmt", "6,7", *run_id
    )
    archived = stack.submit(
        join_records(records[10:]),
        *options,
        *("--batch-len", "1", "--outfmt", "6,7,15", "--hit-fasta", *run_id),
    )
    # All the queries in one job: BLAST searches them in several chunks.
    (whole,) = stack.submit(join_records(everything), *options, "--outfmt", "7", "--hit-fasta")
    ids = tabular + archived
    assert len(ids) == 20
    stack.cli("wait", *ids, whole, "--timeout", "180", "--interval", "0.5")
    planted = generate(DemoSpec(name=DEMO_DB)).planted
    db = worker.cache / DEMO_DB / DEMO_DB

    def direct(query: Path, fmt: int) -> bytes:
        """blastn of the worker image (the workers' own binary), on the worker's copy."""
        argv = ["blastn", "-db", str(db), "-query", str(query), "-outfmt", str(fmt)]
        argv += ["-num_threads", "1", "-evalue", "1e-05", "-max_target_seqs", "5"]
        return stack.run_tool(argv).stdout

    for rec, job in zip(records, ids, strict=True):
        got = tmp_path / f"{job}.tsv"
        stack.cli("results", job, "--download", str(got))
        query = tmp_path / f"{job}.fa"
        query.write_text(rec.text)
        direct6 = direct(query, 6)
        assert got.read_bytes() == direct6, f"{job} ({rec.header}) differs from direct blastn"
        first = direct6.decode().splitlines()[0].split("\t")
        assert first[1] == planted[first[0]]
    # The job of every query: its 6 and 7 are direct blastn's, 7 with one closing line.
    query = tmp_path / "all.fa"
    query.write_text(demo_queries)
    assert stack.client.result(whole, 6) == direct(query, 6)
    # 7 names the database as the worker caches it, not as the direct search found it.
    cached = f"{CACHE_IN_CONTAINER}/{DEMO_DB}/{DEMO_DB}"
    direct7 = direct(query, 7).replace(str(db).encode(), cached.encode())
    assert stack.client.result(whole, 7) == direct7
    assert direct7.count(b"# BLAST processed") == 1 and direct7.count(b"# Query:") == 25

    # A job of tabular output only stores no archive, and asking for it says why.
    status = stack.cli_json("status", tabular[0])["data"]
    assert set(status["results"]) == {"6", "7"}
    assert stack.cli_json("status", whole)["data"]["results"].keys() == {"6", "7"}
    refused = stack.cli("results", tabular[0], "--format", "11", check=False)
    assert refused.returncode == 1 and not refused.stdout, refused
    assert refused.stderr.count("\n") <= 2 and "Traceback" not in refused.stderr
    assert f"job {tabular[0]} has no archive (11): it asked only for tabular" in refused.stderr
    # A job asking for 15 keeps its archive.
    status = stack.cli_json("status", archived[0])["data"]
    assert status["status"] == "succeeded" and status["attempts"] == 1
    assert set(status["results"]) == {"11", "6", "7", "15"}
    assert stack.client.result(archived[0], 11).startswith(b"Blast4-archive ::= {")
    assert all("sig=" in url and "se=" in url for url in status["results"].values())
    assert status["results_expiry"] > time.time()
    report = json.loads(stack.cli("results", archived[0], "--format", "15").stdout)
    assert report["BlastOutput2"][0]["report"]["results"]["search"]["query_title"].startswith(
        records[10].header.split()[0]
    )
    recent = stack.cli_json("recent", "--since", "15m")["data"]
    assert {r["job_id"] for r in recent} >= set(ids)

    # The client API sees the same jobs, grouped by their run, and the same results.
    client = stack.client
    run = client.run_jobs(f"run-{stack.suffix}")
    assert sorted(j.job_id for j in run) == sorted(ids) and all(j.final for j in run)
    assert client.result(ids[0], 6) == (tmp_path / f"{ids[0]}.tsv").read_bytes()
    assert {j.job_id for j in client.recent(limit=None, since=900)} >= set(ids)
    listed = stack.cli("--output", "json", "run-jobs", f"run-{stack.suffix}")
    assert sorted(j["job_id"] for j in json.loads(listed.stdout)["data"]) == sorted(ids)

    # The hit FASTA of a job that asked for it (with the archive: fetched beside
    # blast_formatter, for the ids the archive names; without: for the ids of 6) is what
    # blastdbcmd prints for the tabular output's subjects, in order of first hit.
    for job in [*archived[:2], whole]:
        tsv = client.result(job, 6).decode().splitlines()
        batch = tmp_path / f"{job}.ids"
        batch.write_text("".join(f"{s}\n" for s in dict.fromkeys(t.split("\t")[1] for t in tsv)))
        fetch = ["blastdbcmd", "-db", str(db), "-entry_batch", str(batch), "-outfmt", "%f"]
        assert client.hit_sequences(job) == stack.run_tool(fetch).stdout, job
    # A job that did not ask for them has none stored, and says why.
    results = stack.storage.container(stack.env["BLAST_RESULTS_CONTAINER"])
    for job in tabular:
        assert client.status(job).row["hit_fasta"] is False
        assert not results.get_blob_client(hit_fasta_blob(job)).exists(), job
        with pytest.raises(NoResult, match=f"job {job} has no hit sequences: the job did not"):
            client.hit_sequences(job)
    assert all(client.status(job).row["hit_fasta"] is True for job in archived)

    # Database facts from the upload's manifest agree with blastdbcmd on the worker's copy.
    info = stack.run_tool(["blastdbcmd", "-db", str(db), "-info"]).stdout.decode()
    counts = re.search(r"([\d,]+) sequences; ([\d,]+) total", info)
    assert counts is not None, info
    demo = {d.name: d for d in client.databases()}[DEMO_DB]
    assert (demo.title, demo.molecule) == (DEMO_DB, "nucleotide")
    assert (demo.sequences, demo.residues) == tuple(
        int(n.replace(",", "")) for n in counts.groups()
    )
    assert demo.size == sum(f.stat().st_size for f in db.parent.iterdir() if f.is_file()) - sum(
        f.stat().st_size for f in db.parent.glob(".*") if f.is_file()
    )
    listed = stack.cli("--output", "json", "db", "list")
    assert DEMO_DB in {d["name"] for d in json.loads(listed.stdout)["data"]}


def test_legacy_message_shape_runs(stack: Stack, demo_queries: str) -> None:
    worker = stack.start_worker(BLAST_DBS=DEMO_DB)
    inputs = stack.storage.container(stack.env["BLAST_INPUTS_CONTAINER"])
    records = list(iter_records(demo_queries))
    inputs.upload_blob("legacy/run1.fa", join_records(records[:3]), overwrite=True)
    plain = {
        "Id": "legacy-0001",
        "Name": "old front end",
        "InputFile": "legacy/run1.fa",
        "Submitted": "2019-01-01",
    }
    encoded = {
        "Id": "legacy-0002",
        "Name": "old front end, base64",
        "InputFile": "legacy/run1.fa",
        "DatabaseName": DEMO_DB,
        "Parameters": "-evalue 1e-10",
    }
    stack.storage.queue.send_message(json.dumps(plain))
    stack.storage.queue.send_message(base64.b64encode(json.dumps(encoded).encode()).decode())
    stack.cli("wait", "legacy-0001", "legacy-0002", "--timeout", "120", "--interval", "0.5")
    rows = job_rows(stack, ["legacy-0001", "legacy-0002"])
    assert rows["legacy-0001"]["hits"] >= 3 and rows["legacy-0001"]["name"] == "old front end"
    assert worker.alive


def test_a_runs_jobs_queued_without_rows_get_them_from_their_worker(
    stack: Stack, demo_queries: str
) -> None:
    """A run's jobs are queued with no row and no index entry (``submit(rows=False)``, as
    ``deployer run`` queues them): the worker's first write creates the row, dated and
    indexed by the message's queueing, so each job is listed once by time and by run."""
    client = stack.client
    records = list(iter_records(demo_queries))[:3]
    specs = client.plan(join_records(records), DEMO_DB, batch_len=1, run_id="r0000feed")
    before = time.time()
    ids = client.submit(specs, rows=False)
    assert len(ids) == 3
    log = JobLog(stack.storage.table)
    assert all(log.get(job) is None for job in ids)
    assert client.run_jobs("r0000feed") == [] and client.recent(since=3600) == []
    stack.start_worker(BLAST_DBS=DEMO_DB)
    stack.cli("wait", *ids, "--timeout", "120", "--interval", "0.5")
    rows = job_rows(stack, ids)
    for row in rows.values():
        assert row["status"] == "succeeded" and row["hits"] >= 1
        # Queued before the worker started it; Azure dates messages to the second.
        submitted, started = row["submitted"].timestamp(), row["started"].timestamp()
        assert before - 1 <= submitted <= started
    assert [s.job_id for s in client.run_jobs("r0000feed")] == ids
    assert sorted(s.job_id for s in client.recent(since=3600)) == ids


def test_hostile_input_fails_clearly_and_worker_survives(
    stack: Stack, demo_queries: str, tmp_path: Path
) -> None:
    worker = stack.start_worker(BLAST_DBS=DEMO_DB)
    worker.wait_state("idle")
    passwd = worker.container.exec_run(["sha256sum", "/etc/passwd"]).output
    good = join_records(list(iter_records(demo_queries))[:1])

    def v1(job: str, **kw: Any) -> str:
        doc: dict[str, Any] = {
            "version": 1,
            "job_id": job,
            "program": "blastn",
            "db": DEMO_DB,
            "query": {"fasta": good},
        }
        doc.update(kw)
        return json.dumps(doc)

    failed = {
        "h-missing": (json.dumps({"version": 1, "job_id": "h-missing"}), "no 'program'"),
        "h-program": (v1("h-program", program="blastz"), "unknown program"),
        "h-out": (v1("h-out", options={"-out": "/etc/passwd"}), "not allowed"),
        "h-rm": (v1("h-rm", options={"task": "megablast; rm -rf /"}), "not valid for blastn"),
        "h-legacy-rm": (
            json.dumps(
                {
                    "Id": "h-legacy-rm",
                    "Name": "x",
                    "InputFile": "q.fa",
                    "DatabaseName": DEMO_DB,
                    "Parameters": "; rm -rf / -out /etc/passwd",
                }
            ),
            "not allowed",
        ),
        "h-dbpath": (v1("h-dbpath", db="../../etc/passwd"), "database name"),
        "h-blobpath": (v1("h-blobpath", query={"blob": "../blast-results/x"}), "query blob"),
        "h-legacy-path": (
            json.dumps(
                {
                    "Id": "h-legacy-path",
                    "Name": "x",
                    "InputFile": "../../etc/passwd",
                    "DatabaseName": DEMO_DB,
                }
            ),
            "InputFile",
        ),
        "h-oversize": (
            v1("h-oversize", query={"fasta": ">q\n" + "A" * MAX_INLINE_BYTES}),
            "inline query is",
        ),
        "h-notfasta": (v1("h-notfasta", query={"fasta": "<html>hello</html>"}), "header"),
        "h-empty": (v1("h-empty", query={"fasta": ""}), "empty"),
        "h-unknown-db": (v1("h-unknown-db", db="nosuchdb"), "not in container"),
        "h-missing-blob": (v1("h-missing-blob", query={"blob": "no/such.fa"}), "not found"),
    }
    poisoned = [
        "{this is not json",
        json.dumps({"version": 1, "job_id": "../../tmp/pwn", "program": "blastn"}),
        "[]",
    ]
    for body, _ in failed.values():
        stack.storage.queue.send_message(body)
    for body in poisoned:
        stack.storage.queue.send_message(body)
    ok_ids = stack.submit(good, "--db", DEMO_DB)
    stack.cli("wait", *failed, *ok_ids, "--timeout", "120", "--interval", "0.5", check=False)
    rows = job_rows(stack, [*failed, *ok_ids])
    for job, (_, reason) in failed.items():
        assert rows[job]["status"] == "failed", (job, rows[job])
        assert reason in rows[job]["error"], (job, rows[job]["error"])
    assert rows[ok_ids[0]]["status"] == "succeeded"
    envelopes = wait_for(
        lambda: (
            [json.loads(m.content) for m in stack.storage.poison.peek_messages(max_messages=32)]
            if len(stack.storage.poison.peek_messages(max_messages=32)) >= 3
            else None
        ),
        30,
        "three poisoned messages",
    )
    assert sorted(e["body"] for e in envelopes) == sorted(poisoned)
    assert all("invalid message" in e["reason"] for e in envelopes)
    for env in envelopes:
        row = JobLog(stack.storage.table).get(env["record_id"])
        assert row is not None and row["status"] == "poisoned"
    assert stack.storage.queue.peek_messages() == []
    # The worker kept running and wrote nothing outside its own directories.
    assert worker.alive and worker.health() is not None
    assert worker.container.exec_run(["sha256sum", "/etc/passwd"]).output == passwd
    assert worker.container.exec_run(["test", "-e", "/tmp/pwn"]).exit_code == 1
    assert worker.fs_changes() == []  # docker diff: nothing outside cache, work, cwd, /tmp
    assert list(worker.cwd.iterdir()) == []
    assert list(worker.work.iterdir()) == []
    assert sorted(p.name for p in worker.cache.iterdir()) == [
        ".leases",
        ".locks",
        ".staging",
        DEMO_DB,
    ]
    # The lease journal holds only its lock: every message is done with, none still recorded.
    assert [p.suffix for p in (worker.cache / ".leases").iterdir()] == [".lock"]
    assert list((worker.cache / ".staging").iterdir()) == []
    levels = {line.get("level") for line in worker.logs()}
    assert "CRITICAL" not in levels and not any(
        "Traceback" in str(x.get("raw", "")) for x in worker.logs()
    )


def test_message_delivered_too_often_is_poisoned(stack: Stack, demo_queries: str) -> None:
    good = join_records(list(iter_records(demo_queries))[:1])
    [job] = stack.submit(good, "--db", DEMO_DB)
    # A delivery that never finished (as if a worker crashed): dequeue_count becomes 1.
    msg = stack.storage.queue.receive_message(visibility_timeout=1)
    assert msg is not None
    # Peeking does not count as a delivery: wait until the message is visible again.
    wait_for(lambda: stack.storage.queue.peek_messages(), 30, "the message to reappear", 0.1)
    stack.start_worker(BLAST_DBS=DEMO_DB, BLAST_MAX_DEQUEUE="1")
    stack.cli("wait", job, "--timeout", "60", "--interval", "0.5", check=False)
    row = job_rows(stack, [job])[job]
    assert row["status"] == "poisoned" and "delivered 2 times" in row["error"]
    [env] = [json.loads(m.content) for m in stack.storage.poison.peek_messages()]
    assert env["job_id"] == job and "BLAST_MAX_DEQUEUE=1" in env["reason"]
    assert json.loads(env["body"])["job_id"] == job


def test_workers_sharing_a_cache_download_once(stack: Stack, tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    a = stack.start_worker(BLAST_DBS=BIG_DB, BLAST_DB_CACHE=str(cache))
    b = stack.start_worker(BLAST_DBS=BIG_DB, BLAST_DB_CACHE=str(cache))
    a.wait_state("idle")
    b.wait_state("idle")
    downloads = [
        w.name
        for w in (a, b)
        for line in w.logs()
        if str(line.get("msg", "")).startswith("downloading database")
    ]
    assert len(downloads) == 1
    assert (cache / BIG_DB / ".ready.json").is_file()
    info = stack.run_tool(
        ["blastdbcmd", "-db", str(cache / BIG_DB / BIG_DB), "-info"]
    ).stdout.decode()
    assert f"{BIG_SEQS:,} sequences" in info


def slow_query(stack: Stack, worker: WorkerContainer) -> str:
    """Queries whose ``-task blastn-short`` search (the sensitive task, a tiny word size) takes
    about 10 s, sized from the rate measured on ``worker``'s copy of the big database."""
    records = big_records()
    db = str(worker.cache / BIG_DB / BIG_DB)
    argv = ["blastn", "-db", db, "-task", "blastn-short", "-num_threads", "1"]
    n = stack.tools.cost(argv, records).records_for(10)
    return "".join(records[i % len(records)] for i in range(n))


def test_sigterm_releases_or_finishes_within_stop_timeout(stack: Stack) -> None:
    worker = stack.start_worker(BLAST_DBS=BIG_DB, BLAST_STOP_TIMEOUT="1")
    worker.wait_state("idle")
    # A job far longer than the 1 s stop timeout.
    [job] = stack.submit(slow_query(stack, worker), "--db", BIG_DB, "--task", "blastn-short")
    worker.wait_state("busy")
    started = time.monotonic()
    assert worker.terminate(timeout=30) == 0
    assert time.monotonic() - started < 15
    messages = [str(line.get("msg")) for line in worker.logs()]
    assert any("stop requested" in m for m in messages)
    row = job_rows(stack, [job])[job]
    # The job needs far longer than the 1 s stop timeout, so it must have been released,
    # right away rather than after the visibility timeout.
    assert row["status"] == "queued" and "released" in row["error"], row
    assert stack.storage.queue.peek_messages()
    assert any("message released" in m for m in messages)
    other = stack.start_worker(BLAST_DBS=BIG_DB)
    stack.cli("wait", job, "--timeout", "300", "--interval", "0.5")
    row = job_rows(stack, [job])[job]
    assert row["worker"] == other.name and row["attempts"] == 2
    assert row["blast_s"] > 1


def test_a_job_cancelled_while_its_worker_searches_stays_cancelled(stack: Stack) -> None:
    """The worker's later writes (its success, or a "running" still on its way) are
    conditional on the row's etag: a cancel that lands first is kept, and the message goes."""
    worker = stack.start_worker(BLAST_DBS=BIG_DB)
    worker.wait_state("idle")
    query = slow_query(stack, worker)
    log = JobLog(stack.storage.table)
    for _ in range(3):
        [job] = stack.submit(query, "--db", BIG_DB, "--task", "blastn-short")
        worker.wait_state("busy")
        worker.freeze()  # it read the row and took the job; nothing it writes lands now
        row = log.get(job)
        assert row is not None
        if row["status"] not in FINAL:
            log.update_unless_final(job, status="cancelled", error="cancelled by the test")
            worker.thaw()
            break
        worker.thaw()  # this machine searched faster than measured: try again
        worker.wait_state("idle")
    else:
        raise AssertionError("three jobs sized to search 10 s each finished before a freeze")
    kept = "the job's row was already final (another delivery); kept that record"

    def ended() -> list[str]:
        ends = (kept, "job succeeded", "job failed")
        return [str(x["msg"]) for x in worker.logs() if x.get("job") == job and x["msg"] in ends]

    assert wait_for(ended, 120, "the worker to finish the cancelled job") == [kept]
    row = job_rows(stack, [job])[job]
    assert row["status"] == "cancelled" and row["error"] == "cancelled by the test", row
    wait_for(lambda: not stack.storage.queue.peek_messages(), 30, "the message to be deleted")


LEASE_S = 6
"""The lease test's visibility timeout: BLAST must outlast it 1.5 times (an extension or more)."""


def test_lease_is_extended_while_blast_runs(stack: Stack) -> None:
    """A job longer than the visibility timeout is not delivered to a second worker."""
    need = LEASE_S * 1.5
    env = {"BLAST_DBS": BIG_DB, "BLAST_VISIBILITY_TIMEOUT": str(LEASE_S)}
    first = stack.start_worker(**env)
    first.wait_state("idle")
    # word_size 7 makes blastn slow on this database, but how slow depends on the machine:
    # measure it on the worker's copy, then size the job to last twice what the test needs.
    records = big_records()
    slow = ["-task", "blastn", "-word_size", "7"]
    db = str(first.cache / BIG_DB / BIG_DB)
    cost = stack.tools.cost(["blastn", "-db", db, "-num_threads", "1", *slow], records)
    workers = [first]
    for _ in range(3):
        n = cost.records_for(2 * need)
        query = "".join(records[i % len(records)] for i in range(n))
        [job] = stack.submit(query, "--db", BIG_DB, "--task", "blastn", "--word-size", "7")
        if len(workers) == 1:
            first.wait_state("busy")
            # Idle beside the busy one: it would take the message if the lease lapsed.
            workers.append(stack.start_worker(**env))
            workers[-1].wait_state("idle")
        stack.cli("wait", job, "--timeout", "300", "--interval", "0.5")
        row = job_rows(stack, [job])[job]
        print(f"lease test: {n} queries sized by {cost}: BLAST ran {row['blast_s']:.1f} s")
        if row["blast_s"] > need:
            break
        # The machine got faster since the measurement: size again from this job's rate.
        cost = BlastCost(0.0, row["blast_s"] / n)
    else:
        raise AssertionError(f"three jobs sized from measured rates ran under {need:g} s")
    assert row["attempts"] == 1
    # One delivery: only the worker that ran it ever saw it.
    saw = [w.name for w in workers if any(line.get("job") == job for line in w.logs())]
    assert saw == [row["worker"]], (saw, row["worker"])


def test_cli_exit_codes_and_json_envelopes(stack: Stack, demo_queries: str) -> None:
    unknown = stack.cli("status", "no-such-job", check=False)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    env = stack.cli_json("status", "no-such-job", check=False)
    assert env["ok"] is False and "not found" in env["error"]["message"]
    usage = stack.cli("submit", "--db", DEMO_DB, "--program", "blastz", check=False)
    assert usage.returncode == 2
    bad_fasta = stack.cli("submit", "--db", DEMO_DB, stdin="hello", check=False)
    assert bad_fasta.returncode == 2 and "not valid" in bad_fasta.stderr
    bad_option = stack.cli(
        "submit", "--db", DEMO_DB, "--outfmt", "5", stdin=demo_queries, check=False
    )
    assert bad_option.returncode == 2 and "not available" in bad_option.stderr
    proc = subprocess.run(
        [str(BIN / "blast-jobs"), "recent"],
        env={"PATH": stack.env["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "AZURE_STORAGE_CONNECTION_STRING" in proc.stderr
    unreachable = subprocess.run(
        [str(BIN / "blast-jobs"), "recent"],
        env={
            **stack.env,
            "AZURE_STORAGE_CONNECTION_STRING": stack.env["AZURE_STORAGE_CONNECTION_STRING"].replace(
                "127.0.0.1:", "127.0.0.1:1"
            ),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert unreachable.returncode == 1 and "cannot reach storage" in unreachable.stderr
    # A failing job makes `wait` exit 1 and `status` exit 1 with the reason.
    [job] = stack.submit(">q\nACGTACGTACGTACGTACGT\n", "--db", "nosuchdb")
    stack.start_worker()
    waited = stack.cli_json("wait", job, "--timeout", "60", "--interval", "0.3", check=False)
    assert waited["ok"] is False and waited["data"][0]["status"] == "failed"
    assert "not in container" in waited["data"][0]["error"]
    status = stack.cli("status", job, check=False)
    assert status.returncode == 1 and "failed" in status.stdout


def test_wrong_account_key_stops_worker_with_a_clear_message(stack: Stack) -> None:
    # A well-formed key of the right length that is not the account's.
    key = stack.azurite.account_key
    other = base64.b64encode(bytes(b ^ 0xFF for b in base64.b64decode(key))).decode()
    wrong = stack.env["AZURE_STORAGE_CONNECTION_STRING"].replace(
        f"AccountKey={key}", f"AccountKey={other}"
    )
    assert wrong != stack.env["AZURE_STORAGE_CONNECTION_STRING"]
    worker = stack.start_worker(AZURE_STORAGE_CONNECTION_STRING=wrong)
    assert worker.wait(timeout=60) == 1
    text = worker.text()
    assert "cannot sign in to storage" in text and "Traceback" not in text
    assert "connection string's key" in text
