"""Which exact image every container runs: the one place that decides it.

Every path that creates a container group (``up`` and ``scale``, ``run``'s workers and
janitor, the autoscaler's worker template the janitor keeps, ``db fetch``'s one-off group)
resolves its settings through :func:`deploy_settings`, and the planner names each
container's image through :func:`reference` (``deployer.plan.common.image``, pure). An
image is what the last ``deployer build`` recorded for the workload's registry, by digest
when the build knew it (a running group then keeps its image until the next ``up``, even
when a rebuild moves the tag), unless the user pinned a tag (``--image-tag``,
``deployment.image_tag`` or ``DEPLOYER_IMAGE_TAG``).

Before ``up``, ``run`` or ``db fetch`` create anything, :func:`require_images` asks the
registry (its v2 API, ``HEAD /v2/<repo>/manifests/<ref>``) whether each reference exists,
with the credentials the groups pull with: the admin user and password, or for a managed
identity an ACR token of the signed-in user. ``deployer plan`` shows the same check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from azure.core.exceptions import AzureError as SdkAzureError

from deployer import defaults, hints
from deployer.arm import default_credential
from deployer.defaults import Env
from deployer.errors import DeployerError
from deployer.imagebuild import manifest
from deployer.imagebuild.registry import ACR_USERNAME, RegistryClient, acr_refresh_token
from deployer.plan.common import image as reference
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


# --- does the registry hold them ------------------------------------------------------


class ImageMissingError(DeployerError):
    """An image a group would run is not in the registry; nothing was created."""


def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry, repository, tag or digest) of ``<registry>/<repo>[:tag|@digest]`` (pure).

    Args:
        ref (str): An image reference with its registry, e.g. ``r.io/team/x@sha256:...``.
    """
    server, _, rest = ref.partition("/")
    if "@" in rest:
        repository, _, reference_ = rest.partition("@")
    else:
        head, _, last = rest.rpartition("/")
        name, sep, tag = last.partition(":")
        repository = f"{head}/{name}" if head else name
        reference_ = tag if sep else defaults.DEFAULT_IMAGE_TAG
    return server, repository, reference_


# deployer.plan imports this module, so its GroupSpec is named here by its shape.
class _Container(Protocol):
    @property
    def image(self) -> str: ...


class _Group(Protocol):
    @property
    def containers(self) -> tuple[_Container, ...]: ...


def group_images(groups: Iterable[_Group]) -> list[str]:
    """The distinct image references of ``groups``' containers, sorted (pure)."""
    return sorted({c.image for g in groups for c in g.containers})


def registry_client(settings: Settings) -> RegistryClient:
    """A client of the workload's registry with the credentials the groups pull with.

    Raises:
        DeployerError: When the signed-in user's Entra ID token cannot be had or the
            registry refuses it (managed identity mode).
    """
    server = os.environ.get(Env.REGISTRY_ENDPOINT) or settings.registry
    if settings.registry_auth == "admin" and settings.registry_username:
        password = settings.registry_password.reveal() if settings.registry_password else None
        return RegistryClient(server, settings.registry_username, password)
    try:
        token = default_credential().get_token(f"{defaults.PUBLIC_ARM_ENDPOINT}/.default").token
    except SdkAzureError as exc:
        raise hints.from_exception(exc, f"signing in to registry {settings.registry}") from None
    return RegistryClient(server, ACR_USERNAME, acr_refresh_token(server, token))


def missing_images(refs: Iterable[str], settings: Settings) -> list[str]:
    """The references of ``refs`` in the workload's registry that it does not hold.

    References of other registries are not checked (the groups pull those without
    credentials).

    Raises:
        RegistryError: When the registry cannot be reached or refuses the credentials.
    """
    ours = [ref for ref in refs if split_ref(ref)[0] == settings.registry.rstrip("/")]
    if not ours:
        return []
    client = registry_client(settings)
    return [ref for ref in ours if client.digest(*split_ref(ref)[1:]) is None]


def require_images(refs: Iterable[str], settings: Settings, workload_file: str) -> None:
    """Refuse, before anything is created, when the registry lacks an image.

    Raises:
        ImageMissingError: Naming the first missing image and ``deployer build``.
        RegistryError: When the registry cannot be reached or refuses the credentials.
    """
    missing = missing_images(refs, settings)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImageMissingError(
            f"image {missing[0]}{more} is not in registry {settings.registry}; nothing was created",
            hint=f"`deployer build {workload_file}` builds and pushes the images",
            code="ImageNotFound",
        )


__all__ = [
    "ImageMissingError",
    "by_digest",
    "deploy_settings",
    "group_images",
    "missing_images",
    "recorded",
    "reference",
    "registry_client",
    "require_images",
    "split_ref",
    "with_built_images",
]
