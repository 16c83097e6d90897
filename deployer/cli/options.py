"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# One --output for every command line of the project; the command modules read it here.
from blast_client.cli.output import Output as Output
from blast_client.cli.output import OutputOpt as OutputOpt

from deployer.settings import Overrides

FileArg = Annotated[
    Path, typer.Argument(help="Workload file (YAML); see `deployer schema` and examples/.")
]
Subscription = Annotated[
    str | None,
    typer.Option(
        "--subscription",
        help="Subscription id (else deployment.subscription, else AZURE_SUBSCRIPTION_ID); "
        "`az account list -o table`.",
    ),
]
ResourceGroup = Annotated[
    str | None,
    typer.Option(
        "--resource-group",
        "-g",
        help="Resource group (else deployment.resource_group, else DEPLOYER_RESOURCE_GROUP).",
    ),
]
Location = Annotated[
    str | None,
    typer.Option(
        "--location", "-l", help="Azure region (else deployment.location, else DEPLOYER_LOCATION)."
    ),
]
Registry = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="Registry login server (else deployment.registry, else DEPLOYER_REGISTRY).",
    ),
]
ImageTag = Annotated[
    str | None,
    typer.Option(
        "--image-tag",
        help="Image tag (else deployment.image_tag, else DEPLOYER_IMAGE_TAG, else latest).",
    ),
]


def overrides(
    subscription: str | None = None,
    resource_group: str | None = None,
    location: str | None = None,
    registry: str | None = None,
    image_tag: str | None = None,
) -> Overrides:
    """Collect command-line settings."""
    return Overrides(subscription, resource_group, location, registry, image_tag)
