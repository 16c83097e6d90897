"""Render a workload as a docker compose file, through jinja2 templates.

Roles, images, commands, mounts and ports come from :mod:`deployer.contract`, sizes
from :mod:`deployer.sizing`, so local runs and ACI runs agree. Local-only plumbing
(Azurite, the init job, secrets from ``compose/.env``, loopback publishing) lives in
``deployer/templates/docker-compose.yml.j2``. Compose runs every engine or worker
as one container of the per-engine (per-worker) size: ``cpus`` and ``mem_limit``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jinja2

from deployer import contract, defaults, sizing
from deployer.contract import Role
from deployer.plan.databases import worker_sizing
from deployer.sizing import Resources
from deployer.workload import Workload, load

TEMPLATE = "docker-compose.yml.j2"


@dataclass(frozen=True)
class Scaled:
    """A replicated service: how many, and the size of each.

    Args:
        replicas (int): Default number of containers (overridable from .env).
        cpus (str): Compose ``cpus``.
        mem_limit (str): Compose ``mem_limit``, e.g. ``1g`` or ``1536m``.
        per_container (int): Engines per container (engines only).
        mpi (bool): The engines of a container form one MPI world (engines only).
        dbs (str): Comma-separated BLAST databases (workers only).
    """

    replicas: int
    cpus: str
    mem_limit: str
    per_container: int = 1
    mpi: bool = False
    dbs: str = ""


def mem_limit(tenths: int) -> str:
    """Format GB tenths as a compose memory limit: 10 -> ``1g``, 15 -> ``1536m``."""
    if tenths % defaults.TENTHS == 0:
        return f"{tenths // defaults.TENTHS}g"
    return f"{tenths * 1024 // defaults.TENTHS}m"


def _padded(unit: Resources) -> Resources:
    # One container alone must still meet the ACI group minimum, as in ACI.
    return Resources(
        max(unit.cpu, defaults.MIN_GROUP_CPU), max(unit.memory, defaults.MIN_GROUP_MEMORY)
    )


def context(workload: Workload) -> dict[str, object]:
    """Return the template's variables for ``workload`` (pure)."""
    ipp, blast = workload.workloads.ipyparallel, workload.workloads.blast
    engines = workers = None
    if ipp:
        unit = Resources(
            sizing.to_tenths(ipp.vcpu_per_engine), sizing.to_tenths(ipp.memory_gb_per_engine)
        )
        size = _padded(unit * ipp.engines_per_container)
        replicas = -(-ipp.engines // ipp.engines_per_container)
        engines = Scaled(
            replicas,
            sizing.fmt(size.cpu),
            mem_limit(size.memory),
            ipp.engines_per_container,
            mpi=ipp.mpi,
        )
    if blast:
        size = _padded(worker_sizing(workload).worker)
        workers = Scaled(
            blast.workers,
            sizing.fmt(size.cpu),
            mem_limit(size.memory),
            dbs=",".join(db.name for db in blast.databases),
        )
    volumes: list[str] = []
    if blast:
        volumes.append(contract.AZURITE.mounts[0].volume)
    if ipp:
        volumes.append(contract.IPCONTROLLER.mounts[0].volume)
        if ipp.notebook:
            volumes.append("notebook-work")
    if blast:
        volumes.append(contract.BLAST_WORKER.mounts[0].volume)
    return {
        "ipp": ipp,
        "blast": blast,
        "storage": blast is not None,
        "engines": engines,
        "workers": workers,
        "volumes": volumes,
        "azurite": contract.AZURITE,
        "init": contract.BLAST_INIT,
        "controller": contract.IPCONTROLLER,
        "notebook": contract.NOTEBOOK,
        "engine": contract.IPENGINE,
        "worker": contract.BLAST_WORKER,
        "web": contract.BLAST_WEB if blast and blast.web_page else None,
    }


def _image(role: Role) -> str:
    if role is contract.AZURITE:
        return contract.image_ref(contract.LOCAL_REGISTRY, role.image, contract.LOCAL_TAG)
    return (
        f"${{IMAGE_PREFIX:-{contract.LOCAL_REGISTRY}}}/{role.image}:${{TAG:-{contract.LOCAL_TAG}}}"
    )


def _mounts(role: Role) -> str:
    return "\n".join(
        f"      - {m.volume}:{m.path}{':ro' if m.read_only else ''}" for m in role.mounts
    )


def _command(role: Role) -> str:
    return json.dumps(list(role.command or ()))


def _secret_env(role: Role, name: str) -> str:
    var = role.secret(name)
    return f"{var.file_var}: {var.secret_path}"


def _hardening(role: Role) -> str:
    h = role.hardening
    lines = ["    <<: *hardening"]
    if not h.read_only:
        lines.append("    read_only: false")
    lines.append("    tmpfs:")
    lines += [f"      - {t}" for t in h.tmpfs]
    lines.append(f"    pids_limit: {h.pids_limit}")
    return "\n".join(lines)


def _secrets(used: list[str]) -> object:
    def render(role: Role, *names: str) -> str:
        files = [role.secret(n).secret_file for n in names]
        used.extend(f for f in files if f not in used)
        return "    secrets:\n" + "\n".join(f"      - {f}" for f in files)

    return render


def environment() -> jinja2.Environment:
    """The jinja2 environment over ``deployer/templates``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deployer", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.globals.update(
        image=_image,
        mounts=_mounts,
        command=_command,
        secret_env=_secret_env,
        hardening=_hardening,
        uid=contract.USER_UID,
        log_max_size=contract.LOG_MAX_SIZE,
        log_max_file=contract.LOG_MAX_FILE,
    )
    return env


def compose_text(workload: Workload) -> str:
    """Render the compose file of ``workload``.

    Args:
        workload (Workload): The validated workload. Local runs ignore its
            deployment settings and TLS (the notebook is published on 127.0.0.1).
    """
    # Compose mounts a service's secrets at /run/secrets/<name>: the contract's paths.
    assert contract.SECRETS_DIR == "/run/secrets"
    used: list[str] = []  # filled by secrets() while rendering, listed at the end
    return (
        environment()
        .get_template(TEMPLATE)
        .render(**context(workload), secret_files=used, secrets=_secrets(used))
    )


def compose_file(path: Path) -> str:
    """Read the workload file at ``path`` and render its compose file."""
    return compose_text(load(path))
