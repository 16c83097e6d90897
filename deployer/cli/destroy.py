"""``deployer destroy FILE``: delete what ``deployer init`` made, and only that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deployer.cli import options as o
from deployer.cli.init import YesOpt, ask
from deployer.cli.output import ProgressPrinter, emit, guarded, out

if TYPE_CHECKING:
    # Imported where used: the bootstrap's SDKs would slow every other command's start.
    from deployer.bootstrap import DestroyPreview, DestroyResult


def show_preview(preview: DestroyPreview) -> None:
    """Print what goes and what stays."""
    out.print(f"{preview.deployment}: resource group {preview.resource_group}", markup=False)
    for line in preview.deletes:
        out.print(f"  delete {line}", markup=False)
    for line in preview.kept:
        out.print(f"  keep {line}", markup=False)


def show(result: DestroyResult) -> None:
    """Print what was deleted and what stays."""
    if not result.deleted:
        out.print(f"{result.deployment}: nothing of deployer init's to delete", markup=False)
    else:
        out.print(f"{result.deployment}: deleted {len(result.deleted)}", markup=False)
    for line in result.deleted:
        out.print(f"  {line}", markup=False)
    for line in result.kept:
        out.print(f"  kept {line}", markup=False)


@guarded("destroy")
def command(
    file: o.FileArg,
    output: o.OutputOpt = None,
    yes: YesOpt = False,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep the storage account (databases, results).")
    ] = False,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Delete what `deployer init` created for FILE (it tags all of it), and nothing else.

    A resource group init did not create is kept, and so is one that still holds something
    init did not make (container groups: `deployer down` first). Asks first (--yes skips).
    """
    from deployer.bootstrap import destroy as run_destroy

    overrides = o.overrides(subscription, resource_group)
    text = output != o.Output.json

    def confirm(preview: DestroyPreview) -> bool:
        if text:
            show_preview(preview)
        return ask("Delete these?", yes)

    with ProgressPrinter(f"destroy {file}", live=False) as progress:
        result = run_destroy(file, overrides, confirm=confirm, keep_data=keep_data, report=progress)
    emit("destroy", result, output, show)
