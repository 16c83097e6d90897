"""Throughput of 2 BLAST workers versus 1 on this machine (target: at least 1.7x on 2 cores).

Each worker runs BLAST with one thread, as one single-CPU container would. The same batch of
jobs is queued for each configuration; the figure is jobs per minute from the first send to
the last success. The speed-up shows only where BLAST, not the per-job overhead, fills the
time: so each job's queries are sized from blastn's rate measured here first, to search for
``--job-seconds`` (default 3 s) alone. Workers are blast-worker containers limited to 1 CPU
each (as in compose) on the compose stack's Azurite under a private project: it needs Docker,
Compose and the images of `make build`, nothing on the host. Run from the repository root:

    .venv/bin/python bench/bench_blast_throughput.py [--jobs 16] [--job-seconds 3] [--seqs 40000]
        [--smoke]
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from blast_client.demo import DemoSpec, generate
from blast_client.fasta import iter_records, join_records
from blast_client.joblog import JobLog
from blast_client.messages import JobSpec, Options, Query

from testbed.bench import run
from testbed.blast_stack import Stack, WorkerContainer, bench_stack
from testbed.engine import StackError, wait_for

DB = "bench"
SEQS = 40_000


def start_worker(stack: Stack, name: str) -> WorkerContainer:
    """A one-thread worker on the database, all sharing one cache."""
    return stack.start_worker(
        name,
        BLAST_DBS=DB,
        BLAST_THREADS="1",
        BLAST_POLL_INTERVAL="0.05",
        BLAST_DB_CACHE=str(stack.root / "shared-cache"),
    )


def measure(stack: Stack, workers: int, jobs: int, queries: str, options: Options) -> float:
    """Seconds for ``workers`` workers to finish ``jobs`` jobs."""
    run = len(stack.workers)
    started = [start_worker(stack, f"n{workers}-{run + i}") for i in range(workers)]
    for w in started:
        w.wait_state("idle", timeout=300)
    log = JobLog(stack.storage.table)
    client = stack.client
    ids = []
    t0 = time.perf_counter()
    for i in range(jobs):
        spec = JobSpec(
            f"tp{workers}-{secrets.token_hex(4)}-{i}", "blastn", DB, Query(fasta=queries), options
        )
        client.submit([spec])  # a query too large for a message goes as a blob
        ids.append(spec.job_id)

    remaining = list(ids)

    def all_done() -> bool:
        # Check only unfinished jobs, oldest first, so the harness itself (and Azurite on
        # its behalf) takes little CPU away from the workers being measured.
        while remaining:
            row = log.get(remaining[0])
            if row is None or row["status"] != "succeeded":
                return False
            remaining.pop(0)
        return True

    wait_for(all_done, 1800, "all jobs", interval=0.1)
    elapsed = time.perf_counter() - t0
    for w in started:
        w.terminate()
    return elapsed


def sized(stack: Stack, args: Args) -> int:
    """Queries per job for ``args.job_seconds`` of BLAST alone, at the rate measured here."""
    prep = start_worker(stack, "prep")  # fills the shared cache
    prep.wait_state("idle", timeout=300)
    prep.terminate()
    db = stack.root / "shared-cache" / DB / DB
    argv = ["blastn", "-db", str(db), "-task", args.task, "-word_size", str(args.word_size)]
    spec = DemoSpec(name=DB, seqs=args.seqs, queries=500, decoys=0)
    records = [r.text for r in iter_records(generate(spec).queries)]
    cost = stack.tools.cost([*argv, "-num_threads", "1"], records)
    count = cost.records_for(args.job_seconds)
    print(
        f"measured: {cost.fixed_s:.2f} s + {cost.per_record_s * 1000:.1f} ms per query; "
        f"jobs of {count} queries search for ~{cost.seconds(count):.1f} s alone",
        flush=True,
    )
    return count


@dataclass(frozen=True)
class Args:
    """The bench's options."""

    jobs: int
    job_seconds: float
    queries: int | None
    task: str
    word_size: int
    repeat: int
    seqs: int


def main(
    jobs: Annotated[int, typer.Option(help="jobs per run (default 16)")] = 16,
    job_seconds: Annotated[
        float, typer.Option(help="BLAST seconds per job, alone (default 3)")
    ] = 3.0,
    queries: Annotated[int | None, typer.Option(help="queries per job (default: sized)")] = None,
    task: str = "blastn",
    word_size: int = 9,
    repeat: Annotated[int, typer.Option(help="runs per setting; best is kept")] = 1,
    seqs: Annotated[
        int, typer.Option(help=f"database sequences of 2000 bp (default {SEQS})")
    ] = SEQS,
) -> None:
    """Run the benchmark and print its figures."""
    args = Args(
        jobs=jobs,
        job_seconds=job_seconds,
        queries=queries,
        task=task,
        word_size=word_size,
        repeat=repeat,
        seqs=seqs,
    )
    init = [["--demo-db", DB, "--demo-seqs", str(args.seqs)]]
    with (
        tempfile.TemporaryDirectory(prefix="bench-blast-") as tmp,
        bench_stack(Path(tmp), init) as stack,
    ):
        count = args.queries or sized(stack, args)
        spec = DemoSpec(name=DB, seqs=args.seqs, queries=count, decoys=0)
        query_text = join_records(list(iter_records(generate(spec).queries)))
        options = Options(task=args.task, word_size=args.word_size)
        one = min(measure(stack, 1, args.jobs, query_text, options) for _ in range(args.repeat))
        two = min(measure(stack, 2, args.jobs, query_text, options) for _ in range(args.repeat))
    print(
        f"{args.jobs} jobs x {count} queries, task {args.task}, word_size "
        f"{args.word_size}, 1 BLAST thread per worker"
    )
    print(f"1 worker : {one:7.1f} s  {60 * args.jobs / one:6.1f} jobs/min")
    print(f"2 workers: {two:7.1f} s  {60 * args.jobs / two:6.1f} jobs/min")
    print(f"speed-up : {one / two:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    try:
        run(main, smoke={"jobs": 2, "queries": 2, "seqs": 500})
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
