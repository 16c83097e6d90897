"""Image resolution: the one place that decides which image a container of a group runs.

Images resolve against the local engine only (no pulls): the reference itself if it
exists locally, else ``<image_prefix>/<last path part>`` with the reference's tag, or with
:attr:`~.settings.EmulatorSettings.image_tag` when set. The group's sandbox runs
:attr:`~.settings.EmulatorSettings.sandbox`.
"""

from __future__ import annotations

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

    def resolve(self, ref: str) -> str:
        """The local image a reference runs as.

        :param ref: the reference in the group body.
        :return: a local image name.
        :raises EmulatorError: ``InaccessibleImage`` when none of the candidates exists.
        """
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
