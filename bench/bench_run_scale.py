"""The run machinery at scale: runs of 1,000, 3,000 and 10,000 batches on Azurite.

Workers finish each job at once through the real job protocol (``blast_client``) with a
small real result (:mod:`testbed.fast_workers`), so this measures the control plane (submit,
janitor, ``run status``, merge), not BLAST. Each run's side (``deployer run``: ``start``, the
janitor's loop, the foreground watch, ``run status``, the merge; :mod:`testbed.scale_run`)
runs in a process of its own, so its peak memory is its own; the workers in two more.
Storage requests are counted at the client (:mod:`testbed.storage_wire`). Each size has an
Azurite of its own.

Targets (issue 22): at 10,000 batches submit <= 60 s, a janitor pass <= 2 s, ``run status``
<= 2 s, merge <= 60 s, peak memory <= 500 MB; from the smallest to the largest run, time and
storage requests per batch grow at most 1.5x.

Needs Docker and the azurite image of ``make build`` (TAG=...). From the repo root:

    .venv/bin/python bench/bench_run_scale.py [--sizes 1000,3000,10000] [--smoke]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from aci_emulator import FakeArm
from testbed.azurite import azurite
from testbed.bench import run
from testbed.engine import TAG
from testbed.fake_arm import registry_with_images
from testbed.fast_workers import THREADS, worker_processes
from testbed.run_stack import emulator_env
from testbed.scale_run import Figures, drive, prepare
from testbed.storage_wire import Wire, installed

TARGETS = {"submit_s": 60.0, "pass_s": 2.0, "status_s": 2.0, "merge_s": 60.0, "peak_mb": 500.0}
GROWTH = 1.5


def _run_side(
    n: int, root: str, env: dict[str, str], ports: dict[str, int], interval: float, out: Any
) -> None:
    """The run's side in its own process: figures (or the failure) go to ``out``."""
    os.environ.update(env)
    try:
        with installed(Wire(ports)) as wire:
            workload = Path(root) / "scale.yaml"
            fig = drive(
                n,
                Path(root),
                workload,
                wire,
                janitor_interval=interval,
                on_started=lambda run_id: out.put(("started", run_id)),
            )
        out.put(("figures", asdict(fig)))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        out.put(("failed", f"{type(exc).__name__}: {exc}"))


def one_run(
    n: int, root: Path, env: dict[str, str], ports: dict[str, int], interval: float, threads: int
) -> Figures:
    """One run of ``n`` batches: its side in a child process, the workers here."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_run_side, args=(n, str(root), env, dict(ports), interval, out))
    child.start()
    with contextlib.ExitStack() as workers:
        try:
            while True:
                try:
                    kind, value = out.get(timeout=5)
                except queue.Empty:
                    if not child.is_alive():
                        sys.exit(f"the run's process died (exit {child.exitcode})")
                    continue
                if kind == "started":
                    conn = env["AZURE_STORAGE_CONNECTION_STRING"]
                    workers.enter_context(worker_processes(conn, f"run-{value}", threads=threads))
                elif kind == "failed":
                    sys.exit(f"run of {n} batches failed: {value}")
                else:
                    return Figures(**dict(value))
        finally:
            child.join(60)


def _load() -> str:
    """The 1, 5 and 15 minute load averages: the figures are only as quiet as the machine."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def janitor_s(f: Figures) -> float:
    """The janitor's time on the run: its passes, and its looks at the rows between them."""
    return sum(f.passes_s) + sum(f.looks_s)


def janitor_cpu(f: Figures) -> float:
    """The janitor thread's CPU time in its passes and looks."""
    return sum(f.passes_cpu_s) + sum(f.looks_cpu_s)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(figures: list[Figures], loads: list[str], in_memory: bool, fast_lookups: bool) -> None:
    """Print each run's figures, then whether each target holds."""
    print(
        "control plane only: workers finish each job at once through the real job protocol "
        "(small real results), so no figure below includes BLAST"
    )
    print(
        "Azurite (a fresh one for each size) "
        + (
            "in memory (--inMemoryPersistence): its 5-s saves of each whole store (LokiJS "
            "autosave, synchronous, growing with every row, message and blob: 225 ms a round "
            "with 2,000 batches' data on a loaded machine) are a cost of the emulator, not of "
            "Azure"
            if in_memory
            else "on disk: its 5-s saves of each whole store grow with every batch (an "
            "emulator's cost, not Azure's; --azurite-in-memory leaves them out)"
        )
    )
    print(
        "Azurite with fast lookups (testbed/azurite_fast_lookups.js): a point read or write "
        "used one key's index and scanned its rows (every job row's RowKey is 'job'; a run's "
        "index entries share one PartitionKey), so it now starts from the key with fewer rows; "
        "each message operation swept every message for expired ones, and its "
        "garbage collection sorted every extent again for each deleted one (one such pass "
        "blocked all requests for 90 s); same answers, without costs Azure does not have"
        if fast_lookups
        else "Azurite as built: every point read or write of a job row scans every job row, "
        "every message operation every message, and its garbage collection can block every "
        "request for a minute (--azurite-fast-lookups leaves them out)"
    )
    print(
        "janitor passes: median and max of all; 'read max' leaves out the passes that called "
        "ARM (billing and deleting the groups at the end); 'first' is the first pass, which "
        "reads every job row but the queued ones"
    )
    print(
        f"{'batches':>8} {'submit s':>9} {'pass med s':>10} {'pass max s':>10} "
        f"{'read max s':>10} {'first s':>8} {'rows/pass':>9} {'janitor s':>9} "
        f"{'status s':>9} {'merge s':>8} {'peak MB':>8} "
        f"{'req/batch':>10}  {'load 1/5/15 min':>15}  requests by phase"
    )
    for f, load in zip(figures, loads, strict=True):
        passes = f.passes_s or [float("nan")]
        reads = f.observe_passes_s or [float("nan")]
        print(
            f"{f.batches:>8} {f.submit_s:>9.2f} {statistics.median(passes):>10.3f} "
            f"{max(passes):>10.3f} {max(reads):>10.3f} {passes[0]:>8.3f} "
            f"{statistics.median(f.passes_read or [0]):>9.0f} {janitor_s(f):>9.2f} "
            f"{f.status_s:>9.2f} "
            f"{f.merge_s:>8.2f} "
            f"{f.peak_mb:>8.0f} {f.per_batch:>10.2f}  {load:>15}  {f.requests} "
            f"({len(f.passes_s)} passes, run {f.status})"
        )
        slow = sorted(range(len(f.passes_s)), key=lambda i: f.passes_s[i])[-3:][::-1]
        # A pass retried after a conflict reads twice: its parts may not line up then.
        parts = len(f.passes_rows_s) == len(f.passes_groups_s) == len(f.passes_s)
        print(
            "         slowest passes: "
            + ", ".join(
                f"#{i + 1} {f.passes_s[i]:.2f} s"
                + (
                    f" (rows {f.passes_rows_s[i]:.2f} s, groups {f.passes_groups_s[i]:.2f} s)"
                    if parts
                    else ""
                )
                for i in slow
            )
        )
        read, cpu = sum(f.passes_read) + sum(f.looks_read), janitor_cpu(f)
        print(
            f"         janitor: {len(f.passes_s)} passes and {len(f.looks_s)} looks between "
            f"them read {read} rows in all ({read / max(1, f.batches):.2f} a batch), "
            f"{janitor_s(f):.2f} s ({1000 * janitor_s(f) / max(1, read):.2f} ms a row), of "
            f"which its thread's CPU {cpu:.2f} s ({1000 * cpu / max(1, read):.2f} ms a row)"
        )
        if f.problems:
            print(f"         merged output WRONG: {'; '.join(f.problems)}")
    big, small = figures[-1], figures[0]
    checks = {
        f"submit <= {TARGETS['submit_s']:g} s": big.submit_s <= TARGETS["submit_s"],
        f"janitor pass <= {TARGETS['pass_s']:g} s (max of all)": max(big.passes_s or [0])
        <= TARGETS["pass_s"],
        f"janitor pass <= {TARGETS['pass_s']:g} s (max of reading passes)": max(
            big.observe_passes_s or [0]
        )
        <= TARGETS["pass_s"],
        f"run status <= {TARGETS['status_s']:g} s": big.status_s <= TARGETS["status_s"],
        f"merge <= {TARGETS['merge_s']:g} s": big.merge_s <= TARGETS["merge_s"],
        f"peak memory <= {TARGETS['peak_mb']:g} MB": big.peak_mb <= TARGETS["peak_mb"],
    }
    print(f"targets at {big.batches} batches:")
    for name, ok in checks.items():
        print(f"  {name}: {verdict(ok)}")
    if big.batches > small.batches:
        ratio = big.batches / small.batches
        growth = {
            "submit time per batch": big.submit_s / small.submit_s / ratio,
            "merge time per batch": big.merge_s / small.merge_s / ratio,
            "janitor time per batch (its passes and looks)": janitor_s(big)
            / janitor_s(small)
            / ratio,
            "storage requests per batch": big.per_batch / small.per_batch,
        }
        print(f"growth from {small.batches} to {big.batches} batches (target <= {GROWTH:g}x):")
        for name, x in growth.items():
            print(f"  {name}: {x:.2f}x {verdict(x <= GROWTH)}")
        # Not a target: a pass reads the rows changed since the last one, as many as the
        # workers finish in an interval; a small run ends before its workers reach full pace.
        rows = [statistics.median(f.passes_read or [0]) for f in (small, big)]
        print(
            f"  (for reading, not a target: the median pass, "
            f"{statistics.median(small.passes_s):.3f} s -> "
            f"{statistics.median(big.passes_s):.3f} s, "
            f"{statistics.median(big.passes_s) / statistics.median(small.passes_s):.2f}x, "
            f"reading {rows[0]:.0f} -> {rows[1]:.0f} changed rows: a small run's passes fall "
            "in its start and its end, a large run's at its workers' full pace)"
        )
    print(
        "merged output: "
        + (
            "every batch exactly once, in order"
            if not any(f.problems for f in figures)
            else "WRONG (above)"
        )
    )


def main(
    sizes: str = "1000,3000,10000",
    janitor_interval: float = 10.0,
    worker_threads: Annotated[int, typer.Option(help="per worker process (2)")] = THREADS,
    azurite_in_memory: Annotated[
        bool,
        typer.Option(
            help="Azurite's --inMemoryPersistence: no 5-s saves of its whole database, a cost "
            "Azure does not have"
        ),
    ] = True,
    azurite_fast_lookups: Annotated[
        bool,
        typer.Option(
            help="preload testbed/azurite_fast_lookups.js: a point read or write found by "
            "the index of whichever key holds fewer rows, a sweep of expired messages at most "
            "once a second, and deleted data collected in one removal, not one sort of all data "
            "each (three costs that grow with what Azurite holds; Azure has none of them)"
        ),
    ] = True,
) -> None:
    batch_counts = [int(s) for s in sizes.split(",")]
    figures: list[Figures] = []
    loads: list[str] = []  # the machine's load as each run ended
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        FakeArm() as arm,
        # The groups are records only; the deployer still checks its images are there.
        registry_with_images((TAG,)) as registry,
    ):
        root = Path(tmp)
        for n in batch_counts:
            # A fresh Azurite for each size: its point reads and writes of job rows and its
            # queries scan every entity of the table (Azure's reach one partition or a key
            # range), so the rows an earlier size left would slow the later ones.
            with azurite(
                "bench-scale-azurite",
                in_memory=azurite_in_memory,
                silent=True,
                fast_lookups=azurite_fast_lookups,
            ) as store:
                conn = store.connection_string()
                env = {
                    **emulator_env(arm, root, registry.server),
                    "AZURE_STORAGE_CONNECTION_STRING": conn,
                    "DEPLOYER_LOCATION": "westeurope",
                }
                prepare(root, conn)
                figures.append(
                    one_run(n, root, env, dict(store.ports), janitor_interval, worker_threads)
                )
            # The sizes' figures as each ends: a stopped 10,000-batch run keeps the others.
            f = figures[-1]
            loads.append(_load())
            print(
                f"... {n} batches done: submit {f.submit_s:.1f} s, merge {f.merge_s:.1f} s, "
                f"status {f.status_s:.2f} s, {f.per_batch:.2f} requests per batch "
                f"(machine load {loads[-1]})",
                file=sys.stderr,
                flush=True,
            )
    report(figures, loads, azurite_in_memory, azurite_fast_lookups)
    if any(f.problems for f in figures):
        sys.exit("merged output wrong")


if __name__ == "__main__":
    run(main, smoke={"sizes": "10,20", "janitor_interval": 1.0})
