"""Throughput of the BLAST service under chaos versus calm, and recovery after a kill.

The same jobs (one planted query each, big demo database) run twice through 4 workers
(1 CPU and 1 BLAST thread each): once calm, once while a random worker is killed with -9
every 10 s (and restarted), Azurite restarts once and one worker is cut off the network
for 30 s (tests/support/soak.py). Target: chaos throughput at least 0.6x calm;
every interrupted job succeeds within the visibility timeout + one job's run time + 10 s.
Needs Docker, Compose and the images of `make build`. Run from the repository root:

    .venv/bin/python bench/bench_blast_chaos.py [--jobs 300] [--visibility 60]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.blast_stack import BIG_DB, BIG_SEQS, bench_stack
from tests.support.engine import StackError
from tests.support.soak import SoakConfig, run_soak, soak_queries


def main() -> None:
    """Run calm, then chaos, and print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs per run (default 300)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--visibility", type=int, default=60, help="BLAST_VISIBILITY_TIMEOUT (default 60 s)"
    )
    args = parser.parse_args()
    init = [["--demo-db", BIG_DB, "--demo-seqs", str(BIG_SEQS)]]
    queries = soak_queries(args.jobs)
    runs = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp,
        bench_stack(Path(tmp), init) as stack,
    ):
        for chaos in (False, True):
            # A fresh queue and table per run, so the second run starts empty.
            suffix = secrets.token_hex(3)
            stack.env.update(BLAST_QUEUE=f"soak-{suffix}", BLAST_JOB_TABLE=f"soak{suffix}")
            stack.cli("init")
            config = SoakConfig(
                jobs=args.jobs,
                workers=args.workers,
                chaos=chaos,
                visibility_timeout=args.visibility,
            )
            runs[chaos] = run_soak(stack, config, queries)
    calm, chaos_run = runs[False], runs[True]
    for run in (calm, chaos_run):
        print("\n".join(run.summary()))
    not_ok = sum(r["status"] != "succeeded" for r in chaos_run.rows.values())
    ratio = chaos_run.throughput / calm.throughput
    print(f"calm : {calm.throughput:6.1f} jobs/min")
    print(f"chaos: {chaos_run.throughput:6.1f} jobs/min ({not_ok} jobs not succeeded)")
    print(f"chaos/calm: {ratio:.2f}x (target >= 0.6x)")
    rec = chaos_run.recoveries
    if rec:
        print(
            f"recovery: median {statistics.median(rec):.1f} s, max {max(rec):.1f} s "
            f"(target <= {chaos_run.recovery_target:.1f} s)"
        )


if __name__ == "__main__":
    try:
        main()
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
