"""The local compose stack: health, cluster size, notebook auth, exposure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest

from deployer.localstack import (
    ensure_env_file,
    read_secret_files,
    secrets_dir_for,
    wait_for_stack,
)
from testbed.engine import COMPOSE_FILE, STACK_TIMEOUT, exec_text, free_port, project_containers
from testbed.lockdown import assert_locked_down

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
        "blast-web",
    }
    for name, container in services.items():
        container.reload()
        state = container.attrs["State"]
        if name == "init":
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), container.logs()[-2000:]
        else:
            assert state["Health"]["Status"] == "healthy", name


# Upstream notices expected by design: engines reach the controller through
# the SSH tunnel, so ZMQ's own CurveZMQ encryption is off, and ipengine does
# not wire up ipykernel's debugger.
EXPECTED_NOTICES = ("Not using CurveZMQ security", "debugpy_stream undefined")
# A heartbeat late by more than its period says the machine starved the processes (seen at load
# 20 on 2 cores), not that the service is wrong. An engine that really lost its controller
# logs "Maximum number of heartbeats misses reached" at CRITICAL, which still fails below, and
# the tests after this one ask every engine to answer.
MISSED_HEARTBEAT = re.compile(
    r"WARNING \| No heartbeat in the last \d+ ms \(\d+ time\(s\) in a row\)"
)
# Our scripts' and Python's level names, JSON log levels, and Jupyter's "[W 2026-..." form.
WARNING_LINE = re.compile(r"\bWARNING\b|^\[W \d")
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|^\[[EC] \d")


def test_service_logs_have_no_warnings_or_errors(
    docker_client: docker.DockerClient, stack: str
) -> None:
    # Runs before the tests that provoke refusals (a wrong token logs a warning).
    for container in project_containers(docker_client, stack):
        name = container.labels["com.docker.compose.service"]
        logs = container.logs().decode(errors="replace")
        lines = [
            ln
            for ln in logs.splitlines()
            if not any(n in ln for n in EXPECTED_NOTICES) and not MISSED_HEARTBEAT.search(ln)
        ]
        assert [ln for ln in lines if WARNING_LINE.search(ln)] == [], name
        assert [ln for ln in lines if ERROR_LINE.search(ln)] == [], name
        assert "Traceback" not in logs, name


def test_registered_engines_equal_replicas(docker_client: docker.DockerClient, stack: str) -> None:
    engines = project_containers(docker_client, stack, "ipengine")
    assert len(engines) == ENGINE_REPLICAS
    (notebook,) = project_containers(docker_client, stack, "notebook")
    # Asked from a client inside the notebook container, as a user would. Every registered
    # engine must answer (a stale registration would time out), from one container each.
    code, out = exec_text(
        notebook,
        [
            "python",
            "-c",
            "import socket, ipyparallel as ipp; rc = ipp.Client(); "
            f"rc.wait_for_engines({ENGINE_REPLICAS}, timeout=60); "
            "hosts = rc[:].apply_async(socket.gethostname).get(timeout=60); "
            "print('ENGINES', len(rc.ids), ' '.join(sorted(hosts)))",
        ],
    )
    assert code == 0, out
    words = out.splitlines()[-1].split()
    assert words[:2] == ["ENGINES", str(ENGINE_REPLICAS)], out
    assert sorted(words[2:]) == sorted(e.attrs["Config"]["Hostname"] for e in engines), out


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


def test_only_the_notebook_and_the_blast_page_are_published_on_loopback(
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
    assert sorted(published) == [
        ("blast-web", "8080/tcp", "127.0.0.1", stack_secrets["WEB_PORT"]),
        ("ipcontroller", "8888/tcp", "127.0.0.1", stack_secrets["NOTEBOOK_PORT"]),
    ]


def test_the_other_compose_version_runs_the_stack_too(
    docker_compose_command: str, docker_compose_project_name: str, tmp_path: Path
) -> None:
    """The session stack runs under one Compose (v2 when present); this one starts
    the same file under the other, since the file must work with both."""
    other = (
        ["docker-compose"]
        if docker_compose_command.startswith("docker compose")
        else ["docker", "compose"]
    )
    probe = subprocess.run([*other, "version"], capture_output=True)
    if probe.returncode != 0:
        message = f"{' '.join(other)} is not installed: the stack ran under one Compose only"
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run installs both)")
        pytest.skip(message)
    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    with env_file.open("a", encoding="utf-8") as fh:
        fh.write(f"NOTEBOOK_PORT={free_port()}\nWEB_PORT={free_port()}\n")
    project = f"{docker_compose_project_name}alt"
    compose = [*other, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "-p", project]
    try:
        up = subprocess.run([*compose, "up", "-d"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]
        lines: list[str] = []
        assert wait_for_stack(project, STACK_TIMEOUT, report=lines.append), "\n".join(lines)
        # Secrets are mounted differently by each Compose (bind mounts in v1.29).
        files = read_secret_files(secrets_dir_for(env_file))
        secrets = {k.upper(): v for k, v in files.items()}
        checked = assert_locked_down(docker.from_env(), project, secrets)
        assert len(set(checked)) == 7, checked  # every service, the BLAST page too
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--remove-orphans"], capture_output=True, timeout=300
        )
