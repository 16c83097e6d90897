"""``deployer init FILE``: create what the deployment needs in Azure, after showing the plan."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployer.cli import options as o
from deployer.cli.output import ProgressPrinter, emit, guarded, out
from deployer.errors import InputError

if TYPE_CHECKING:
    # Imported where used: the bootstrap's SDKs would slow every other command's start.
    from deployer.bootstrap import InitPlan, InitResult

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking (scripts, CI).")]


def ask(question: str, yes: bool) -> bool:
    """Ask a yes/no question on the terminal; ``--yes`` answers it.

    Raises:
        InputError: When there is no terminal to ask on and ``--yes`` was not given.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InputError(
            "this command asks before it changes anything, and there is no terminal to ask on",
            hint="pass --yes to go ahead without asking",
            code="ConfirmationNeeded",
        )
    return typer.confirm(question, default=False)


def show_plan(plan: InitPlan) -> None:
    """Print what init will do, where, and what it costs a month while nothing runs."""
    out.print(
        f"{plan.deployment}: subscription {plan.subscription}, resource group "
        f"{plan.resource_group}, {plan.location}",
        markup=False,
    )
    table = Table(title="deployer init will", title_justify="left", box=None)
    table.add_column("step")
    for step in plan.steps:
        table.add_row(step)
    for name, value in plan.writes.items():
        table.add_row(f"write deployment.{name}: {value} into {plan.file}")
    out.print(table)
    costs = Table(title="fixed monthly cost (nothing running)", title_justify="left", box=None)
    for col in ("what", "per month", "how"):
        costs.add_column(col)
    for cost in plan.costs:
        amount = "-" if cost.per_month is None else f"{cost.per_month:.2f} {plan.currency}"
        costs.add_row(cost.what, amount, cost.note)
    costs.add_row("total", f"{plan.monthly:.2f} {plan.currency}", "plus storage by use")
    out.print(costs)
    out.print(f"prices: {plan.prices}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)


def show(result: InitResult) -> None:
    """Print what init did, the names it wrote, and the lines an administrator must run."""
    if not result.done and not result.written:
        out.print(f"{result.deployment}: everything exists already; nothing to do", markup=False)
    else:
        out.print(f"{result.deployment}: {len(result.done)} steps done", markup=False)
    for name, value in result.written.items():
        out.print(f"  wrote deployment.{name}: {value}", markup=False)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    if result.pending_roles:
        out.print("An administrator (Owner or User Access Administrator) must run:", markup=False)
        for line in result.pending_roles:
            out.print(line, markup=False, soft_wrap=True)
    else:
        out.print(f"next: `deployer build {result.file}`, then `deployer up` or `deployer run`")


@guarded("init")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    yes: YesOpt = False,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    location: o.Location = None,
    registry: o.Registry = None,
) -> None:
    """Create the resource group, storage, registry, identity and roles the workload needs.

    Shows the plan and its fixed monthly cost, asks (--yes skips), then creates only what is
    missing and writes the names into FILE (comments kept). Run it again at any time: it
    resumes after an interruption and changes nothing once all exists.
    """
    from deployer.bootstrap import InitIncomplete
    from deployer.bootstrap import init as run_init

    overrides = o.overrides(subscription, resource_group, location, registry)
    text = output != o.Output.json

    def confirm(plan: InitPlan) -> bool:
        if text:
            show_plan(plan)
        return ask("Create these?", yes)

    with ProgressPrinter(f"init {file}", live=False) as progress:
        try:
            result = run_init(file, overrides, confirm=confirm, report=progress)
        except InitIncomplete as exc:
            if text:
                show(exc.result)
            else:
                exc.hint = "an administrator runs: " + " ; ".join(exc.result.pending_roles)
            raise
    emit("init", result, output, show)
