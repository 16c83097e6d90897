"""Build hashes, labels and tags of the images, and where the checkout's images are.

Which images exist, their order and their build arguments are in the catalogue,
``images/images.toml`` (:mod:`deployer.imagebuild.catalogue`). In a registry build the
parents live in the same registry under the same tag, so a child starts only once its
parents are pushed.
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from pathlib import Path
from typing import Final

from deployer.errors import InputError
from deployer.imagebuild.catalogue import ImageSpec

LABEL: Final = "org.aci-research.context-sha256"
"""Image label holding the build hash (context, target and parents' hashes)."""
GENERATED_DOCKERFILE: Final = ".deployer.Dockerfile"
"""The Dockerfile sent to the builder: the image's own, plus the hash label."""
DEFAULT_DEBIAN_IMAGE: Final = "debian:trixie-slim"


def build_hash(context_sha256: str, spec: ImageSpec, parent_hashes: dict[str, str]) -> str:
    """Return the hash an image is labelled with and skipped by.

    It covers the image's context, its target and its parents' build hashes, so a
    changed ``base`` rebuilds every child even when the child's folder is unchanged.
    Versions and revisions are left out on purpose: a new commit elsewhere in the
    repo must not rebuild an unchanged image.

    Args:
        context_sha256 (str): :attr:`deployer.imagebuild.context.Packed.sha256`.
        spec (ImageSpec): The image.
        parent_hashes (dict[str, str]): Build hash of each parent.
    """
    text = "\n".join(
        [f"context {context_sha256}", f"target {spec.target or ''}"]
        + [f"parent {p} {parent_hashes[p]}" for p in spec.parents]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def hash_tag(build_hash: str) -> str:
    """Return the tag that marks a build hash in the registry: ``ctx-<24 hex>``."""
    return f"ctx-{build_hash[:24]}"


def labelled_dockerfile(dockerfile: str, spec: ImageSpec, build_hash_value: str) -> bytes:
    """Return the image's Dockerfile with the build-hash label appended.

    A Dockerfile's last stage is what gets built, so the label goes at the end. For a
    ``target`` build a new last stage ``FROM <target>`` carries it, and the builder
    is then run without a target.

    Args:
        dockerfile (str): The image's Dockerfile text.
        spec (ImageSpec): The image.
        build_hash_value (str): Its build hash.
    """
    lines = [dockerfile.rstrip("\n"), "", "# Added by `deployer build`."]
    if spec.target:
        lines.append(f"FROM {spec.target}")
    lines.append(f'LABEL {LABEL}="{build_hash_value}"')
    return ("\n".join(lines) + "\n").encode()


def find_images_dir(start: Path) -> Path:
    """Return the ``images/`` folder of the repository containing ``start``.

    Raises:
        InputError: When no parent of ``start`` holds ``images/base/Dockerfile``.
    """
    for folder in [start, *start.resolve().parents]:
        if (folder / "images" / "base" / "Dockerfile").is_file():
            return folder / "images"
    raise InputError(
        f"no images/ folder found above {start}",
        hint="run `deployer build` inside the aci-research checkout, or pass --images-dir",
    )


def project_version(images_dir: Path) -> str:
    """Return ``[project] version`` of the repository's pyproject.toml (``0.0.0`` if none)."""
    path = images_dir.parent / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return "0.0.0"
    return str(data.get("project", {}).get("version", "0.0.0"))


def git_revision(images_dir: Path) -> str:
    """Return the short commit of HEAD, with ``-dirty`` when ``images/`` has changes.

    ``nogit`` outside a git checkout.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(images_dir), *args],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    sha = git("rev-parse", "--short=7", "HEAD")
    if not sha:
        return "nogit"
    if git("status", "--porcelain", "--", "."):
        sha += "-dirty"
    return sha


def image_tag(version: str, revision: str) -> str:
    """Return the tag of this build: ``<version>-<gitsha>`` (a valid Docker tag)."""
    return f"{version}-{revision}".replace("+", "_")[:128]
