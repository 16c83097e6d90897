"""Database sizes at the edge: each database's bytes-to-cache read from its manifest in storage.

The sizing stays pure: this module reads the manifests of the databases whose size the
workload file does not give, and :mod:`deployer.plan.databases` turns the numbers (or why
there are none) into the sized workload and the lines ``deployer plan`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from blast_client import BlastClientError

from deployer import hints
from deployer.errors import MissingSettingError
from deployer.plan.databases import (
    OFFLINE,
    DatabaseSize,
    StoredSizes,
    database_sizes,
    may_shard,
    needs_storage,
    sized,
    with_volumes,
)
from deployer.scope import storage_client
from deployer.settings import Settings
from deployer.workload import Workload

_ACCOUNT = re.compile(r"(?:^|;)AccountName=([^;]+)")


def read_stored_sizes(settings: Settings, names: Sequence[str]) -> StoredSizes:
    """The bytes-to-cache of each named database, from its manifest; never raises.

    Args:
        settings (Settings): Resolved settings (their storage account, else
            ``AZURE_STORAGE_CONNECTION_STRING``).
        names (Sequence[str]): Database names.

    Returns:
        StoredSizes: The numbers, or why storage could not be read.
    """
    if not names:
        return StoredSizes()
    try:
        client = storage_client(None, settings)
    except MissingSettingError:
        return StoredSizes(
            error="no storage is configured (deployment.storage_account, or "
            "AZURE_STORAGE_CONNECTION_STRING)"
        )
    cfg = client.config
    found = _ACCOUNT.search(cfg.connection_string or "")
    account = cfg.account_name or (found.group(1) if found else None)
    where = f"container {cfg.db_container}" + (f" of account {account}" if account else "")
    sizes: dict[str, int | None] = {}
    try:
        for name in names:
            info = client.database(name)
            if info is not None:
                sizes[name] = info.bytes_to_cache
    except BlastClientError as exc:
        return StoredSizes(where=where, error=exc.message, hint=hints.from_blast(exc).hint)
    return StoredSizes(sizes, where)


def read_volumes(settings: Settings, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Each named database's volumes' bytes, from its blobs in storage
    (:meth:`blast_client.BlastClient.database_volumes`); never raises: a database whose
    volumes cannot be read is left out, and the sizing splits it evenly."""
    if not names:
        return {}
    try:
        client = storage_client(None, settings)
    except MissingSettingError:
        return {}
    volumes: dict[str, tuple[int, ...]] = {}
    for name in names:
        try:
            found = client.database_volumes(name)
        except (BlastClientError, ValueError):
            continue
        if found is not None:
            volumes[name] = found
    return volumes


def resolve_sizes(
    workload: Workload, settings: Settings, *, read: bool = True
) -> tuple[Workload, tuple[DatabaseSize, ...]]:
    """The workload with its databases sized, and where each size came from.

    Reads storage only for databases the workload file does not size.

    Args:
        workload (Workload): The workload file.
        settings (Settings): Resolved settings (how to reach storage).
        read (bool): Read storage (False: ``plan --offline``). Default: True.
    """
    blast = workload.workloads.blast
    if blast is None:
        return workload, ()
    names = needs_storage(blast)
    stored = read_stored_sizes(settings, names) if read else OFFLINE
    sizes = database_sizes(blast, stored)
    workload = sized(workload, sizes)
    if read:
        # Shards are cut and sized by the real volumes, which matter only for shards.
        workload = with_volumes(
            workload, read_volumes(settings, may_shard(workload.workloads.blast))
        )
    return workload, sizes
