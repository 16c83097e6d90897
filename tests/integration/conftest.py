"""Fixtures for the Docker integration tests: the built images and the compose stack.

Every test below this folder is marked ``docker``. They need a running Docker
engine and the images from ``make build``; without them they fail (they never
skip), since ``make test`` builds the images first and CI starts the engine.

The stack runs under its own compose project with its own secrets (a temporary
env file) and a free notebook port, so it does not disturb a stack started by
``make up``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from deployer.localstack import (
    ensure_env_file,
    read_env_file,
    read_secret_files,
    secrets_dir_for,
    wait_for_stack,
)

# Shared with the benchmarks; imported from here by the tests below this folder.
from tests.support.engine import IMAGE_PREFIX as IMAGE_PREFIX
from tests.support.engine import TAG as TAG
from tests.support.engine import free_port as free_port
from tests.support.engine import image as image
from tests.support.engine import project_containers as project_containers

# The compose file names Azurite by AZURITE_IMAGE (docker-compose 1.29 has no nested
# defaults for IMAGE_PREFIX/TAG there): stacks of these tests run this TAG's Azurite.
os.environ.setdefault("AZURITE_IMAGE", image("azurite"))

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
STACK_TIMEOUT = 240.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``docker``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A client of the local Docker engine; fails with the fix when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine answers ({exc}); start dockerd (CI's .ci/run does)")
    return client


@pytest.fixture(scope="session")
def stack_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh env file with random secrets and free notebook and web page ports."""
    path = tmp_path_factory.mktemp("stack") / ".env"
    ensure_env_file(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"NOTEBOOK_PORT={free_port()}\nWEB_PORT={free_port()}\n")
    return path


@pytest.fixture(scope="session")
def stack_secrets(stack_env_file: Path) -> dict[str, str]:
    """The test stack's env file and secret files as one dict, secret files under their
    variable's name (``NOTEBOOK_TOKEN``, ``IPP_SSH_KEY`` ...): for assertions only."""
    files = read_secret_files(secrets_dir_for(stack_env_file))
    return {**read_env_file(stack_env_file), **{k.upper(): v for k, v in files.items()}}


@pytest.fixture(scope="session")
def docker_compose_command(stack_env_file: Path) -> str:
    """Compose v2 when the docker CLI has it, else docker-compose v1, with our env file."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    if not v2 and shutil.which("docker-compose") is None:
        pytest.fail("neither `docker compose` (v2) nor docker-compose (v1.29) is installed")
    base = "docker compose" if v2 else "docker-compose"
    return f'{base} --env-file "{stack_env_file}"'


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """The repository's compose file, the same one ``make up`` runs."""
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    """A project name of our own, so ``make up``'s stack is left alone."""
    return f"acitest{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """Start without building: ``make test`` built the images already."""
    return ["up -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    """Remove the test stack and its volumes."""
    return ["down -v --remove-orphans"]


@pytest.fixture(scope="session")
def stack(docker_services: object, docker_compose_project_name: str) -> str:
    """The running, healthy compose stack; returns its project name."""
    lines: list[str] = []
    if not wait_for_stack(docker_compose_project_name, STACK_TIMEOUT, report=lines.append):
        pytest.fail("the compose stack did not become healthy:\n" + "\n".join(lines))
    return docker_compose_project_name


def exec_text(container: Container, command: list[str]) -> tuple[int, str]:
    """Run a command in a container; return its exit code and combined output.

    Args:
        container (Container): The running container.
        command (list[str]): The command and its arguments.
    """
    result = container.exec_run(command, demux=False)
    return int(result.exit_code), result.output.decode(errors="replace")


@pytest.fixture(scope="session")
def run_image(docker_client: docker.DockerClient) -> Iterator[object]:
    """Run an image to completion, like docker-stacks' TrackedContainer; see ``ImageRun``."""
    runner = ImageRunner(docker_client)
    yield runner
    runner.remove_all()


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
                container.remove(force=True)


# --- local ACI emulator (area: tests/fakearm/emulator.py) ------------------------------
# `aci_emulator` yields a started tests.fakearm.FakeArm in emulator mode: every group it
# accepts runs as real containers from the local IMAGE_PREFIX/*:TAG images, on a Docker
# network of its own; groups reach it at the same URL as the host (`aci_emulator.url`,
# forwarded inside each group). `aci_emulator_client` is a real ACI SDK client on it;
# `emulator_deployer_env` points the deployer (in-process and subprocesses) at it.
# Knobs: `aci_emulator.aci.evict(rg, name)`, `.set_quota(loc, cores=)`, `.refuse_spot()`,
# `.docker_ids(rg, name)`, `aci_emulator.faults.script(429, ...)`. README: tests/fakearm.
from azure.mgmt.containerinstance import ContainerInstanceManagementClient  # noqa: E402

from tests.fakearm import FAKE_TOKEN, EmulatorSettings, FakeArm, aci_client  # noqa: E402

EMULATOR_RESOURCE_GROUP = "research"


@pytest.fixture
def aci_emulator(azure_specs: Path, docker_client: docker.DockerClient) -> Iterator[FakeArm]:
    """A fake ARM server whose container groups are real containers; removed afterwards.

    Args:
        azure_specs (Path): The REST specs (the server validates every body).
        docker_client (docker.DockerClient): Fails the test when no engine answers.
    """
    settings = EmulatorSettings(image_prefix=IMAGE_PREFIX, image_tag=TAG, restart_delay=0.2)
    with FakeArm(emulate=settings, listen_for_containers=True) as arm:
        yield arm


@pytest.fixture
def aci_emulator_client(aci_emulator: FakeArm) -> Iterator[ContainerInstanceManagementClient]:
    """A real ACI management client on :func:`aci_emulator`.

    Args:
        aci_emulator (FakeArm): The running emulator.
    """
    with aci_client(aci_emulator) as client:
        yield client


@pytest.fixture
def emulator_deployer_env(
    aci_emulator: FakeArm, deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the deployer at :func:`aci_emulator`; return the environment for subprocesses.

    Images resolve to the local ``IMAGE_PREFIX/<name>:TAG`` whatever the workload's
    registry; the registry credentials are placeholders the emulator ignores.

    Args:
        aci_emulator (FakeArm): The running emulator.
        deployer_env (dict[str, str]): The isolated deployer environment.
        monkeypatch (pytest.MonkeyPatch): Sets the variables for in-process calls.
    """
    env = {
        **deployer_env,
        "DEPLOYER_ARM_ENDPOINT": aci_emulator.url,
        "DEPLOYER_ACCESS_TOKEN": FAKE_TOKEN,
        "AZURE_SUBSCRIPTION_ID": aci_emulator.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": EMULATOR_RESOURCE_GROUP,
        "DEPLOYER_IMAGE_TAG": TAG,
        "DEPLOYER_REGISTRY_USERNAME": "emulator",
        "DEPLOYER_REGISTRY_PASSWORD": "emulator",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


# --- end of local ACI emulator section -------------------------------------------------
