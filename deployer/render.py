"""Render a workload as a docker compose file, through jinja2 templates.

The services come from the same contract (:mod:`deployer.contract`) and sizing
as the ACI groups, so local runs and ACI runs agree on images, commands,
environment, ports and probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from deployer import contract
from deployer.workload import Workload, load


@dataclass(frozen=True)
class Service:
    """One compose service.

    Args:
        name (str): Service name.
        role (contract.Role): Its contract role.
        image (str): Image reference.
        environment (list[tuple[str, str]]): Variables, secrets as ``${VAR}``.
        ports (list[str]): Published ports, ``host:container``.
        volumes (list[str]): ``volume:path`` mounts.
        command (list[str] | None): Command override.
        depends_on (list[tuple[str, str]]): (service, condition).
        network_mode (str | None): e.g. ``service:ipcontroller``.
        replicas (int): Number of containers.
    """

    name: str
    role: contract.Role
    image: str
    environment: list[tuple[str, str]] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    command: list[str] | None = None
    depends_on: list[tuple[str, str]] = field(default_factory=list)
    network_mode: str | None = None
    replicas: int = 1


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("deployer", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _image(role: contract.Role) -> str:
    return contract.image_ref(contract.LOCAL_REGISTRY, role.image, contract.LOCAL_TAG)


def services(workload: Workload) -> list[Service]:
    """Return the compose services of a workload (pure)."""
    out: list[Service] = []
    ipp, blast = workload.workloads.ipyparallel, workload.workloads.blast
    storage = [("AZURE_STORAGE_CONNECTION_STRING", "${AZURE_STORAGE_CONNECTION_STRING}")]
    if blast:
        azurite = contract.AZURITE
        out.append(
            Service(
                "azurite",
                azurite,
                _image(azurite),
                environment=[("AZURITE_ACCOUNTS", "${AZURITE_ACCOUNTS}")],
                ports=[f"127.0.0.1:{p}:{p}" for p in azurite.ports],
                volumes=[f"{m.volume}:{m.path}" for m in azurite.mounts],
            )
        )
        init = contract.BLAST_INIT
        out.append(
            Service(
                "init",
                init,
                _image(init),
                environment=[*storage, ("BLAST_QUEUE", blast.queue)],
                command=list(init.command or ()),
                depends_on=[("azurite", "service_healthy")],
            )
        )
        worker = contract.BLAST_WORKER
        out.append(
            Service(
                "blast-worker",
                worker,
                _image(worker),
                environment=[
                    *storage,
                    ("BLAST_QUEUE", blast.queue),
                    ("BLAST_DBS", ",".join(db.name for db in blast.databases)),
                    ("BLAST_THREADS", str(blast.threads_per_worker)),
                    ("BLAST_DB_CACHE", contract.BLAST_DB_CACHE),
                ],
                volumes=[f"{m.volume}:{m.path}" for m in worker.mounts],
                depends_on=[("init", "service_completed_successfully")],
                replicas=blast.workers,
            )
        )
    if ipp:
        ctl = contract.IPCONTROLLER
        ports = [f"127.0.0.1:{contract.ENGINE_ENTRY_PORT}:{contract.ENGINE_ENTRY_PORT}"]
        if ipp.notebook:
            ports.insert(0, f"127.0.0.1:{contract.NOTEBOOK_PORT}:{contract.NOTEBOOK_PORT}")
        out.append(
            Service(
                "ipcontroller",
                ctl,
                _image(ctl),
                environment=[
                    ("IPP_KEY", "${IPP_KEY}"),
                    ("IPP_SSH_AUTHORIZED_KEYS", "${IPP_SSH_AUTHORIZED_KEYS}"),
                    ("IPP_SSH_HOST_KEY", "${IPP_SSH_HOST_KEY}"),
                    ("IPP_PUBLIC_HOST", "ipcontroller"),
                ],
                ports=ports,
                volumes=[f"{m.volume}:{m.path}" for m in ctl.mounts],
            )
        )
        if ipp.notebook:
            nb = contract.NOTEBOOK
            env = [("NOTEBOOK_TOKEN", "${NOTEBOOK_TOKEN}"), ("NOTEBOOK_TLS", ipp.tls.mode)]
            if blast:
                env += [*storage, ("BLAST_QUEUE", blast.queue)]
            out.append(
                Service(
                    "notebook",
                    nb,
                    _image(nb),
                    environment=env,
                    volumes=[f"{m.volume}:{m.path}" for m in nb.mounts],
                    network_mode="service:ipcontroller",
                    depends_on=[("ipcontroller", "service_healthy")],
                )
            )
        eng = contract.IPENGINE
        out.append(
            Service(
                "ipengine",
                eng,
                _image(eng),
                environment=[
                    ("IPP_CONNECTION_INFO", "${IPP_CONNECTION_INFO}"),
                    ("IPP_SSH_KEY", "${IPP_SSH_KEY}"),
                    ("IPP_SSH_KNOWN_HOSTS", "${IPP_SSH_KNOWN_HOSTS}"),
                    ("IPP_ENGINES_PER_CONTAINER", str(ipp.engines_per_container)),
                ],
                depends_on=[("ipcontroller", "service_healthy")],
                replicas=ipp.engines,
            )
        )
    return out


def compose_text(workload: Workload, source: str) -> str:
    """Render the compose file text of ``workload``.

    Args:
        workload (Workload): The validated workload.
        source (str): The workload file name, quoted in the header.
    """
    svcs = services(workload)
    volumes = sorted({v.split(":", 1)[0] for s in svcs for v in s.volumes})
    template = _env().get_template("docker-compose.yml.j2")
    return template.render(
        services=svcs, volumes=volumes, source=source, healthcheck=contract.HEALTHCHECK
    )


def compose_file(path: Path) -> str:
    """Read the workload file at ``path`` and render its compose file."""
    return compose_text(load(path), str(path))
