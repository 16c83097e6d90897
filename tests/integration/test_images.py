"""Image tests: run each image and assert on its behaviour, logs and metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import IO, cast

import docker
import pytest

from testbed.engine import REPO, ImageRunner, image

SERVICE_IMAGES = ["azurite", "ipcontroller", "ipengine", "notebook", "blast-worker", "blast-web"]
# Acceptance targets of the foundation issue, in bytes (docker's decimal units).
SIZE_LIMITS = {
    "notebook": 1_200_000_000,
    "ipengine": 700_000_000,
    "blast-worker": 700_000_000,
    "ipcontroller": 350_000_000,
    "blast-web": 250_000_000,
}
# Images whose Python packages all come from the one lock, images/base/constraints.txt
# (the deployer image installs the repository's pyproject, which the lock does not cover).
LOCKED_IMAGES = ["ipcontroller", "ipengine", "notebook", "blast-worker", "blast-web"]
OWN_PACKAGES = {"blast-client", "blast-worker", "blast-web", "pip", "setuptools", "wheel"}
LIST_PACKAGES = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\n(.+?)-----END CERTIFICATE-----", re.S)


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_image_contract(docker_client: docker.DockerClient, name: str) -> None:
    """Non-root, tini as PID 1, a healthcheck, and OCI labels on every service image."""
    config = docker_client.images.get(image(name)).attrs["Config"]
    assert config["User"] == "1000"
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "/usr/local/bin/healthcheck"]
    labels = config["Labels"]
    for key in ("version", "revision", "source", "title"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.revision"] != "unknown"


@pytest.mark.parametrize("name", sorted(SIZE_LIMITS))
def test_image_size_within_target(docker_client: docker.DockerClient, name: str) -> None:
    size = docker_client.images.get(image(name)).attrs["Size"]
    assert size <= SIZE_LIMITS[name], f"{name} is {size / 1e6:.0f} MB"


def _package(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalisation


@pytest.mark.parametrize("name", LOCKED_IMAGES)
def test_every_python_package_is_the_locked_version(run_image: ImageRunner, name: str) -> None:
    """Each installed package is pinned in images/base/constraints.txt at that version: a
    version pinned anywhere else (an image's requirements.txt) or a package missing from the
    lock fails here."""
    lock = {}
    for line in (REPO / "images" / "base" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            package, version = line.split("==")
            lock[_package(package)] = version
    code, out = run_image.run(name, command=["/opt/venv/bin/python", "-c", LIST_PACKAGES])
    assert code == 0, out
    installed = {_package(k): v for k, v in json.loads(out).items()}
    wrong = {
        package: (version, lock.get(package, "not in the lock"))
        for package, version in installed.items()
        if package not in OWN_PACKAGES and lock.get(package) != version
    }
    assert not wrong, f"{name}: installed vs locked: {wrong}; run `make lock`"


def test_controller_without_key_explains_and_exits_2(run_image: ImageRunner) -> None:
    code, logs = run_image.run("ipcontroller")
    assert code == 2
    assert "ERROR" in logs
    assert "IPP_KEY" in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize(
    ("name", "variable"), [("ipcontroller", "IPP_KEY_FILE"), ("notebook", "NOTEBOOK_TOKEN_FILE")]
)
def test_an_unreadable_secret_file_explains_in_one_line_and_exits_2(
    run_image: ImageRunner, name: str, variable: str
) -> None:
    # Both start scripts read secrets through the base image's one read_secret helper.
    code, logs = run_image.run(name, environment={variable: "/run/secrets/missing"}, timeout=60)
    assert code == 2
    errors = [line for line in logs.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"{variable}=/run/secrets/missing" in errors[0], logs
    assert "is not a readable file" in errors[0] and "Traceback" not in logs


def test_engine_without_ssh_key_explains_and_exits_2(run_image: ImageRunner) -> None:
    code, logs = run_image.run(
        "ipengine",
        environment={
            "IPP_CONNECTION_INFO": '{"key": "k", "registration": 1, '
            '"interface": "tcp://127.0.0.1", "ssh": "ipp@nowhere:2222"}'
        },
    )
    assert code == 2
    assert "IPP_SSH_KEY" in logs
    assert "Traceback" not in logs


def test_engine_reads_its_connection_info_from_a_secret_file(
    run_image: ImageRunner, tmp_path: Path
) -> None:
    # ACI's form: IPP_CONNECTION_INFO_FILE names a file of the secret volume. Read, it
    # gets the engine as far as the missing SSH key; unread, it would wait for the
    # controller's connection file instead.
    info = tmp_path / "ipp_connection_info"
    info.write_text(
        '{"key": "k", "registration": 1, "interface": "tcp://127.0.0.1", "ssh": "ipp@nowhere:2222"}'
    )
    info.chmod(0o600)
    os.chown(info, 1000, 1000)
    code, logs = run_image.run(
        "ipengine",
        environment={
            "IPP_CONNECTION_INFO_FILE": "/run/secrets/ipp_connection_info",
            "IPP_WAIT": "2",
        },
        volumes={str(info): {"bind": "/run/secrets/ipp_connection_info", "mode": "ro"}},
    )
    assert code == 2
    assert "IPP_SSH_KEY" in logs and "did not appear" not in logs, logs


def test_notebook_generates_a_token_when_none_is_given(run_image: ImageRunner) -> None:
    container = run_image.start("notebook")
    container.reload()
    for _ in range(60):
        logs = container.logs().decode()
        if "generated token:" in logs:
            break
        container.reload()
        assert container.status == "running", logs
        subprocess.run(["sleep", "1"], check=True)
    token = re.search(r"generated token: (\w+)", logs)
    assert token and len(token.group(1)) >= 32
    assert "WARNING" not in logs.split("generated token:")[0]


def test_blast_web_with_a_bad_setting_explains_in_one_line_and_exits_2(
    run_image: ImageRunner,
) -> None:
    code, logs = run_image.run("blast-web", environment={"WEB_TLS": "sometimes"})
    assert code == 2
    assert (
        logs.strip() == "blast-web: WEB_TLS must be off, self-signed or provided (got 'sometimes')"
    )


def test_blast_web_serves_tls_on_a_read_only_root(
    run_image: ImageRunner,
) -> None:
    """Self-signed TLS, a generated token logged once, health from /healthz, and nothing
    written outside /tmp (the hardened compose service runs with a read-only root)."""
    container = run_image.start(
        "blast-web",
        environment={"WEB_TLS": "self-signed", "AZURE_STORAGE_ACCOUNT": "nosuchaccount"},
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
    )
    for _ in range(90):
        container.reload()
        assert container.status == "running", container.logs().decode()[-2000:]
        if container.attrs["State"]["Health"]["Status"] == "healthy":
            break
        subprocess.run(["sleep", "1"], check=True)
    logs = container.logs().decode()
    assert container.attrs["State"]["Health"]["Status"] == "healthy", logs[-2000:]
    assert "serving the BLAST page on https://" in logs
    token = re.search(r"generated token: (\w+)", logs)
    assert token and len(token.group(1)) >= 32
    assert "WARNING" not in logs and "Traceback" not in logs


def _public_cas(client: docker.DockerClient, name: str) -> bytes:
    """The public CA bundles an image ships: Debian's and any certifi copies."""
    return bytes(
        client.containers.run(
            name,
            ["sh", "-c", "cat /etc/ssl/certs/ca-certificates.crt $(find / -xdev -name cacert.pem)"],
            remove=True,
            entrypoint=[],
        )
    )


def _extra_certs(bundle: bytes, known: bytes) -> list[bytes]:
    """The certificate bodies in ``bundle`` that ``known`` (public bundles) lacks."""
    known_bodies = {b.replace(b"\n", b"") for b in PEM.findall(known)}
    return [
        body.replace(b"\n", b"")
        for body in PEM.findall(bundle)
        if body.replace(b"\n", b"") not in known_bodies
    ]


def _image_contains(client: docker.DockerClient, name: str, needles: list[bytes]) -> list[str]:
    """Return the paths of files in the image whose contents hold any needle
    (PEM bodies are matched with their line breaks removed)."""
    container = client.containers.create(name, command=["true"])
    hits: list[str] = []
    try:
        stream = container.export()
        with tarfile.open(fileobj=cast(IO[bytes], _ChunkReader(stream)), mode="r|") as tar:
            for member in tar:
                if not member.isfile() or member.size > 50_000_000:
                    continue
                data = tar.extractfile(member)
                if data is None:
                    continue
                content = data.read().replace(b"\n", b"").replace(b"\r", b"")
                if any(needle in content for needle in needles):
                    hits.append(member.name)
    finally:
        container.remove(force=True, v=True)
    return hits


class _ChunkReader:
    """A file-like object over docker's export generator, for tarfile's stream mode."""

    def __init__(self, chunks: object) -> None:
        self.chunks = iter(chunks)  # type: ignore[call-overload]
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def test_build_ca_stays_out_of_final_images(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A CA given at build time is trusted in builder stages and absent from the result.

    Builds the ipcontroller image (it installs from PyPI) with a bundle of the
    machine's extra CA (if any) plus a fresh throwaway CA, then searches every
    file of the final image, and its history, for those certificates.
    """
    marker_key, marker_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=aci-research build-ca test",
            "-keyout",
            str(marker_key),
            "-out",
            str(marker_cert),
        ],
        check=True,
        capture_output=True,
    )
    machine_bundle = os.environ.get("EXTRA_CA_CERTS", "")
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(
        (Path(machine_bundle).read_bytes() if machine_bundle else b"") + marker_cert.read_bytes()
    )
    tag = "ca-test"
    env = dict(os.environ, EXTRA_CA_CERTS=str(bundle), TAG=tag)
    # The base images of the test build are the ones `make build` made.
    for base in ("base", "base-builder"):
        docker_client.images.get(image(base)).tag(
            f"{os.environ.get('IMAGE_PREFIX', 'aci-research')}/{base}", tag
        )
    build = subprocess.run(
        [str(REPO / "images" / "build.sh"), "ipcontroller"], env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert not (REPO / "images" / "ipcontroller" / "build-ca" / "extra.crt").exists()
    built = f"{os.environ.get('IMAGE_PREFIX', 'aci-research')}/ipcontroller:{tag}"
    try:
        needles = _extra_certs(bundle.read_bytes(), _public_cas(docker_client, built))
        assert needles, "the test bundle should hold at least the throwaway CA"
        assert _image_contains(docker_client, built, needles) == []
        history = docker_client.api.history(built)
        assert not any(b"BEGIN CERTIFICATE" in str(h).encode() for h in history)
    finally:
        for name in ("ipcontroller", "base", "base-builder"):
            docker_client.images.remove(
                f"{os.environ.get('IMAGE_PREFIX', 'aci-research')}/{name}:{tag}", noprune=True
            )


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_machine_extra_ca_not_in_images(docker_client: docker.DockerClient, name: str) -> None:
    """The images `make build` made hold none of EXTRA_CA_CERTS' own certificates."""
    machine_bundle = os.environ.get("EXTRA_CA_CERTS", "")
    if not machine_bundle:
        pytest.skip("EXTRA_CA_CERTS is not set for this build; test_build_ca_* covers the rule")
    needles = _extra_certs(
        Path(machine_bundle).read_bytes(), _public_cas(docker_client, image(name))
    )
    assert _image_contains(docker_client, image(name), needles) == []
