"""A compose stack for the cluster benchmarks (``bench/bench_cluster_*.py``).

With a project name, the benchmarks use that running stack (``make up`` names its stack
``aci-research``). Without one they start a private stack under a project name of their own,
with fresh secrets and a free notebook port, and remove it with its volumes afterwards, like
the integration tests' ``stack`` fixture.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
from docker.models.containers import Container

from deployer.localstack import ensure_env_file, wait_for_stack
from testbed.engine import COMPOSE_FILE, StackError, compose_command, free_port


@contextlib.contextmanager
def cluster_stack(project: str | None, timeout: float = 240) -> Iterator[str]:
    """Yield the name of a healthy compose project: ``project``, or a private one.

    Args:
        project (str | None): A running stack to use; None starts (and removes) a private one.
        timeout (float): Seconds to wait for the private stack to become healthy.
    """
    if project:
        yield project
        return
    name = f"acibench{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="acibench-") as tmp:
        env = Path(tmp) / ".env"
        ensure_env_file(env)
        with env.open("a", encoding="utf-8") as fh:
            fh.write(f"NOTEBOOK_PORT={free_port()}\nWEB_PORT={free_port()}\n")
        compose = [
            *compose_command(),
            "--env-file",
            str(env),
            "-f",
            str(COMPOSE_FILE),
            "-p",
            name,
        ]
        print(f"starting a private stack {name} (use --project to reuse a running one)")
        try:
            subprocess.run([*compose, "up", "-d"], check=True, capture_output=True)
            lines: list[str] = []
            if not wait_for_stack(name, timeout, report=lines.append):
                raise StackError("the stack did not become healthy:\n" + "\n".join(lines[-5:]))
            yield name
        finally:
            subprocess.run([*compose, "down", "-v", "--remove-orphans"], capture_output=True)


def service(project: str, name: str) -> Container:
    """The first container of a compose service.

    Args:
        project (str): The compose project name.
        name (str): The service name.
    """
    client = docker.from_env()
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={name}"]
    containers = client.containers.list(filters={"label": labels}, ignore_removed=True)
    if not containers:
        raise StackError(f"project {project} has no running {name} container: is it up?")
    return containers[0]


def run_python(container: Container, code: str, timeout: int = 900) -> str:
    """Run a Python script in a container and return its output; exit on failure.

    Args:
        container (Container): A running container.
        code (str): The script.
        timeout (int): Seconds before the script is killed.
    """
    result = container.exec_run(["timeout", str(timeout), "python", "-c", code])
    output = str(result.output.decode(errors="replace"))
    if result.exit_code != 0:
        sys.exit(f"the benchmark script failed ({result.exit_code}):\n{output[-3000:]}")
    return output
