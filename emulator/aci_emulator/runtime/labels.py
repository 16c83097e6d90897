"""The labels and names of the emulator's Docker objects, and their removal.

Every object carries :data:`LABEL_INSTANCE` = the emulator's id, so parallel emulators
never touch each other's objects, and :func:`remove_instance` clears one emulator's
objects (``aci-emulator --cleanup ID`` after a crash).
"""

from __future__ import annotations

import contextlib
import re

import docker
import docker.errors

from .state import GroupRun

LABEL_INSTANCE = "aci-research.emulator"
"""Label on every Docker object the emulator creates; the value is the instance id."""
LABEL_GROUP = "aci-research.emulator.group"
"""Label naming the container group (ARM id, lower case)."""
LABEL_ROLE = "aci-research.emulator.role"
"""``sandbox`` or ``container``."""
LABEL_CONTAINER = "aci-research.emulator.container"
"""The ACI container name (on ``container`` role objects)."""


def labels(instance_id: str, run: GroupRun, role: str, container: str = "") -> dict[str, str]:
    """The labels of one of a group's Docker containers.

    :param instance_id: the emulator's id.
    :param run: the group.
    :param role: ``sandbox`` or ``container``.
    :param container: the ACI container name (``container`` role).
    :return: label to value.
    """
    out = {
        LABEL_INSTANCE: instance_id,
        LABEL_GROUP: "/".join(run.key),
        LABEL_ROLE: role,
    }
    if container:
        out[LABEL_CONTAINER] = container
    return out


def docker_name(instance_id: str, run: GroupRun, suffix: str) -> str:
    """The Docker name of one of a group's containers: it starts with the emulator's id.

    :param instance_id: the emulator's id.
    :param run: the group.
    :param suffix: the ACI container name, or ``sandbox``.
    :return: ``<id>-<resource group>-<group>-<suffix>``.
    """
    rg = re.sub(r"[^a-zA-Z0-9_.-]", "-", run.key[1])
    return f"{instance_id}-{rg}-{run.name}-{suffix}"


def remove_instance(client: docker.DockerClient, instance_id: str) -> int:
    """Remove the containers and network an emulator instance created.

    Also clears what a crashed emulator left behind (``aci-emulator --cleanup
    ID``).

    :param client: the Docker client.
    :param instance_id: the emulator's id (label value).
    :return: how many containers were removed.
    """
    selector = {"label": f"{LABEL_INSTANCE}={instance_id}"}
    containers = client.containers.list(all=True, filters=selector, sparse=True)
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(container.id, force=True)
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    return len(containers)
