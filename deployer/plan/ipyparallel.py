"""The ipyparallel workload's groups (pure): the head (ipcontroller, and the notebook unless
``notebook: false``) and the engine groups, which reach the head through its SSH entry port.
"""

from __future__ import annotations

import json
from typing import Any

from deployer import contract, defaults, sizing
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import common
from deployer.plan.spec import IPP, ContainerSpec, EnvValue, GroupSpec, Plan
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import IPyParallel, Workload, duration_seconds

HEAD_IP_PLACEHOLDER = "<head private IP>"

Endpoint = tuple[str, str]
"""(name, URL) users connect to."""


def head_host(settings: Settings, workload: Workload, private_ip: str | None = None) -> str:
    """Return the address engines use to reach the head.

    ``<dnsLabel>.<location>.azurecontainer.io``, or in subnet mode the head's
    private IP (a placeholder until the head exists).
    """
    if settings.subnet_id:
        return private_ip or HEAD_IP_PLACEHOLDER
    return f"{dns_label(settings, workload)}.{settings.location}.azurecontainer.io"


def dns_label(settings: Settings, workload: Workload) -> str:
    """Return the head's DNS label: the workload's, else ``<deployment>-head-<hash>``
    (:func:`deployer.plan.common.dns_label`)."""
    ipp = workload.workloads.ipyparallel
    return common.dns_label(settings, "head", ipp.dns_label if ipp else None)


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


def activity_interval(idle_shutdown: str | None) -> str | None:
    """Seconds between the controller's task-activity reports: a sixth of ``idle_shutdown``
    within 5..30 s, so the janitor sees a task well within the idle time (pure).

    Args:
        idle_shutdown (str | None): The workload's ``idle_shutdown``; None keeps the image's.
    """
    if not idle_shutdown:
        return None
    return str(max(5, min(30, duration_seconds(idle_shutdown) // 6)))


def _engine_sizes(ipp: IPyParallel) -> list[sizing.GroupSize]:
    return sizing.engine_groups(
        ipp.engines, ipp.vcpu_per_engine, ipp.memory_gb_per_engine, ipp.engines_per_container
    )


def group_names(ipp: IPyParallel, deployment: str) -> list[str]:
    """The names of the head and engine groups, head first (no secrets needed)."""
    engines = len(_engine_sizes(ipp))
    return [f"{deployment}-head", *(f"{deployment}-engines-{i + 1}" for i in range(engines))]


def groups(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    *,
    head_private_ip: str | None = None,
    notebook_tls: tuple[Secret, Secret] | None = None,
) -> tuple[list[GroupSpec], list[Endpoint]]:
    """The head group, then the engine groups, and the endpoints users connect to.

    Args:
        workload (Workload): The workload file (``workloads.ipyparallel`` set).
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        head_private_ip (str | None): The head's private IP in subnet mode, once known.
        notebook_tls (tuple[Secret, Secret] | None): (cert, key) PEM for ``tls: provided``.
    """
    ipp = workload.workloads.ipyparallel
    assert ipp is not None, "checked by the caller"
    host = head_host(settings, workload, head_private_ip)
    head, endpoints = head_group(workload, settings, secrets, host, notebook_tls)
    return [head, *engine_groups(ipp, settings, secrets, host)], endpoints


def head_group(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    host: str,
    notebook_tls: tuple[Secret, Secret] | None,
) -> tuple[GroupSpec, list[Endpoint]]:
    """The head group (ipcontroller, notebook) and its endpoints.

    Raises:
        MissingSettingError: For ``tls: provided`` without the certificate and key.
    """
    ipp = workload.workloads.ipyparallel
    assert ipp is not None, "checked by the caller"
    sized = sizing.head_group(ipp.notebook)
    containers = [_controller(ipp, settings, secrets, host, sized.containers[0].resources)]
    ports = [contract.ENGINE_ENTRY_PORT]
    endpoints: list[Endpoint] = []
    if ipp.notebook:
        resources = sized.containers[1].resources
        containers.append(_notebook(workload, settings, secrets, notebook_tls, resources))
        ports.insert(0, contract.NOTEBOOK_PORT)
        scheme = "http" if ipp.tls.mode == "off" else "https"
        endpoints.append((common.NOTEBOOK_ENDPOINT, f"{scheme}://{host}:{contract.NOTEBOOK_PORT}/"))
    entry = f"ssh://{contract.ENGINE_SSH_USER}@{host}:{contract.ENGINE_ENTRY_PORT}"
    endpoints.append(("engine entry", entry))
    head = common.group(
        settings,
        f"{settings.deployment}-head",
        IPP,
        "head",
        containers,
        ip="Private" if settings.subnet_id else "Public",
        ports=tuple(ports),
        dns_label=None if settings.subnet_id else dns_label(settings, workload),
        volumes=("ipp-security",),
    )
    return head, endpoints


def _controller(
    ipp: IPyParallel,
    settings: Settings,
    secrets: DeploymentSecrets,
    host: str,
    resources: Resources,
) -> ContainerSpec:
    return common.container(
        contract.IPCONTROLLER,
        "ipcontroller",
        common.image(settings, "ipcontroller"),
        resources,
        {
            "IPP_KEY": Secret(secrets.ipp_key),
            "IPP_SSH_AUTHORIZED_KEYS": secrets.engine_key.public,
            "IPP_SSH_HOST_KEY": Secret(secrets.host_key.private),
            # In subnet mode the controller learns its own IP at start.
            "IPP_PUBLIC_HOST": None if settings.subnet_id else host,
            "IPP_ACTIVITY_INTERVAL": activity_interval(ipp.idle_shutdown),
        },
    )


def _notebook(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    tls: tuple[Secret, Secret] | None,
    resources: Resources,
) -> ContainerSpec:
    ipp = workload.workloads.ipyparallel
    assert ipp is not None, "checked by the caller"
    env = common.front_door_env(
        "NOTEBOOK", "the notebook", secrets.notebook_token, ipp.tls.mode, tls
    )
    if workload.workloads.blast:
        # The notebook submits BLAST jobs too.
        env.update(common.storage_env(settings, workload))
    return common.container(
        contract.NOTEBOOK, "notebook", common.image(settings, "notebook"), resources, env
    )


def engine_groups(
    ipp: IPyParallel, settings: Settings, secrets: DeploymentSecrets, host: str
) -> list[GroupSpec]:
    """The engine groups, sized by :func:`deployer.sizing.engine_groups`.

    Args:
        ipp (IPyParallel): The workload's ``ipyparallel`` block.
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets (SSH keys, hub key).
        host (str): The head's address (:func:`head_host`).
    """
    shared: dict[str, EnvValue | None] = {
        "IPP_CONNECTION_INFO": Secret(engine_connection_info(secrets, host)),
        "IPP_SSH_KEY": Secret(secrets.engine_key.private),
        "IPP_SSH_KNOWN_HOSTS": known_hosts_line(secrets, host),
    }
    image = common.image(settings, "ipengine")
    groups = []
    n = 0
    for i, sized in enumerate(_engine_sizes(ipp)):
        engines = []
        for k, c in enumerate(sized.containers):
            n += 1
            env = {
                **shared,
                "IPP_ENGINES_PER_CONTAINER": str(c.units),
                # The containers of a group share localhost: one health port each.
                "IPP_HEALTH_PORT": str(contract.ENGINE_HEALTH_PORT + k),
                "IPP_MPI": "1" if ipp.mpi else None,
            }
            engines.append(
                common.container(contract.IPENGINE, f"ipengine-{n}", image, c.resources, env)
            )
        groups.append(
            common.group(
                settings,
                f"{settings.deployment}-engines-{i + 1}",
                IPP,
                "engines",
                engines,
                after_head=bool(settings.subnet_id),
            )
        )
    return groups


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
