"""``deployer run`` end to end versus one direct blastn on the same cores (target: 1.2x).

Target: the run within 1.2x of the direct search, for searches of 30 s or more, container
start included.

The same queries (planted, mutated windows of the database's subjects,
:mod:`blast_client.demo`) against the same database (``--seqs`` subjects of 2,000 bases), on
``--cores`` cores:

* **direct**: one ``blastn -num_threads <cores>`` in the worker image, limited to those cores,
  timed inside its container, ``--repeat`` times before and as often after the runs (the
  best is kept: the load of a shared machine drifts);
* **tuned run**: ``deployer run`` on the local ACI emulator with a workload of
  ``cores / threads_per_worker's default`` workers that leaves ``threads_per_worker`` out, so
  the run's tuner (:mod:`deployer.plan.tuning`) shares the cores between workers and threads
  and picks the batch length; timed from the command's start to its exit: validation,
  submission, worker groups pulled and started, the searches, the merge and the teardown;
* **untuned run** (``--untuned``): the same with ``cores`` one-thread workers
  (``threads_per_worker: 1``) and ``--untuned-batches`` batches, the configuration of the
  issue's first measurement.

The issue measured 1,920 orchid sequences against a 30 Mbp database. How fast these random
subjects search depends on the machine (3,840 queries took 13 s on a quiet 2-core machine and
39 s on a loaded one), so by default the queries are sized here: a probe of
``PROBE_QUERIES`` is searched directly first, and the run gets as many queries as make the
direct search last ``--direct-seconds`` (36 s) at that rate. Each run prints where its time
went, from its job rows. Each run's merged outfmt 6 must be byte-identical to the direct
search's. Needs Docker and the images of ``make build`` (TAG=...), nothing else. From the
repository root:

    .venv/bin/python bench/bench_run_direct.py [--cores 2] [--seqs 15000] [--queries N]
        [--direct-seconds 36] [--query-len 700] [--task blastn] [--untuned/--no-untuned] [--smoke]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import docker
import typer
from blast_client import BlastClient
from blast_client.demo import DemoSpec, generate, makeblastdb_argv

from deployer.defaults import DEFAULT_BLAST_THREADS
from testbed.bench import run
from testbed.blast_stack import BlastTools, require_images
from testbed.engine import StackError
from testbed.registry import registry_with_pushed_images
from testbed.run_stack import RunStack, emulated_run_stack

DB = "benchnt"
IMAGES = ("blast-worker", "deployer")
"""What a run's groups run: the workers and the janitor."""


@dataclass(frozen=True)
class Timed:
    """One ``deployer run``: its wall time, its tuning line, its merged outfmt 6, and where
    the time went (from its job rows)."""

    seconds: float
    tuning: str
    merged: bytes
    where: str


def timed_run(stack: RunStack, workload: Path, queries: Path, task: str, *extra: str) -> Timed:
    """``deployer run`` to the end; exits the bench when it fails."""
    out = stack.root / f"out-{workload.stem}"
    t0, start = time.monotonic(), time.time()
    proc = stack.deployer(
        "--output", "json", "run", str(workload), str(queries), "--db", DB, "--task", task,
        "--out", str(out), *extra,
    )  # fmt: skip
    seconds, end = time.monotonic() - t0, time.time()
    if proc.returncode != 0:
        sys.exit(f"deployer run ({workload.stem}) failed: {proc.stderr[-2000:]}")
    tuning = next((x for x in proc.stderr.splitlines() if x.startswith("Run tuning")), "")
    run_id = json.loads(proc.stdout)["data"]["run_id"]
    jobs = BlastClient(connection_string=stack.connection_string).run_jobs(run_id)
    first = min(j.started or end for j in jobs)
    last = max(j.finished or start for j in jobs)

    def total(key: str) -> float:
        return sum(float(j.row.get(key) or 0) for j in jobs)

    where = (
        f"start to first batch running {first - start:.1f} s (validation, submission, groups "
        f"created, images pulled, workers started, database downloaded); batches "
        f"{last - first:.1f} s (summed over {len(jobs)}: BLAST {total('blast_s'):.1f} s, "
        f"formatting and uploads {total('upload_s'):.1f} s); last batch done to exit "
        f"{end - last:.1f} s (teardown, merge)"
    )
    return Timed(seconds, tuning, (out / "results.6.tsv").read_bytes(), where)


@contextlib.contextmanager
def direct_search(
    root: Path, spec: DemoSpec, queries: Path, task: str, cores: int
) -> Iterator[Callable[[], float]]:
    """Build the database in the worker image, limited to ``cores`` cores; yield a function
    that runs one direct blastn there and returns its seconds (its outfmt 6 in
    ``root/direct.6``)."""
    client = docker.from_env()
    require_images(client)
    subjects = root / "subjects.fa"
    subjects.write_text(generate(spec).subjects)
    tools = BlastTools(client, root, f"bench{os.getpid()}direct", cpus=cores)
    try:
        tools.run(makeblastdb_argv(subjects, root / DB, DB))
        argv = [
            "blastn", "-db", str(root / DB), "-query", str(queries), "-task", task,
            "-outfmt", "6", "-num_threads", str(cores), "-out", str(root / "direct.6"),
        ]  # fmt: skip
        yield lambda: tools.timed(argv)
    finally:
        tools.close()


PROBE_QUERIES = 480
"""Queries of the probe search that measures this machine's rate (a few seconds anywhere)."""


def sized_queries(probe_queries: int, probe_seconds: float, target_seconds: float) -> int:
    """Queries that make the direct search last ``target_seconds`` at the probe's rate (pure;
    never fewer than the probe's)."""
    return max(probe_queries, math.ceil(probe_queries * target_seconds / max(probe_seconds, 1e-3)))


def main(
    cores: Annotated[
        int, typer.Option(help=f"cores of both (a multiple of {DEFAULT_BLAST_THREADS})")
    ] = 2,
    seqs: Annotated[int, typer.Option(help="database subjects of 2,000 bases")] = 15_000,
    queries: Annotated[
        int, typer.Option(help="planted queries (0: sized from a probe, see --direct-seconds)")
    ] = 0,
    direct_seconds: Annotated[
        float, typer.Option(help="with --queries 0: how long the direct search should last")
    ] = 36.0,
    query_len: Annotated[int, typer.Option(help="bases per query")] = 700,
    task: str = "blastn",
    repeat: Annotated[
        int, typer.Option(help="direct searches before and after the runs; the best is kept")
    ] = 1,
    untuned: Annotated[
        bool, typer.Option(help="also run cores one-thread workers (the issue's configuration)")
    ] = True,
    untuned_batches: Annotated[int, typer.Option(help="batches of the untuned run")] = 24,
) -> None:
    """Time the direct search and the runs, print them and their ratios."""
    if cores < 1 or cores % DEFAULT_BLAST_THREADS:
        sys.exit(f"--cores must be a multiple of {DEFAULT_BLAST_THREADS} (workers x the default)")
    if queries < 0 or direct_seconds <= 0:
        sys.exit("--queries must be 0 (sized) or more, and --direct-seconds more than 0")
    spec = DemoSpec(
        name=DB, seqs=seqs, queries=queries or PROBE_QUERIES, decoys=0, query_len=query_len
    )
    load0 = os.getloadavg()
    sizing = "given"
    with tempfile.TemporaryDirectory(prefix="bench-run-direct-") as tmp:
        root = Path(tmp)
        query_file = root / "queries.fa"
        query_file.write_text(generate(spec).queries)
        (root / "stack").mkdir()
        with (
            direct_search(root, spec, query_file, task, cores) as search,
            registry_with_pushed_images(IMAGES) as pushed,
            emulated_run_stack(root / "stack", pushed, demo_db=False) as stack,
        ):
            if not queries:  # measure, then size: the subjects do not depend on the queries
                probe = search()
                queries = sized_queries(PROBE_QUERIES, probe, direct_seconds)
                spec = replace(spec, queries=queries)
                query_file.write_text(generate(spec).queries)
                sizing = f"sized from a probe of {PROBE_QUERIES} queries in {probe:.1f} s"
            letters = queries * min(query_len, spec.seq_len)
            # Before and after the runs: the machine's load drifts, the best is kept.
            times = [search() for _ in range(repeat)]
            stack.upload_demo_db(DB, seqs)
            workers = cores // DEFAULT_BLAST_THREADS
            tuned_yaml = stack.workload("tuned", workers, threads=None, db=DB, bytes_to_cache=None)
            runs = [timed_run(stack, tuned_yaml, query_file, task)]
            if untuned:
                plain_yaml = stack.workload("untuned", cores, threads=1, db=DB, bytes_to_cache=None)
                batch_len = str(math.ceil(letters / untuned_batches))
                runs.append(
                    timed_run(stack, plain_yaml, query_file, task, "--batch-len", batch_len)
                )
            times += [search() for _ in range(repeat)]
        expected = (root / "direct.6").read_bytes()
    load1 = os.getloadavg()
    direct = min(times)
    print(
        f"{queries} queries of {query_len} bases ({letters:,} letters, 3% mutated windows of "
        f"the subjects) against {seqs:,} subjects of {spec.seq_len:,} bases "
        f"({seqs * spec.seq_len / 1e6:.1f} Mbp), task {task}, {cores} cores; queries {sizing}"
    )
    print(
        f"direct     : {direct:7.1f} s  (one blastn -num_threads {cores}; the best of "
        f"{', '.join(f'{t:.1f}' for t in times)} s, before and after the runs)"
    )
    tuned = runs[0]
    print(
        f"tuned run  : {tuned.seconds:7.1f} s  {tuned.seconds / direct:.2f}x  (deployer run end "
        "to end, container start, merge and teardown included; target <= 1.2x for searches "
        "of 30 s or more)"
    )
    print(f"  {tuned.tuning}")
    print(f"  where: {tuned.where}")
    for plain in runs[1:]:
        print(
            f"untuned run: {plain.seconds:7.1f} s  {plain.seconds / direct:.2f}x  ({cores} "
            f"workers x 1 thread, {untuned_batches} batches)"
        )
        print(f"  where: {plain.where}")
    identical = all(r.merged == expected for r in runs)
    print(f"merged outfmt 6 byte-identical to the direct search: {identical}")
    print(f"load average (1 min): {load0[0]:.2f} before, {load1[0]:.2f} after")
    if not identical:
        sys.exit("a run's merged results differ from the direct search")


if __name__ == "__main__":
    try:
        run(
            main,
            # The probe and the sizing run too: 480 queries, the fewest it sizes.
            smoke={
                "seqs": 300,
                "queries": 0,
                "direct_seconds": 0.1,
                "query_len": 300,
                "untuned": False,
                "repeat": 1,
            },
        )
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
