"""``deployer url FILE``: the notebook's and the BLAST page's URLs, with the access token."""

from __future__ import annotations

from deployer import api
from deployer.cli import options as o
from deployer.cli.output import emit, guarded, out


def show(result: api.UrlResult) -> None:
    """Print one ``name: URL`` line per front door, ready to open in a browser."""
    for name, url in result.urls.items():
        out.print(f"{name}: {url}", markup=False, soft_wrap=True)


@guarded("url")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    registry: o.Registry = None,
) -> None:
    """Print the notebook's and the BLAST page's URLs with the access token (the token is a
    secret: it opens the notebook to whoever has the URL)."""
    overrides = o.overrides(subscription, resource_group, registry=registry)
    emit("url", api.urls(file, overrides), output, show)
