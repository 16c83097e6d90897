"""The local compose stack: health, cluster size, notebook auth, exposure."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import docker

from tests.integration.conftest import exec_text, project_containers

ENGINE_REPLICAS = 2


def test_every_service_becomes_healthy(docker_client: docker.DockerClient, stack: str) -> None:
    services = {
        c.labels["com.docker.compose.service"]: c for c in project_containers(docker_client, stack)
    }
    assert set(services) == {
        "azurite",
        "init",
        "ipcontroller",
        "notebook",
        "ipengine",
        "blast-worker",
    }
    for name, container in services.items():
        container.reload()
        state = container.attrs["State"]
        if name == "init":
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), container.logs()[-2000:]
        else:
            assert state["Health"]["Status"] == "healthy", name


def test_registered_engines_equal_replicas(docker_client: docker.DockerClient, stack: str) -> None:
    engines = project_containers(docker_client, stack, "ipengine")
    assert len(engines) == ENGINE_REPLICAS
    (notebook,) = project_containers(docker_client, stack, "notebook")
    # Asked from a client inside the notebook container, as a user would.
    code, out = exec_text(
        notebook,
        [
            "python",
            "-c",
            "import ipyparallel as ipp; rc = ipp.Client(); "
            f"rc.wait_for_engines({ENGINE_REPLICAS}, timeout=60); "
            "import time; time.sleep(3); print('ENGINES', len(rc.ids))",
        ],
    )
    assert code == 0, out
    assert f"ENGINES {ENGINE_REPLICAS}" in out.splitlines()[-1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_notebook_requires_the_token(stack: str, stack_secrets: dict[str, str]) -> None:
    base = f"http://127.0.0.1:{stack_secrets['NOTEBOOK_PORT']}/api/contents"
    assert _get(base) == 403
    assert _get(f"{base}?token=wrong-{stack_secrets['NOTEBOOK_TOKEN']}") == 403
    assert _get(f"{base}?token={stack_secrets['NOTEBOOK_TOKEN']}") == 200


def test_blast_worker_is_healthy_and_idle(docker_client: docker.DockerClient, stack: str) -> None:
    (worker,) = project_containers(docker_client, stack, "blast-worker")
    code, out = exec_text(worker, ["/usr/local/bin/healthcheck"])
    assert code == 0, out
    status = json.loads(out.strip().splitlines()[-1])
    assert status["state"] == "idle"
    assert status["status"] == "ok"


def test_only_the_notebook_is_published_on_loopback(
    docker_client: docker.DockerClient, stack: str, stack_secrets: dict[str, str]
) -> None:
    published = []
    for container in project_containers(docker_client, stack):
        container.reload()
        for port, bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).items():
            for binding in bindings or []:
                published.append(
                    (
                        container.labels["com.docker.compose.service"],
                        port,
                        binding["HostIp"],
                        binding["HostPort"],
                    )
                )
    assert published == [("ipcontroller", "8888/tcp", "127.0.0.1", stack_secrets["NOTEBOOK_PORT"])]
