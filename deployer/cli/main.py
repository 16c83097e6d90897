"""The ``deployer`` Typer app: registers one command per module."""

from __future__ import annotations

import logging

import typer
from blast_client.cli.output import remember_output

from deployer.cli import (
    build,
    db,
    destroy,
    down,
    init,
    local,
    logs,
    plan,
    render,
    run,
    scale,
    schema,
    status,
    up,
    url,
)
from deployer.cli import options as o

app = typer.Typer(
    name="deployer",
    help="Run the aci-research workloads (ipyparallel, BLAST) on Azure Container Instances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(output: o.OutputOpt = None) -> None:
    """Run the aci-research workloads (ipyparallel, BLAST) on Azure Container Instances."""
    remember_output(output)  # for each command whose own --output is not given
    # Azure's SDKs warn on stderr about what the deployer then reports in one line with its
    # fix: azure-identity each credential it tried, azure-mgmt-core a provider it could not
    # register ("Registration failed. Please register manually.").
    for sdk in ("azure.identity", "azure.mgmt.core"):
        logging.getLogger(sdk).setLevel(logging.ERROR)


app.command("init")(init.command)
app.command("plan")(plan.command)
app.command("build")(build.command)
app.command("up")(up.command)
app.command("url")(url.command)
app.command("status")(status.command)
app.command("logs")(logs.command)
app.command("scale")(scale.command)
app.command("down")(down.command)
app.command("destroy")(destroy.command)
app.command("schema")(schema.command)
app.add_typer(render.app, name="render")
app.add_typer(local.app, name="local")
app.add_typer(run.app, name="run")
app.add_typer(db.app, name="db")
