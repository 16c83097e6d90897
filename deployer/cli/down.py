"""``deployer down FILE``: delete every group tagged with the deployment."""

from __future__ import annotations

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out, with_progress


def show(result: api.DownResult) -> None:
    """Print what was deleted."""
    if not result.deleted:
        out.print(f"{result.deployment}: nothing to delete", markup=False)
        return
    out.print(f"{result.deployment}: deleted {len(result.deleted)} groups", markup=False)
    for name in result.deleted:
        out.print(f"  {name}", markup=False)


@guarded("down")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Delete every container group of the deployment, concurrently, and wait until gone."""
    result = with_progress(
        f"down {file}",
        output,
        lambda progress: api.down(
            file, o.overrides(subscription, resource_group), progress=progress
        ),
    )
    emit("down", result, output, show)
