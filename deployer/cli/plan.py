"""``deployer plan FILE``: groups, sizes, ports, IPs, changes and cost per hour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out
from deployer.plan.databases import describe
from deployer.plan.tuning import RunQuery
from deployer.run.api import read_queries

ACTION_STYLE = {
    "create": "green",
    "update": "yellow",
    "recreate": "bold red",
    "unchanged": "dim",
    "delete": "red",
}


def show(result: api.PlanResult) -> None:
    """Print a plan as a table."""
    table = Table(title=f"Plan for {result.deployment} in {result.location}", title_justify="left")
    for col in (
        "group",
        "action",
        "containers",
        "vCPU",
        "GB",
        "ports",
        "IP",
        "priority",
        f"{result.currency}/h regular",
        f"{result.currency}/h spot",
    ):
        table.add_column(
            col, justify="left" if col in ("group", "action", "containers") else "right"
        )
    for g in result.groups:
        containers = (
            ", ".join(g.containers)
            if len(g.containers) <= 3
            else (f"{g.containers[0]} .. {g.containers[-1]} ({len(g.containers)})")
        )
        style = ACTION_STYLE.get(g.action, "")
        table.add_row(
            g.name,
            f"[{style}]{g.action}[/]",
            containers,
            g.vcpu,
            g.memory_gb,
            ",".join(map(str, g.ports)) or "-",
            g.ip,
            g.priority,
            _price(g.cost_per_hour_regular, g.priority == "Regular"),
            "-"
            if g.cost_per_hour_spot is None
            else _price(g.cost_per_hour_spot, g.priority == "Spot"),
        )
    for name in result.deletes:
        table.add_row(name, "[red]delete[/]", "", "", "", "", "", "", "", "")
    out.print(table)
    for g in result.groups:
        for reason in g.reasons:
            out.print(f"  {g.name}: {reason}", markup=False)
    counts = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items()))
    out.print(
        f"Total: {len(result.groups)} groups, {result.vcpu} vCPU, {result.memory_gb} GB, "
        f"about {result.cost_per_hour:.2f} {result.currency} per hour ({counts})",
        markup=False,
    )
    if result.cost_per_hour_spot != result.cost_per_hour_regular:
        out.print(
            f"With every worker group regular: {result.cost_per_hour_regular:.2f}; on Spot: "
            f"{result.cost_per_hour_spot:.2f} {result.currency} per hour",
            markup=False,
        )
    read = f", read {result.price_read_on}" if result.price_read_on else ""
    out.print(f"Prices: {result.price_source}{read}", markup=False)
    for image in result.images:
        where = {True: "in the registry", False: "MISSING from the registry", None: "not checked"}
        out.print(
            f"Image {image.ref} ({where[image.found]}): {', '.join(image.groups)}", markup=False
        )
    for db in result.databases:
        out.print(describe(db), markup=False)
    for line in result.searches:
        out.print(line, markup=False)
    if result.tuning:
        out.print(result.tuning, markup=False)
    for name, url in result.endpoints.items():
        out.print(f"Endpoint {name}: {url}", markup=False)
    for note in result.notes:
        out.print(f"Note: {note}", markup=False)
    for protection in result.protections:
        out.print(f"ACI provides: {protection}", markup=False)


def _price(value: float, chosen: bool) -> str:
    """A cost per hour; bold at the group's own priority."""
    return f"[bold]{value:.4f}[/]" if chosen else f"[dim]{value:.4f}[/]"


@guarded("plan")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not compare with what exists in Azure.")
    ] = False,
    prices: Annotated[
        Path | None,
        typer.Option("--prices", help="Price file overriding deployer/data/aci-prices.json."),
    ] = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    location: o.Location = None,
    registry: o.Registry = None,
    image_tag: o.ImageTag = None,
    queries: Annotated[
        Path | None,
        typer.Option(
            "--queries",
            help="Query FASTA of a run: show the workers, threads and batch length "
            "`deployer run` chooses for it, and why.",
        ),
    ] = None,
    program: Annotated[
        str, typer.Option("--program", help="With --queries: the BLAST program.")
    ] = "blastn",
    db: Annotated[
        str | None,
        typer.Option("--db", help="With --queries: the database (default: the first)."),
    ] = None,
    batch_len: Annotated[
        int | None, typer.Option("--batch-len", help="With --queries: residues per batch.")
    ] = None,
) -> None:
    """Show the container groups, their sizes and cost per hour, and what `up` would change."""
    run_query = (
        RunQuery(read_queries(queries), program, db, batch_len) if queries is not None else None
    )
    result = api.plan(
        file,
        o.overrides(subscription, resource_group, location, registry, image_tag),
        offline=offline,
        prices_file=prices,
        run_query=run_query,
    )
    emit("plan", result, output, show)
