"""A real registry holding this build's images, for the emulator's strict mode in tests and
benches: Debian's ``docker-registry`` (:class:`aci_emulator.registry.LocalRegistry`) with an
admin user and the user a managed identity pulls as, and each image pushed once (its layers
are local, so a push copies them once and the emulator's pulls move nothing).

A push of the run images compresses about a gigabyte of layers: a minute or more on a busy
machine, for each test process and each bench that needs them. So the storage of the first
registry that pushed a set of images is kept (:data:`CACHE`, keyed by the images' IDs) and
later registries start from a copy of it: the same blobs and manifests, as a push would leave
them, in a second."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from aci_emulator import EmulatorSettings
from aci_emulator.providers.acr.push import push_image
from aci_emulator.registry import LocalRegistry
from testbed.engine import IMAGE_PREFIX, TAG
from testbed.fake_arm import REGISTRY_ADMIN

IDENTITY_LOGIN = ("identity-puller", "identity-password-5e2a")
"""The registry user the strict emulator pulls as for a managed identity."""

CACHE = Path(
    os.environ.get("ACI_REGISTRY_CACHE")
    or Path(tempfile.gettempdir()) / "aci-research-registry-cache"
)
"""Stored registry storages, one folder per set of pushed images (``ACI_REGISTRY_CACHE``)."""
CACHE_KEEP = 4
"""Stored storages kept (the most recently used): a few builds' worth (TAGs, helpers)."""


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
            yield PushedRegistry(registry, _pushed(client, registry, names))
        finally:
            for ref in refs_under(client, registry.server):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(ref)


def refs_under(client: docker.DockerClient, server: str) -> set[str]:
    """Every local tag and digest reference under ``server``. From one listing: the
    high-level ``images.list()`` inspects each image after listing them all, and fails
    when another test process removes one in between."""
    return {
        ref
        for image in client.api.images()
        for ref in [*(image.get("RepoTags") or ()), *(image.get("RepoDigests") or ())]
        if ref.startswith(f"{server}/")
    }


def _pushed(
    client: docker.DockerClient, registry: LocalRegistry, names: Iterable[str]
) -> dict[str, str]:
    """Fill ``registry`` with the images: from the stored storage of the same images if there
    is one, else by pushing them (and storing the result); return name -> digest. Under a
    lock of the cache, so processes that need the same images push them once."""
    ids = {}
    for name in names:
        with contextlib.suppress(docker.errors.ImageNotFound):
            ids[name] = str(client.images.get(f"{IMAGE_PREFIX}/{name}:{TAG}").id)
    key = json.dumps([IMAGE_PREFIX, TAG, sorted(ids.items())])
    entry = CACHE / hashlib.sha256(key.encode()).hexdigest()[:24]
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / "digests.json").is_file():
            copy_storage(entry / "data", registry.storage)
            entry.touch()  # recently used: kept by the pruning below
            digests: dict[str, str] = json.loads((entry / "digests.json").read_text())
            return digests
        digests = {
            name: push(client, f"{IMAGE_PREFIX}/{name}:{TAG}", f"{registry.server}/{name}", TAG)
            for name in ids
        }
        staging = entry.with_name(entry.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        copy_storage(registry.storage, staging / "data")
        (staging / "digests.json").write_text(json.dumps(digests))
        staging.rename(entry)
        stored = sorted(
            (p for p in CACHE.iterdir() if p.is_dir() and (p / "digests.json").is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        for old in stored[:-CACHE_KEEP]:
            shutil.rmtree(old, ignore_errors=True)
        return digests


def copy_storage(source: Path, target: Path) -> None:
    """Copy a registry's filesystem storage: blob contents hard-linked (they are addressed
    by their digest and never written again, only renamed into place), every other file
    copied (the registry rewrites tag links in place); unfinished uploads left out.

    Args:
        source: A storage folder (``rootdirectory``).
        target: Where the copy goes (created).
    """
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != "_uploads"]
        here = target / Path(folder).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(folder) / name, here / name
            if name == "data" and "blobs" in src.relative_to(source).parts:
                try:
                    os.link(src, dst)
                    continue
                except OSError:  # another file system: copy it
                    pass
            shutil.copy2(src, dst)
