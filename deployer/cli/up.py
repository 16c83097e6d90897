"""``deployer up FILE``: create or update every group concurrently, wait until ready."""

from __future__ import annotations

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out, with_progress


def show(result: api.UpResult) -> None:
    """Print what ``up`` did and the endpoints."""
    counts = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items()))
    out.print(f"{result.deployment}: {len(result.groups)} groups ready ({counts})", markup=False)
    for name, url in result.endpoints.items():
        out.print(f"  {name}: {url}", markup=False)
    if "notebook" in result.endpoints:
        out.print(
            f"  notebook token: stored in {result.secrets_file} (key notebook_token)", markup=False
        )


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
