"""``deployer up FILE``: create or update every group concurrently, wait until ready."""

from __future__ import annotations

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out, with_progress


def show(result: api.UpResult) -> None:
    """Print what ``up`` did and the endpoints: on a terminal the front doors with their
    access token, ready to open; in a log or a pipe without it (``deployer url`` prints it)."""
    counts = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items()))
    out.print(f"{result.deployment}: {len(result.groups)} groups ready ({counts})", markup=False)
    links = api.access_links(result.deployment, result.endpoints)
    for name, url in result.endpoints.items():
        shown = links.get(name, url) if out.is_terminal else url
        out.print(f"  {name}: {shown}", markup=False, soft_wrap=True)
    if links and not out.is_terminal:
        out.print("  with the access token: `deployer url FILE`", markup=False)


@guarded("up")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    location: o.Location = None,
    registry: o.Registry = None,
    image_tag: o.ImageTag = None,
) -> None:
    """Create or update the workload's container groups and wait until every container is ready."""
    overrides = o.overrides(subscription, resource_group, location, registry, image_tag)
    result = with_progress(
        f"up {file}", output, lambda progress: api.up(file, overrides, progress=progress)
    )
    emit("up", result, output, show)
