"""The BLAST workload's groups (pure): the queue workers, sized by their databases, and the
optional web page.
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer import contract, defaults, sizing
from deployer.contract import Mount
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import common
from deployer.plan.databases import worker_sizing
from deployer.plan.spec import BLAST, ContainerSpec, EnvValue, GroupSpec
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import BlastWeb, Workload

Endpoint = tuple[str, str]
"""(name, URL) users connect to."""


def _worker_sizes(workload: Workload) -> list[sizing.GroupSize]:
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    sized = worker_sizing(workload)
    return sizing.pack(blast.workers, sized.worker, 1, sized.limits)


def group_names(workload: Workload, deployment: str) -> list[str]:
    """The names of the worker groups (no secrets needed)."""
    return [f"{deployment}-blast-{i + 1}" for i in range(len(_worker_sizes(workload)))]


def groups(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    *,
    web_tls: tuple[Secret, Secret] | None = None,
) -> tuple[list[GroupSpec], list[Endpoint]]:
    """The worker groups, then the web page's group, and the page's endpoint.

    Args:
        workload (Workload): The workload file (``workloads.blast`` set).
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets (the page's token).
        web_tls (tuple[Secret, Secret] | None): (cert, key) PEM for the page's
            ``tls: provided``.

    Raises:
        MissingSettingError: When no storage is configured.
    """
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    storage = common.storage_env(settings, workload)
    groups = worker_groups(workload, settings, storage)
    if not blast.web_page:
        return groups, []
    web, endpoint = web_group(settings, blast.web_page, storage, secrets, web_tls)
    return [*groups, web], [endpoint]


def worker_groups(
    workload: Workload, settings: Settings, storage: Mapping[str, EnvValue | None]
) -> list[GroupSpec]:
    """The worker groups, sized by :func:`deployer.plan.databases.worker_sizing`; Spot if asked.

    Args:
        workload (Workload): The workload file (``workloads.blast`` set).
        settings (Settings): Resolved settings.
        storage (Mapping[str, EnvValue | None]): :func:`~deployer.plan.common.storage_env`.
    """
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    # A sharded database is not cached at start: each job names the shard to cache.
    sharded = {c.database for c in worker_sizing(workload).choices if c.shards > 1}
    dbs = ",".join(db.name for db in blast.databases if db.name not in sharded)
    image = common.image(settings, "blast-worker")
    spot = blast.priority == "spot"
    groups = []
    n = 0
    for i, sized in enumerate(_worker_sizes(workload)):
        workers: list[ContainerSpec] = []
        volumes: list[str] = []
        for c in sized.containers:
            n += 1
            volumes.append(f"blastdb-cache-{n}")
            env = {
                **storage,
                "BLAST_DBS": dbs,
                "BLAST_THREADS": str(blast.threads_per_worker),
                "BLAST_DB_CACHE": contract.BLAST_DB_CACHE,
                # The containers of a group share localhost: one health port each.
                "BLAST_HEALTH_PORT": str(contract.BLAST_HEALTH_PORT + len(workers)),
            }
            cache = (Mount(volumes[-1], contract.BLAST_DB_CACHE),)
            workers.append(
                common.container(
                    contract.BLAST_WORKER, f"blast-worker-{n}", image, c.resources, env, cache
                )
            )
        groups.append(
            common.group(
                settings,
                f"{settings.deployment}-blast-{i + 1}",
                BLAST,
                "workers",
                workers,
                volumes=tuple(volumes),
                # Spot groups have no inbound connectivity and cannot join a VNet.
                **({"priority": "Spot", "subnet_id": None} if spot else {}),
            )
        )
    return groups


def web_group(
    settings: Settings,
    page: BlastWeb,
    storage: Mapping[str, EnvValue | None],
    secrets: DeploymentSecrets,
    tls: tuple[Secret, Secret] | None,
) -> tuple[GroupSpec, Endpoint]:
    """The BLAST web page's group and endpoint.

    A group of its own rather than a place in the head group: it exists without an
    ipyparallel cluster, it is recreated independently of the notebook, and it holds storage
    credentials but no cluster keys. It uses one of the five ports of its own public IP
    (8080); the head keeps two of its five (8888, 2222). The access token is the
    deployment's front-door token, the notebook's.

    Raises:
        MissingSettingError: For ``tls: provided`` without the certificate and key.
    """
    env = {
        **storage,
        **common.front_door_env(
            "WEB", "the BLAST web page's", secrets.notebook_token, page.tls.mode, tls
        ),
    }
    container = common.container(
        contract.BLAST_WEB,
        "blast-web",
        common.image(settings, "blast-web"),
        Resources(defaults.WEB_CPU, defaults.WEB_MEMORY),
        env,
    )
    label = common.dns_label(settings, "blast", page.dns_label)
    host = (
        "<private IP>" if settings.subnet_id else f"{label}.{settings.location}.azurecontainer.io"
    )
    scheme = "http" if page.tls.mode == "off" else "https"
    group = common.group(
        settings,
        f"{settings.deployment}-web",
        BLAST,
        "web",
        [container],
        ip="Private" if settings.subnet_id else "Public",
        ports=(contract.WEB_PORT,),
        dns_label=None if settings.subnet_id else label,
    )
    return group, (common.WEB_ENDPOINT, f"{scheme}://{host}:{contract.WEB_PORT}/")
