"""What ``images/build.sh`` and the Makefile ask of the image catalogue, from the shell.

    python -m deployer.imagebuild order                  # every image, in build order
    python -m deployer.imagebuild folder NAME            # its folder under images/
    python -m deployer.imagebuild docker-args NAME ...   # --tag, --target, --build-arg words
    python -m deployer.imagebuild context NAME           # its context as tar.gz on stdout
    python -m deployer.imagebuild tls-hint LOG           # what to set, if LOG shows a CA failure

The context is packed as ``deployer build`` packs it (``.dockerignore`` honoured, the
extra CA from ``EXTRA_CA_CERTS`` added), so both build paths send the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from deployer.errors import DeployerError, InputError
from deployer.imagebuild import catalogue, context, images, tls


def main(argv: Sequence[str] | None = None) -> int:
    """What ``images/build.sh`` and the Makefile ask (exit 2 with one line on bad input).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(prog="python -m deployer.imagebuild")
    parser.add_argument("--images-dir", type=Path, help="default: found above the cwd")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("order", help="every image, in build order")
    p = sub.add_parser("folder", help="one image's folder under images/")
    p.add_argument("name")
    p = sub.add_parser("docker-args", help="`docker build` arguments of one image")
    p.add_argument("name")
    p.add_argument("--prefix", default="aci-research")
    p.add_argument("--tag", default="latest")
    p.add_argument("--revision", default="unknown")
    p.add_argument("--debian", default="debian:trixie-slim")
    p = sub.add_parser("context", help="one image's context as tar.gz on stdout")
    p.add_argument("name")
    p = sub.add_parser("tls-hint", help="print what to set if a build log shows a CA failure")
    p.add_argument("log", type=Path)
    args = parser.parse_args(argv)
    if args.command == "tls-hint":
        text = args.log.read_text(encoding="utf-8", errors="replace")
        line = tls.hint(text.splitlines(), os.environ.get("EXTRA_CA_CERTS"))
        if line:
            print(line)
        return 0 if line else 1
    try:
        images_dir = args.images_dir or images.find_images_dir(Path.cwd())
        cat = catalogue.load(images_dir)
        if args.command == "order":
            print("\n".join(s.name for s in cat.images))
            return 0
        spec = cat.get(args.name)
        if args.command == "folder":
            print(spec.folder)
            return 0
        root = images_dir / spec.folder
        if not (root / "Dockerfile").is_file():
            raise InputError(f"image {spec.name} has no Dockerfile at {root / 'Dockerfile'}")
        if args.command == "docker-args":
            words = ["--tag", f"{args.prefix}/{spec.name}:{args.tag}"]
            if spec.target:
                words += ["--target", spec.target]
            values = catalogue.build_args(
                spec,
                args.prefix,
                args.tag,
                images.project_version(images_dir),
                args.revision,
                args.debian,
            )
            for key, value in values.items():
                words += ["--build-arg", f"{key}={value}"]
            print("\n".join(words))
            return 0
        ca_path = os.environ.get("EXTRA_CA_CERTS")
        ca = catalogue.read_ca_bundle(ca_path) if ca_path else None
        sys.stdout.buffer.write(context.pack(root, extra=catalogue.ca_files(root, ca)).data)
        return 0
    except DeployerError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        print(f"{parser.prog}: {exc.message}{hint}", file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    sys.exit(main())
