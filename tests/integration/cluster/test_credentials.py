"""Engines with the wrong SSH key or the wrong HMAC key are refused, and both sides' logs
say why."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable

import pytest
from docker.models.containers import Container

from deployer.deployment_secrets import SshKeyPair
from testbed.cluster import ENGINE_REPLICAS, SECURITY, logs_since, registered_engines
from testbed.engine import exec_text

WAIT = 90


def fingerprint(public_line: str) -> str:
    """The SHA256 fingerprint sshd logs for an OpenSSH public key line.

    Args:
        public_line (str): ``ssh-ed25519 AAAA... comment``.
    """
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def engine_ip(container: Container) -> str:
    """The container's address on its (single) network, while it runs.

    Args:
        container (Container): A running container.
    """
    container.reload()
    (ip,) = {n["IPAddress"] for n in container.attrs["NetworkSettings"]["Networks"].values()}
    assert ip, "the engine container exited before it got an address"
    return str(ip)


def wait_exit(container: Container) -> tuple[int, str]:
    """Wait for an engine container to give up; return its exit code and logs.

    Args:
        container (Container): The engine container.
    """
    result = container.wait(timeout=WAIT)
    return int(result["StatusCode"]), container.logs().decode(errors="replace")


def test_wrong_ssh_key_is_refused(
    extra_engine: Callable[..., Container],
    controller: Container,
    notebook: Container,
    stack_secrets: dict[str, str],
) -> None:
    intruder = SshKeyPair.generate("intruder")
    since = time.time() - 1
    container = extra_engine(
        IPP_SSH_KEY=intruder.private,
        IPP_SSH_KNOWN_HOSTS=stack_secrets["IPP_SSH_KNOWN_HOSTS"],
    )
    code, logs = wait_exit(container)

    assert code == 1, logs
    assert "refused this engine's key" in logs
    assert "IPP_SSH_AUTHORIZED_KEYS" in logs
    assert "Traceback" not in logs
    # sshd (LogLevel VERBOSE) names the user and the rejected key.
    sshd = logs_since(controller, since)
    key = fingerprint(intruder.public)
    failed = [line for line in sshd.splitlines() if "Failed publickey for ipp from" in line]
    assert any(line.rstrip().endswith(key) for line in failed), sshd[-3000:]
    assert not [line for line in sshd.splitlines() if "Accepted" in line and key in line]
    assert len(registered_engines(notebook)) == ENGINE_REPLICAS


def test_unknown_controller_host_key_is_refused(
    extra_engine: Callable[..., Container], stack_secrets: dict[str, str]
) -> None:
    # The engine pins the controller's host key: another key under the same name is a
    # man-in-the-middle, and the engine stops before sending its own key's signature.
    impostor = SshKeyPair.generate("impostor")
    host, _, _ = stack_secrets["IPP_SSH_KNOWN_HOSTS"].partition(" ")
    container = extra_engine(
        IPP_SSH_KEY=stack_secrets["IPP_SSH_KEY"],
        IPP_SSH_KNOWN_HOSTS=f"{host} {' '.join(impostor.public.split()[:2])}",
    )
    code, logs = wait_exit(container)
    assert code == 1, logs
    assert "IPP_SSH_KNOWN_HOSTS" in logs
    assert "Traceback" not in logs


@pytest.mark.timeout(180)
def test_wrong_hmac_key_is_refused(
    extra_engine: Callable[..., Container],
    controller: Container,
    notebook: Container,
    stack_secrets: dict[str, str],
) -> None:
    code, text = exec_text(controller, ["cat", f"{SECURITY}/ipcontroller-engine.json"])
    assert code == 0, text
    info = json.loads(text)
    info["key"] = "0" * len(info["key"])
    since = time.time() - 1
    # The right SSH key: the tunnel opens, and the controller itself must refuse.
    container = extra_engine(
        IPP_CONNECTION_INFO=json.dumps(info),
        IPP_SSH_KEY=stack_secrets["IPP_SSH_KEY"],
        IPP_SSH_KNOWN_HOSTS=stack_secrets["IPP_SSH_KNOWN_HOSTS"],
        # A refused key never registers: waiting the default 30 s proves nothing more.
        IPP_REGISTRATION_TIMEOUT="8",
    )
    ip = engine_ip(container)
    code, logs = wait_exit(container)

    assert code != 0, logs
    assert "Registration timed out" in logs
    assert "HMAC key" in logs and "Invalid Signature" in logs  # the supervisor's diagnosis
    controller_log = logs_since(controller, since)
    assert f"Accepted publickey for ipp from {ip} " in controller_log
    assert "Invalid Signature" in controller_log
    assert "registration_request" in controller_log
    assert len(registered_engines(notebook)) == ENGINE_REPLICAS
