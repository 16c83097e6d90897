"""The ipyparallel cluster of a compose stack, for the cluster tests and benches: its services'
containers, a Python runner inside the notebook container, the engines the hub lists, extra
engine containers with chosen credentials, and an engine container's health report.

The tests share the session's compose stack with the other integration tests, so every test
leaves it as it found it: the same number of engine containers, all healthy, and exactly that
many engines registered (:func:`cluster_settled`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from testbed.engine import exec_text, image, project_containers

ENGINE_REPLICAS = 2


SECURITY = "/srv/ipython/profile_default/security"


# The start of a client script (run in the notebook container, formatted with ``ranks``, the
# health report's rank -> engine id map) that makes ``view``: the MPI world's engines in rank
# order, once the hub lists them.
WORLD_VIEW = """
import json, sys, time
import ipyparallel as ipp
def stage(what):  # on stderr: a script that times out shows how far it got
    print(f"{{time.strftime('%H:%M:%S')}} {{what}}", file=sys.stderr, flush=True)
rc = ipp.Client()
ranks = {ranks!r}
stage(f"connected; the hub lists {{rc.ids}}; the world is {{ranks}}")
# The hub lists an engine once its first heartbeat arrives, shortly after registration.
while not set(ranks.values()) <= set(rc.ids):
    time.sleep(0.5)
view = rc[[ranks[str(r)] for r in range(len(ranks))]]
view.block = True
stage(f"listed: {{rc.ids}}")
"""


def one(client: docker.DockerClient, project: str, service: str) -> Container:
    """The single container of a compose service.

    Args:
        client (docker.DockerClient): The Docker client.
        project (str): The compose project name.
        service (str): The service name, e.g. ``ipcontroller``.
    """
    containers = project_containers(client, project, service)
    assert len(containers) == 1, f"expected one {service} container, found {len(containers)}"
    return containers[0]


def python_in(container: Container, code: str, timeout: float = 300) -> Any:
    """Run Python in a container and return the JSON it printed last.

    The script runs under ``timeout`` (coreutils) so a hung cluster fails the test instead of
    blocking it. Output is stdout and stderr combined, so the last line that parses as JSON
    is taken (libraries may log to stderr after it).

    Args:
        container (Container): A running container with Python and coreutils.
        code (str): The script; it prints its result as one line of JSON.
        timeout (float): Seconds before the script is killed.
    """
    code_, out = exec_text(container, ["timeout", str(int(timeout)), "python", "-c", code])
    assert code_ == 0, f"the script failed ({code_}):\n{out[-4000:]}"
    for line in reversed(out.strip().splitlines()):
        if line[:1] in "{[":
            with contextlib.suppress(ValueError):
                return json.loads(line)
    raise AssertionError(f"the script printed no JSON:\n{out[-4000:]}")


def registered_engines(notebook: Container) -> list[int]:
    """The engine ids the hub lists now, asked from the notebook container.

    Args:
        notebook (Container): The notebook container (beside the controller).
    """
    ids: list[int] = python_in(
        notebook,
        "import json, ipyparallel as ipp; rc = ipp.Client(); print(json.dumps(rc.ids)); rc.close()",
        timeout=60,
    )
    return ids


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 2) -> None:
    """Poll ``check`` until it is true; fail the test saying ``what`` when it never is.

    Args:
        check (Callable[[], bool]): The condition.
        timeout (float): Seconds to wait.
        what (str): What is awaited, for the failure message.
        interval (float): Seconds between polls.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def cluster_settled(client: docker.DockerClient, project: str, notebook: Container) -> bool:
    """True when every engine container is healthy and the hub lists one engine per container
    (a killed engine's registration is gone and its replacement has registered).

    Args:
        client (docker.DockerClient): The Docker client.
        project (str): The compose project name.
        notebook (Container): The notebook container.
    """
    engines = project_containers(client, project, "ipengine")
    for container in engines:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") != "healthy":
            return False
    try:
        ids = registered_engines(notebook)
    except AssertionError:  # no hub to ask (the controller or this client is restarting)
        return False
    return len(ids) == len(engines) == ENGINE_REPLICAS


def start_engine(
    client: docker.DockerClient,
    stack: str,
    environment: dict[str, str],
    nano_cpus: int = 1_000_000_000,
    restart: bool = False,
) -> Container:
    """Start an ipengine container on the stack's network, beside the stack's own engines.

    Like the stack's engines, it sees the controller's security volume read-only.

    Args:
        client (docker.DockerClient): The Docker client.
        stack (str): The compose project name.
        environment (dict[str, str]): Its environment, over one engine and a 30 s wait
            for the connection file.
        nano_cpus (int): CPUs in billionths. Default: one CPU.
        restart (bool): Restart it when it exits, like the stack's engines
            (``unless-stopped``). Default: False.
    """
    networks = [n.name for n in client.networks.list(names=[f"{stack}_default"])]
    assert networks, f"the stack's network {stack}_default does not exist"
    return client.containers.run(
        image("ipengine"),
        detach=True,
        network=networks[0],
        environment={"IPP_ENGINES_PER_CONTAINER": "1", "IPP_WAIT": "30", **environment},
        volumes={f"{stack}_ipp-security": {"bind": SECURITY, "mode": "ro"}},
        labels={"aci-research.test": "cluster"},
        nano_cpus=nano_cpus,
        restart_policy={"Name": "unless-stopped"} if restart else None,
    )


def remove_engine(container: Container) -> None:
    """Stop and remove an engine container started by :func:`start_engine`.

    Args:
        container (Container): The container.
    """
    with contextlib.suppress(docker.errors.NotFound):
        # SIGTERM first, so the engines stop cleanly. They do not unregister: the hub lists
        # them until its heartbeat gives up on them (about 30 s).
        container.stop(timeout=10)
        container.remove(force=True, v=True)


def logs_since(container: Container, since: float) -> str:
    """A container's log lines written since an epoch time.

    Args:
        container (Container): The container.
        since (float): Epoch seconds.
    """
    raw: bytes = container.logs(since=int(since))
    return raw.decode(errors="replace")


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
