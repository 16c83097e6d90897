"""Docker, Compose and waiting helpers shared by the integration tests and the benchmarks.

Nothing here needs pytest: the benchmarks import it as well as the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

IMAGE_PREFIX = os.environ.get("IMAGE_PREFIX", "aci-research")
TAG = os.environ.get("TAG", "latest")
REPO = Path(__file__).resolve().parents[1]
"""The repository's root."""
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
"""The compose file ``make up`` runs."""
STACK_TIMEOUT = 240.0
"""Seconds a compose stack may take to become healthy."""
COMPOSE_STACK_GROUP = "compose-stack"
"""The test process group (pytest-xdist) of every test on the compose stack of ``COMPOSE_FILE``."""


class StackError(Exception):
    """A test stack cannot be started; the message says what to do."""


def image(name: str) -> str:
    """Return the local tag of one of the project's images.

    Args:
        name (str): The image folder name, e.g. ``ipengine``.
    """
    return f"{IMAGE_PREFIX}/{name}:{TAG}"


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_containers(
    client: docker.DockerClient, project: str, service: str | None = None
) -> list[Container]:
    """Return the containers of a compose project, optionally of one service.

    Args:
        client (docker.DockerClient): The Docker client.
        project (str): The compose project name.
        service (str | None): Only this service's containers when given.
    """
    labels = [f"com.docker.compose.project={project}"]
    if service:
        labels.append(f"com.docker.compose.service={service}")
    return list(client.containers.list(all=True, filters={"label": labels}, ignore_removed=True))


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout.

    Args:
        predicate: Called until it returns a truthy value, which is returned.
        timeout: Seconds before giving up with an AssertionError.
        what: Words for the failure message ("timed out ... waiting for <what>").
        interval: Seconds between calls.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def freeze(container: Container, timeout: float = 60) -> None:
    """``docker pause`` ``container``, trying again while the cgroup freezer refuses.

    runc gives up ("unable to freeze") when the container's processes keep changing
    state, e.g. forking, while it freezes them, which a loaded machine makes common. A
    refused pause leaves the container running, so trying again is safe.

    Args:
        container: The container to pause.
        timeout: Seconds before the last refusal is raised.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            container.pause()
            return
        except docker.errors.APIError as exc:
            if "freeze" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def docker_engine() -> Any:
    """A docker SDK client of the local engine; raises :class:`StackError` when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise StackError(f"no Docker engine answers ({exc}): start dockerd") from None
    return client


def compose_command() -> list[str]:
    """``docker compose`` (v2) when the docker CLI has it, else ``docker-compose`` (v1.29).

    ``BLAST_TEST_COMPOSE`` (e.g. ``docker-compose``) picks one explicitly.
    """
    if chosen := os.environ.get("BLAST_TEST_COMPOSE", "").split():
        return chosen
    with contextlib.suppress(OSError):
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if v2.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError(
        "neither `docker compose` (v2) nor docker-compose (v1.29) is installed: install one "
        "(Debian: apt-get install docker-compose)"
    )


def exec_text(container: Container, command: list[str]) -> tuple[int, str]:
    """Run a command in a container; return its exit code and combined output.

    Args:
        container (Container): The running container.
        command (list[str]): The command and its arguments.
    """
    result = container.exec_run(command, demux=False)
    return int(result.exit_code), result.output.decode(errors="replace")


class ImageRunner:
    """Runs project images for image tests and removes them afterwards.

    Args:
        client (docker.DockerClient): The Docker client.
    """

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.containers: list[Container] = []

    def start(self, name: str, **kwargs: object) -> Container:
        """Start ``image(name)`` detached; ``kwargs`` go to ``containers.run``.

        Args:
            name (str): The image folder name.
            **kwargs (object): Extra ``docker.containers.run`` arguments.
        """
        container = self.client.containers.run(image(name), detach=True, **kwargs)
        self.containers.append(container)
        return container

    def run(self, name: str, timeout: float = 60, **kwargs: object) -> tuple[int, str]:
        """Run ``image(name)`` until it exits; return the exit code and its logs.

        Args:
            name (str): The image folder name.
            timeout (float): Seconds to wait for the exit.
            **kwargs (object): Extra ``docker.containers.run`` arguments.
        """
        container = self.start(name, **kwargs)
        result = container.wait(timeout=timeout)
        return int(result["StatusCode"]), container.logs().decode(errors="replace")

    def remove_all(self) -> None:
        """Remove every container this runner started."""
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
