"""``deployer run status RUN_ID``: batches by state, workers, elapsed time, spend so far."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out
from deployer.cli.run.show import progress_table
from deployer.run import api

RunId = Annotated[str, typer.Argument(help="Run id (`deployer run list`).")]


def show(p: api.Progress) -> None:
    """Print the run's state."""
    out.print(progress_table(p))
    if p.run.reason:
        out.print(f"reason: {p.run.reason}", markup=False)
    for name in p.groups:
        out.print(f"  group {name}", markup=False)
    if p.decisions:
        out.print("latest scaling decisions:", markup=False)
    for row in p.decisions:
        when = time.strftime("%H:%M:%S", time.gmtime(float(row["at"])))
        out.print(f"  {when} {row['summary']}", markup=False)


@guarded("run status")
def command(
    run_id: RunId,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Show a run's batches, workers, elapsed time and spend so far."""
    result = api.status(run_id, o.overrides(subscription, resource_group))
    emit("run status", result, output, show)
