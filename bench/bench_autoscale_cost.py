"""Billed worker-seconds of an autoscaled run against a fixed pool, on the local ACI emulator.

A skewed run of 40 batches (``--long`` long ones, the rest short: one 400-bp query each)
runs twice with ``deployer run`` on the emulator (real worker containers, Azurite, blastn
``-task blastn`` against a 40 Mb demo database). Scale-in saves only the time the long
batches outlast the short ones plus ``scale_in_after``, so their length is not fixed: the
bench first times blastn on this machine and sizes each long query to search for
``--long-factor`` (default 3) times that: the short batches' time on the other workers
(their search at each worker's share of the CPUs, plus the worker's own work per batch)
plus ``scale_in_after``. The autoscaled run then pays for about half the workers most of
the time.

* **fixed**: ``max_workers`` worker groups for the whole run (workers never exit when idle;
  the janitor deletes them when the last batch is done);
* **autoscale**: ``blast.autoscale`` with the same ``max_workers``: the janitor scales from
  0 and workers exit after ``scale_in_after`` without a batch.

It prints each run's billed worker vCPU-seconds (from the run's bill), the ratio (target:
autoscale <= 0.7 x fixed), the wall times (target: autoscale within 1.2 x), and for the
autoscaled run the seconds from the run's creation to its first create burst (the janitor's
reaction, from the decision log). Needs Docker and the images of ``make build`` (TAG=...).
From the repository root:

    .venv/bin/python bench/bench_autoscale_cost.py [--workers 4] [--long 2] [--long-factor 3]
        [--long-kb N (fixed instead of sized)] [--batches 40] [--db-seqs 20000] [--smoke]
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from azure.data.tables import TableClient
from blast_client.demo import DemoSpec, generate, makeblastdb_argv, write_demo
from blast_client.fasta import iter_records

from deployer.workload import duration_seconds
from testbed.bench import run
from testbed.blast_stack import BlastTools
from testbed.engine import docker_engine
from testbed.run_stack import BIN, RunStack, emulated_run_stack

BATCHES = 40
DB = DemoSpec(name="bench", seqs=20000, seq_len=2000)
WORKLOAD = """\
deployment:
  name: {name}
  location: westeurope
  registry: emulator.azurecr.io
  registry_auth: admin
workloads:
  blast:
    threads_per_worker: 1
{pool}    databases:
      - {{name: bench, bytes_to_cache: 8000000000}}
"""
"""8 GB to cache: one 1-vCPU worker per group, so workers are groups."""

JOB_OVERHEAD_S = 0.5
"""The worker's own work per batch besides the search (query, formatter, uploads, rows):
twice bench_blast_overhead's 250 ms target."""


def long_seconds(
    scale_in_s: float,
    short_s: float,
    workers: int,
    long: int,
    cpus: int,
    factor: float,
    batches: int = BATCHES,
) -> float:
    """Seconds the long batches should search for scale-in to save (pure): ``factor`` times
    the short batches' time on the other workers plus ``scale_in_after``.

    Args:
        scale_in_s: ``scale_in_after`` in seconds.
        short_s: Seconds one short batch searches alone.
        workers: Workers (max_workers and the fixed pool).
        long: Long batches.
        cpus: CPUs of the machine.
        factor: How many times.
        batches: Batches of the run.
    """
    share = min(1.0, cpus / workers)  # each worker's CPU while all of them run
    per_worker = math.ceil((batches - long) / max(workers - long, 1))
    shorts = per_worker * (short_s / share + JOB_OVERHEAD_S)
    return factor * (shorts + scale_in_s)


def long_kb_for(root: Path, args: Args, scale_in_s: float, db: DemoSpec) -> tuple[int, str]:
    """Kb of the long random queries: blastn timed here (the worker image's, on the bench
    database), sized by :func:`long_seconds`.

    Search time grows faster than the query beyond a few hundred kb, so the query doubles
    until it searches for a quarter of the target, and only that rate is extrapolated.
    """
    tools = BlastTools(docker_engine(), root, f"bench-autoscale-{os.getpid()}")
    try:
        subjects, _ = write_demo(db, root / "db")
        tools.run(makeblastdb_argv(subjects, root / "db" / db.name, db.name))
        query = root / "measure.fa"
        rnd = random.Random(11)
        blastn = ["blastn", "-task", "blastn", "-db", str(root / "db" / db.name)]
        blastn += ["-outfmt", "6", "-num_threads", "1", "-query", str(query)]

        def timed(kb: int) -> float:
            query.write_text(">q\n" + "".join(rnd.choices("ACGT", k=kb * 1000)) + "\n")
            return tools.timed(blastn)

        short_s = min(timed(1), timed(1))  # the faster of two: a burst of load slows one
        cpus = os.cpu_count() or 1
        target = long_seconds(
            scale_in_s, short_s, args.workers, args.long, cpus, args.long_factor, args.batches
        )
        kb, seconds = 64, timed(64)
        while seconds < target / 4:
            kb = math.ceil(kb * min(8.0, max(2.0, target / 4 / max(seconds, 0.01))))
            seconds = timed(kb)
    finally:
        tools.close()
    per_kb = (seconds - short_s) / (kb - 1)
    long_kb = max(1, math.ceil(kb + (target - seconds) / per_kb))
    return long_kb, (
        f"measured blastn -task blastn: a short batch {short_s:.2f} s, {kb} kb {seconds:.1f} s; "
        f"long queries of {long_kb} kb search for ~{target:.0f} s each ({args.long_factor:g} x "
        f"the short batches on the other workers + scale_in_after, on {cpus} CPUs)"
    )


def skewed_queries(long: int, long_kb: int, db: DemoSpec, batches: int = BATCHES) -> str:
    """``batches`` records, each a batch of its own at ``--batch-len 400``: ``long`` random
    records of ``long_kb`` kb spread through the file, the others 400-bp planted queries."""
    planted = [
        r.text for r in iter_records(generate(DemoSpec(**{**vars(db), "queries": batches})).queries)
    ]
    rnd = random.Random(7)
    records = planted[: batches - long]
    for i in range(long):
        seq = "".join(rnd.choices("ACGT", k=long_kb * 1000))
        lines = "\n".join(seq[j : j + 80] for j in range(0, len(seq), 80))
        records.insert((i + 1) * len(records) // (long + 1), f">long_{i + 1}\n{lines}\n")
    return "".join(records)


def one_run(
    stack: RunStack, name: str, pool: str, queries: Path, env: dict[str, str]
) -> dict[str, Any]:
    """``deployer run`` to the end; its summary (the JSON envelope's data)."""
    workload = stack.root / f"{name}.yaml"
    workload.write_text(WORKLOAD.format(name=name, pool=pool))
    proc = subprocess.run(
        [
            str(BIN / "deployer"),
            "--output",
            "json",
            "run",
            str(workload),
            str(queries),
            "--db",
            "bench",
            "--task",
            "blastn",
            "--batch-len",
            "400",
            "--out",
            str(stack.root / f"{name}-out"),
        ],
        env={**stack.env, **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name}: deployer run failed:\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)["data"]
    return data


def worker_seconds(summary: dict[str, Any]) -> tuple[float, list[float]]:
    """(billed worker vCPU-seconds, each worker group's billed seconds) of a run's summary."""
    lines = [line for line in summary["bill"]["lines"] if line["kind"] == "workers"]
    seconds = sorted(float(line["seconds"]) for line in lines)
    return sum(float(line["vcpu_seconds"]) for line in lines), seconds


def reaction(stack: RunStack, summary: dict[str, Any]) -> float | None:
    """Seconds from the run's creation to its first decision that created groups."""
    table = TableClient.from_connection_string(stack.connection_string, "blastjobs")
    run = table.get_entity("runs", summary["run_id"])
    rows = table.query_entities(
        "PartitionKey eq @p", parameters={"p": f"scale-{summary['run_id']}"}
    )
    creates = sorted(
        float(json.loads(r["decision"])["at"])
        for r in rows
        if any(a["action"] == "create" for a in json.loads(r["decision"])["actions"])
    )
    return creates[0] - float(run["created"]) if creates else None


@dataclass(frozen=True)
class Args:
    """The bench's options."""

    workers: int
    long: int
    long_factor: float
    long_kb: int | None
    scale_in_after: str
    batches: int
    db_seqs: int


def main(
    workers: Annotated[int, typer.Option(help="max_workers (and the pool)")] = 4,
    long: Annotated[int, typer.Option(help="long batches")] = 2,
    long_factor: Annotated[
        float,
        typer.Option(
            help="long batches search this many times the short ones + scale_in_after (default 3)"
        ),
    ] = 3,
    long_kb: Annotated[
        int | None, typer.Option(help="kb of each long query (default: sized)")
    ] = None,
    scale_in_after: str = "10s",
    batches: Annotated[int, typer.Option(help=f"batches (default {BATCHES})")] = BATCHES,
    db_seqs: Annotated[int, typer.Option(help=f"database sequences (default {DB.seqs})")] = DB.seqs,
) -> None:
    """Run both and print the figures."""
    args = Args(
        workers=workers,
        long=long,
        long_factor=long_factor,
        long_kb=long_kb,
        scale_in_after=scale_in_after,
        batches=batches,
        db_seqs=db_seqs,
    )
    db = DemoSpec(**{**vars(DB), "seqs": args.db_seqs})
    scale_in_s = duration_seconds(args.scale_in_after)
    with tempfile.TemporaryDirectory(prefix="bench-autoscale-") as tmp:
        root = Path(tmp)
        with emulated_run_stack(root) as stack:
            stack.in_worker_image(
                "import subprocess,sys; sys.exit(subprocess.run(['blast-jobs','init','--demo-db',"
                f"'bench','--demo-seqs','{db.seqs}','--demo-seq-len','{db.seq_len}']).returncode)"
            )
            long_kb = args.long_kb
            if long_kb is None:
                long_kb, sizing = long_kb_for(root, args, scale_in_s, db)
                print(sizing, flush=True)
            queries = root / "skewed.fa"
            queries.write_text(skewed_queries(args.long, long_kb, db, args.batches))
            print(
                f"{args.batches} batches: {args.long} of {long_kb} kb, "
                f"{args.batches - args.long} of 400 bp (blastn -task blastn, "
                f"{db.seqs} x {db.seq_len} bp database); "
                f"{args.workers} workers of 1 vCPU, one per group",
                flush=True,
            )
            fixed = one_run(
                stack,
                "fixed",
                f"    workers: {args.workers}\n",
                queries,
                {"DEPLOYER_RUN_EXIT_WHEN_IDLE": "1h"},
            )
            auto = one_run(
                stack,
                "elastic",
                f"    autoscale: {{max_workers: {args.workers}, target_backlog_per_worker: 4, "
                f"scale_in_after: {args.scale_in_after}}}\n",
                queries,
                {"DEPLOYER_SCALE_OUT_INTERVAL": "5"},
            )
            for s in (fixed, auto):
                assert s["status"] == "succeeded" and s["batches"] == args.batches, s["reason"]
            fixed_s, fixed_groups = worker_seconds(fixed)
            auto_s, auto_groups = worker_seconds(auto)

            def each(seconds: list[float]) -> str:
                return f"{len(seconds)} groups: " + ", ".join(f"{s:.0f}" for s in seconds) + " s"

            print(
                f"fixed pool : {fixed_s:7.0f} worker vCPU-s billed ({each(fixed_groups)}), "
                f"wall {fixed['wall_seconds']:5.0f} s"
            )
            print(
                f"autoscale  : {auto_s:7.0f} worker vCPU-s billed ({each(auto_groups)}), "
                f"wall {auto['wall_seconds']:5.0f} s (scale_in_after {args.scale_in_after})"
            )
            print(
                f"ratio      : worker-seconds {auto_s / fixed_s:.2f} x (target <= 0.7), "
                f"wall {auto['wall_seconds'] / fixed['wall_seconds']:.2f} x (target <= 1.2)"
            )
            first = reaction(stack, auto)
            if first is not None:
                print(f"reaction   : first create burst {first:.1f} s after the run was created")


if __name__ == "__main__":
    run(
        main,
        smoke={
            "workers": 2,
            "long": 1,
            "long_kb": 5,
            "batches": 4,
            "db_seqs": 200,
            "scale_in_after": "2s",
        },
    )
