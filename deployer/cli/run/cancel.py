"""``deployer run cancel RUN_ID``: delete the run's groups, cancel its unfinished batches."""

from __future__ import annotations

from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out
from deployer.cli.run.status import RunId
from deployer.run import api
from deployer.run.state import Run


def show(run: Run) -> None:
    """Print the outcome."""
    out.print(
        f"run {run.run_id}: {run.status} ({run.reason}); finished results are kept", markup=False
    )


@guarded("run cancel")
def command(
    run_id: RunId,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Delete a run's groups and mark its unfinished batches cancelled."""
    emit("run cancel", api.cancel(run_id, o.overrides(subscription, resource_group)), output, show)
