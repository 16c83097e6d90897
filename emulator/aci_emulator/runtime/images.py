"""Image resolution: the one place that decides which image a container of a group runs.

**Strict mode** (:attr:`~.settings.EmulatorSettings.registry` set): the exact reference the
body names is pulled, as ACI pulls it, from the local registry that stands for its
registry host, with the body's ``imageRegistryCredentials`` (the admin user and password,
or for a managed identity :attr:`~.settings.EmulatorSettings.identity_login`). An unknown
registry, repository, tag or digest, or refused credentials, answer ACI's 400
``InaccessibleImage``.

**Local-image mode** (the default, for quick loops): images resolve against the local
engine only (no pulls): the reference itself if it exists locally, else
``<image_prefix>/<last path part>`` with the reference's tag, or with
:attr:`~.settings.EmulatorSettings.image_tag` when set.

The group's sandbox runs :attr:`~.settings.EmulatorSettings.sandbox` in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors

from .settings import EmulatorError, EmulatorSettings


def image_candidates(ref: str, prefix: str, tag: str | None) -> list[str]:
    """Local image names to try for a reference, in order.

    ``myacr.azurecr.io/team/blast-worker:v2`` with prefix ``aci-research`` gives
    ``[ref, "aci-research/blast-worker:v2"]`` (or ``:<tag>`` when a tag is given).

    :param ref: the image as the group names it.
    :param prefix: the local image prefix (``IMAGE_PREFIX``).
    :param tag: replaces the reference's tag when set (``TAG`` of ``make build``).
    :return: candidates, without duplicates.
    """
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    base, sep, ref_tag = last.partition(":")
    mapped = f"{prefix}/{base}:{tag or (ref_tag if sep else 'latest')}"
    out = [ref] if not digest else []
    if mapped not in out:
        out.append(mapped)
    return out


class ImageResolver:
    """Finds the local image for each reference a group names.

    :param client: the Docker client.
    :param settings: the image prefix and tag that references map to.
    """

    def __init__(self, client: docker.DockerClient, settings: EmulatorSettings) -> None:
        self.client = client
        self.settings = settings

    def resolve(
        self, ref: str, group: str = "", credentials: Sequence[Mapping[str, Any]] = ()
    ) -> str:
        """The local image a reference runs as.

        :param ref: the reference in the group body.
        :param group: the group's name (for ACI's message).
        :param credentials: the body's ``imageRegistryCredentials`` (strict mode).
        :return: a local image name.
        :raises EmulatorError: ``InaccessibleImage`` when none of the candidates exists, or
            (strict mode) the registry does not give it.
        """
        if self.settings.registry:
            return self._pull(ref, group, credentials)
        candidates = image_candidates(ref, self.settings.image_prefix, self.settings.image_tag)
        for candidate in candidates:
            try:
                self.client.images.get(candidate)
            except docker.errors.ImageNotFound:
                continue
            return candidate
        raise EmulatorError(
            "InaccessibleImage",
            f"The image '{ref}' is not available on the local Docker engine (the emulator "
            f"never pulls); tried {', '.join(candidates)}. Build it with `make build`.",
        )

    def _pull(self, ref: str, group: str, credentials: Sequence[Mapping[str, Any]]) -> str:
        """Pull ``ref`` from the registry standing for its host; return the local name."""
        # ACI's one answer for a missing image and for refused credentials alike.
        inaccessible = EmulatorError(
            "InaccessibleImage",
            f"The image '{ref}' in container group '{group}' is not accessible. Please check "
            "the image and registry credential.",
        )
        host, _, rest = ref.partition("/")
        hosts = {h.lower() for h in self.settings.registry_hosts}
        if not rest or host.lower() not in hosts:
            raise inaccessible
        repository, sep, reference = rest.partition("@")
        if not sep:
            head, _, last = rest.rpartition("/")
            name, _, reference = last.partition(":")
            repository = f"{head}/{name}" if head else name
        auth = self._auth(host, credentials)
        local = f"{self.settings.registry}/{repository}"
        try:
            self.client.images.pull(local, tag=reference or "latest", auth_config=auth)
        except docker.errors.APIError:
            raise inaccessible from None
        return f"{local}@{reference}" if sep else f"{local}:{reference or 'latest'}"

    def _auth(self, host: str, credentials: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
        """The pull credentials the body gives for ``host`` (None: anonymous)."""
        for cred in credentials:
            if str(cred.get("server", "")).lower() != host.lower():
                continue
            if cred.get("username") and cred.get("password"):
                return {"username": str(cred["username"]), "password": str(cred["password"])}
            if cred.get("identity") and self.settings.identity_login:
                user, password = self.settings.identity_login
                return {"username": user, "password": password}
        return None

    def require_sandbox(self) -> str:
        """The sandbox image, which must be on the local engine.

        :return: its name.
        :raises EmulatorError: ``InaccessibleImage`` when it is missing.
        """
        try:
            self.client.images.get(self.settings.sandbox)
        except docker.errors.ImageNotFound:
            raise EmulatorError(
                "InaccessibleImage",
                f"The emulator's sandbox image '{self.settings.sandbox}' is not on the local "
                "Docker engine. Build it with `make build`.",
            ) from None
        return self.settings.sandbox

    def user(self, image: str) -> str:
        """The ``USER`` an image runs as (``""`` when it sets none).

        :param image: a resolved local image.
        :return: e.g. ``"1000"``, ``"1000:1000"`` or ``"research"``.
        """
        return str(self.client.images.get(image).attrs.get("Config", {}).get("User") or "")
