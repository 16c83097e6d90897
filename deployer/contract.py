"""The container contract: images, commands, environment, ports, volumes, probes.

This module is data, used by both the ACI backend (through :mod:`deployer.plan`)
and the compose renderer (:mod:`deployer.render`). It mirrors what the images in
``images/`` expect; change it here when the images change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

LOCAL_REGISTRY: Final = "aci-research"
LOCAL_TAG: Final = "latest"

HEALTHCHECK: Final = ("/usr/local/bin/healthcheck",)
"""Docker HEALTHCHECK and ACI readiness probe (exec) of every image; exit 0 = healthy."""
USER_UID: Final = 1000

NOTEBOOK_PORT: Final = 8888
ENGINE_ENTRY_PORT: Final = 2222
"""The single port engines use: the controller's sshd, key-only, user ``ipp``."""
ENGINE_SSH_USER: Final = "ipp"
CONTROLLER_ZMQ_PORTS: Final = tuple(range(10101, 10111))
"""The controller binds these on 127.0.0.1 only; engines reach them through ssh."""
CONTROLLER_PORT_MAP: Final[dict[str, int | list[int]]] = {
    "registration": 10101,
    "control": 10102,
    "mux": 10103,
    "task": 10104,
    "iopub": 10105,
    "hb_ping": 10106,
    "hb_pong": 10107,
    "broadcast": [10108, 10109],
}
"""Which pool port serves which channel: ipyparallel 9 hands out ``engine_ports`` in
this order (registration, control, mux, task, iopub, hb_ping, hb_pong, then one
broadcast port per leaf scheduler, 2 by default)."""
ENGINE_SESSION: Final = {"signature_scheme": "hmac-sha256", "pack": "json", "unpack": "json"}
"""Session settings of the engine connection file (ipyparallel's defaults)."""
CONTROLLER_SECURITY_DIR: Final = "/srv/ipython/profile_default/security"
"""``$IPYTHONDIR`` of the ipcontroller and ipengine images is /srv/ipython."""
NOTEBOOK_SECURITY_DIR: Final = "/home/research/.ipython/profile_default/security"
SECURITY_DIR: Final = NOTEBOOK_SECURITY_DIR
BLAST_DB_CACHE: Final = "/var/cache/blastdb"
AZURITE_PORTS: Final = (10000, 10001, 10002)


@dataclass(frozen=True)
class EnvVar:
    """One environment variable a role reads.

    Args:
        name (str): The variable name.
        secret (bool): True when the value must travel only as an ACI
            ``secureValue`` (or compose secret-backed env) and never be printed.
    """

    name: str
    secret: bool = False


@dataclass(frozen=True)
class Mount:
    """A volume mounted into a role's container.

    Args:
        volume (str): The volume name within the group (or compose project).
        path (str): The mount path in the container.
        read_only (bool): Mount read-only. Default: False.
    """

    volume: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class Role:
    """One container role.

    Args:
        name (str): The role name, used for container names.
        image (str): The image name without registry and tag.
        env (tuple[EnvVar, ...]): The variables the role reads.
        ports (tuple[int, ...]): TCP ports the role exposes outside its group.
        mounts (tuple[Mount, ...]): Volumes it mounts.
        command (tuple[str, ...] | None): The command; None keeps the image's.
        probe (tuple[str, ...] | None): The readiness probe command.
        local_only (bool): True for roles that only exist in docker compose.
    """

    name: str
    image: str
    env: tuple[EnvVar, ...] = ()
    ports: tuple[int, ...] = ()
    mounts: tuple[Mount, ...] = ()
    command: tuple[str, ...] | None = None
    probe: tuple[str, ...] | None = HEALTHCHECK
    local_only: bool = False
    secret_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_names", frozenset(e.name for e in self.env if e.secret))

    def reads(self, name: str) -> bool:
        """Return True if the role reads the environment variable ``name``."""
        return any(e.name == name for e in self.env)


_STORAGE_ENV: Final = (
    EnvVar("AZURE_STORAGE_CONNECTION_STRING", secret=True),
    EnvVar("AZURE_STORAGE_ACCOUNT"),
    EnvVar("AZURE_CLIENT_ID"),
    EnvVar("BLAST_QUEUE"),
)

IPCONTROLLER: Final = Role(
    name="ipcontroller",
    image="ipcontroller",
    env=(
        EnvVar("IPP_KEY", secret=True),
        EnvVar("IPP_SSH_AUTHORIZED_KEYS"),
        EnvVar("IPP_SSH_HOST_KEY", secret=True),
        EnvVar("IPP_PUBLIC_HOST"),
    ),
    ports=(ENGINE_ENTRY_PORT,),
    mounts=(Mount("ipp-security", CONTROLLER_SECURITY_DIR),),
)
NOTEBOOK: Final = Role(
    name="notebook",
    image="notebook",
    env=(
        EnvVar("NOTEBOOK_TOKEN", secret=True),
        EnvVar("NOTEBOOK_PASSWORD_HASH", secret=True),
        EnvVar("NOTEBOOK_TLS"),
        EnvVar("NOTEBOOK_TLS_CERT", secret=True),
        EnvVar("NOTEBOOK_TLS_KEY", secret=True),
        *_STORAGE_ENV,
    ),
    ports=(NOTEBOOK_PORT,),
    mounts=(Mount("ipp-security", NOTEBOOK_SECURITY_DIR, read_only=True),),
)
IPENGINE: Final = Role(
    name="ipengine",
    image="ipengine",
    env=(
        EnvVar("IPP_CONNECTION_INFO", secret=True),
        EnvVar("IPP_SSH_KEY", secret=True),
        EnvVar("IPP_SSH_KNOWN_HOSTS"),
        EnvVar("IPP_ENGINES_PER_CONTAINER"),
        EnvVar("IPP_MPI"),
    ),
)
BLAST_WORKER: Final = Role(
    name="blast-worker",
    image="blast-worker",
    env=(
        *_STORAGE_ENV,
        EnvVar("BLAST_DBS"),
        EnvVar("BLAST_THREADS"),
        EnvVar("BLAST_DB_CACHE"),
    ),
    mounts=(Mount("blastdb-cache", BLAST_DB_CACHE),),
)
AZURITE: Final = Role(
    name="azurite",
    image="azurite",
    env=(EnvVar("AZURITE_ACCOUNTS", secret=True),),
    ports=AZURITE_PORTS,
    mounts=(Mount("azurite-data", "/data"),),
    local_only=True,
)
BLAST_INIT: Final = Role(
    name="init",
    image="blast-worker",
    env=_STORAGE_ENV,
    command=("blast-jobs", "init", "--demo-db", "demo"),
    probe=None,
    local_only=True,
)

ROLES: Final = {
    r.name: r for r in (IPCONTROLLER, NOTEBOOK, IPENGINE, BLAST_WORKER, AZURITE, BLAST_INIT)
}


def image_ref(registry: str, image: str, tag: str) -> str:
    """Return ``<registry>/<image>:<tag>``.

    Args:
        registry (str): The registry login server, e.g. ``myacr.azurecr.io``
            (``az acr list --query [].loginServer -o tsv``), or ``aci-research``
            locally.
        image (str): The image name, e.g. ``ipengine``.
        tag (str): The image tag.
    """
    return f"{registry.rstrip('/')}/{image}:{tag}"
