"""The local compose stack: its secrets, and waiting until it is healthy.

``make up`` runs ``deployer local secrets compose/.env``: the first run generates every
secret at random (the notebook token, the ipyparallel HMAC key, the SSH key pairs of the
engine tunnel and the storage account key) as one file each in ``compose/secrets/``
(mode 0600, owned by the images' user, uid 1000, so each service can read the files it
mounts and nobody else can), and writes the non-secret settings to ``compose/.env``;
later runs keep both, so tokens and keys survive restarts. Then ``deployer local wait``
follows the containers' health until
the stack is ready, showing progress, and fails naming the unhealthy service.
"""

from __future__ import annotations

import base64
import os
import secrets as _random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deployer import contract
from deployer.deployment_secrets import DeploymentSecrets
from deployer.errors import DeployerError

PROJECT_NAME = "aci-research"
STORAGE_ACCOUNT = "acilocal"
CONTROLLER_HOST = "ipcontroller"
"""The controller's name on the compose network, pinned in the engines' known_hosts."""
SECRETS_DIR_VAR = "SECRETS_DIR"
"""The .env variable naming the secrets folder (the compose file's ``secrets:`` use it)."""


def secrets_dir_for(env_file: Path) -> Path:
    """Return the secrets folder that belongs to ``env_file``: ``secrets/`` beside it."""
    return env_file.parent / "secrets"


def secret_values(secrets: DeploymentSecrets, storage_key: str) -> dict[str, str]:
    """Return each secret file's name and content (names from the contract).

    Args:
        secrets (DeploymentSecrets): The cluster's keys and notebook token.
        storage_key (str): The base64 account key Azurite is started with.
    """
    c = contract
    return {
        c.AZURITE.secret("AZURITE_ACCOUNTS").secret_file: f"{STORAGE_ACCOUNT}:{storage_key}",
        c.BLAST_WORKER.secret("AZURE_STORAGE_KEY").secret_file: storage_key,
        c.NOTEBOOK.secret("NOTEBOOK_TOKEN").secret_file: secrets.notebook_token,
        # One access token for both front doors (the BLAST page takes the notebook's).
        c.BLAST_WEB.secret("WEB_TOKEN").secret_file: secrets.notebook_token,
        c.IPCONTROLLER.secret("IPP_KEY").secret_file: secrets.ipp_key,
        c.IPCONTROLLER.secret("IPP_SSH_HOST_KEY").secret_file: secrets.host_key.private,
        c.IPENGINE.secret("IPP_SSH_KEY").secret_file: secrets.engine_key.private,
    }


def render_env(secrets: DeploymentSecrets, secrets_dir: Path) -> str:
    """Return the text of a compose ``.env`` file: settings and public keys, no secret.

    Args:
        secrets (DeploymentSecrets): The cluster's keys (only public halves are written).
        secrets_dir (Path): The folder holding the secret files.
    """
    key_type, public_key = secrets.host_key.public.split()[:2]
    values = {
        "COMPOSE_PROJECT_NAME": PROJECT_NAME,
        "STORAGE_ACCOUNT": STORAGE_ACCOUNT,
        SECRETS_DIR_VAR: str(secrets_dir.resolve()),
        "IPP_SSH_AUTHORIZED_KEYS": secrets.engine_key.public,
        "IPP_SSH_KNOWN_HOSTS": (
            f"[{CONTROLLER_HOST}]:{contract.ENGINE_ENTRY_PORT} {key_type} {public_key}"
        ),
    }
    header = (
        "# Settings of the local stack, written by `make up`. The secrets are files in\n"
        f"# {secrets_dir}; delete both (with `make clean`) to start over with new keys.\n"
    )
    return header + "".join(f"{name}={value}\n" for name, value in values.items())


def write_secret(path: Path, value: str) -> None:
    """Write one secret file: mode 0600, owned by the images' user when we may chown.

    Compose (v1.29 and v2) bind-mounts secret files as they are, so the owner and mode on
    the host are what the service sees: uid 1000 may read, nobody else. Run as root
    (or as uid 1000), so the files can be owned by uid 1000.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value if value.endswith("\n") else value + "\n")
    if os.geteuid() == 0:
        os.chown(path, contract.USER_UID, contract.USER_UID)


def read_secret_files(secrets_dir: Path) -> dict[str, str]:
    """Return the secret files of ``secrets_dir`` by name (for tests and tools)."""
    return {p.name: p.read_text(encoding="utf-8").strip() for p in sorted(secrets_dir.iterdir())}


def ensure_env_file(path: Path) -> bool:
    """Create ``path`` and its secret files unless all exist; return True if created.

    Args:
        path (Path): The env file, normally ``compose/.env``; the secrets go to
            ``secrets/`` beside it.
    """
    secrets_dir = secrets_dir_for(path)
    fresh = DeploymentSecrets.generate("local")
    values = secret_values(fresh, base64.b64encode(_random.token_bytes(64)).decode())
    if path.exists() and all((secrets_dir / name).is_file() for name in values):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    secrets_dir.chmod(0o700)
    for name, value in values.items():
        write_secret(secrets_dir / name, value)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_env(fresh, secrets_dir))
    return True


def read_env_file(path: Path) -> dict[str, str]:
    """Return the ``NAME=value`` pairs of an env file, skipping comments.

    Args:
        path (Path): The env file.
    """
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            pairs[name.strip()] = value
    return pairs


def stack_state(project: str) -> dict[str, str]:
    """Return each container's state in a compose project: ``healthy``, ``starting``,
    ``unhealthy``, ``running`` (no healthcheck), ``exited <code>`` or another Docker state.

    Args:
        project (str): The compose project name (label ``com.docker.compose.project``).
    """
    import docker  # the Docker engine is only needed here

    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        raise DeployerError(
            f"cannot reach the Docker engine: {exc}",
            hint="start dockerd, or set DOCKER_HOST",
            code="DockerUnreachable",
        ) from None
    states = {}
    for container in client.containers.list(
        all=True,
        filters={"label": f"com.docker.compose.project={project}"},
        ignore_removed=True,  # a container `compose down` removes while we list
    ):
        labels = container.labels
        service = labels.get("com.docker.compose.service")
        name = f"{service}-{labels.get('com.docker.compose.container-number', '1')}"
        state = container.attrs["State"]
        if state["Status"] == "exited":
            states[name] = f"exited {state['ExitCode']}"
        elif "Health" in state:
            states[name] = state["Health"]["Status"]
        else:
            states[name] = state["Status"]
    return states


def stack_verdict(states: dict[str, str], one_shot: frozenset[str]) -> str | None:
    """Return ``"ready"``, a failure message, or None while the stack is still starting.

    Args:
        states (dict[str, str]): From :func:`stack_state`.
        one_shot (frozenset[str]): Services that run once and must exit 0 (``init``).
    """
    if not states:
        return None
    for name, state in sorted(states.items()):
        service = name.rsplit("-", 1)[0]
        if service in one_shot:
            if state.startswith("exited") and state != "exited 0":
                return f"{name} failed ({state}); see `make logs`"
            if state != "exited 0":
                return None
        elif state == "unhealthy" or state.startswith("exited"):
            return f"{name} is {state}; see `make logs`"
        elif state != "healthy":
            return None
    return "ready"


def wait_for_stack(
    project: str,
    timeout: float,
    one_shot: frozenset[str] = frozenset({"init"}),
    report: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> bool:
    """Poll the project's containers until all are healthy (one-shots exited 0).

    Args:
        project (str): The compose project name.
        timeout (float): Seconds to wait before giving up.
        one_shot (frozenset[str]): Services expected to exit 0 rather than stay up.
        report (Callable[[str], None]): Receives a progress line whenever states change.

    Returns:
        bool: True when ready; False on timeout or failure, after reporting why.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        states = stack_state(project)
        summary = ", ".join(f"{name}: {state}" for name, state in sorted(states.items()))
        if summary != last:
            elapsed = timeout - (deadline - time.monotonic())
            report(f"[{elapsed:5.0f}s] {summary or 'no containers yet'}")
            last = summary
        verdict = stack_verdict(states, one_shot)
        if verdict == "ready":
            return True
        if verdict is not None:
            report(f"the stack is not healthy: {verdict}")
            return False
        if time.monotonic() > deadline:
            waiting = [n for n, s in sorted(states.items()) if s not in ("healthy", "exited 0")]
            what = ", ".join(waiting) or f"any container of project {project} (none exist)"
            report(f"timed out after {timeout:.0f}s waiting for: {what}")
            return False
        time.sleep(2)
