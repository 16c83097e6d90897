"""``deployer render compose FILE``: the same workload as a docker compose file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployer import render as renderer
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out

app = typer.Typer(help="Render the workload for local runs.", no_args_is_help=True)


@app.command("compose")
@guarded("render")
def compose(
    file: o.FileArg,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write here instead of stdout, e.g. compose/docker-compose.yml."
        ),
    ] = None,
    output: o.OutputOpt = None,
) -> None:
    """Write a docker compose file (v1.29 and v2) that runs the workload locally."""
    text = renderer.compose_file(file)
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
    if output == o.Output.json:
        emit(
            "render",
            {"file": str(out_file) if out_file else None, "compose": text},
            output,
            lambda _: None,
        )
    elif out_file is None:
        print(text, end="")
    else:
        out.print(f"wrote {out_file}", markup=False)
