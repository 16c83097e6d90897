"""``deployer run results RUN_ID --out DIR``: merged results, the shards' archives and
the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployer.cli import options as o
from deployer.cli.output import emit, guarded
from deployer.cli.run.show import summary
from deployer.cli.run.status import RunId
from deployer.run import api


@guarded("run results")
def command(
    run_id: RunId,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Results directory (default ./blast-run-<id>/).")
    ] = None,
    output: o.OutputOpt = None,
) -> None:
    """Download and merge a finished run's results (from any machine with the storage
    credentials)."""
    emit("run results", api.results(run_id, out_dir), output, summary)
