"""``deployer scale FILE WORKLOAD=N``: resize a workload in the file, then apply."""

from __future__ import annotations

from typing import Annotated

import typer

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out, with_progress
from deployer.cli.up import show as show_up


def show(result: api.ScaleResult) -> None:
    """Print what changed."""
    out.print(
        f"{result.file}: workloads.{result.workload}.{result.field} {result.old} -> {result.new}",
        markup=False,
    )
    show_up(result.up)


@guarded("scale")
def command(
    file: o.FileArg,
    target: Annotated[
        str, typer.Argument(help="WORKLOAD=N: ipyparallel=N engines or blast=N workers.")
    ],
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    location: o.Location = None,
    registry: o.Registry = None,
    image_tag: o.ImageTag = None,
) -> None:
    """Set the number of engines or workers in FILE (comments kept) and apply it like `up`."""
    overrides = o.overrides(subscription, resource_group, location, registry, image_tag)
    result = with_progress(
        f"scale {file} {target}",
        output,
        lambda progress: api.scale(file, target, overrides, progress=progress),
    )
    emit("scale", result, output, show)
