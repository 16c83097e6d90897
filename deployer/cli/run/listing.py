"""``deployer run list``: the runs recorded in the storage account, newest first."""

from __future__ import annotations

import time

from rich.table import Table

from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out
from deployer.run import api
from deployer.run.state import Run


def show(result: api.RunList) -> None:
    """Print the runs table."""
    runs: list[Run] = result.runs
    table = Table(title="runs", title_justify="left")
    for col in ("run", "deployment", "status", "created (UTC)", "queries", "reason"):
        table.add_column(col)
    for r in runs:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created))
        table.add_row(r.run_id, r.deployment, r.status, created, str(r.queries), r.reason)
    out.print(table)


@guarded("run list")
def command(output: o.OutputOpt = None) -> None:
    """List the runs of the storage account (AZURE_STORAGE_CONNECTION_STRING or
    AZURE_STORAGE_ACCOUNT)."""
    emit("run list", api.list_runs(), output, show)
