"""Fixtures of the ``deployer build`` tests: Azurite, the fake ACR, a loopback registry
and a tree of tiny images (the helpers are :mod:`testbed.imagebuild`).

* ``azurite``: one private Azurite container (``aci-research/azurite``) per session;
  see :mod:`aci_emulator.azurite`.
* ``fake_acr``: ``fake_arm`` with its ACR runs provider wired to Azurite and to a
  :class:`~aci_emulator.FakeRegistry` data plane; the deployer points at it.
* ``local_registry``: Debian's ``docker-registry`` (the distribution registry) on
  127.0.0.1 and a free port, with its storage in a temporary folder.
* ``mini_images``: an ``images/`` tree shaped like the project's (base with a
  ``builder`` target, children FROM ``BASE_IMAGE``), with two-line Dockerfiles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aci_emulator import FakeArm, FakeRegistry
from aci_emulator.azurite import AzuriteContainer
from testbed.imagebuild import CHILD_DOCKERFILE, FakeAcr, distribution_registry, write_mini_images


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteContainer]:
    """A private Azurite blob service for the session."""
    try:
        container = AzuriteContainer().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield container
    container.stop()


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


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    """A distribution registry (Debian's ``docker-registry``) on 127.0.0.1; yields its server."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(distribution_registry(tmp_path))
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server


@pytest.fixture
def mini_images(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny ``images/`` tree: a function ``(child_dockerfile=..., hello=...) -> dir``."""

    def make(child_dockerfile: str = CHILD_DOCKERFILE, hello: str = "hello\n") -> Path:
        return write_mini_images(tmp_path / "repo" / "images", child_dockerfile, hello)

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
