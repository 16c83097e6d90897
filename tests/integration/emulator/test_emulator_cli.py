"""``make emulator``'s entry point, the ``aci-emulator`` command, as a user runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import docker
import pytest
import requests

from aci_emulator.runtime import LABEL_INSTANCE
from deployer.arm import StaticTokenCredential
from deployer.backends.aci import make_client
from deployer.imagebuild.registry import RegistryClient
from testbed.engine import IMAGE_PREFIX, REPO, TAG, wait_for


def start_emulator(env_file: Path, *args: str) -> subprocess.Popen[str]:
    """``aci-emulator`` with this build's images, writing its exports to ``env_file``."""
    command = [str(Path(sys.executable).parent / "aci-emulator"), "--image-prefix", IMAGE_PREFIX]
    command += ["--tag", TAG, "--env-file", str(env_file), *args]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_emulator_command_prints_the_deployer_environment_and_cleans_up(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """The exports it writes reach it with the real deployer client; SIGTERM removes all."""
    env_file = tmp_path / "emulator.env"
    proc = start_emulator(env_file, "--quota", "westeurope=3")
    try:
        wait_for(lambda: env_file.exists() and env_file.stat().st_size, 30, "the env file")
        assert env_file.stat().st_mode & 0o777 == 0o600
        header, *lines = env_file.read_text().splitlines()
        instance_id = header.removeprefix("# ACI emulator ")
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exports["DEPLOYER_ARM_ENDPOINT"].startswith("http://127.0.0.1:")
        assert len(exports["DEPLOYER_ACCESS_TOKEN"]) >= 24  # random, not the tests' token

        client = make_client(
            exports["AZURE_SUBSCRIPTION_ID"],
            endpoint=exports["DEPLOYER_ARM_ENDPOINT"],
            credential=StaticTokenCredential(exports["DEPLOYER_ACCESS_TOKEN"]),
        )
        limits = {
            str(u.name.value if u.name else ""): u.limit
            for u in client.location.list_usage("westeurope")
        }
        assert limits["StandardCores"] == 3
        assert list(client.container_groups.list_by_resource_group("local")) == []
        # The deployer's image check asks the emulator's registry, which (local-image mode)
        # holds what the local engine has at IMAGE_PREFIX/<name>:TAG.
        registry = RegistryClient(
            exports["DEPLOYER_REGISTRY_ENDPOINT"],
            exports["DEPLOYER_REGISTRY_USERNAME"],
            exports["DEPLOYER_REGISTRY_PASSWORD"],
        )
        assert registry.digest("azurite", "any-tag") is not None
        assert registry.digest("no-such-image", TAG) is None
        selector = {"label": f"{LABEL_INSTANCE}={instance_id}"}
        assert len(docker_client.networks.list(filters=selector)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "loopback only" in out and "emulator stopped" in err
    assert "local-image mode" in out
    assert docker_client.networks.list(filters=selector) == []


def test_strict_mode_starts_a_registry_that_is_the_workloads_registry(tmp_path: Path) -> None:
    """``--strict`` says so, exports its registry as DEPLOYER_REGISTRY with an admin user the
    registry (a real docker-registry, htpasswd) accepts and nobody else, and stops it."""
    env_file = tmp_path / "emulator.env"
    proc = start_emulator(env_file, "--strict")
    try:
        wait_for(lambda: env_file.exists() and env_file.stat().st_size, 60, "the env file")
        _, *lines = env_file.read_text().splitlines()
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        server = exports["DEPLOYER_REGISTRY"]
        assert server.startswith("127.0.0.1:") and "DEPLOYER_REGISTRY_ENDPOINT" not in exports
        admin = (exports["DEPLOYER_REGISTRY_USERNAME"], exports["DEPLOYER_REGISTRY_PASSWORD"])
        assert requests.get(f"http://{server}/v2/", timeout=10).status_code == 401
        assert requests.get(f"http://{server}/v2/", auth=admin, timeout=10).status_code == 200
        assert RegistryClient(server, *admin).digest("blast-worker", TAG) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"strict mode: each group pulls its exact images from the registry at {server}" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{server}/v2/", timeout=5)
