"""``deployer logs GROUP [CONTAINER] [--follow]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded


@guarded("logs")
def command(
    group: Annotated[str, typer.Argument(help="Container group (`deployer status` lists them).")],
    container: Annotated[
        str | None, typer.Argument(help="Container; default: the group's first.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N lines.", min=1)
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Workload file, for subscription and resource group."),
    ] = None,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Print a container's log."""
    chunks = api.logs(
        group,
        container,
        o.overrides(subscription, resource_group),
        file=file,
        tail=tail,
        follow=follow and output == o.Output.text,
    )
    if output == o.Output.json:
        emit(
            "logs",
            {"group": group, "container": container, "log": "".join(chunks)},
            output,
            lambda _: None,
        )
        return
    try:
        for chunk in chunks:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
