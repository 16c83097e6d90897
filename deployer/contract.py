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
WEB_PORT: Final = 8080
"""The BLAST web page's port (HTTPS under TLS); non-root, so not 443."""
ENGINE_ENTRY_PORT: Final = 2222
"""The single port engines use: the controller's sshd, key-only, user ``ipp``."""
ENGINE_SSH_USER: Final = "ipp"
ENGINE_HEALTH_PORT: Final = 8081
"""First engine container's loopback health port; the k-th container of a group uses +k."""
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
BLAST_HEALTH_PORT: Final = 8080
"""The first worker's loopback health port; the n-th worker of a group uses 8080 + n - 1."""
AZURITE_PORTS: Final = (10000, 10001, 10002)


SECRETS_DIR: Final = "/run/secrets"
"""Where every secret file appears in a container: compose mounts its ``secrets:`` here,
and ACI a ``secret`` volume per container. The container reads ``<NAME>_FILE``."""


@dataclass(frozen=True)
class EnvVar:
    """One environment variable a role reads.

    Args:
        name (str): The variable name.
        secret (bool): True when the value is secret: it reaches the container only as
            the file :attr:`secret_path`, named by the plain variable :attr:`file_var`,
            never as an environment value, and is never printed.
    """

    name: str
    secret: bool = False

    @property
    def file_var(self) -> str:
        """``<NAME>_FILE``: the variable that names a secret's file."""
        return f"{self.name}_FILE"

    @property
    def secret_file(self) -> str:
        """The secret's file name (also its compose secret name): ``ipp_key`` for ``IPP_KEY``."""
        return self.name.lower()

    @property
    def secret_path(self) -> str:
        """The secret's path in the container: ``/run/secrets/<secret_file>``."""
        return f"{SECRETS_DIR}/{self.secret_file}"


@dataclass(frozen=True)
class Hardening:
    """How a role's container is locked down (compose applies all of it; ACI's Standard
    SKU has no setting for any of it, see :data:`ACI_PROTECTIONS`).

    Args:
        tmpfs (tuple[str, ...]): Writable in-memory mounts on the read-only root
            filesystem, as ``path[:options]``.
        read_only (bool): Read-only root filesystem. Default: True.
        pids_limit (int): Most processes and threads at once.
    """

    tmpfs: tuple[str, ...] = ("/tmp:mode=1777",)  # the scratch space every image uses
    read_only: bool = True
    pids_limit: int = 256


LOG_MAX_SIZE: Final = "10m"
LOG_MAX_FILE: Final = 3
"""json-file log rotation of every compose service: at most 3 files of 10 MB."""


def _writable(*paths: str) -> tuple[str, ...]:
    """tmpfs mounts owned by the images' user, one per path. A volume mounted below a tmpfs
    gets its missing parent folders created by Docker as root; giving each such parent its
    own tmpfs keeps every folder on the way writable for the user."""
    return tuple(f"{p}:uid={USER_UID},gid={USER_UID},mode=0700" for p in paths)


_TMP: Final = "/tmp:mode=1777"
_IPYTHON_PROFILE: Final = _writable("/srv/ipython", "/srv/ipython/profile_default")

ACI_PROTECTIONS: Final = (
    "each container group runs in its own hypervisor-isolated utility VM (no kernel is shared "
    "with other groups)",
    "images run as their non-root user (uid 1000); the Standard SKU runs no privileged containers",
    "secrets are files in a per-container secret volume (tmpfs, never written to disk), "
    "and ARM never returns their values",
    "capabilities, no-new-privileges, a read-only root filesystem, pids limits and the log "
    "driver cannot be set on Standard-SKU groups (the API's securityContext is for the "
    "Confidential SKU); ACI keeps container logs itself and `deployer logs` reads its tail",
)
"""What ACI itself provides for the hardening compose applies; ``deployer plan`` prints it."""


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
        hardening (Hardening): Its lockdown (tmpfs mounts, read-only root, pids limit).
    """

    name: str
    image: str
    env: tuple[EnvVar, ...] = ()
    ports: tuple[int, ...] = ()
    mounts: tuple[Mount, ...] = ()
    command: tuple[str, ...] | None = None
    probe: tuple[str, ...] | None = HEALTHCHECK
    local_only: bool = False
    hardening: Hardening = Hardening()
    secret_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_names", frozenset(e.name for e in self.env if e.secret))

    def reads(self, name: str) -> bool:
        """Return True if the role reads the environment variable ``name``."""
        return any(e.name == name for e in self.env)

    def secret(self, name: str) -> EnvVar:
        """Return the role's secret variable ``name``.

        Raises:
            ValueError: When the role reads no secret of that name.
        """
        for e in self.env:
            if e.name == name and e.secret:
                return e
        raise ValueError(f"{name} is not a secret of the {self.name} contract")


_STORAGE_ENV: Final = (
    EnvVar("AZURE_STORAGE_CONNECTION_STRING", secret=True),
    # Locally: a connection string without credentials plus the key, joined in the container.
    EnvVar("AZURE_STORAGE_ENDPOINTS"),
    EnvVar("AZURE_STORAGE_KEY", secret=True),
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
        EnvVar("IPP_ACTIVITY_INTERVAL"),
    ),
    ports=(ENGINE_ENTRY_PORT,),
    mounts=(Mount("ipp-security", CONTROLLER_SECURITY_DIR),),
    # sshd's host key, config and pid file go to ~/.sshd, authorized_keys to ~/.ssh, and
    # ipcontroller writes its profile's log and pid folders beside the security volume.
    # sshd runs as uid 1000 on port 2222 with key auth only: it needs no capability.
    hardening=Hardening(tmpfs=(_TMP, *_writable(f"/home/{ENGINE_SSH_USER}"), *_IPYTHON_PROFILE)),
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
    # Jupyter writes its config, runtime files and kernels' caches under $HOME (the work
    # folder and the security folder are volumes on top); kernels need more processes.
    hardening=Hardening(
        tmpfs=(
            _TMP,
            *_writable(
                "/home/research",
                "/home/research/.ipython",
                "/home/research/.ipython/profile_default",
            ),
        ),
        pids_limit=1024,
    ),
)
IPENGINE: Final = Role(
    name="ipengine",
    image="ipengine",
    env=(
        EnvVar("IPP_CONNECTION_INFO", secret=True),
        EnvVar("IPP_SSH_KEY", secret=True),
        EnvVar("IPP_SSH_KNOWN_HOSTS"),
        EnvVar("IPP_ENGINES_PER_CONTAINER"),
        EnvVar("IPP_HEALTH_PORT"),
        EnvVar("IPP_MPI"),
    ),
    # The engine's SSH key and known_hosts go to ~/.ssh; ipengine writes its profile's log
    # folder beside the (read-only) security volume. Each engine runs many threads.
    hardening=Hardening(
        tmpfs=(_TMP, *_writable("/home/research"), *_IPYTHON_PROFILE),
        pids_limit=1024,
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
        EnvVar("BLAST_EXIT_WHEN_IDLE"),
        EnvVar("BLAST_HEALTH_PORT"),
        EnvVar("BLAST_VISIBILITY_TIMEOUT"),
    ),
    mounts=(Mount("blastdb-cache", BLAST_DB_CACHE),),
)
JANITOR: Final = Role(
    name="janitor",
    image="deployer",
    env=(
        *_STORAGE_ENV,
        EnvVar("AZURE_SUBSCRIPTION_ID"),
        EnvVar("DEPLOYER_RESOURCE_GROUP"),
        EnvVar("DEPLOYER_LOCATION"),
        EnvVar("DEPLOYER_ARM_ENDPOINT"),
        # Only towards the local emulator, which has no managed identity endpoint.
        EnvVar("DEPLOYER_ACCESS_TOKEN", secret=True),
        EnvVar("JANITOR_DEPLOYMENT"),
        EnvVar("JANITOR_RUN"),
        EnvVar("JANITOR_INTERVAL"),
        EnvVar("JANITOR_TTL"),
        EnvVar("JANITOR_IDLE_SHUTDOWN"),
        EnvVar("JANITOR_NOTEBOOK_URL"),
        EnvVar("JANITOR_NOTEBOOK_INSECURE"),
        EnvVar("JANITOR_IPP_LOGS"),
        # Worker template and autoscale settings of an autoscaled run (holds worker secrets).
        EnvVar("JANITOR_AUTOSCALE", secret=True),
        EnvVar("NOTEBOOK_TOKEN", secret=True),
    ),
    command=("deployer-janitor",),
)
DB_FETCH: Final = Role(
    name="db-fetch",
    image="blast-worker",
    env=(
        *_STORAGE_ENV,
        # json: progress as JSON lines on stderr, which `deployer db fetch` reads from the log.
        EnvVar("BLAST_PROGRESS"),
    ),
    # `blast-jobs init` first (idempotent: a fresh account gets its queue, table and
    # containers from the identity that writes them), then `blast-jobs db fetch NAME
    # --output json [--source URL] [--date D] [--as NAME]`: the group spec appends the
    # database and its options as the script's arguments (deployer.plan.dbfetch).
    command=("/bin/sh", "-c", 'blast-jobs init >&2 && exec blast-jobs db fetch "$@"', "db-fetch"),
    probe=None,
)
"""``deployer db fetch``: a one-off group (restartPolicy Never) streaming an NCBI database
into the deployment's storage, in the blast-worker image, which has ``blast-jobs``."""
BLAST_WEB: Final = Role(
    name="blast-web",
    image="blast-web",
    env=(
        EnvVar("WEB_TOKEN", secret=True),
        EnvVar("WEB_PASSWORD_HASH", secret=True),
        EnvVar("WEB_SECRET_KEY", secret=True),
        EnvVar("WEB_TLS"),
        EnvVar("WEB_TLS_CERT", secret=True),
        EnvVar("WEB_TLS_KEY", secret=True),
        *_STORAGE_ENV,
    ),
    ports=(WEB_PORT,),
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
    r.name: r
    for r in (
        IPCONTROLLER,
        NOTEBOOK,
        IPENGINE,
        BLAST_WORKER,
        BLAST_WEB,
        JANITOR,
        DB_FETCH,
        AZURITE,
        BLAST_INIT,
    )
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
