"""``deployer build FILE``: build every image in ACR (or ``--local``) and push it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from deployer import defaults
from deployer.cli import options as o
from deployer.cli.output import ProgressPrinter, emit, err, guarded, out

if TYPE_CHECKING:
    # Imported where used: its SDKs would slow every other command's start.
    from deployer import imagebuild

STYLE = {"succeeded": "green", "skipped": "dim", "failed": "red"}


class ImageProgress(ProgressPrinter):
    """Per-image status (queued, running, succeeded, failed, skipped), live on a TTY."""

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=None)
        table.add_column("image")
        table.add_column("status")
        for name, status in self.states.items():
            table.add_row(name, f"[{STYLE.get(status, 'yellow')}]{escape(status)}[/]")
        return table

    def line(self, image: str, text: str) -> None:
        """Print one log line, prefixed with its image."""
        err.print(f"{image:>12} | {text}", markup=False, highlight=False)


def show(result: imagebuild.BuildResult) -> None:
    """Print the summary: one row per image with its reference."""
    table = Table(title=f"Build {result.tag} in {result.registry} ({result.mode})")
    for col in ("image", "status", "reference", "digest"):
        table.add_column(col)
    for i in result.images:
        style = STYLE.get(i.status, "")
        table.add_row(i.name, f"[{style}]{i.status}[/]", i.ref, (i.digest or "")[:19])
    out.print(table)
    out.print(f"Manifest for `deployer up`: {result.manifest_file}", markup=False)


def _failure(result: imagebuild.BuildResult) -> imagebuild.BuildError:
    from deployer import imagebuild

    refused = [i for i in result.failed if i.code]
    if refused and len({(i.code, i.hint) for i in refused}) == 1 and refused[0].hint:
        # One refusal for every build (no sign-in, ACR Tasks not allowed...): say it once.
        first = refused[0]
        return imagebuild.BuildError(
            f"{len(result.failed)} of {len(result.images)} images failed: {first.reason}",
            hint=first.hint,
            code=first.code,
        )
    parts = []
    for i in result.failed:
        parts.append(f"{i.name}: {i.reason}" + (f" (hint: {i.hint})" if i.hint else ""))
        parts.extend(f"    {line}" for line in i.tail)
    names = ", ".join(i.name for i in result.failed)
    return imagebuild.BuildError(
        f"{len(result.failed)} of {len(result.images)} images failed ({names}):\n"
        + "\n".join(parts),
        hint="fix the failing step shown above and run `deployer build` again; images that "
        "succeeded are skipped next time",
        code="BuildFailed",
        data=result,  # the envelope's data: what did build, and the manifest
    )


@guarded("build")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="Build with the local Docker engine and push, instead of ACR runs."
        ),
    ] = False,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            "-i",
            help="Build only this image (repeatable; parents are added). "
            "Default: every service image.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the registry has the context hash.")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Build without the layer cache.")
    ] = False,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, max=16, help="Builds at once.")
    ] = defaults.DEFAULT_BUILD_PARALLEL,
    timeout: Annotated[
        int, typer.Option("--timeout", help="Seconds per build (ACR: 300 to 28800).")
    ] = 3600,
    registry_name: Annotated[
        str | None,
        typer.Option(
            "--registry-name",
            help="ACR resource name (`az acr list --query [].name -o tsv`); default: the "
            "login server's first label.",
        ),
    ] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option("--images-dir", help="The images/ folder; default: found above the cwd."),
    ] = None,
    extra_ca_certs: Annotated[
        str | None,
        typer.Option(
            "--extra-ca-certs",
            help="PEM bundle trusted by apt/pip/npm in builder stages of --local builds "
            "(else EXTRA_CA_CERTS).",
        ),
    ] = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
    registry: o.Registry = None,
) -> None:
    """Build the stack's images (ACR runs, or --local) in parallel, skip unchanged ones, push."""
    from deployer import imagebuild

    options = imagebuild.BuildOptions(
        local=local,
        images=list(image or []),
        force=force,
        no_cache=no_cache,
        parallel=parallel,
        timeout_s=timeout,
        registry_name=registry_name,
        images_dir=images_dir,
        extra_ca_certs=extra_ca_certs or os.environ.get("EXTRA_CA_CERTS"),
    )
    overrides = o.overrides(subscription, resource_group, registry=registry)
    live = False if output == o.Output.json else None
    progress = ImageProgress(f"build {file}", live=live)
    with progress:
        result = imagebuild.build(
            file, overrides, options, on_status=progress, on_line=progress.line
        )
    if result.failed:
        if output == o.Output.text:
            show(result)
        raise _failure(result)  # json: the envelope with the result as its partial data
    emit("build", result, output, show)
