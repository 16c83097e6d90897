"""What ``images/build.sh`` and the Makefile ask of the image catalogue, from the shell.

    python -m deployer.imagebuild order                  # every image, in build order
    python -m deployer.imagebuild folder NAME            # its folder under images/
    python -m deployer.imagebuild docker-args NAME ...   # --tag, --target, --build-arg words
    python -m deployer.imagebuild context NAME           # its context as tar.gz on stdout
    python -m deployer.imagebuild hash-tag NAME          # ctx-<build hash>, deployer build's tag
    python -m deployer.imagebuild tls-hint LOG           # what to set, if LOG shows a CA failure

The context is packed as ``deployer build`` packs it (``.dockerignore`` honoured, the
extra CA from ``EXTRA_CA_CERTS`` added), so both build paths send the same files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from deployer.errors import DeployerError, InputError
from deployer.imagebuild import catalogue, context, images, runner, tls

PROG = "python -m deployer.imagebuild"
app = typer.Typer(
    help="What images/build.sh and the Makefile ask of the image catalogue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
Name = Annotated[str, typer.Argument(metavar="NAME", help="An image of images/images.toml.")]


@app.callback()
def _app(
    ctx: typer.Context,
    images_dir: Annotated[
        Path | None, typer.Option("--images-dir", help="Default: found above the cwd.")
    ] = None,
) -> None:
    ctx.obj = images_dir  # given before the command; the commands read it


def _catalogue(ctx: typer.Context) -> tuple[Path, catalogue.Catalogue]:
    images_dir = ctx.obj or images.find_images_dir(Path.cwd())
    return images_dir, catalogue.load(images_dir)


def _image(ctx: typer.Context, name: str) -> tuple[Path, catalogue.ImageSpec, Path]:
    """The images folder, the image's entry and its folder (which must hold a Dockerfile)."""
    images_dir, cat = _catalogue(ctx)
    spec = cat.get(name)
    root = images_dir / spec.folder
    if not (root / "Dockerfile").is_file():
        raise InputError(f"image {spec.name} has no Dockerfile at {root / 'Dockerfile'}")
    return images_dir, spec, root


def _guarded(action: Callable[[], None]) -> None:
    """Run ``action``; a DeployerError becomes one line on stderr and its exit code."""
    try:
        action()
    except DeployerError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        print(f"{PROG}: {exc.message}{hint}", file=sys.stderr)
        raise typer.Exit(int(exc.exit_code)) from None


@app.command("order")
def order(ctx: typer.Context) -> None:
    """Every image, in build order."""
    _guarded(lambda: print("\n".join(s.name for s in _catalogue(ctx)[1].images)))


@app.command("folder")
def folder(ctx: typer.Context, name: Name) -> None:
    """One image's folder under images/."""
    _guarded(lambda: print(_catalogue(ctx)[1].get(name).folder))


@app.command("docker-args")
def docker_args(
    ctx: typer.Context,
    name: Name,
    prefix: Annotated[str, typer.Option(help="Repository prefix.")] = "aci-research",
    tag: Annotated[str, typer.Option(help="Image tag.")] = "latest",
    revision: Annotated[str, typer.Option(help="Commit of the image's folder.")] = "unknown",
    debian: Annotated[str, typer.Option(help="The root base image.")] = "debian:trixie-slim",
) -> None:
    """`docker build` arguments of one image, one word a line."""

    def words() -> None:
        images_dir, spec, _ = _image(ctx, name)
        out = ["--tag", f"{prefix}/{spec.name}:{tag}"]
        if spec.target:
            out += ["--target", spec.target]
        version = images.project_version(images_dir)
        values = catalogue.build_args(spec, prefix, tag, version, revision, debian)
        for key, value in values.items():
            out += ["--build-arg", f"{key}={value}"]
        print("\n".join(out))

    _guarded(words)


@app.command("context")
def context_(ctx: typer.Context, name: Name) -> None:
    """One image's context as tar.gz on stdout."""

    def pack() -> None:
        images_dir, spec, root = _image(ctx, name)
        ca_path = os.environ.get("EXTRA_CA_CERTS")
        ca = catalogue.read_ca_bundle(ca_path) if ca_path else None
        extra = catalogue.ca_files(root, ca)
        extra.update(catalogue.source_files(spec, images_dir.parent))
        sys.stdout.buffer.write(context.pack(root, extra=extra).data)

    _guarded(pack)


@app.command("hash-tag")
def hash_tag(ctx: typer.Context, name: Name) -> None:
    """The tag `deployer build` gives this context (``ctx-<build hash>``): a local build
    tagged with it is what the emulator's fake ACR pushes for a run of the same context."""

    def show() -> None:
        images_dir, spec, _ = _image(ctx, name)
        print(images.hash_tag(runner.build_hashes(images_dir, spec.name)[spec.name]))

    _guarded(show)


@app.command("tls-hint")
def tls_hint(
    log: Annotated[
        Path,
        typer.Argument(metavar="LOG", help="A build log.", exists=True, dir_okay=False),
    ],
) -> None:
    """Print what to set if a build log shows a CA failure (exit 1 if it does not)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    line = tls.hint(text.splitlines(), os.environ.get("EXTRA_CA_CERTS"))
    if not line:
        raise typer.Exit(1)
    print(line)


def main(argv: Sequence[str] | None = None) -> None:
    """What ``images/build.sh`` and the Makefile ask; exits 2 with one line on bad input.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    app(args=None if argv is None else list(argv), prog_name=PROG)


if __name__ == "__main__":
    main()
