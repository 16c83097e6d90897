"""Fixtures for the Docker integration tests: the built images and the compose stack.

Every test below this folder is marked ``docker``. They need a running Docker
engine and the images from ``make build``; without them they fail (they never
skip), since ``make test`` builds the images first and CI starts the engine.

The stack runs under its own compose project with its own secrets (a temporary
env file) and a free notebook port, so it does not disturb a stack started by
``make up``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer.localstack import (
    ensure_env_file,
    read_env_file,
    read_secret_files,
    secrets_dir_for,
    wait_for_stack,
)
from testbed.engine import (
    COMPOSE_FILE,
    COMPOSE_STACK_GROUP,
    IMAGE_PREFIX,
    STACK_TIMEOUT,
    TAG,
    ImageRunner,
    free_port,
    image,
)

# The compose file names Azurite by AZURITE_IMAGE (docker-compose 1.29 has no nested
# defaults for IMAGE_PREFIX/TAG there): stacks of these tests run this TAG's Azurite.
os.environ.setdefault("AZURITE_IMAGE", image("azurite"))


# `make test` runs these tests in two processes (pytest-xdist, --dist loadgroup). Tests that share
# a session's fixtures must stay in one process: the compose stack (this folder's `stack`) and
# each subfolder's own stack. So every test gets the group of the session it belongs to.
def uses_compose_stack(item: pytest.Item) -> bool:
    """The test asks for this folder's `stack` (blast/ and run/ define stacks of their own)."""
    info = getattr(item, "_fixtureinfo", None)
    chain = list(info.name2fixturedefs.get("stack", ())) if info is not None else []
    return bool(chain) and chain[-1].func.__module__ == __name__


BY_MODULE = {"run"}
"""Subfolders whose modules share no stack: each module starts its own (``run_stack`` is
module-scoped), so each module is a group of its own and they spread over the processes."""


def session_group(item: pytest.Item, here: Path) -> str:
    """The process group of an integration test: the stack's, else its subfolder (or the
    subfolder and module, :data:`BY_MODULE`) or file."""
    relative = Path(str(item.fspath)).relative_to(here)
    # cluster/ orders all its tests after the stack's others (cluster/conftest.py).
    if uses_compose_stack(item) or relative.parts[0] == "cluster":
        return COMPOSE_STACK_GROUP
    if relative.parts[0] in BY_MODULE:
        return f"{relative.parts[0]}-{relative.stem}"
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


# First: xdist's own hook of this name turns each `xdist_group` mark into the test's process
# group, so the marks must be there before it runs (a plain conftest hook runs after it).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``docker`` and give it its process group; the stack's
    log test goes first, before any test disturbs the cluster (engines added, killed); the
    unit tests go last.

    xdist hands out the groups with the most tests first, then the single tests in this order:
    the slow ones (a bench's smoke, a run module of one test) first and the quick unit tests
    last, so the processes end together instead of one waiting on a late long test.
    """
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)
            if not any(m.name == "xdist_group" for m in item.iter_markers()):
                item.add_marker(pytest.mark.xdist_group(session_group(item, here)))
    first = [item for item in items if Path(str(item.fspath)) == here / "test_stack.py"]
    rest = [item for item in items if item not in first]
    at = next((i for i, item in enumerate(rest) if here in Path(str(item.fspath)).parents), 0)
    ordered = rest[:at] + first + rest[at:]
    unit = here.parent / "unit"
    quick = [item for item in ordered if unit in Path(str(item.fspath)).parents]
    items[:] = [item for item in ordered if unit not in Path(str(item.fspath)).parents] + quick


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run a test process whose groups did not take: its tests would share
    stacks with tests in the other process (xdist appends ``@<group>`` to each grouped
    test's id; pytest 9.2 ignores that, see pyproject.toml)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [
        i.nodeid
        for i in session.items
        if i.get_closest_marker("xdist_group") and "@" not in i.nodeid
    ]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup did not group {len(lost)} tests (e.g. {lost[0]}): "
            "pytest-xdist cannot set their group with this pytest; run `make venv`"
        )


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


@pytest.fixture(scope="session")
def run_image(docker_client: docker.DockerClient) -> Iterator[object]:
    """Run an image to completion, like docker-stacks' TrackedContainer; see ``ImageRun``."""
    runner = ImageRunner(docker_client)
    yield runner
    runner.remove_all()


# --- local ACI emulator (area: emulator/aci_emulator/runtime) --------------------------
# `aci_emulator` yields a started aci_emulator.FakeArm in emulator mode: every group it
# accepts runs as real containers from the local IMAGE_PREFIX/*:TAG images, on a Docker
# network of its own; groups reach it at the same URL as the host (`aci_emulator.url`,
# forwarded inside each group). `aci_emulator_client` is a real ACI SDK client on it;
# `strict_emulator` is the strict mode the deployer's tests use: groups pull their exact
# images from a real registry (`pushed_images`, a copy of the stored push);
# `emulator_deployer_env` points the deployer (in-process and subprocesses) at it.
# Knobs: `aci_emulator.aci.evict(rg, name)`, `.set_quota(loc, cores=)`, `.refuse_spot()`,
# `.docker_ids(rg, name)`, `aci_emulator.faults.script(429, ...)`. README: emulator/.
from azure.mgmt.containerinstance import ContainerInstanceManagementClient  # noqa: E402

from aci_emulator import EmulatorSettings, FakeArm, aci_client  # noqa: E402
from testbed.registry import PushedRegistry, registry_with_pushed_images  # noqa: E402
from testbed.run_stack import RUN_IMAGES, emulator_env  # noqa: E402


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


EXAMPLE_REGISTRY = "aciresearch.azurecr.io"
"""The registry the examples name; the strict emulator stands its registry in for it."""


@pytest.fixture(scope="session")
def pushed_images() -> Iterator[PushedRegistry]:
    """The real registry the strict emulator pulls from, holding this build's images (pushed
    once per machine and build, then copied: see :mod:`testbed.registry`)."""
    with registry_with_pushed_images(RUN_IMAGES) as pushed:
        yield pushed


@pytest.fixture
def strict_emulator(
    azure_specs: Path, docker_client: docker.DockerClient, pushed_images: PushedRegistry
) -> Iterator[FakeArm]:
    """The emulator in strict mode: each group pulls its exact images, with its registry
    credentials, from :func:`pushed_images`, which stands for :data:`EXAMPLE_REGISTRY` and
    for itself (a workload may name it, ``127.0.0.1:<port>``, as ``deployer build --local``
    pushes to the workload's registry)."""
    server = pushed_images.registry.server
    settings = pushed_images.settings((EXAMPLE_REGISTRY, server))
    with FakeArm(emulate=settings, listen_for_containers=True) as arm:
        yield arm


@pytest.fixture
def emulator_deployer_env(
    strict_emulator: FakeArm,
    pushed_images: PushedRegistry,
    deployer_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Point the deployer at :func:`strict_emulator`; return the environment for subprocesses.

    The deployer pins ``TAG`` and checks and deploys ``aciresearch.azurecr.io/<name>:TAG``
    with the registry's admin user (:data:`testbed.fake_arm.REGISTRY_ADMIN`); the groups
    pull exactly those from :func:`pushed_images`.

    Args:
        strict_emulator (FakeArm): The running emulator.
        pushed_images (PushedRegistry): The registry it pulls from.
        deployer_env (dict[str, str]): The isolated deployer environment.
        monkeypatch (pytest.MonkeyPatch): Sets the variables for in-process calls.
    """
    env = {
        **deployer_env,
        **emulator_env(
            strict_emulator,
            Path(deployer_env["DEPLOYER_STATE_DIR"]).parent,
            pushed_images.registry.server,
        ),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


# --- end of local ACI emulator section -------------------------------------------------
