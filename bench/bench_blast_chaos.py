"""Throughput of the BLAST service under chaos versus calm, and recovery after a kill.

The same jobs (planted queries of the big demo database, as many per job as make it search
for at least a second at the rate measured before the first run) run twice through 4
workers (1 CPU and 1 BLAST thread each): once calm, once while a worker seen mid-job is
killed with -9 every 10 s (and restarted), Azurite restarts once and one worker is cut off
the network for 30 s (testbed/soak.py). Target: chaos throughput at least 0.6x calm;
every interrupted job succeeds within the visibility timeout + one job's run time + 10 s.
Needs Docker, Compose and the images of `make build`. Run from the repository root:

    .venv/bin/python bench/bench_blast_chaos.py [--jobs 300] [--visibility 60] [--rounds 2]
        [--smoke]
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from testbed.bench import run
from testbed.blast_stack import BIG_DB, BIG_SEQS, bench_stack
from testbed.engine import StackError
from testbed.soak import SoakConfig, SoakResult, run_soak


def run_order(rounds: int) -> list[bool]:
    """Calm (False) and chaos (True) runs in ABBA order: calm, chaos, chaos, calm, ...

    On a shared machine the load drifts; alternating the order cancels a steady drift
    between the two sides instead of charging it all to the second run.

    Args:
        rounds: Pairs of runs.
    """
    return [bool(i % 2) != bool(r % 2) for r in range(rounds) for i in range(2)]


def sized_kill_interval(calm: list[SoakResult]) -> float:
    """Seconds between kills for a short chaos run: 3 x one job's median run time in the
    first calm run (at least 2 s). Kills go to workers that are mid-job, so an interval close
    to a job's run time would kill nearly every job again and again on a slow machine; this
    one lets most jobs finish between kills however fast the machine is.

    Args:
        calm: The calm runs so far (at least one).
    """
    return max(2.0, 3 * calm[0].run_s)


@dataclass(frozen=True)
class Args:
    """The bench's options."""

    jobs: int
    workers: int
    visibility: int
    rounds: int
    logs: Path | None
    kill_every: float
    disconnect_for: float


def main(
    jobs: Annotated[int, typer.Option(help="jobs per run (default 300)")] = 300,
    workers: int = 4,
    visibility: Annotated[int, typer.Option(help="BLAST_VISIBILITY_TIMEOUT (default 60 s)")] = 60,
    rounds: Annotated[
        int,
        typer.Option(
            help="pairs of calm and chaos runs, in ABBA order (default 1: calm, then chaos)"
        ),
    ] = 1,
    logs: Annotated[
        Path | None, typer.Option(help="keep every worker's log here (<dir>/<n>-calm|chaos/)")
    ] = None,
    kill_every: Annotated[
        float,
        typer.Option(help="seconds between kills (default 10; 0: sized from the first calm run)"),
    ] = 10.0,
    disconnect_for: Annotated[
        float,
        typer.Option(
            help="seconds one worker is off the network (default 30; 0: as long as --kill-every)"
        ),
    ] = 30.0,
) -> None:
    """Run calm and chaos (``--rounds`` pairs), and print both."""
    args = Args(
        jobs=jobs,
        workers=workers,
        visibility=visibility,
        rounds=rounds,
        logs=logs,
        kill_every=kill_every,
        disconnect_for=disconnect_for,
    )
    init = [["--demo-db", BIG_DB, "--demo-seqs", str(BIG_SEQS)]]
    queries: list[str] = []  # sized by the first run, then the same for every run
    runs: dict[bool, list[SoakResult]] = {False: [], True: []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp,
        bench_stack(Path(tmp), init) as stack,
    ):
        for n, chaos in enumerate(run_order(args.rounds)):
            # A fresh queue and table per run, so each run starts empty.
            suffix = secrets.token_hex(3)
            stack.env.update(BLAST_QUEUE=f"soak-{suffix}", BLAST_JOB_TABLE=f"soak{suffix}")
            stack.cli("init")
            mode = "chaos" if chaos else "calm"
            # ABBA order starts calm, so a chaos run always has a calm run to size from.
            kill_every = args.kill_every or (sized_kill_interval(runs[False]) if chaos else 10.0)
            config = SoakConfig(
                jobs=args.jobs,
                workers=args.workers,
                chaos=chaos,
                visibility_timeout=args.visibility,
                kill_every=kill_every,
                disconnect_for=args.disconnect_for or kill_every,
                log_dir=args.logs / f"{n + 1}-{mode}" if args.logs else None,
            )
            result = run_soak(stack, config, queries)
            queries = list(result.queries.values())
            print("\n".join(result.summary()), flush=True)
            runs[chaos].append(result)

    def throughput(results: list[SoakResult]) -> float:
        return 60 * sum(len(r.rows) for r in results) / sum(r.elapsed for r in results)

    calm, chaos_runs = throughput(runs[False]), throughput(runs[True])
    not_ok = sum(r["status"] != "succeeded" for run in runs[True] for r in run.rows.values())
    print(f"calm : {calm:6.1f} jobs/min")
    print(f"chaos: {chaos_runs:6.1f} jobs/min ({not_ok} jobs not succeeded)")
    print(f"chaos/calm: {chaos_runs / calm:.2f}x (target >= 0.6x)")
    rec = [x for run in runs[True] for x in run.recoveries]
    if rec:
        target = min(run.recovery_target for run in runs[True])
        print(
            f"recovery after a kill ({len(rec)} jobs): median {statistics.median(rec):.1f} s, "
            f"max {max(rec):.1f} s (target <= {target:.1f} s)"
        )


if __name__ == "__main__":
    # Smoke: one job per worker, calm then chaos; the chaos run may end before its first fault
    # (tests/integration/blast/test_blast_soak.py proves the faults and the recovery). Faults
    # sized from the calm run's jobs, so on a slow machine its jobs still finish.
    try:
        run(
            main,
            smoke={
                "jobs": 2,
                "workers": 2,
                "visibility": 10,
                "rounds": 1,
                "kill_every": 0.0,
                "disconnect_for": 0.0,
            },
        )
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
