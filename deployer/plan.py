"""Planning: pure functions from a workload to desired groups, and from desired
plus observed groups to the changes ``up`` makes.

Nothing here does I/O. Secrets arrive as :class:`~deployer.deployment_secrets.Secret` and
leave only inside ``secret_files``: each becomes a file in the container's secret volume at
``/run/secrets/<name>``, named by a plain ``<NAME>_FILE`` variable (the contract's
:attr:`~deployer.contract.EnvVar.secret_path`, the same path compose uses).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from deployer import contract, defaults, sizing
from deployer.contract import Mount, Role
from deployer.deployment_secrets import DeploymentSecrets, Secret, digest
from deployer.errors import MissingSettingError
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import BlastWeb, Workload, duration_seconds

EnvValue = str | Secret

IPP = "ipyparallel"
BLAST = "blast"
SECRETS_TAG = "secrets-sha256"


@dataclass(frozen=True)
class ContainerSpec:
    """One desired container.

    Args:
        name (str): Container name, unique in the group.
        role (str): Its role in :data:`deployer.contract.ROLES`.
        image (str): Full image reference.
        resources (Resources): Its request, in tenths.
        ports (tuple[int, ...]): TCP ports it exposes.
        env (tuple[tuple[str, str], ...]): Plain environment variables (``<NAME>_FILE``
            for each secret).
        secret_files (tuple[tuple[str, Secret], ...]): (file name, value) of each secret,
            for the container's secret volume mounted at ``/run/secrets``.
        command (tuple[str, ...] | None): The command; None keeps the image's.
        probe (tuple[str, ...] | None): Readiness probe command.
        mounts (tuple[Mount, ...]): Volume mounts.
    """

    name: str
    role: str
    image: str
    resources: Resources
    ports: tuple[int, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    secret_files: tuple[tuple[str, Secret], ...] = ()
    command: tuple[str, ...] | None = None
    probe: tuple[str, ...] | None = None
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class RegistryAuth:
    """How the group pulls images: a managed identity, or admin user and password."""

    server: str
    identity: str | None = None
    username: str | None = None
    password: Secret | None = None


@dataclass(frozen=True)
class GroupSpec:
    """One desired container group.

    Args:
        name (str): Group name.
        workload (str): ``ipyparallel`` or ``blast``.
        kind (str): ``head``, ``engines`` or ``workers``.
        containers (tuple[ContainerSpec, ...]): Its containers.
        ip (str | None): ``Public``, ``Private`` or None (no IP address).
        priority (str): ``Regular``, or ``Spot`` for worker groups of ``blast.priority:
            spot`` (no IP address and no subnet: Spot has no inbound connectivity).
        location (str | None): Its region when not the deployment's (overflow).
        ports (tuple[int, ...]): Ports exposed on the IP address.
        dns_label (str | None): DNS label of a public IP.
        subnet_id (str | None): Subnet of a private IP (or of an IP-less group).
        volumes (tuple[str, ...]): emptyDir volumes.
        identity (str | None): User-assigned identity resource id.
        registry (RegistryAuth | None): Image pull credentials.
        tags (tuple[tuple[str, str], ...]): Resource tags.
        after_head (bool): Needs the head's private IP, so it is created after it.
        restart_policy (str): ``Always`` (services), ``OnFailure`` or ``Never``
            (run-to-completion, e.g. run workers and the janitor).
    """

    name: str
    workload: str
    kind: str
    containers: tuple[ContainerSpec, ...]
    ip: Literal["Public", "Private"] | None = None
    priority: Literal["Regular", "Spot"] = "Regular"
    location: str | None = None
    ports: tuple[int, ...] = ()
    dns_label: str | None = None
    subnet_id: str | None = None
    volumes: tuple[str, ...] = ()
    identity: str | None = None
    registry: RegistryAuth | None = None
    tags: tuple[tuple[str, str], ...] = ()
    after_head: bool = False
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"

    @property
    def resources(self) -> Resources:
        """The group's total request."""
        total = sizing.ZERO
        for c in self.containers:
            total = total + c.resources
        return total

    def __post_init__(self) -> None:
        if self.priority == "Spot" and (self.ip or self.subnet_id):
            raise ValueError(f"Spot group {self.name} cannot have an IP address or a subnet")


@dataclass(frozen=True)
class Plan:
    """The desired state of one deployment.

    Args:
        deployment (str): Deployment name.
        location (str): Azure region.
        groups (tuple[GroupSpec, ...]): Groups, the head first.
        endpoints (tuple[tuple[str, str], ...]): (name, URL) users connect to.
    """

    deployment: str
    location: str
    groups: tuple[GroupSpec, ...]
    endpoints: tuple[tuple[str, str], ...] = ()

    @property
    def resources(self) -> Resources:
        """Total request of every group."""
        total = sizing.ZERO
        for g in self.groups:
            total = total + g.resources
        return total


HEAD_IP_PLACEHOLDER = "<head private IP>"


def _container(
    role: Role,
    name: str,
    image: str,
    resources: Resources,
    values: Mapping[str, EnvValue | None],
    mounts: tuple[Mount, ...] | None = None,
) -> ContainerSpec:
    """Build a container from its contract role: secrets become files, by the contract."""
    env: list[tuple[str, str]] = []
    files: list[tuple[str, Secret]] = []
    for key, value in values.items():
        if value is None:
            continue
        if not role.reads(key):
            raise ValueError(f"{key} is not in the {role.name} contract")
        if key in role.secret_names or isinstance(value, Secret):
            var = role.secret(key)
            files.append((var.secret_file, value if isinstance(value, Secret) else Secret(value)))
            env.append((var.file_var, var.secret_path))
        else:
            env.append((key, value))
    all_mounts = role.mounts if mounts is None else mounts
    if files:
        all_mounts = (*all_mounts, Mount(secret_volume(name), contract.SECRETS_DIR, True))
    return ContainerSpec(
        name=name,
        role=role.name,
        image=image,
        resources=resources,
        ports=role.ports,
        env=tuple(sorted(env)),
        secret_files=tuple(sorted(files, key=lambda kv: kv[0])),
        command=role.command,
        probe=role.probe,
        mounts=all_mounts,
    )


def secret_volume(container: str) -> str:
    """Name of the secret volume of ``container`` in its group: ``<container>-secrets``."""
    return f"{container}-secrets"


def head_host(settings: Settings, workload: Workload, private_ip: str | None = None) -> str:
    """Return the address engines use to reach the head.

    ``<dnsLabel>.<location>.azurecontainer.io``, or in subnet mode the head's
    private IP (a placeholder until the head exists).
    """
    if settings.subnet_id:
        return private_ip or HEAD_IP_PLACEHOLDER
    return f"{dns_label(settings, workload)}.{settings.location}.azurecontainer.io"


def dns_label(settings: Settings, workload: Workload) -> str:
    """Return the head's DNS label: the workload's, else ``<deployment>-head``."""
    ipp = workload.workloads.ipyparallel
    return (ipp.dns_label if ipp and ipp.dns_label else None) or f"{settings.deployment}-head"


def _storage_env(settings: Settings, workload: Workload) -> dict[str, EnvValue | None]:
    blast = workload.workloads.blast
    if settings.storage_account:
        if not settings.managed_identity_client_id:
            raise MissingSettingError(
                "deployment.managed_identity_client_id is not set; containers need it to read "
                f"storage account {settings.storage_account} through the managed identity",
                hint="set it to `az identity show --ids IDENTITY --query clientId -o tsv`",
            )
        values: dict[str, EnvValue | None] = {
            "AZURE_STORAGE_ACCOUNT": settings.storage_account,
            "AZURE_CLIENT_ID": settings.managed_identity_client_id,
        }
    elif settings.storage_connection_string:
        values = {"AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string}
    else:
        raise MissingSettingError(
            "the blast workload needs storage: deployment.storage_account is not set and "
            f"{defaults.Env.STORAGE_CONNECTION_STRING} is not exported",
            hint="set deployment.storage_account (`az storage account list --query [].name -o "
            "tsv`) and managed_identity_client_id, or export "
            f"{defaults.Env.STORAGE_CONNECTION_STRING}",
        )
    values["BLAST_QUEUE"] = blast.queue if blast else None
    return values


def engine_connection_info(secrets: DeploymentSecrets, host: str) -> str:
    """Return the engines' connection JSON (ipyparallel engine connection file)."""
    info: dict[str, Any] = {
        "key": secrets.ipp_key,
        **contract.ENGINE_SESSION,
        "interface": "tcp://127.0.0.1",
        "location": host,
        "ssh": f"{contract.ENGINE_SSH_USER}@{host}:{contract.ENGINE_ENTRY_PORT}",
        **contract.CONTROLLER_PORT_MAP,
    }
    return json.dumps(info, sort_keys=True)


def known_hosts_line(secrets: DeploymentSecrets, host: str) -> str:
    """Return the pinned head host key: ``[host]:2222 ssh-ed25519 AAAA...``."""
    key_type, key = secrets.host_key.public.split()[:2]
    return f"[{host}]:{contract.ENGINE_ENTRY_PORT} {key_type} {key}"


def _tags(
    settings: Settings, workload: str, kind: str, secret_values: list[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    return (
        ("deployment", settings.deployment),
        ("kind", kind),
        (SECRETS_TAG, digest(secret_values)),
        ("tool", defaults.TOOL_TAG),
        ("workload", workload),
    )


def _finish(
    settings: Settings,
    name: str,
    workload: str,
    kind: str,
    containers: list[ContainerSpec],
    **kwargs: Any,
) -> GroupSpec:
    registry = None
    if settings.registry_auth == "admin":
        registry = RegistryAuth(
            settings.registry,
            username=settings.registry_username,
            password=settings.registry_password,
        )
    elif settings.managed_identity:
        registry = RegistryAuth(settings.registry, identity=settings.managed_identity)
    secret_values = [(f"{c.name}.{k}", v.reveal()) for c in containers for k, v in c.secret_files]
    if registry and registry.password:
        secret_values.append(("registry.password", registry.password.reveal()))
    kwargs.setdefault("subnet_id", settings.subnet_id)
    return GroupSpec(
        name=name,
        workload=workload,
        kind=kind,
        containers=tuple(containers),
        identity=settings.managed_identity,
        registry=registry,
        tags=_tags(settings, workload, kind, secret_values),
        **kwargs,
    )


def group_names(workload: Workload, deployment: str) -> list[str]:
    """Return the names of the groups :func:`build` plans, head first, without secrets.

    ``status`` uses this to list planned groups that are missing.

    Args:
        workload (Workload): The validated workload file.
        deployment (str): The deployment name.
    """
    names: list[str] = []
    ipp = workload.workloads.ipyparallel
    blast = workload.workloads.blast
    if ipp:
        names.append(f"{deployment}-head")
        sized = sizing.engine_groups(
            ipp.engines, ipp.vcpu_per_engine, ipp.memory_gb_per_engine, ipp.engines_per_container
        )
        names += [f"{deployment}-engines-{i + 1}" for i in range(len(sized))]
    if blast:
        dbs = [(db.name, db.bytes_to_cache or 0) for db in blast.databases]
        workers = sizing.blast_groups(blast.workers, dbs, blast.threads_per_worker)
        names += [f"{deployment}-blast-{i + 1}" for i in range(len(workers))]
    return names


def build(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    *,
    head_private_ip: str | None = None,
    notebook_tls: tuple[Secret, Secret] | None = None,
    web_tls: tuple[Secret, Secret] | None = None,
) -> Plan:
    """Turn a workload into its desired groups.

    Args:
        workload (Workload): The validated workload file.
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        head_private_ip (str | None): The head's private IP in subnet mode, once
            known. Default: None (a placeholder).
        notebook_tls (tuple[Secret, Secret] | None): (cert, key) PEM when the
            notebook TLS mode is ``provided``. Default: None.
        web_tls (tuple[Secret, Secret] | None): (cert, key) PEM when the BLAST web
            page's TLS mode is ``provided``. Default: None.

    Returns:
        Plan: The groups, head first.

    Raises:
        SizingError: When a workload cannot fit the ACI limits.
        MissingSettingError: When a setting the workload needs is missing.
    """
    groups: list[GroupSpec] = []
    endpoints: list[tuple[str, str]] = []

    built = dict(settings.images)

    def image(name: str) -> str:
        return built.get(name) or contract.image_ref(settings.registry, name, settings.image_tag)

    ipp = workload.workloads.ipyparallel
    blast = workload.workloads.blast
    dep = settings.deployment
    if ipp:
        host = head_host(settings, workload, head_private_ip)
        head = sizing.head_group(ipp.notebook)
        containers = [
            _container(
                contract.IPCONTROLLER,
                "ipcontroller",
                image("ipcontroller"),
                head.containers[0].resources,
                {
                    "IPP_KEY": Secret(secrets.ipp_key),
                    "IPP_SSH_AUTHORIZED_KEYS": secrets.engine_key.public,
                    "IPP_SSH_HOST_KEY": Secret(secrets.host_key.private),
                    # In subnet mode the controller learns its own IP at start.
                    "IPP_PUBLIC_HOST": None if settings.subnet_id else host,
                    "IPP_ACTIVITY_INTERVAL": activity_interval(ipp.idle_shutdown),
                },
            )
        ]
        ports = [contract.ENGINE_ENTRY_PORT]
        if ipp.notebook:
            nb: dict[str, EnvValue | None] = {
                "NOTEBOOK_TOKEN": Secret(secrets.notebook_token),
                "NOTEBOOK_TLS": ipp.tls.mode,
            }
            if ipp.tls.mode == "provided":
                if notebook_tls is None:
                    raise MissingSettingError("the notebook TLS certificate and key were not read")
                nb["NOTEBOOK_TLS_CERT"], nb["NOTEBOOK_TLS_KEY"] = notebook_tls
            if blast:
                nb.update(_storage_env(settings, workload))
            containers.append(
                _container(
                    contract.NOTEBOOK,
                    "notebook",
                    image("notebook"),
                    head.containers[1].resources,
                    nb,
                )
            )
            ports.insert(0, contract.NOTEBOOK_PORT)
            scheme = "http" if ipp.tls.mode == "off" else "https"
            endpoints.append(("notebook", f"{scheme}://{host}:{contract.NOTEBOOK_PORT}/"))
        endpoints.append(
            (
                "engine entry",
                f"ssh://{contract.ENGINE_SSH_USER}@{host}:{contract.ENGINE_ENTRY_PORT}",
            )
        )
        groups.append(
            _finish(
                settings,
                f"{dep}-head",
                IPP,
                "head",
                containers,
                ip="Private" if settings.subnet_id else "Public",
                ports=tuple(ports),
                dns_label=None if settings.subnet_id else dns_label(settings, workload),
                volumes=("ipp-security",),
            )
        )
        engine_env: dict[str, EnvValue | None] = {
            "IPP_CONNECTION_INFO": Secret(engine_connection_info(secrets, host)),
            "IPP_SSH_KEY": Secret(secrets.engine_key.private),
            "IPP_SSH_KNOWN_HOSTS": known_hosts_line(secrets, host),
        }
        sized = sizing.engine_groups(
            ipp.engines, ipp.vcpu_per_engine, ipp.memory_gb_per_engine, ipp.engines_per_container
        )
        n = 0
        for i, group in enumerate(sized):
            engines = []
            for k, c in enumerate(group.containers):
                n += 1
                env = {
                    **engine_env,
                    "IPP_ENGINES_PER_CONTAINER": str(c.units),
                    # The containers of a group share localhost: one health port each.
                    "IPP_HEALTH_PORT": str(contract.ENGINE_HEALTH_PORT + k),
                    "IPP_MPI": "1" if ipp.mpi else None,
                }
                engines.append(
                    _container(
                        contract.IPENGINE, f"ipengine-{n}", image("ipengine"), c.resources, env
                    )
                )
            groups.append(
                _finish(
                    settings,
                    f"{dep}-engines-{i + 1}",
                    IPP,
                    "engines",
                    engines,
                    after_head=bool(settings.subnet_id),
                )
            )
    if blast:
        dbs = [(db.name, db.bytes_to_cache or 0) for db in blast.databases]
        storage = _storage_env(settings, workload)
        n = 0
        for i, group in enumerate(
            sizing.blast_groups(blast.workers, dbs, blast.threads_per_worker)
        ):
            workers: list[ContainerSpec] = []
            volumes: list[str] = []
            for c in group.containers:
                n += 1
                volume = f"blastdb-cache-{n}"
                volumes.append(volume)
                env = {
                    **storage,
                    "BLAST_DBS": ",".join(name for name, _ in dbs),
                    "BLAST_THREADS": str(blast.threads_per_worker),
                    "BLAST_DB_CACHE": contract.BLAST_DB_CACHE,
                    # The containers of a group share localhost: one health port each.
                    "BLAST_HEALTH_PORT": str(contract.BLAST_HEALTH_PORT + len(workers)),
                }
                workers.append(
                    _container(
                        contract.BLAST_WORKER,
                        f"blast-worker-{n}",
                        image("blast-worker"),
                        c.resources,
                        env,
                        mounts=(Mount(volume, contract.BLAST_DB_CACHE),),
                    )
                )
            spot = blast.priority == "spot"
            groups.append(
                _finish(
                    settings,
                    f"{dep}-blast-{i + 1}",
                    BLAST,
                    "workers",
                    workers,
                    volumes=tuple(volumes),
                    # Spot groups have no inbound connectivity and cannot join a VNet.
                    **({"priority": "Spot", "subnet_id": None} if spot else {}),
                )
            )
        if blast.web_page:
            web, endpoint = _web_group(settings, blast.web_page, storage, secrets, web_tls, image)
            groups.append(web)
            endpoints.append(endpoint)
    return Plan(dep, settings.location, tuple(groups), tuple(endpoints))


def _web_group(
    settings: Settings,
    page: BlastWeb,
    storage: Mapping[str, EnvValue | None],
    secrets: DeploymentSecrets,
    tls: tuple[Secret, Secret] | None,
    image: Callable[[str], str],
) -> tuple[GroupSpec, tuple[str, str]]:
    """The BLAST web page's group and endpoint.

    A group of its own rather than a place in the head group: it exists without an
    ipyparallel cluster, it is recreated independently of the notebook, and it holds storage
    credentials but no cluster keys. It uses one of the five ports of its own public IP
    (8080); the head keeps two of its five (8888, 2222). The access token is the
    deployment's front-door token, the notebook's.
    """
    env: dict[str, EnvValue | None] = {
        **storage,
        "WEB_TOKEN": Secret(secrets.notebook_token),
        "WEB_TLS": page.tls.mode,
    }
    if page.tls.mode == "provided":
        if tls is None:
            raise MissingSettingError("the BLAST web page's TLS certificate and key were not read")
        env["WEB_TLS_CERT"], env["WEB_TLS_KEY"] = tls
    container = _container(
        contract.BLAST_WEB,
        "blast-web",
        image("blast-web"),
        Resources(defaults.WEB_CPU, defaults.WEB_MEMORY),
        env,
    )
    label = page.dns_label or f"{settings.deployment}-blast"
    host = (
        "<private IP>" if settings.subnet_id else f"{label}.{settings.location}.azurecontainer.io"
    )
    scheme = "http" if page.tls.mode == "off" else "https"
    group = _finish(
        settings,
        f"{settings.deployment}-web",
        BLAST,
        "web",
        [container],
        ip="Private" if settings.subnet_id else "Public",
        ports=(contract.WEB_PORT,),
        dns_label=None if settings.subnet_id else label,
    )
    return group, ("blast web", f"{scheme}://{host}:{contract.WEB_PORT}/")


def activity_interval(idle_shutdown: str | None) -> str | None:
    """Seconds between the controller's task-activity reports: a sixth of ``idle_shutdown``
    within 5..30 s, so the janitor sees a task well within the idle time (pure).

    Args:
        idle_shutdown (str | None): The workload's ``idle_shutdown``; None keeps the image's.
    """
    if not idle_shutdown:
        return None
    return str(max(5, min(30, duration_seconds(idle_shutdown) // 6)))


def mpi_worlds(spec: GroupSpec) -> dict[str, int]:
    """Return the MPI world size of each engines container of ``spec`` (empty without MPI).

    The engines of one container form one world (``IPP_MPI``); a world never spans
    containers or groups.
    """
    worlds = {}
    for c in spec.containers:
        env = dict(c.env)
        if env.get("IPP_MPI") == "1":
            worlds[c.name] = int(env["IPP_ENGINES_PER_CONTAINER"])
    return worlds


def mpi_notes(plan: Plan) -> list[str]:
    """Say how the plan's engines form MPI worlds, for ``deployer plan`` (empty without MPI).

    One line per engines group with the world size of each container (runs of equal
    worlds in one line), then why a world stops at its container.
    """
    notes = []
    for group in plan.groups:
        worlds = list(mpi_worlds(group).items())
        runs: list[tuple[str, str, int]] = []  # first container, last container, ranks
        for name, size in worlds:
            if runs and runs[-1][2] == size:
                runs[-1] = (runs[-1][0], name, size)
            else:
                runs.append((name, name, size))
        if runs:
            text = "; ".join(
                f"{first}{'' if first == last else f' to {last}'}: {size} "
                f"rank{'s' if size > 1 else ''}{'' if first == last else ' each'}"
                for first, last, size in runs
            )
            notes.append(f"MPI world size per container in {group.name}: {text}")
    if notes:
        notes.append(
            "MPI: ranks talk only inside their container; one MPI world cannot span ACI "
            "container groups, which reach each other only through the head's ports (at most "
            f"{defaults.MAX_PORTS_PER_IP} per IP)"
        )
    return notes


# --- comparing desired and observed groups ---------------------------------------


def canonical(spec: GroupSpec) -> dict[str, Any]:
    """Return the fields ``up`` sets, split into those ACI can update in place and
    those that need a recreate. Backends produce the same shape from what they
    observe, so :func:`diff` compares like with like.
    """
    return {
        "recreate": {
            "os": "Linux",
            "restart": spec.restart_policy,
            "ip": [spec.ip, sorted(spec.ports), spec.dns_label] if spec.ip else None,
            "subnet": spec.subnet_id.lower() if spec.subnet_id else None,
            "priority": spec.priority,
            "identity": spec.identity.lower() if spec.identity else None,
            "volumes": sorted(
                [*spec.volumes, *(secret_volume(c.name) for c in spec.containers if c.secret_files)]
            ),
            "containers": {
                c.name: {
                    "cpu": c.resources.cpu,
                    "memory": c.resources.memory,
                    "ports": sorted(c.ports),
                }
                for c in spec.containers
            },
        },
        # Secret files are not compared here (ARM never returns their values): their
        # names and values are in the SECRETS_TAG digest, their volumes in "volumes".
        "update": {
            "tags": dict(spec.tags),
            "registry": [spec.registry.server, spec.registry.identity, spec.registry.username]
            if spec.registry
            else None,
            "containers": {
                c.name: {
                    "image": c.image,
                    "command": list(c.command) if c.command else None,
                    "env": dict(c.env),
                    "probe": list(c.probe) if c.probe else None,
                    "mounts": sorted([m.volume, m.path, m.read_only] for m in c.mounts),
                }
                for c in spec.containers
            },
        },
    }


class Action(StrEnum):
    """What ``up`` does with one group."""

    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    UNCHANGED = "unchanged"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One planned change.

    Args:
        name (str): Group name.
        action (Action): What happens to it.
        spec (GroupSpec | None): The desired group (None for a delete).
        reasons (tuple[str, ...]): The differing fields, ``path: old -> new``.
    """

    name: str
    action: Action
    spec: GroupSpec | None = None
    reasons: tuple[str, ...] = field(default=())


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _differences(old.get(key), new.get(key), sub)
        return out
    if old == new:
        return []
    if path.startswith("update.tags." + SECRETS_TAG):
        return ["secrets changed"]
    return [f"{path.split('.', 1)[1]}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def diff(desired: Sequence[GroupSpec], observed: Mapping[str, Mapping[str, Any]]) -> list[Change]:
    """Compare desired groups with observed ones (name -> canonical form).

    Args:
        desired (Sequence[GroupSpec]): The plan's groups.
        observed (Mapping[str, Mapping[str, Any]]): Existing groups of the
            deployment, by name, in the shape of :func:`canonical`.

    Returns:
        list[Change]: One change per desired group, in order, then one delete per
        observed group the plan no longer has.
    """
    changes = []
    for spec in desired:
        have = observed.get(spec.name)
        if have is None:
            changes.append(Change(spec.name, Action.CREATE, spec))
            continue
        want = canonical(spec)
        recreate = _differences(have.get("recreate"), want["recreate"], "recreate")
        update = _differences(have.get("update"), want["update"], "update")
        if recreate:
            changes.append(Change(spec.name, Action.RECREATE, spec, tuple(recreate + update)))
        elif update:
            changes.append(Change(spec.name, Action.UPDATE, spec, tuple(update)))
        else:
            changes.append(Change(spec.name, Action.UNCHANGED, spec))
    wanted = {s.name for s in desired}
    changes += [Change(name, Action.DELETE) for name in sorted(observed) if name not in wanted]
    return changes
