"""Monte Carlo wall time on 1 engine versus 2 (target: at least 1.7x speed-up on 2 cores).

Runs the Monte Carlo notebook's own pricing task (``price_cell``, read from
``images/notebook/notebooks/monte-carlo-options.ipynb``) over its default grid of 6 strikes x
5 volatilities x 260 days, from a client in the notebook container, through a load-balanced
view restricted to the first engine, then to the first two. Each figure is the median of
``--repeat`` runs. The speed-up shows only when a task outlasts its dispatch, so the paths per
cell are sized from a task timed on an engine first: each task simulates for
``--task-seconds`` (default 0.1 s and 0.5 s, one row each). Run from the repository root,
with the images built:

    .venv/bin/python bench/bench_cluster_montecarlo.py [--project aci-research] [--repeat 3]
        [--task-seconds 0.1 --task-seconds 0.5] [--paths N (fixed instead of sized; repeat
        for more)] [--smoke]

Without ``--project`` it starts (and removes) a private compose stack with 2 engine
containers of 1 CPU each.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from testbed.bench import run
from testbed.cluster_stack import cluster_stack, run_python, service
from testbed.engine import StackError

NOTEBOOK = (
    Path(__file__).resolve().parents[1]
    / "images"
    / "notebook"
    / "notebooks"
    / "monte-carlo-options.ipynb"
)

CLIENT = """
import json, statistics, time
import ipyparallel as ipp
import numpy as np

{price_cell}

rc = ipp.Client()
rc.wait_for_engines(2, timeout=120)
ids = rc.ids[:2]
grid = [(K, s) for K in np.linspace(90, 110, 6) for s in np.linspace(0.1, 0.4, 5)]

def run(targets, paths):
    view = rc.load_balanced_view(targets=targets)
    view.retries = 3
    started = time.perf_counter()
    view.map_sync(price_cell, [100.0] * len(grid), [K for K, _ in grid], [s for _, s in grid],
                  [0.05] * len(grid), [260] * len(grid), [paths] * len(grid),
                  [(2026, i) for i in range(len(grid))])
    return time.perf_counter() - started

run(ids, 2000)  # warm up: imports and first allocations on both engines
# Seconds per path of one task on one engine (as the notebook's own timing says), to size the
# tasks when no paths were given.
probe = 20_000
per_path = rc[ids[0]].apply_sync(
    price_cell, 100.0, 100.0, 0.25, 0.05, 260, probe, (2026, 99))["seconds"] / probe
sizes = {paths} or [max(1000, int(round(s / per_path, -3))) for s in {task_seconds}]
rows = []
for paths in sizes:
    for n in (1, 2):
        times = [run(ids[:n], paths) for _ in range({repeat})]
        rows.append({{"paths": paths, "engines": n, "seconds": statistics.median(times)}})
print(json.dumps(rows))
"""


def price_cell_source() -> str:
    """The notebook's code cell that defines ``price_cell``."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith("def price_cell("):
            return source
    raise StackError(f"{NOTEBOOK.name} has no cell defining price_cell")


@dataclass(frozen=True)
class Args:
    """The bench's options."""

    project: str | None
    repeat: int
    task_seconds: list[float]
    paths: list[int] | None


def main(
    *,
    project: Annotated[
        str | None, typer.Option(help="use this running compose stack (make up: aci-research)")
    ] = None,
    repeat: Annotated[int, typer.Option(help="runs per configuration (median)")] = 3,
    task_seconds: Annotated[
        list[float],
        typer.Option(
            default_factory=lambda: [0.1, 0.5],
            show_default=False,  # the help says it
            help="size the paths per cell so one task simulates this long (default 0.1 0.5)",
        ),
    ],
    paths: Annotated[list[int] | None, typer.Option(help="paths per grid cell (fixed)")] = None,
) -> None:
    """Parse the options, run the benchmark, print the figures."""
    args = Args(project=project, repeat=repeat, task_seconds=task_seconds, paths=paths)
    try:
        code = CLIENT.format(
            price_cell=price_cell_source(),
            paths=list(args.paths or []),
            task_seconds=list(args.task_seconds),
            repeat=args.repeat,
        )
        with cluster_stack(args.project) as project:
            output = run_python(service(project, "notebook"), code)
    except StackError as exc:
        sys.exit(str(exc))
    rows = json.loads(output.strip().splitlines()[-1])
    print("Monte Carlo grid: 30 tasks (6 strikes x 5 volatilities), 260 days")
    print(f"{'paths/cell':>10} {'1 engine (s)':>13} {'2 engines (s)':>14} {'speed-up':>9}")
    for paths in sorted({r["paths"] for r in rows}):
        one, two = (
            next(r["seconds"] for r in rows if r["paths"] == paths and r["engines"] == n)
            for n in (1, 2)
        )
        print(f"{paths:>10,} {one:>13.2f} {two:>14.2f} {one / two:>8.2f}x")
    print("target: at least 1.7x on 2 cores")


if __name__ == "__main__":
    run(main, smoke={"repeat": 1, "paths": [500]})
