"""``deployer status [FILE]``: every group of the deployment and its containers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out


def show(result: api.StatusResult) -> None:
    """Print the status table."""
    table = Table(title=f"Deployment {result.deployment}", title_justify="left")
    for col in ("group", "state", "container", "container state", "ready", "restarts", "address"):
        table.add_column(col)
    for g in result.groups:
        first = True
        for c in g.containers or [api.ContainerRow("-", None, False, 0, None)]:
            table.add_row(
                g.name if first else "",
                (g.state or "?") if first else "",
                c.name,
                c.state or "?",
                "[green]yes[/]" if c.ready else "[yellow]no[/]",
                str(c.restarts),
                (g.fqdn or g.ip or "") if first else "",
            )
            first = False
    out.print(table)
    if not result.groups:
        out.print("No container groups exist for this deployment.", markup=False)
    for name in result.missing:
        out.print(f"missing: {name} (run `deployer up`)", markup=False)


@guarded("status")
def command(
    file: Annotated[
        Path | None, typer.Argument(help="Workload file (names the deployment).")
    ] = None,
    output: o.OutputOpt = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Deployment name, when no FILE.")
    ] = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Show every container group of the deployment and the state of its containers."""
    result = api.status(file, o.overrides(subscription, resource_group), deployment=deployment)
    emit("status", result, output, show)
