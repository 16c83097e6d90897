"""Which exact image every container runs: the one place that decides it.

Every path that creates a container group (``up`` and ``scale``, ``run``'s workers and
janitor, the autoscaler's worker template the janitor keeps, ``db fetch``'s one-off group)
resolves its settings through :func:`deploy_settings`, and the planner names each
container's image through :func:`reference`. An image is what the last ``deployer build``
recorded for the workload's registry, by digest when the build knew it (a running group
then keeps its image until the next ``up``, even when a rebuild moves the tag), unless the
user pinned a tag (``--image-tag``, ``deployment.image_tag`` or ``DEPLOYER_IMAGE_TAG``).
"""

from __future__ import annotations

from dataclasses import replace

from deployer import contract
from deployer.imagebuild import manifest
from deployer.settings import Overrides, Settings, resolve_settings
from deployer.workload import Workload


def by_digest(ref: str, digest: str | None) -> str:
    """``<registry>/<name>@<digest>`` for ``<registry>/<name>:<tag>`` when the digest is
    known, else ``ref`` unchanged (pure).

    Args:
        ref (str): A tagged reference, e.g. ``myacr.azurecr.io/blast-worker:0.1.0-abc1234``.
        digest (str | None): Its manifest digest, ``sha256:<64 hex>``.
    """
    if not digest or "@" in ref:
        return ref
    head, _, last = ref.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}@{digest}" if head else f"{name}@{digest}"


def recorded(found: manifest.BuildManifest) -> tuple[tuple[str, str], ...]:
    """(image, reference) of each image a build recorded, digests preferred (pure)."""
    return tuple(
        sorted((name, by_digest(image.ref, image.digest)) for name, image in found.images.items())
    )


def reference(settings: Settings, name: str) -> str:
    """The exact reference of image ``name`` (pure): what ``deployer build`` recorded (see
    :func:`with_built_images`), else ``<registry>/<name>:<tag>``.

    Args:
        settings (Settings): Resolved settings.
        name (str): The image's name in ``images/images.toml``.
    """
    return dict(settings.images).get(name) or contract.image_ref(
        settings.registry, name, settings.image_tag
    )


def with_built_images(settings: Settings) -> Settings:
    """``settings`` with the images the last ``deployer build`` recorded for their registry,
    unless a tag is pinned (reads the build record in the state directory)."""
    if settings.image_tag_pinned:
        return replace(settings, images=())
    found = manifest.load(settings.registry)
    return replace(settings, images=recorded(found) if found else ())


def deploy_settings(workload: Workload, overrides: Overrides, *, need_azure: bool) -> Settings:
    """The settings a deployment's groups are built from, their exact images included.

    Args:
        workload (Workload): The validated workload file.
        overrides (Overrides): Values from the command line.
        need_azure (bool): Also require subscription and resource group.

    Raises:
        MissingSettingError: For a setting that is not set anywhere.
    """
    return with_built_images(resolve_settings(workload, overrides, need_azure=need_azure))


__all__ = ["by_digest", "deploy_settings", "recorded", "reference", "with_built_images"]
