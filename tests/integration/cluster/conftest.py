"""Fixtures of the cluster tests: the stack's controller, notebook and engines, and extra
engine containers. The helpers behind them are :mod:`testbed.cluster`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from testbed.cluster import cluster_settled, one, remove_engine, start_engine, wait_until
from testbed.engine import project_containers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's tests after all others, and the controller restart last.

    They refuse wrong keys, kill an engine and restart the controller on purpose, which the
    services log as warnings and errors; the stack's log test must run before that.
    """
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    others = [item for item in items if here not in Path(str(item.fspath)).parents]
    restart = [item for item in mine if Path(str(item.fspath)).stem == "test_controller_restart"]
    items[:] = others + [item for item in mine if item not in restart] + restart


@pytest.fixture(scope="session")
def controller(docker_client: docker.DockerClient, stack: str) -> Container:
    """The stack's ipcontroller container."""
    return one(docker_client, stack, "ipcontroller")


@pytest.fixture(scope="session")
def notebook(docker_client: docker.DockerClient, stack: str) -> Container:
    """The stack's notebook container, sharing the controller's network namespace."""
    return one(docker_client, stack, "notebook")


@pytest.fixture()
def engines(docker_client: docker.DockerClient, stack: str, notebook: Container) -> list[Container]:
    """The stack's engine containers, once all are healthy and registered."""
    wait_until(lambda: cluster_settled(docker_client, stack, notebook), 120, "a settled cluster")
    return project_containers(docker_client, stack, "ipengine")


@pytest.fixture()
def extra_engine(
    docker_client: docker.DockerClient, stack: str
) -> Iterator[Callable[..., Container]]:
    """Start additional ipengine containers on the stack's network; removed afterwards.

    The returned function takes the container's environment as keyword arguments, and
    ``nano_cpus`` (default one CPU).
    """
    started: list[Container] = []

    def start(nano_cpus: int = 1_000_000_000, **environment: str) -> Container:
        container = start_engine(docker_client, stack, environment, nano_cpus)
        started.append(container)
        return container

    yield start
    for container in started:
        remove_engine(container)
