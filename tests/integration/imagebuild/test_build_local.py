"""``deployer build --local``: the local engine builds, pushes to a real loopback
registry (Debian's docker-registry), and the image comes back by digest."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from deployer import imagebuild
from deployer.cli.main import app
from deployer.imagebuild import images, manifest
from deployer.imagebuild.registry import RegistryClient
from deployer.settings import Overrides
from testbed.registry import refs_under

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
REPO_IMAGES = Path(__file__).resolve().parents[3] / "images"

CA_CHILD = """\
ARG BASE_IMAGE=aci-research/base:latest
ARG BUILDER_IMAGE=aci-research/base-builder:latest
FROM $BUILDER_IMAGE AS builder
COPY build-ca/ /tmp/build-ca/
RUN test -s /tmp/build-ca/extra.crt && grep -c 'BEGIN CERTIFICATE' /tmp/build-ca/extra.crt > /count
FROM $BASE_IMAGE
COPY --from=builder /count /ca-count
COPY hello.txt /hello.txt
"""


def _drop(engine: docker.DockerClient, server: str) -> None:
    """Remove every local tag (and digest reference) under the test registry."""
    for ref in refs_under(engine, server):
        # It may be gone with an earlier reference to the same image.
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(ref, force=True)


@pytest.fixture
def engine(local_registry: str) -> Iterator[docker.DockerClient]:
    """The local engine; removes every image tagged under the test registry afterwards."""
    client = docker.from_env(timeout=600)
    yield client
    _drop(client, local_registry)


def _local_build(
    file: Path, images_dir: Path, names: list[str], tag: str, ca: str | None = None
) -> imagebuild.BuildResult:
    return imagebuild.build(
        file,
        Overrides(),
        imagebuild.BuildOptions(
            local=True, images=names, images_dir=images_dir, tag=tag, extra_ca_certs=ca
        ),
    )


def test_local_build_pushes_to_a_loopback_registry_and_pulls_back_by_digest(
    deployer_env: dict[str, str],
    local_registry: str,
    engine: docker.DockerClient,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images(CA_CHILD)
    file = build_workload(local_registry)
    tag = f"0.1-{uuid.uuid4().hex[:6]}"
    result = _local_build(file, images_dir, ["ipengine"], tag, ca=CA_BUNDLE)
    assert [(i.name, i.status) for i in result.images] == [
        ("base-builder", "succeeded"),
        ("base", "succeeded"),
        ("ipengine", "succeeded"),
    ], [(i.name, i.reason, i.tail) for i in result.images]
    ipengine = result.images[-1]
    assert ipengine.digest and ipengine.digest.startswith("sha256:")
    # The registry serves that digest under the build's tag.
    assert RegistryClient(local_registry).digest("ipengine", tag) == ipengine.digest

    # Drop the local copies, then pull the image back by digest.
    _drop(engine, local_registry)
    by_digest = f"{local_registry}/ipengine@{ipengine.digest}"
    pulled = engine.images.pull(by_digest)
    assert pulled.labels[images.LABEL] == ipengine.build_hash
    out = engine.containers.run(
        pulled.id,
        ["sh", "-c", "cat /hello.txt /ca-count; ls /tmp/build-ca 2>&1 || true"],
        remove=True,
    ).decode()
    assert "ipengine: hello" in out
    # The builder stage saw the injected bundle (many certificates); the final image has none.
    count = int(out.splitlines()[1])
    assert count > 10
    assert "No such file" in out
    # The working tree was not touched: no CA file was written into the context.
    assert not (images_dir / "ipengine" / "build-ca" / "extra.crt").exists()
    built = manifest.load(local_registry)
    assert built is not None and built.images["ipengine"].digest == ipengine.digest
    _drop(engine, local_registry)

    # Unchanged: a second build skips every image and only adds the new tag remotely.
    again = _local_build(file, images_dir, ["ipengine"], tag + "b", ca=CA_BUNDLE)
    assert {i.status for i in again.images} == {"skipped"}
    assert RegistryClient(local_registry).digest("ipengine", tag + "b") == ipengine.digest


def test_cli_local_build_of_a_real_project_image_with_the_extra_ca(
    deployer_env: dict[str, str],
    local_registry: str,
    engine: docker.DockerClient,
    build_workload: Callable[[str], Path],
) -> None:
    """ipcontroller pip-installs through the TLS-intercepting proxy: it needs the CA."""
    file = build_workload(local_registry)
    result = CliRunner().invoke(
        app,
        [
            "build",
            str(file),
            "--local",
            "--images-dir",
            str(REPO_IMAGES),
            "-i",
            "ipcontroller",
            "--extra-ca-certs",
            CA_BUNDLE,
        ],
    )
    assert result.exit_code == 0, result.output
    built = manifest.load(local_registry)
    assert built is not None
    ref = built.images["ipcontroller"].ref
    digest = built.images["ipcontroller"].digest
    assert digest
    pulled = engine.images.pull(f"{ref.rpartition(':')[0]}@{digest}")
    out = engine.containers.run(
        pulled.id,
        [
            "sh",
            "-c",
            "/opt/venv/bin/python -c 'import ipyparallel; print(ipyparallel.__version__)';"
            " ls /tmp/build-ca 2>&1 || true",
        ],
        remove=True,
        entrypoint=[],
    ).decode()
    assert out.splitlines()[0][0].isdigit()
    assert "No such file" in out  # the bundle never reaches the final image
