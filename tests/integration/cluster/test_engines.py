"""Engines per container: one per CPU available to the container by default (compose sets
``IPP_ENGINES_PER_CONTAINER=1`` explicitly), all registered through the tunnel."""

from __future__ import annotations

import json
from collections.abc import Callable

import docker
import pytest
from docker.models.containers import Container

from tests.integration.cluster.conftest import (
    ENGINE_REPLICAS,
    registered_engines,
    wait_until,
)
from tests.integration.conftest import exec_text


def health(container: Container) -> dict[str, object]:
    """The engine supervisor's health report, or an empty dict while it is unhealthy (or
    not running: a container that exited waits a moment to be restarted).

    Args:
        container (Container): An engine container.
    """
    try:
        code, out = exec_text(container, ["/usr/local/bin/healthcheck"])
    except docker.errors.APIError:  # 409: the container is restarting or not running
        return {}
    if code != 0:
        return {}
    report: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return report


@pytest.mark.timeout(180)
def test_engines_per_container_default_to_the_cpus(
    extra_engine: Callable[..., Container],
    notebook: Container,
    engines: list[Container],
    stack_secrets: dict[str, str],
) -> None:
    expected = 2
    container = extra_engine(
        IPP_ENGINES_PER_CONTAINER="",  # unset: one engine per CPU of the container
        IPP_SSH_KEY=stack_secrets["IPP_SSH_KEY"],
        IPP_SSH_KNOWN_HOSTS=stack_secrets["IPP_SSH_KNOWN_HOSTS"],
        nano_cpus=expected * 1_000_000_000,
    )
    wait_until(lambda: health(container).get("status") == "ok", 90, "the engines to register")
    report = health(container)
    assert report["engines"] == report["registered"] == expected
    ids = report["ids"]
    assert isinstance(ids, list) and len(ids) == expected
    # The hub lists an engine once its first heartbeat arrives, shortly after registration.
    wait_until(
        lambda: set(ids) <= set(registered_engines(notebook)), 30, "the hub to list the engines"
    )

    # Leave the cluster as it was. ipengine does not unregister on SIGTERM: the hub drops
    # the engines when their heartbeats stop (10 misses of 3 s).
    container.stop(timeout=20)
    wait_until(
        lambda: len(registered_engines(notebook)) == ENGINE_REPLICAS,
        90,
        "the hub to drop the stopped container's engines",
    )
    assert not set(ids) & set(registered_engines(notebook))
