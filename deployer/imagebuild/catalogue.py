"""The image catalogue, ``images/images.toml``, and the one way to add an extra CA.

``make build``, ``images/build.sh`` and ``deployer build`` all read the catalogue here:
the images, their build order, their targets and which build arguments name which parent
images. The Makefile and ``images/build.sh`` ask it from the shell through
``python -m deployer.imagebuild`` (:mod:`deployer.imagebuild.__main__`).

An extra CA bundle (``EXTRA_CA_CERTS``, behind a TLS-intercepting proxy) is added to the
packed context of every image with a ``build-ca/`` folder (:func:`ca_files`), for both
local and ``deployer build`` builds; the working tree is never touched. Builder stages trust
it through ``with-build-ca``; no final image contains it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from deployer.errors import InputError

CATALOGUE_FILE: Final = "images.toml"
CA_FOLDER: Final = "build-ca"
CA_FILE: Final = f"{CA_FOLDER}/extra.crt"
_KEYS = frozenset({"name", "folder", "target", "service", "args"})


@dataclass(frozen=True)
class ImageSpec:
    """One image of the stack.

    Args:
        name (str): Repository name, e.g. ``ipengine``.
        folder (str): Its folder under ``images/``.
        target (str | None): Build stage to stop at (``base-builder``). Default: None.
        args (tuple[tuple[str, str], ...]): Build arguments that name a parent image,
            as (argument, image) pairs. Default: none.
        service (bool): Deployed by ACI. ``azurite`` runs only locally; ``base``,
            ``base-builder`` and ``blast-client`` are build-only parents. Default: True.
    """

    name: str
    folder: str
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    service: bool = True

    @property
    def parents(self) -> tuple[str, ...]:
        """Images of this stack it builds FROM, without repeats."""
        return tuple(dict.fromkeys(image for _, image in self.args))


@dataclass(frozen=True)
class Catalogue:
    """Every image, in a valid build order (parents first).

    Args:
        images (tuple[ImageSpec, ...]): The images.
    """

    images: tuple[ImageSpec, ...]

    @property
    def by_name(self) -> dict[str, ImageSpec]:
        """The images by name."""
        return {s.name: s for s in self.images}

    def get(self, name: str) -> ImageSpec:
        """Return one image.

        Args:
            name (str): Its name.

        Raises:
            InputError: For an unknown image name.
        """
        return self.select([name], with_parents=False)[0]

    def select(self, names: Sequence[str] | None, with_parents: bool = True) -> list[ImageSpec]:
        """Return the images to build, parents included, in build order.

        Args:
            names (Sequence[str] | None): Requested images; None or empty means every
                service image (what ACI deploys).
            with_parents (bool): Add the parents of the requested images. Default: True.

        Raises:
            InputError: For an unknown image name.
        """
        by_name = self.by_name
        wanted = set(names or [s.name for s in self.images if s.service])
        unknown = sorted(wanted - set(by_name))
        if unknown:
            raise InputError(
                f"unknown image {', '.join(unknown)}",
                hint=f"choose from {', '.join(s.name for s in self.images)}",
            )
        todo = list(wanted) if with_parents else []
        while todo:
            for parent in by_name[todo.pop()].parents:
                if parent not in wanted:
                    wanted.add(parent)
                    todo.append(parent)
        return [s for s in self.images if s.name in wanted]


def parse(doc: dict[str, Any], source: str = CATALOGUE_FILE) -> Catalogue:
    """Check a parsed catalogue and build it (pure).

    Args:
        doc (dict[str, Any]): The TOML document.
        source (str): Its name, for messages. Default: ``images.toml``.

    Raises:
        InputError: For unknown keys, repeated names, or a parent that is not listed
            before the image that needs it.
    """
    entries = doc.get("image")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{source} lists no [[image]] entries")
    specs: list[ImageSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: image {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{where} has no name")
        name = entry["name"]
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise InputError(
                f"{where} ({name}) has unknown keys {', '.join(unknown)}",
                hint=f"use {', '.join(sorted(_KEYS))}",
            )
        if name in seen:
            raise InputError(f"{where}: {name} is listed twice")
        raw_args = entry.get("args", {})
        if not isinstance(raw_args, dict) or not all(isinstance(v, str) for v in raw_args.values()):
            raise InputError(f"{where} ({name}): args must map build arguments to image names")
        for arg, parent in raw_args.items():
            if parent not in seen:
                raise InputError(
                    f"{where} ({name}): {arg} names {parent}, which is not listed before it",
                    hint="list parents first: the catalogue order is the build order",
                )
        seen.add(name)
        specs.append(
            ImageSpec(
                name=name,
                folder=str(entry.get("folder", name)),
                target=entry.get("target"),
                args=tuple(raw_args.items()),
                service=bool(entry.get("service", True)),
            )
        )
    return Catalogue(tuple(specs))


def load(images_dir: Path) -> Catalogue:
    """Read ``images/images.toml``.

    Args:
        images_dir (Path): The repository's ``images/`` folder.

    Raises:
        InputError: When the file is missing or invalid.
    """
    path = images_dir / CATALOGUE_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the image catalogue {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    return parse(doc, str(path))


def build_args(
    spec: ImageSpec, prefix: str, tag: str, version: str, revision: str, debian: str
) -> dict[str, str]:
    """Return the ``--build-arg`` values of one image.

    Args:
        spec (ImageSpec): The image.
        prefix (str): Repository prefix of the parents: a registry login server, or
            ``IMAGE_PREFIX`` for local builds.
        tag (str): The tag every image of this build gets.
        version (str): The project version.
        revision (str): The git revision.
        debian (str): The root image of images without parents.
    """
    prefix = prefix.rstrip("/")
    args = {arg: f"{prefix}/{image}:{tag}" for arg, image in spec.args}
    if not spec.args:
        args["BASE_IMAGE"] = debian
    args.update(VERSION=version, REVISION=revision)
    return args


def read_ca_bundle(path: str) -> bytes:
    """Read an extra CA bundle for builds (``EXTRA_CA_CERTS``).

    Args:
        path (str): The PEM file.

    Raises:
        InputError: When it is unreadable or holds no PEM certificate.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the CA bundle {path}: {exc.strerror}",
            hint="set EXTRA_CA_CERTS (or --extra-ca-certs) to a readable PEM file",
        ) from None
    if b"BEGIN CERTIFICATE" not in data:
        raise InputError(
            f"{path} holds no PEM certificate",
            hint="pass a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt",
        )
    return data


def ca_files(context_root: Path, ca_bundle: bytes | None) -> dict[str, bytes]:
    """The files that add an extra CA bundle to one image's packed context.

    Args:
        context_root (Path): The image's folder; only one with a ``build-ca/`` folder
            (whose builder stage copies it) gets the bundle.
        ca_bundle (bytes | None): The bundle, or None.
    """
    if ca_bundle is None or not (context_root / CA_FOLDER).is_dir():
        return {}
    return {CA_FILE: ca_bundle}
