"""A real registry holding this build's images, for the emulator's strict mode in tests and
benches: Debian's ``docker-registry`` (:class:`aci_emulator.registry.LocalRegistry`) with an
admin user and the user a managed identity pulls as, and each image pushed once (its layers
are local, so a push copies them once and the emulator's pulls move nothing)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import docker
import docker.errors

from aci_emulator import EmulatorSettings
from aci_emulator.providers.acr.push import push_image
from aci_emulator.registry import LocalRegistry
from testbed.engine import IMAGE_PREFIX, TAG
from testbed.fake_arm import REGISTRY_ADMIN

IDENTITY_LOGIN = ("identity-puller", "identity-password-5e2a")
"""The registry user the strict emulator pulls as for a managed identity."""


@dataclass(frozen=True)
class PushedRegistry:
    """The running registry and the digest of each image pushed to it at ``TAG``."""

    registry: LocalRegistry
    digests: dict[str, str]

    def settings(self, hosts: tuple[str, ...], restart_delay: float = 0.2) -> EmulatorSettings:
        """Strict emulator settings: pull from this registry for the login servers ``hosts``.

        :param hosts: the registries the workloads name (``emulator.azurecr.io``).
        :param restart_delay: seconds before a stopped container's first restart.
        """
        return EmulatorSettings(
            image_prefix=IMAGE_PREFIX,
            image_tag=TAG,
            restart_delay=restart_delay,
            registry=self.registry.server,
            registry_hosts=hosts,
            identity_login=IDENTITY_LOGIN,
        )


def push(client: docker.DockerClient, local: str, target: str, tag: str) -> str:
    """Push the local image ``local`` as ``target:tag`` with the admin user; return its
    digest. The ``target`` name is removed again, so the emulator has to pull it."""
    return push_image(client, local, target, [tag], REGISTRY_ADMIN)


@contextlib.contextmanager
def registry_with_pushed_images(names: Iterable[str]) -> Iterator[PushedRegistry]:
    """A registry holding ``IMAGE_PREFIX/<name>:TAG`` of each name that exists locally, as
    ``<name>:TAG``; afterwards every name the emulator pulled from it is removed again (the
    images themselves stay).

    :param names: image names (``blast-worker``, ``deployer``...).
    """
    client = docker.from_env()
    with LocalRegistry(dict([REGISTRY_ADMIN, IDENTITY_LOGIN])) as registry:
        try:
            digests = {}
            for name in names:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    digests[name] = push(
                        client, f"{IMAGE_PREFIX}/{name}:{TAG}", f"{registry.server}/{name}", TAG
                    )
            yield PushedRegistry(registry, digests)
        finally:
            refs = {
                ref
                for image in client.images.list()
                for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]
                if ref.startswith(f"{registry.server}/")
            }
            for ref in refs:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(ref)
