"""The group of ``deployer db fetch`` (pure): ``blast-jobs db fetch`` run once in ACI.

One container of the blast-worker image (it has ``blast-jobs``, and it is the image every
BLAST deployment already pulls) in the deployment's region, subnet and registry, signed in to
storage the way the workers are (the managed identity's client id, or the connection string
locally), with ``restartPolicy: Never``: a failed fetch is reported, not retried in a loop
that costs money; running the command again resumes it. It runs ``blast-jobs init`` first
(idempotent), so a fresh storage account needs no step from this machine. It prints its
progress as JSON lines (``BLAST_PROGRESS=json``) and its result as the JSON envelope, which
the deployer reads from the group's log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from deployer import contract, defaults
from deployer.plan import common
from deployer.plan.spec import BLAST, FETCH_TAG, EnvValue, GroupSpec
from deployer.settings import Settings
from deployer.sizing import ACI, Limits, Resources, to_tenths

FETCH_PEAK_MIB = 220
"""Peak memory of ``blast-jobs db fetch`` at its defaults (8 volumes in parallel, 8 MiB
ranges, 4 MiB blocks): what its buffers hold, measured when the fetch was written."""
FETCH_MEMORY_HEADROOM = 2.0
"""An out-of-memory kill costs a restart of every volume in flight; memory is cheap."""
FETCH_VCPU = 2
"""gunzip plus two MD5s (the tarball's and each file's) of every byte run at about 50 MiB/s
of tarball per core (measured); two cores keep 8 parallel volumes fed, and ACI bills per
second, so a faster fetch costs about the same vCPU-seconds."""
MAX_NAME = 63
"""ACI's limit on a container group's name."""
KIND = "db-fetch"
"""The group's ``kind`` tag (and its bill line)."""


def fetch_resources(limits: Limits = ACI) -> Resources:
    """The fetch group's request: :data:`FETCH_VCPU` and the peak memory with headroom, at
    least ACI's group minimum (1 vCPU, 1 GB) (pure).

    Args:
        limits (Limits): Group limits. Default: :data:`deployer.sizing.ACI`.
    """
    gb = FETCH_PEAK_MIB * FETCH_MEMORY_HEADROOM * 2**20 / defaults.GB
    return Resources(
        max(limits.min_cpu, FETCH_VCPU * defaults.TENTHS),
        max(limits.min_memory, to_tenths(gb)),
    )


def fetch_group_name(deployment: str, db: str) -> str:
    """``<deployment>-fetch-<db>``, made a valid ACI name (lower case, single hyphens, at most
    63 characters; a short digest keeps names apart that this had to change) (pure).

    Args:
        deployment (str): The deployment's name.
        db (str): The database's name in storage.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", db.lower()).strip("-") or "db"
    name = f"{deployment}-fetch-{slug}"
    if slug == db and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(db.encode()).hexdigest()[:6]
    keep = MAX_NAME - len(digest) - 1
    return f"{name[:keep].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class FetchArgs:
    """What to fetch: ``blast-jobs db fetch``'s arguments.

    Args:
        name (str): NCBI's database name.
        source (str | None): ``ncbi``, ``gcp``, ``aws`` or a mirror's URL; None: NCBI.
        date (str | None): ``YYYY-MM-DD`` of a dated snapshot; None: the newest.
        as_name (str | None): The name in storage; None: ``name``.
    """

    name: str
    source: str | None = None
    date: str | None = None
    as_name: str | None = None

    @property
    def stored_as(self) -> str:
        """The database's name in storage."""
        return self.as_name or self.name

    def command(self) -> tuple[str, ...]:
        """The container's command (pure)."""
        options = (("--source", self.source), ("--date", self.date), ("--as", self.as_name))
        tail = tuple(part for flag, value in options if value for part in (flag, value))
        return (*(contract.DB_FETCH.command or ()), self.name, "--output", "json", *tail)


def fetch_group(
    settings: Settings, storage_env: Mapping[str, EnvValue | None], args: FetchArgs
) -> GroupSpec:
    """The one-off group that fetches ``args`` into the deployment's storage (pure).

    Args:
        settings (Settings): Resolved settings (region, registry, identity, subnet).
        storage_env (Mapping[str, EnvValue | None]): How it reaches storage, the workers'
            own (:func:`deployer.plan.common.storage_env`).
        args (FetchArgs): What to fetch.
    """
    values = {**storage_env, "BLAST_PROGRESS": "json"}
    image = common.image(settings, contract.DB_FETCH.image)
    container = common.container(contract.DB_FETCH, KIND, image, fetch_resources(), values)
    spec = common.group(
        settings,
        fetch_group_name(settings.deployment, args.stored_as),
        BLAST,
        KIND,
        [replace(container, command=args.command())],
        restart_policy="Never",
    )
    return replace(spec, tags=tuple(sorted({**dict(spec.tags), FETCH_TAG: args.stored_as}.items())))
