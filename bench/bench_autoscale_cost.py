"""Billed worker-seconds of an autoscaled run against a fixed pool, on the local ACI emulator.

A skewed run of 40 batches (``--long`` long ones, the rest short: one 400-bp query each)
runs twice with ``deployer run`` on the emulator (real worker containers, Azurite, blastn
``-task blastn`` against a 40 Mb demo database). Scale-in saves only while the long batches
outlast the short ones by more than ``scale_in_after``, so their length is not fixed: the
bench first measures blastn's rate on this machine and sizes each long query to search for
``--long-scale-ins`` (default 8) times ``scale_in_after``.

* **fixed**: ``max_workers`` worker groups for the whole run (workers never exit when idle;
  the janitor deletes them when the last batch is done);
* **autoscale**: ``blast.autoscale`` with the same ``max_workers``: the janitor scales from
  0 and workers exit after ``scale_in_after`` without a batch.

It prints each run's billed worker vCPU-seconds (from the run's bill), the ratio (target:
autoscale <= 0.7 x fixed), the wall times (target: autoscale within 1.2 x), and for the
autoscaled run the seconds from the run's creation to its first create burst (the janitor's
reaction, from the decision log). Needs Docker and the images of ``make build`` (TAG=...).
From the repository root:

    .venv/bin/python bench/bench_autoscale_cost.py [--workers 4] [--long 2] [--long-scale-ins 8]
        [--long-kb N (fixed instead of sized)]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure.data.tables import TableClient
from blast_client.demo import DemoSpec, generate
from blast_client.fasta import iter_records

from deployer.workload import duration_seconds
from tests.integration.run.conftest import BIN, RunStack, emulated_run_stack

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

# Runs in the worker image: builds the bench database as `blast-jobs init` does, then times
# blastn -task blastn on random queries (1 kb, then doubling until the search takes 2 s more
# than that; each the faster of two runs) and prints the fixed seconds and the seconds per kb.
MEASURE = """
import json, random, subprocess, tempfile, time
from pathlib import Path
from blast_client.demo import DemoSpec, makeblastdb_argv, write_demo
tmp = Path(tempfile.mkdtemp())
subjects, _ = write_demo(DemoSpec(name="bench", seqs={seqs}, seq_len={seq_len}), tmp)
subprocess.run(makeblastdb_argv(subjects, tmp / "bench", "bench"), check=True, capture_output=True)
rnd = random.Random(11)
def timed(kb):
    query = tmp / "q.fa"
    query.write_text(">q\\n" + "".join(rnd.choices("ACGT", k=kb * 1000)) + "\\n")
    argv = ["blastn", "-task", "blastn", "-db", str(tmp / "bench"), "-query", str(query),
            "-outfmt", "6", "-num_threads", "1"]
    best = float("inf")
    for _ in range(2):  # the faster of two: a burst of load slows one run
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best
one = timed(1)
kb = 64
while (seconds := timed(kb)) - one < 2 and kb < 1 << 16:
    kb *= 2
per_kb = (seconds - one) / (kb - 1)
print(json.dumps({{"fixed_s": max(one - per_kb, 0.0), "per_kb_s": per_kb}}))
"""


def long_kb_for(stack: RunStack, seconds: float) -> tuple[int, str]:
    """Kb of a random query that blastn searches for at least ``seconds`` (measured here)."""
    out = stack.in_worker_image(MEASURE.format(seqs=DB.seqs, seq_len=DB.seq_len), timeout=900)
    rate = json.loads(out.decode().strip().splitlines()[-1])
    kb = max(1, math.ceil((seconds - rate["fixed_s"]) / rate["per_kb_s"]))
    return kb, (
        f"measured blastn -task blastn: {rate['fixed_s']:.2f} s + {rate['per_kb_s'] * 1000:.1f} "
        f"ms per kb; long queries of {kb} kb search for ~{seconds:.0f} s each"
    )


def skewed_queries(long: int, long_kb: int) -> str:
    """``BATCHES`` records, each a batch of its own at ``--batch-len 400``: ``long`` random
    records of ``long_kb`` kb spread through the file, the others 400-bp planted queries."""
    planted = [
        r.text for r in iter_records(generate(DemoSpec(**{**vars(DB), "queries": 40})).queries)
    ]
    rnd = random.Random(7)
    records = planted[: BATCHES - long]
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


def worker_seconds(summary: dict[str, Any]) -> tuple[float, int]:
    """(billed worker vCPU-seconds, worker groups) of a run's summary."""
    lines = [line for line in summary["bill"]["lines"] if line["kind"] == "workers"]
    return sum(float(line["vcpu_seconds"]) for line in lines), len(lines)


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


def main() -> None:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="max_workers (and the pool)")
    parser.add_argument("--long", type=int, default=2, help="long batches")
    parser.add_argument(
        "--long-scale-ins",
        type=float,
        default=8,
        help="long batches search for this many times scale_in_after (default 8)",
    )
    parser.add_argument("--long-kb", type=int, help="kb of each long query (default: sized)")
    parser.add_argument("--scale-in-after", default="10s")
    args = parser.parse_args()
    scale_in_s = duration_seconds(args.scale_in_after)
    with tempfile.TemporaryDirectory(prefix="bench-autoscale-") as tmp:
        root = Path(tmp)
        with emulated_run_stack(root) as stack:
            stack.in_worker_image(
                "import subprocess,sys; sys.exit(subprocess.run(['blast-jobs','init','--demo-db',"
                f"'bench','--demo-seqs','{DB.seqs}','--demo-seq-len','{DB.seq_len}']).returncode)"
            )
            long_kb = args.long_kb
            if long_kb is None:
                long_kb, sizing = long_kb_for(stack, args.long_scale_ins * scale_in_s)
                print(sizing, flush=True)
            queries = root / "skewed.fa"
            queries.write_text(skewed_queries(args.long, long_kb))
            print(
                f"{BATCHES} batches: {args.long} of {long_kb} kb, {BATCHES - args.long} of "
                f"400 bp (blastn -task blastn, {DB.seqs} x {DB.seq_len} bp database); "
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
                assert s["status"] == "succeeded" and s["batches"] == BATCHES, s["reason"]
            fixed_s, fixed_groups = worker_seconds(fixed)
            auto_s, auto_groups = worker_seconds(auto)
            print(
                f"fixed pool : {fixed_s:7.0f} worker vCPU-s billed ({fixed_groups} groups), "
                f"wall {fixed['wall_seconds']:5.0f} s"
            )
            print(
                f"autoscale  : {auto_s:7.0f} worker vCPU-s billed ({auto_groups} groups), "
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
    main()
