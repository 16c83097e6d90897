"""``deployer run`` end to end, whole and sharded, versus one direct blastn on the same cores.

Targets: the run within 1.2x of the best direct search, for searches of 30 s or more, container
start included; the sharded run within 1.3x of the same run unsharded.

The same queries (planted, mutated windows of the database's subjects,
:mod:`blast_client.demo`) against the same database (``--seqs`` subjects of 2,000 bases), on
``--cores`` cores:

* **direct**: one ``blastn -num_threads <cores>`` in the worker image, limited to those cores,
  timed inside its container, ``--repeat`` times before and as often after the runs (the
  best is kept: the load of a shared machine drifts);
* **direct, batched**: the tuned run's batches (the query counts its run record holds), one
  blastn each, one after another, in the same container, once after each round of runs:
  the run's searches without its machinery. A blastn batch of ElasticBLAST's length searches
  faster per letter than one of all the queries (:mod:`deployer.plan.tuning`), so this is
  the best direct search when there is more than one batch, and the target is taken
  against the better of the two;
* **tuned run**: ``deployer run`` on the local ACI emulator with a workload of
  ``cores / threads_per_worker's default`` workers that leaves ``threads_per_worker`` out, so
  the run's tuner (:mod:`deployer.plan.tuning`) shares the cores between workers and threads
  and picks the batch length; timed from the command's start to its exit: validation,
  submission, worker groups pulled and started, the searches, the merge and the teardown,
  with the deployer's defaults (the janitor's pass interval too, not the test stack's);
* **untuned run** (``--untuned``): the same with ``cores`` one-thread workers
  (``threads_per_worker: 1``) and ``--untuned-batches`` batches, the configuration of the
  issue's first measurement;
* **sharded run** (``--shards N``, 0: none): the tuned run's workload with ``shards: N`` in
  its database entry, so every batch is one job per shard and the run merges them (target:
  its wall time within 1.3x of the tuned run's, whose workers each search the whole
  database). The database is then cut into about ``VOLUMES_PER_SHARD`` volumes per shard
  (``makeblastdb -max_file_sz``), and every search here, the direct one included, searches
  those volumes.

Each search is billed as ACI bills it: a run's vCPU-seconds are its bill's (every group it
created, from the group's own start and stop times), the direct search's its cores x its
seconds.
The runs take turns ``--rounds`` times (2: as many tries as the direct search's; the machine's
load drifts alike for each) and each keeps its fastest, with that one's bill.

The issue measured 1,920 orchid sequences against a 30 Mbp database. How fast these random
subjects search depends on the machine (3,840 queries took 13 s on a quiet 2-core machine and
39 s on a loaded one), so by default the queries are sized here: a probe of
``PROBE_QUERIES`` is searched directly first, and the run gets as many queries as make the
direct search last ``--direct-seconds`` (36 s) at that rate. Each run prints where its time
went, from its job rows. Each run's merged outfmt 6 must be byte-identical to the direct
search's. Needs Docker and the images of ``make build`` (TAG=...), nothing else. From the
repository root:

    .venv/bin/python bench/bench_run_direct.py [--cores 2] [--seqs 15000] [--queries N]
        [--direct-seconds 36] [--query-len 700] [--task blastn] [--untuned/--no-untuned]
        [--shards 2] [--rounds 2] [--smoke]
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
from blast_client.fasta import iter_records
from rich.console import Console
from rich.table import Table

from deployer.defaults import DEFAULT_BLAST_THREADS, JANITOR_INTERVAL_S
from deployer.run.store import RunStore
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
    """One ``deployer run``: its wall time, its tuning line, its merged outfmt 6, where the
    time went (from its job rows), its bill's vCPU-seconds (all its groups') and its batches'
    query counts in order (from its run record)."""

    seconds: float
    tuning: str
    merged: bytes
    where: str
    vcpu_seconds: float
    batch_queries: tuple[int, ...]


def timed_run(
    stack: RunStack, workload: Path, queries: Path, task: str, out: Path, *extra: str
) -> Timed:
    """``deployer run`` to the end, its results in ``out``; exits the bench when it fails."""
    t0, start = time.monotonic(), time.time()
    proc = stack.deployer(
        "--output", "json", "run", str(workload), str(queries), "--db", DB, "--task", task,
        "--out", str(out), *extra,
        # The janitor's own pass interval, not the test stack's second: a user's run ends so.
        DEPLOYER_JANITOR_INTERVAL=str(JANITOR_INTERVAL_S),
    )  # fmt: skip
    seconds, end = time.monotonic() - t0, time.time()
    if proc.returncode != 0:
        sys.exit(f"deployer run ({workload.stem}) failed: {proc.stderr[-2000:]}")
    tuning = next((x for x in proc.stderr.splitlines() if x.startswith("Run tuning")), "")
    summary = json.loads(proc.stdout)["data"]
    run_id = summary["run_id"]
    client = BlastClient(connection_string=stack.connection_string)
    jobs = client.run_jobs(run_id)
    found = RunStore(client.storage.table).get(run_id)
    assert found is not None, f"run {run_id} has no record"
    first = min(j.started or end for j in jobs)
    last = max(j.finished or start for j in jobs)

    def total(key: str) -> float:
        return sum(float(j.row.get(key) or 0) for j in jobs)

    where = (
        f"start to first batch running {first - start:.1f} s (validation, submission, groups "
        f"created, images pulled, workers started, database downloaded); batches "
        f"{last - first:.1f} s (summed over {len(jobs)} job{'s' if len(jobs) > 1 else ''}: "
        f"BLAST {total('blast_s'):.1f} s, results {total('upload_s'):.1f} s: formatting when "
        "archived, hit FASTA, uploads); "
        f"last batch done to exit {end - last:.1f} s (teardown, merge)"
    )
    merged = (out / "results.6.tsv").read_bytes()
    return Timed(
        seconds, tuning, merged, where, float(summary["bill"]["vcpu_seconds"]),
        tuple(b.queries for b in found[0].batches),
    )  # fmt: skip


VOLUMES_PER_SHARD = 4
"""Volumes of a sharded run's database per shard: shards of whole volumes come out even."""


def max_file_sz(spec: DemoSpec, shards: int) -> int:
    """``makeblastdb -max_file_sz`` (bytes) that cuts the subjects into ``VOLUMES_PER_SHARD``
    volumes per shard (pure): a volume's largest file is its sequence file, 4 bases a byte
    and one more a sequence; 2% more, so no sliver of a last volume is left over."""
    sequence_file = spec.seqs * (math.ceil(spec.seq_len / 4) + 1)
    return math.ceil(sequence_file * 1.02 / (VOLUMES_PER_SHARD * shards))


@contextlib.contextmanager
def direct_search(
    root: Path, spec: DemoSpec, queries: Path, task: str, cores: int, shards: int
) -> Iterator[Callable[..., float]]:
    """Build the database in the worker image, limited to ``cores`` cores (in volumes for
    ``shards`` shards, if any); yield a function that runs one direct blastn there and returns
    its seconds (its outfmt 6 in ``root/direct.6``), or, given query files, one blastn of each
    in turn and their seconds summed (their outfmt 6 concatenated in ``root/batched.6``)."""
    client = docker.from_env()
    require_images(client)
    subjects = root / "subjects.fa"
    subjects.write_text(generate(spec).subjects)
    tools = BlastTools(client, root, f"bench{os.getpid()}direct", cpus=cores)
    volumes = ["-max_file_sz", str(max_file_sz(spec, shards))] if shards else []
    try:
        tools.run([*makeblastdb_argv(subjects, root / DB, DB), *volumes])

        def argv(query: Path, out: Path) -> list[str]:
            return [
                "blastn", "-db", str(root / DB), "-query", str(query), "-task", task,
                "-outfmt", "6", "-num_threads", str(cores), "-out", str(out),
            ]  # fmt: skip

        def search(batches: list[Path] | None = None) -> float:
            if batches is None:
                return tools.timed(argv(queries, root / "direct.6"))
            outs = [root / f"{b.name}.6" for b in batches]
            seconds = sum(tools.timed(argv(b, out)) for b, out in zip(batches, outs, strict=True))
            (root / "batched.6").write_bytes(b"".join(out.read_bytes() for out in outs))
            return seconds

        yield search
    finally:
        tools.close()


def cut_as_run(queries: Path, batch_queries: tuple[int, ...], root: Path) -> list[Path]:
    """The queries cut into a run's batches (their query counts, in order, from its record),
    each in a file of its own under ``root``."""
    records = list(iter_records(queries.read_text()))
    assert sum(batch_queries) == len(records), "the run's batches hold every query once"
    files = []
    for i, count in enumerate(batch_queries, 1):
        done = sum(batch_queries[: i - 1])
        files.append(root / f"batch{i}.fa")
        files[-1].write_text("".join(r.text for r in records[done : done + count]))
    return files


PROBE_QUERIES = 480
"""Queries of the probe search that measures this machine's rate (a few seconds anywhere)."""


SIZED_AT_LEAST = 0.9
"""The sized direct search lasts at least this share of ``--direct-seconds`` (36 s: 32.4 s, so
the comparison stays among the searches of 30 s or more the target speaks of)."""
SIZING_STEPS = 3
"""Sizings at most, the probe's included."""


def sized_queries(probe_queries: int, probe_seconds: float, target_seconds: float) -> int:
    """Queries that make the direct search last ``target_seconds`` at the probe's rate (pure;
    never fewer than the probe's)."""
    return max(probe_queries, math.ceil(probe_queries * target_seconds / max(probe_seconds, 1e-3)))


def main(
    cores: Annotated[
        int, typer.Option(help=f"cores of each (a multiple of {DEFAULT_BLAST_THREADS})")
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
    shards: Annotated[
        int,
        typer.Option(help="also run the tuned workload in this many shards (0: no sharded run)"),
    ] = 2,
    rounds: Annotated[
        int, typer.Option(help="each run this many times, in turn; the fastest is kept")
    ] = 2,
) -> None:
    """Time the direct search and the runs, print them and their ratios."""
    if cores < 1 or cores % DEFAULT_BLAST_THREADS:
        sys.exit(f"--cores must be a multiple of {DEFAULT_BLAST_THREADS} (workers x the default)")
    if queries < 0 or direct_seconds <= 0 or shards < 0 or rounds < 1:
        sys.exit(
            "--queries and --shards must be 0 (sized; no sharded run) or more, "
            "--direct-seconds more than 0 and --rounds 1 or more"
        )
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
            direct_search(root, spec, query_file, task, cores, shards) as search,
            registry_with_pushed_images(IMAGES) as pushed,
            emulated_run_stack(root / "stack", pushed, demo_db=False) as stack,
        ):
            times: list[float] = []
            if not queries:  # measure, then size: the subjects do not depend on the queries
                probe = search()
                queries, seconds, steps = PROBE_QUERIES, probe, 0
                # A search's rate falls as its queries grow (blastn's lookup table, see
                # deployer.plan.tuning), so the probe's rate overshoots: size again from the
                # sized search until it lasts nearly as long as asked, never much shorter.
                while seconds < SIZED_AT_LEAST * direct_seconds and steps < SIZING_STEPS:
                    queries = sized_queries(queries, seconds, direct_seconds)
                    spec = replace(spec, queries=queries)
                    query_file.write_text(generate(spec).queries)
                    seconds, steps = search(), steps + 1
                times.append(seconds)  # the sized search is the first direct one
                sizing = (
                    f"sized from a probe of {PROBE_QUERIES} queries in {probe:.1f} s, in "
                    f"{steps} step{'s' if steps != 1 else ''}"
                )
            letters = queries * min(query_len, spec.seq_len)
            # Before and after the runs: the machine's load drifts, the best is kept.
            times += [search() for _ in range(repeat - len(times))]
            # The runs search the very files the direct search does.
            blast = BlastClient(connection_string=stack.connection_string)
            blast.ensure_resources()
            blast.upload_database(DB, sorted(root.glob(f"{DB}.*")))
            volumes = len(list(root.glob(f"{DB}*.nsq")))
            workers = cores // DEFAULT_BLAST_THREADS
            # (name, configuration, workload file, deployer run's options)
            configs: list[tuple[str, str, Path, tuple[str, ...]]] = [
                ("tuned run", "the tuner's workers x threads",
                 stack.workload("tuned", workers, threads=None, db=DB, bytes_to_cache=None), ()),
            ]  # fmt: skip
            if untuned:
                configs.append((
                    "untuned run", f"{cores} workers x 1 thread, {untuned_batches} batches",
                    stack.workload("untuned", cores, threads=1, db=DB, bytes_to_cache=None),
                    ("--batch-len", str(math.ceil(letters / untuned_batches))),
                ))  # fmt: skip
            if shards:
                configs.append((
                    "sharded run", f"the tuned run's workload in {shards} shards",
                    stack.workload("sharded", workers, threads=None, db=DB, bytes_to_cache=None,
                                   shards=shards),
                    (),
                ))  # fmt: skip
            # In turn, round after round: the load drifts alike for each; the best is kept.
            tries: dict[str, list[Timed]] = {name: [] for name, *_ in configs}
            batched_times: list[float] = []
            for i in range(rounds):
                for name, _, workload, extra in configs:
                    out = stack.root / f"out-{workload.stem}-{i}"
                    tries[name].append(timed_run(stack, workload, query_file, task, out, *extra))
                # The tuned run's batches, searched directly one after another: the run
                # without its machinery (start, queue, storage, teardown); once a round.
                batch_files = cut_as_run(query_file, tries["tuned run"][0].batch_queries, root)
                batched_times.append(search(batch_files))
            times += [search() for _ in range(repeat)]
            batched_same = (root / "batched.6").read_bytes() == (root / "direct.6").read_bytes()
        expected = (root / "direct.6").read_bytes()
    identical = all(t.merged == expected for timed in tries.values() for t in timed)
    runs = [(name, how, min(tries[name], key=lambda t: t.seconds)) for name, how, *_ in configs]
    load1 = os.getloadavg()
    one_search = min(times)
    batched = min(batched_times)
    direct = min(one_search, batched)
    print(
        f"{queries} queries of {query_len} bases ({letters:,} letters, 3% mutated windows of "
        f"the subjects) against {seqs:,} subjects of {spec.seq_len:,} bases "
        f"({seqs * spec.seq_len / 1e6:.1f} Mbp, {volumes} volume{'s' if volumes > 1 else ''}), "
        f"task {task}, {cores} cores; queries {sizing}"
    )
    tried = ", ".join(f"{t:.1f}" for t in times)
    table = Table(title="direct blastn versus deployer run", title_justify="left")
    for col in ("", "wall s", "x direct", "billed vCPU-s", "merged = direct", "configuration"):
        table.add_column(col, justify="left" if col in ("", "configuration") else "right")
    table.add_row(
        "direct", f"{one_search:.1f}", f"{one_search / direct:.2f}", f"{cores * one_search:.1f}",
        "", f"one blastn -num_threads {cores} (the best of {tried} s, before and after the runs)",
    )  # fmt: skip
    table.add_row(
        "direct, batched", f"{batched:.1f}", f"{batched / direct:.2f}", f"{cores * batched:.1f}",
        str(batched_same),
        f"the tuned run's {len(batch_files)} batches, one blastn -num_threads {cores} each, in "
        f"turn (the best of {', '.join(f'{t:.1f}' for t in batched_times)} s, one a round)",
    )  # fmt: skip
    for name, how, r in runs:
        each = tries[name]
        if len(each) > 1:
            how += f" (the best of {', '.join(f'{t.seconds:.1f}' for t in each)} s)"
        table.add_row(
            name, f"{r.seconds:.1f}", f"{r.seconds / direct:.2f}", f"{r.vcpu_seconds:.1f}",
            str(all(t.merged == expected for t in each)), how,
        )  # fmt: skip
    console = Console(width=160)
    console.print(table)
    targets = Table(title="targets (wall time, end to end)", title_justify="left")
    for col in ("", "ratio", "target", "billed vCPU-s ratio"):
        targets.add_column(col, justify="left" if not col else "right")
    tuned = runs[0][2]
    targets.add_row(
        "tuned run / the best direct search (of 30 s or more)", f"{tuned.seconds / direct:.2f}x",
        "<= 1.2x", f"{tuned.vcpu_seconds / (cores * direct):.2f}x",
    )  # fmt: skip
    if shards:
        sharded = runs[-1][2]
        targets.add_row(
            "sharded run / tuned run (unsharded)", f"{sharded.seconds / tuned.seconds:.2f}x",
            "<= 1.3x", f"{sharded.vcpu_seconds / tuned.vcpu_seconds:.2f}x",
        )  # fmt: skip
    console.print(targets)
    for name, _, r in runs:
        print(f"{name}: {r.tuning}")
        print(f"  where: {r.where}")
    print(f"merged outfmt 6 of every run byte-identical to the direct search: {identical}")
    print(f"load average (1 min): {load0[0]:.2f} before, {load1[0]:.2f} after")
    if not identical or not batched_same:
        sys.exit("a run's merged results, or the batched search's, differ from the direct search")


if __name__ == "__main__":
    try:
        run(
            main,
            # The probe and the sizing run too: 480 queries, the fewest it sizes; and a
            # sharded run, of the fewest shards.
            smoke={
                "seqs": 300,
                "queries": 0,
                "direct_seconds": 0.1,
                "query_len": 300,
                "untuned": False,
                "repeat": 1,
                "shards": 2,
                "rounds": 1,
            },
        )
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
