"""The ``deployer build`` test bed: the fake ACR (runs in the fake ARM server, pushing to a
registry data plane), Debian's ``docker-registry`` on loopback, and a tree of tiny images
shaped like the project's (base with a ``builder`` target, children FROM ``BASE_IMAGE``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from aci_emulator import FakeArm, FakeRegistry
from testbed.engine import free_port


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


@contextlib.contextmanager
def distribution_registry(work: Path, timeout: float = 30) -> Iterator[str]:
    """A distribution registry (Debian's ``docker-registry``) on 127.0.0.1; yields its server.

    Args:
        work: A folder for its configuration, storage and log.
        timeout: Seconds to wait for it to answer.

    Raises:
        RuntimeError: It is not installed, or did not start (the message holds its log).
    """
    exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not os.path.exists(exe):
        raise RuntimeError("docker-registry not found: `apt-get install docker-registry`")
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 0.1
            log: {{level: warn}}
            storage:
              filesystem: {{rootdirectory: {work / "registry-data"}}}
              delete: {{enabled: true}}
            http: {{addr: "127.0.0.1:{port}"}}
            """
        )
    )
    with (work / "registry.log").open("wb") as log:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
        server = f"127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"http://{server}/v2/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(
                    f"docker-registry did not start: {(work / 'registry.log').read_text()}"
                )
            time.sleep(0.1)
        try:
            yield server
        finally:
            proc.terminate()
            proc.wait(10)


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


def write_mini_images(
    root: Path, child_dockerfile: str = CHILD_DOCKERFILE, hello: str = "hello\n"
) -> Path:
    """Write a tiny ``images/`` tree shaped like the project's; return ``root``.

    Args:
        root: The ``images`` folder to write.
        child_dockerfile: The Dockerfile of every child image.
        hello: The text each child copies in (``hello.txt``).
    """
    (root / "base").mkdir(parents=True, exist_ok=True)
    (root / "base" / "Dockerfile").write_text(BASE_DOCKERFILE)
    (root / "base" / ".dockerignore").write_text("*\n!Dockerfile\n")
    names = ("ipcontroller", "ipengine", "notebook", "blast-worker")
    catalogue = [
        '[[image]]\nname = "base-builder"\nfolder = "base"\ntarget = "builder"\nservice = false\n',
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
