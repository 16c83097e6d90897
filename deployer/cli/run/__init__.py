"""``deployer run``: a BLAST search from a FASTA file to merged results, on ACI.

``deployer run WORKLOAD QUERIES --db NAME`` starts a run (the ``start`` command is implied);
``deployer run status|results|cancel|list`` follow it. One module per command.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from deployer.cli.run import cancel, listing, results, start, status


class _DefaultStart(TyperGroup):
    """Dispatch ``run WORKLOAD QUERIES ...`` to ``run start``; options may come first."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_value = {
            opt
            for cmd in self.commands.values()
            for p in cmd.params
            if getattr(p, "opts", None)
            and not getattr(p, "is_flag", False)
            and p.param_type_name == "option"
            for opt in p.opts
        }
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("--help", "-h") and i == 0:
                break
            if arg.startswith("-"):
                i += 2 if arg in takes_value else 1
                continue
            if arg not in self.commands:
                args = ["start", *args]
            elif i:
                args = [arg, *args[:i], *args[i + 1 :]]
            break
        return list(super().parse_args(ctx, args))


app = typer.Typer(
    cls=_DefaultStart,
    help="Run a BLAST search to completion on ACI: `deployer run WORKLOAD QUERIES --db NAME`.",
    no_args_is_help=True,
)
app.command("start")(start.command)
app.command("status")(status.command)
app.command("results")(results.command)
app.command("cancel")(cancel.command)
app.command("list")(listing.command)
