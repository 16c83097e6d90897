"""``deployer db fetch WORKLOAD NAME``: NCBI's database into the deployment's storage, by a
one-off ACI group; ``--plan`` shows the group and its cost first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from blast_client.cli.db import fetch_text
from blast_client.cli.progress import TransferProgress

from deployer.cli import options as o
from deployer.cli import plan as plan_cli
from deployer.cli.output import bill_table, emit, err, guarded, out
from deployer.db import fetch as api
from deployer.db.follow import LogProgress
from deployer.plan.dbfetch import FetchArgs


class Display:
    """The fetch as it goes, on stderr: a line per phase, then the transfer as a bar on a
    terminal or a plain line every few seconds otherwise (the same display as
    ``blast-jobs db fetch``).
    """

    def __init__(self) -> None:
        self.phase = ""
        self.bar = TransferProgress(stream=sys.stderr)
        self.drawing = False
        self.shown: LogProgress | None = None

    def __call__(self, event: api.Event) -> None:
        """Show one event."""
        if event.phase != self.phase:
            self.end_bar()
            err.print(f"[{event.elapsed:6.1f}s] {event.group}: {event.phase}", markup=False)
            self.phase = event.phase
        p = event.progress
        if p is not None and p != self.shown:
            self.bar.update(p.done, p.total, p.volumes_done, p.volumes, p.rate, p.eta)
            self.drawing, self.shown = True, p

    def end_bar(self) -> None:
        """End the bar's line before anything else is printed."""
        if self.drawing:
            self.bar.close()
            self.drawing = False


def show(outcome: api.FetchOutcome) -> None:
    """Print what the fetch did and its bill."""
    out.print(fetch_text(outcome.result), markup=False)
    out.print(
        f"group {outcome.group} ran in {outcome.location} and is deleted; "
        f"wall time {outcome.seconds:.0f} s",
        markup=False,
    )
    out.print(bill_table(outcome.bill))


@guarded("db fetch")
def command(
    file: o.FileArg,
    name: Annotated[str, typer.Argument(help="NCBI's database name, e.g. swissprot.")],
    source: Annotated[
        str | None,
        typer.Option("--source", help="ncbi (default), gcp, aws, or a mirror's URL."),
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD: a dated snapshot (gcp, aws).")
    ] = None,
    as_name: Annotated[
        str | None, typer.Option("--as", help="The name in storage (default: NAME).")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option("--plan", help="Show the group and its cost per hour; create nothing."),
    ] = False,
    prices: Annotated[
        Path | None,
        typer.Option("--prices", help="Price file overriding deployer/data/aci-prices.json."),
    ] = None,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    location: o.Location = None,
    registry: o.Registry = None,
    image_tag: o.ImageTag = None,
) -> None:
    """Fetch NCBI's preformatted database NAME into the deployment's storage, verified, by a
    one-off ACI group in the deployment's region: the data never crosses this machine. Shows
    its progress, deletes the group when it ends (also on failure or Ctrl-C) and prints its
    bill."""
    overrides = o.overrides(subscription, resource_group, location, registry, image_tag)
    request = api.FetchRequest(file, FetchArgs(name, source, date, as_name))
    if plan:
        emit("db fetch", api.plan(request, overrides, prices_file=prices), output, plan_cli.show)
        return
    display = Display()
    try:
        outcome = api.fetch(request, overrides, on_event=display)
    finally:
        display.end_bar()
    emit("db fetch", outcome, output, show)
