"""``deployer db``: the deployment's BLAST databases. One module per command."""

from __future__ import annotations

import typer

from deployer.cli.db import fetch

app = typer.Typer(
    help="The deployment's BLAST databases: `deployer db fetch WORKLOAD NAME` fetches one "
    "from NCBI inside ACI.",
    no_args_is_help=True,
)
app.command("fetch")(fetch.command)
