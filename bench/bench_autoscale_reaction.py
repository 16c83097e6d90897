"""Scale-up reaction of one autoscaler pass, against the fake ARM server (target: <= 10 s).

Seconds from a pass that sees 40 queued batches to the last create request it sends for
the workers it wants (here max_workers), through the real ACI SDK. The pass sends only the
PUTs (the janitor's pass does not wait for the fake's provisioning delay; later passes
observe it), so "pass done" stays near the last request. Reading the backlog is not
included (the janitor's pass reads it before calling the scaler). From the repository root:

    .venv/bin/python bench/bench_autoscale_reaction.py [--delay 2] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from aci_emulator import FAKE_TOKEN, FakeArm
from deployer.backends.aci import AciBackend, make_client
from deployer.scaler import ScaleState, reconcile
from testbed.bench import run
from testbed.elastic import PRIMARY, elastic_setup

BATCHES = 40


def one_pass(arm: FakeArm, threads: int, max_workers: int, target: int) -> tuple[float, float, int]:
    """(seconds to the last create request, seconds for the whole pass, groups created)."""
    template, scale = elastic_setup(
        f"threads_per_worker: {threads}, autoscale: {{max_workers: {max_workers}, "
        f"target_backlog_per_worker: {target}}}"
    )
    backend = AciBackend(make_client(arm.subscription_id), "research", PRIMARY)
    arm.aci.reset()
    arm.clear_calls()
    start = time.monotonic()
    done = reconcile(
        backend, "lab", scale, ScaleState(), template, queued=BATCHES, in_flight=0, now=time.time()
    )
    total = time.monotonic() - start
    puts = arm.calls("PUT")
    assert puts and all(o.ok for o in done.outcomes)
    assert sum(a.total for a in done.decision.creates) == max_workers
    return max(c.start for c in puts) - start, total, len(puts)


def main(
    delay: Annotated[float, typer.Option(help="provisioning delay (s)")] = 2.0,
    repeat: Annotated[int, typer.Option(help="runs per case; best is kept")] = 3,
) -> None:
    """Run the benchmark and print its figures."""
    with FakeArm() as arm:
        arm.aci.provisioning_delay = delay
        os.environ.update(
            DEPLOYER_ARM_ENDPOINT=arm.url,
            DEPLOYER_ACCESS_TOKEN=FAKE_TOKEN,
            DEPLOYER_POLL_INTERVAL="0.2",
        )
        print(f"{BATCHES} queued batches, provisioning delay {delay:.1f} s per group")
        for threads, workers, target in ((2, 10, 4), (4, 10, 4), (1, 40, 1)):
            runs = [one_pass(arm, threads, workers, target) for _ in range(repeat)]
            last, total, groups = min(runs)
            print(
                f"{workers:3d} workers of {threads} vCPU (target backlog {target}) in {groups:2d} "
                "groups: last create "
                f"request after {last:5.2f} s (target <= 10 s); pass done after {total:5.2f} s "
                f"(best of {repeat})"
            )


if __name__ == "__main__":
    run(main, smoke={"delay": 0.2, "repeat": 1})
