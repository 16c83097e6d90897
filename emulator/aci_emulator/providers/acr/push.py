"""What a successful fake ACR run pushes for real: the local build of the same context.

The fake does not build. ``deployer build`` names every image it schedules twice, with its
version tag and with ``ctx-<build hash>`` (the hash of the image's context and parents), and
``images/build.sh`` tags each local build with the same ``ctx-<build hash>``. So the local
image ``<prefix>/<name>:<one of the run's tags>`` is the build of exactly the uploaded
context; :class:`LocalImagePusher` tags it with every name of the run and pushes it to the
real registry (Debian's ``docker-registry``) that stands behind the fake ACR's data plane.
The layers are local, so the first push copies them once and later pushes reuse them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import docker
import docker.errors


class NoLocalBuildError(LookupError):
    """No local image carries any of the run's tags."""


class LocalImagePusher:
    """Pushes the local build of a run's context to a real registry.

    :param client: the Docker client.
    :param registry: ``host:port`` of the real registry.
    :param login: the user and password that may push there.
    :param image_prefix: the repository prefix of the local builds (``aci-research``).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        registry: str,
        login: tuple[str, str],
        image_prefix: str,
    ) -> None:
        self.client = client
        self.registry = registry
        self.login = login
        self.image_prefix = image_prefix

    def local_build(self, repository: str, tags: Sequence[str]) -> str:
        """The local image ``<prefix>/<name>:<tag>`` for the first of ``tags`` that exists.

        :param repository: the run's repository (its last part is the image name).
        :param tags: the run's tags of it.
        :raises NoLocalBuildError: none exists.
        """
        name = repository.rsplit("/", 1)[-1]
        for tag in tags:
            local = f"{self.image_prefix}/{name}:{tag}"
            with contextlib.suppress(docker.errors.ImageNotFound):
                self.client.images.get(local)
                return local
        raise NoLocalBuildError(
            f"no local build of this context: none of {self.image_prefix}/{name}:"
            f"{{{','.join(tags)}}} exists (the fake ACR pushes local builds; "
            f"`images/build.sh {name}` tags one)"
        )

    def push(self, repository: str, tags: Sequence[str]) -> str:
        """Push the local build of ``repository`` under each of ``tags``; return its digest.

        :param repository: the repository in the registry.
        :param tags: the run's tags (one manifest, so one digest, for all).
        :raises NoLocalBuildError: no local image carries any of them.
        :raises RuntimeError: the registry refused a push.
        """
        local = self.local_build(repository, tags)
        target = f"{self.registry}/{repository}"
        return push_image(self.client, local, target, tags, self.login)


def push_image(
    client: docker.DockerClient,
    local: str,
    target: str,
    tags: Sequence[str],
    login: tuple[str, str],
) -> str:
    """Push the local image ``local`` as ``target:<tag>`` for each tag; return its digest.

    The ``target`` names are removed again, so whoever runs the image has to pull it.

    :param client: the Docker client.
    :param local: a local image name.
    :param target: ``host:port/<repository>``.
    :param tags: the tags to push.
    :param login: the user and password that may push.
    :raises RuntimeError: the registry refused a push.
    """
    image = client.images.get(local)
    auth = {"username": login[0], "password": login[1]}
    digest = ""
    for tag in tags:
        image.tag(target, tag)
        try:
            for line in client.images.push(
                target, tag=tag, auth_config=auth, stream=True, decode=True
            ):
                if "error" in line:
                    raise RuntimeError(f"push of {target}:{tag} failed: {line['error']}")
                digest = (line.get("aux") or {}).get("Digest", digest)
        finally:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(f"{target}:{tag}")
    return digest
