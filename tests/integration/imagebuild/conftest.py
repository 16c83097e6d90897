"""Fixtures of the ``deployer build`` tests: Azurite, the fake ACR, a loopback registry
and a tree of tiny images.

* ``azurite``: one private Azurite container (``aci-research/azurite``) per session;
  see :mod:`tests.fakearm.azurite`.
* ``fake_acr``: ``fake_arm`` with its ACR runs provider wired to Azurite and to a
  :class:`~tests.fakearm.acr.FakeRegistry` data plane; the deployer points at it.
* ``local_registry``: Debian's ``docker-registry`` (the distribution registry) on
  127.0.0.1 and a free port, with its storage in a temporary folder.
* ``mini_images``: an ``images/`` tree shaped like the project's (base with a
  ``builder`` target, children FROM ``BASE_IMAGE``), with two-line Dockerfiles.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.fakearm import FakeArm
from tests.fakearm.acr import FakeRegistry
from tests.fakearm.azurite import AzuriteContainer


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteContainer]:
    """A private Azurite blob service for the session."""
    try:
        container = AzuriteContainer().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield container
    container.stop()


@dataclass
class FakeAcr:
    """The fake ARM server with ACR runs, and the registry data plane it pushes to."""

    arm: FakeArm
    registry: FakeRegistry
    name: str = "fakeacr"

    @property
    def server(self) -> str:
        """Login server of the fake registry (``127.0.0.1:<port>``)."""
        return self.registry.server


@pytest.fixture
def fake_acr(
    fake_arm: FakeArm, deployer_arm: dict[str, str], azurite: AzuriteContainer
) -> Iterator[FakeAcr]:
    """Fake ACR: runs in ``fake_arm``, logs and sources in Azurite, pushes to a fake registry."""
    registry = FakeRegistry().start()
    fake_arm.acr.storage = azurite.connection_string
    fake_arm.acr.registry = registry
    yield FakeAcr(fake_arm, registry)
    fake_arm.acr.join()
    registry.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    """A distribution registry (Debian's ``docker-registry``) on 127.0.0.1; yields its server."""
    exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not os.path.exists(exe):
        pytest.fail("docker-registry not found: `apt-get install docker-registry`")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 0.1
            log: {{level: warn}}
            storage:
              filesystem: {{rootdirectory: {tmp_path / "registry-data"}}}
              delete: {{enabled: true}}
            http: {{addr: "127.0.0.1:{port}"}}
            """
        )
    )
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
    server = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://{server}/v2/", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"docker-registry did not start: {(tmp_path / 'registry.log').read_text()}")
        time.sleep(0.1)
    yield server
    proc.terminate()
    proc.wait(10)
    log.close()


BASE_DOCKERFILE = """\
ARG BASE_IMAGE=debian:trixie-slim
FROM $BASE_IMAGE AS runtime
LABEL stage=runtime
FROM runtime AS builder
LABEL stage=builder
FROM runtime
"""
CHILD_DOCKERFILE = """\
ARG BASE_IMAGE=aci-research/base:latest
FROM $BASE_IMAGE
COPY hello.txt /hello.txt
"""


@pytest.fixture
def mini_images(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny ``images/`` tree: a function ``(child_dockerfile=..., hello=...) -> dir``."""

    def make(child_dockerfile: str = CHILD_DOCKERFILE, hello: str = "hello\n") -> Path:
        root = tmp_path / "repo" / "images"
        (root / "base").mkdir(parents=True, exist_ok=True)
        (root / "base" / "Dockerfile").write_text(BASE_DOCKERFILE)
        (root / "base" / ".dockerignore").write_text("*\n!Dockerfile\n")
        names = ("ipcontroller", "ipengine", "notebook", "blast-worker")
        catalogue = [
            '[[image]]\nname = "base-builder"\nfolder = "base"\ntarget = "builder"\n'
            "service = false\n",
            '[[image]]\nname = "base"\nservice = false\n',
        ] + [
            f'[[image]]\nname = "{name}"\n'
            'args = { BASE_IMAGE = "base", BUILDER_IMAGE = "base-builder" }\n'
            for name in names
        ]
        (root / "images.toml").write_text("\n".join(catalogue))
        for name in names:
            folder = root / name
            (folder / "build-ca").mkdir(parents=True, exist_ok=True)
            (folder / "Dockerfile").write_text(child_dockerfile)
            (folder / "hello.txt").write_text(f"{name}: {hello}")
            (folder / "notes.md").write_text("ignored")
            (folder / ".dockerignore").write_text("*\n!Dockerfile\n!hello.txt\n!build-ca/\n")
        return root

    return make


@pytest.fixture
def build_workload(workload_file: Callable[..., Path]) -> Callable[[str], Path]:
    """Write a minimal workload file naming ``registry``; returns its path."""

    def make(registry: str) -> Path:
        return workload_file(
            f"""
            deployment:
              name: buildtest
              location: westeurope
              registry: "{registry}"
              registry_auth: admin
            workloads:
              ipyparallel:
                engines: 1
            """,
            "build.yaml",
        )

    return make
