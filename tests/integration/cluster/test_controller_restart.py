"""A controller restart: the same ports and key (reused connection files), the engines notice
it is gone, exit and come back registered, and the notebook rejoins its network namespace.

It disrupts the whole cluster for about a minute, so the folder's conftest runs it last.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import docker
import pytest
from docker.models.containers import Container

from testbed.cluster import ENGINE_REPLICAS, SECURITY, cluster_settled, wait_until
from testbed.engine import exec_text, project_containers

FILES = ("ipcontroller-engine.json", "ipcontroller-client.json")


def connection_files(controller: Container) -> dict[str, dict[str, object]]:
    """The controller's connection files, parsed.

    Args:
        controller (Container): The controller container.
    """
    files = {}
    for name in FILES:
        code, text = exec_text(controller, ["cat", f"{SECURITY}/{name}"])
        assert code == 0, text
        files[name] = json.loads(text)
    return files


def restart_counts(client: docker.DockerClient, project: str, service: str) -> list[int]:
    """How often Docker restarted each container of a service.

    Args:
        client (docker.DockerClient): The Docker client.
        project (str): The compose project name.
        service (str): The service name.
    """
    counts = []
    for container in project_containers(client, project, service):
        container.reload()
        counts.append(int(container.attrs["RestartCount"]))
    return counts


def http_status(url: str) -> int | None:
    """The status of a GET, or None when nothing answers.

    Args:
        url (str): The address.
    """
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


@pytest.mark.timeout(300)
def test_controller_restart_keeps_ports_and_key_and_the_cluster_recovers(
    docker_client: docker.DockerClient,
    stack: str,
    controller: Container,
    notebook: Container,
    engines: list[Container],
    stack_secrets: dict[str, str],
) -> None:
    before = connection_files(controller)
    engine_restarts = restart_counts(docker_client, stack, "ipengine")
    notebook_restarts = restart_counts(docker_client, stack, "notebook")

    controller.restart(timeout=10)

    # The engines miss 10 heartbeats (35 s), exit and are restarted; the notebook's watchdog
    # restarts it inside the controller's new network namespace after 30 s.
    wait_until(
        lambda: cluster_settled(docker_client, stack, notebook),
        200,
        f"{ENGINE_REPLICAS} engines to register with the restarted controller",
        interval=5,
    )
    assert connection_files(controller) == before, "ports or key changed across the restart"
    assert all(
        now > then
        for now, then in zip(
            restart_counts(docker_client, stack, "ipengine"), engine_restarts, strict=True
        )
    ), "an engine container did not exit when the controller went away"
    assert restart_counts(docker_client, stack, "notebook")[0] > notebook_restarts[0]

    # The front door is back on the published port, token still required.
    base = f"http://127.0.0.1:{stack_secrets['NOTEBOOK_PORT']}/api/kernels"
    wait_until(lambda: http_status(base) == 403, 60, "the notebook to answer again")
    assert http_status(f"{base}?token={stack_secrets['NOTEBOOK_TOKEN']}") == 200
