"""``deployer run`` on the local ACI emulator: the idle tail and the run overhead.

* **Idle tail**: seconds from the last batch finishing (its job row) to the last worker
  group being deleted (ARM polled every 0.25 s). Target: at most BLAST_EXIT_WHEN_IDLE + 15 s.
* **Run overhead**: wall time of ``deployer run`` with N one-query batches (validation,
  submission, group creation, the run, the merge) against the same batches submitted with
  ``blast-jobs submit`` to an already running pool of the same size (``deployer up``), timed
  from submission until every job is final.

Needs Docker and the images of ``make build`` (TAG=...), nothing else. From the repo root:

    .venv/bin/python bench/bench_run.py [--batches 20] [--exit-when-idle 10s] [--smoke]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from blast_client import BlastClient
from blast_client.demo import DemoSpec, generate
from blast_client.fasta import iter_records, join_records

from testbed.bench import run
from testbed.engine import wait_for
from testbed.run_stack import BIN, emulated_run_stack


@dataclass(frozen=True)
class Args:
    """The bench's options."""

    batches: int
    workers: int
    exit_when_idle: str


def main(
    batches: int = 20,
    workers: int = 2,
    exit_when_idle: str = "10s",
) -> None:
    """Run both measurements and print them."""
    args = Args(batches=batches, workers=workers, exit_when_idle=exit_when_idle)
    idle_s = float(args.exit_when_idle.rstrip("s"))
    records = list(iter_records(generate(DemoSpec(name="demo")).queries))[: args.batches]
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        root = Path(tmp)
        with emulated_run_stack(root) as stack:
            stack.env["DEPLOYER_RUN_EXIT_WHEN_IDLE"] = args.exit_when_idle
            queries = root / "q.fa"
            queries.write_text(join_records(records))
            workload = stack.workload("bench", workers=args.workers)

            # 1. deployer run, watching the worker groups disappear.
            last_gone: list[float] = []
            stop = threading.Event()

            def watch() -> None:
                seen = False
                while not stop.is_set():
                    workers = [g for g in stack.groups("bench") if "-w" in g]
                    seen = seen or bool(workers)
                    if seen and not workers and not last_gone:
                        last_gone.append(time.time())
                    time.sleep(0.25)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            t0 = time.monotonic()
            proc = stack.deployer(
                "--output",
                "json",
                "run",
                str(workload),
                str(queries),
                "--db",
                "demo",
                "--batch-len",
                "1",
                "--out",
                str(root / "out"),
            )
            run_wall = time.monotonic() - t0
            stop.set()
            watcher.join()
            if proc.returncode != 0:
                sys.exit(f"deployer run failed: {proc.stderr[-2000:]}")
            summary = json.loads(proc.stdout)["data"]
            client = BlastClient(connection_string=stack.connection_string)
            finished = max(j.finished or 0 for j in client.run_jobs(summary["run_id"]))
            tail = last_gone[0] - finished if last_gone else float("nan")

            # 2. The same batches on an already running pool.
            pool = stack.workload("pool", workers=args.workers)
            up = stack.deployer("up", str(pool))
            if up.returncode != 0:
                sys.exit(f"deployer up failed: {up.stderr[-2000:]}")
            jobs = [str(BIN / "blast-jobs"), "--output", "json"]
            env = {**stack.env, "BLAST_QUEUE": "blast-jobs"}
            t1 = time.monotonic()
            sub = subprocess.run(
                [*jobs, "submit", "--db", "demo", "--batch-len", "1", "-"],
                input=join_records(records),
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            ids = [j["job_id"] for j in json.loads(sub.stdout)["data"]["jobs"]]
            subprocess.run(
                [*jobs, "wait", *ids, "--timeout", "600", "--interval", "0.2"],
                env=env,
                capture_output=True,
                check=True,
            )
            pool_wall = time.monotonic() - t1
            stack.deployer("down", str(pool))
            wait_for(lambda: stack.groups("pool") == [], 120, "the pool to go")

    print(f"batches: {len(records)} one-query batches, {args.workers} workers")
    print(
        f"idle tail: {tail:.1f} s from the last batch done to the last worker group deleted "
        f"(BLAST_EXIT_WHEN_IDLE={args.exit_when_idle}; target <= {idle_s + 15:.0f} s)"
    )
    print(
        f"run overhead: deployer run {run_wall:.1f} s end to end (incl. merge and teardown) "
        f"vs {pool_wall:.1f} s on an already running pool (+{run_wall - pool_wall:.1f} s)"
    )
    print(
        f"billed: {summary['bill']['vcpu_seconds']:.0f} vCPU-s, "
        f"{summary['bill']['gb_seconds']:.0f} GB-s, {summary['bill']['cost']:.5f} "
        f"{summary['bill']['currency']}"
    )


if __name__ == "__main__":
    run(main, smoke={"batches": 2, "workers": 1, "exit_when_idle": "2s"})
