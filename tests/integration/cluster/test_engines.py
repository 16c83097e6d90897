"""Engines per container: one per CPU available to the container by default (compose sets
``IPP_ENGINES_PER_CONTAINER=1`` explicitly), all registered through the tunnel."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from docker.models.containers import Container

from testbed.cluster import ENGINE_REPLICAS, health, registered_engines, wait_until

LISTENING = (
    "import sys\n"
    "for line in open('/proc/net/tcp').readlines()[1:]:\n"
    "    local, state = line.split()[1], line.split()[3]\n"
    "    if state == '0A':\n"
    "        print(int(local.split(':')[1], 16))\n"
)


def listening(container: Container) -> list[int]:
    """The container's listening TCP ports (IPv4)."""
    code, out = container.exec_run(["python3", "-c", LISTENING])
    assert code == 0, out
    return [int(x) for x in out.decode().split()]


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
    # Each engine's tunnels listen on local ports of its own range (start-ipengines), below the
    # kernel's ephemeral ports: no port another engine, or a connection, took meanwhile.
    tunnels = sorted(p for p in listening(container) if 20000 <= p < 32768)
    assert {(p - 20000) // 100 for p in tunnels} == set(range(expected)), tunnels

    # Leave the cluster as it was. ipengine does not unregister on SIGTERM: the hub drops
    # the engines when their heartbeats stop (10 misses of 3 s).
    container.stop(timeout=20)
    wait_until(
        lambda: len(registered_engines(notebook)) == ENGINE_REPLICAS,
        90,
        "the hub to drop the stopped container's engines",
    )
    assert not set(ids) & set(registered_engines(notebook))
