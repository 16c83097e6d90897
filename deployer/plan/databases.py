"""Where each database's bytes-to-cache comes from, and the workload sized with it (pure).

A database of ``workloads.blast.databases`` gets its bytes-to-cache from, in order:

1. ``bytes_to_cache`` in the workload file (**explicit**);
2. the ``metadata:`` file the workload names (**metadata file**; read when the file is
   parsed, :func:`deployer.workload.load`);
3. the database's manifest in storage (**storage manifest**: ``blast-jobs db fetch`` and
   ``db upload`` write NCBI's or makeblastdb's ``bytes-to-cache`` there). The edge reads it
   (:func:`deployer.dbsizes.read_stored_sizes`) and passes the numbers in as
   :class:`StoredSizes`.

When none of them is known, ``deployer plan`` sizes the workers **as if the database took
no memory** and says so (a preview is still useful, and shows every other group), while
``up`` and ``run``, which create groups, refuse (:func:`require_known`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from deployer import defaults, sizing
from deployer.errors import InputError
from deployer.workload import Blast, Workload


class SizeSource(StrEnum):
    """Where a database's bytes-to-cache came from."""

    EXPLICIT = "explicit"
    METADATA_FILE = "metadata file"
    STORAGE_MANIFEST = "storage manifest"
    ASSUMED = "assumed"
    """Unknown: the plan sized the workers as if the database took no memory."""


@dataclass(frozen=True)
class StoredSizes:
    """What the edge read from the database manifests in storage.

    Args:
        sizes (Mapping[str, int | None]): Database name -> its manifest's bytes-to-cache
            (None: the manifest has none); a database without a manifest is absent.
        where (str): The database container and account, for messages.
        error (str | None): Why storage could not be read (then ``sizes`` is empty).
        read (bool): False when storage was not read at all (``plan --offline``).
        hint (str | None): How to let storage be read (sign in, a data role), with ``error``.
    """

    sizes: Mapping[str, int | None] = field(default_factory=dict)
    where: str = ""
    error: str | None = None
    read: bool = True
    hint: str | None = None


OFFLINE = StoredSizes(read=False)
"""Nothing read: ``deployer plan --offline``."""


@dataclass(frozen=True)
class DatabaseSize:
    """One database's bytes-to-cache and where it came from.

    Args:
        name (str): Database name.
        bytes_to_cache (int | None): Bytes; None when unknown (:attr:`SizeSource.ASSUMED`).
        source (SizeSource): Where the number came from.
        detail (str): The metadata file, the manifest's blob, or why it is unknown.
        absent (bool): Storage was read and has no such database (fetch it first).
        hint (str | None): When storage could not be read, how to let it be (sign in...).
    """

    name: str
    bytes_to_cache: int | None
    source: SizeSource
    detail: str
    absent: bool = False
    hint: str | None = None


def _unknown_why(name: str, stored: StoredSizes) -> str:
    if not stored.read:
        return "its manifest in storage was not read (--offline)"
    if stored.error is not None:
        return f"its manifest in storage could not be read: {stored.error}"
    if name not in stored.sizes:
        return f"it is not in storage ({stored.where}) yet"
    return (
        f"its manifest in storage ({stored.where}) has no bytes_to_cache (uploaded without "
        "makeblastdb's metadata file)"
    )


def database_sizes(blast: Blast, stored: StoredSizes) -> tuple[DatabaseSize, ...]:
    """Each database's bytes-to-cache and its source (pure).

    Args:
        blast (Blast): The workload's ``blast`` block (``metadata`` already read).
        stored (StoredSizes): What the edge read from storage (:data:`OFFLINE` when not read).
    """
    sizes = []
    for db in blast.databases:
        if db.bytes_to_cache is not None and db.metadata is not None:
            sizes.append(
                DatabaseSize(db.name, db.bytes_to_cache, SizeSource.METADATA_FILE, db.metadata)
            )
        elif db.bytes_to_cache is not None:
            sizes.append(
                DatabaseSize(db.name, db.bytes_to_cache, SizeSource.EXPLICIT, "the workload file")
            )
        elif stored.sizes.get(db.name):
            blob = f"{stored.where}: {db.name}/manifest.json"
            sizes.append(
                DatabaseSize(db.name, stored.sizes[db.name], SizeSource.STORAGE_MANIFEST, blob)
            )
        else:
            absent = stored.read and stored.error is None and db.name not in stored.sizes
            why = _unknown_why(db.name, stored)
            sizes.append(DatabaseSize(db.name, None, SizeSource.ASSUMED, why, absent, stored.hint))
    return tuple(sizes)


def needs_storage(blast: Blast | None) -> list[str]:
    """The databases whose bytes-to-cache only storage can tell (pure)."""
    if blast is None:
        return []
    return [db.name for db in blast.databases if db.bytes_to_cache is None]


def sized(workload: Workload, sizes: Sequence[DatabaseSize]) -> Workload:
    """``workload`` with every known bytes-to-cache filled in (pure).

    Unknown ones stay None, which the sizing reads as 0 (what :attr:`SizeSource.ASSUMED`
    means).
    """
    blast = workload.workloads.blast
    known: Mapping[str, int | None] = {s.name: s.bytes_to_cache for s in sizes}
    if blast is None or all(db.bytes_to_cache is not None for db in blast.databases):
        return workload
    databases = [
        db
        if db.bytes_to_cache is not None
        else db.model_copy(update={"bytes_to_cache": known.get(db.name)})
        for db in blast.databases
    ]
    return workload.with_blast(databases=databases)


def require_known(sizes: Sequence[DatabaseSize], workload_file: str) -> None:
    """Refuse, in one line, to create workers for a database of unknown size (pure).

    Args:
        sizes (Sequence[DatabaseSize]): From :func:`database_sizes`.
        workload_file (str): The workload file, for the commands the message suggests.

    Raises:
        InputError: Naming the first unknown database, why, and what to do.
    """
    unknown = [s for s in sizes if s.source is SizeSource.ASSUMED]
    if not unknown:
        return
    first = unknown[0]
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    todo = (
        f"fetch it first (`deployer db fetch {workload_file} {first.name}`), or give"
        if first.absent
        else "give"
    )
    raise InputError(
        f"database {first.name}{more} has no bytes_to_cache in the workload file and "
        f"{first.detail}: {todo} bytes_to_cache or metadata in workloads.blast.databases",
        hint=first.hint,
        code="UnknownDatabaseSize",
    )


def describe(size: DatabaseSize) -> str:
    """One line for ``deployer plan`` (pure)."""
    if size.bytes_to_cache is None:
        return (
            f"Database {size.name}: bytes-to-cache unknown, as {size.detail}; the workers are "
            "sized as if it took no memory (their memory and cost are the least they can be)"
        )
    gb = size.bytes_to_cache / defaults.GB
    where = {
        SizeSource.EXPLICIT: "given in the workload file",
        SizeSource.METADATA_FILE: f"from the metadata file {size.detail}",
        SizeSource.STORAGE_MANIFEST: f"from the storage manifest ({size.detail})",
    }[size.source]
    return f"Database {size.name}: bytes-to-cache {gb:.2f} GB, {where}"


def worker_sizing(workload: Workload) -> sizing.BlastSizing:
    """The BLAST workers' size, and whether the database is searched whole or in shards, in
    standard or ``deployment.max_group``'s large groups (pure; unknown sizes count as 0).

    Raises:
        SizingError: When the workers cannot fit (:func:`deployer.sizing.blast_sizing`).
    """
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    most = workload.deployment.max_group
    large = sizing.large_limits(most.vcpu, most.memory_gb) if most is not None else None
    dbs = [(db.name, db.bytes_to_cache or 0, db.shards) for db in blast.databases]
    volumes = {db.name: db.volume_bytes for db in blast.databases if db.volume_bytes}
    return sizing.blast_sizing(dbs, blast.threads_per_worker, large, volumes)


def may_shard(blast: Blast | None) -> list[str]:
    """The databases whose volumes' sizes the sizing may need (pure): a workload's only
    database, with its size known, its volumes' not, and shards asked for or ``auto`` with
    more bytes-to-cache than one standard group's worker holds."""
    if blast is None or len(blast.databases) != 1:
        return []
    db = blast.databases[0]
    if db.volume_bytes is not None or db.bytes_to_cache is None or db.shards == 1:
        return []
    if db.shards == "auto" and db.bytes_to_cache <= sizing.worker_cache_limit(sizing.ACI):
        return []
    return [db.name]


def with_volumes(workload: Workload, volumes: Mapping[str, tuple[int, ...]]) -> Workload:
    """``workload`` with the volumes' sizes read from storage filled in (pure)."""
    blast = workload.workloads.blast
    if blast is None or not volumes:
        return workload
    databases = [
        db.model_copy(update={"volume_bytes": volumes[db.name]})
        if db.volume_bytes is None and db.name in volumes
        else db
        for db in blast.databases
    ]
    return workload.with_blast(databases=databases)


def require_unsharded(workload: Workload) -> None:
    """Refuse, in one line, to create workers for a database that needs shards (pure).

    ``deployer plan`` shows the shards and ``deployer run`` searches them (one job per batch and
    shard, merged per batch); the service's workers (``up``) take single searches, which
    nothing fans out to shards yet, so ``up`` stops before creating anything.

    Raises:
        InputError: Naming the database, its shards and the alternatives.
    """
    if workload.workloads.blast is None:
        return
    for choice in worker_sizing(workload).choices:
        if choice.shards > 1:
            raise InputError(
                f"database {choice.database} needs {choice.shards} shards ({choice.why}), but "
                "the service (deployer up) cannot search shards yet: search it with "
                "`deployer run`, declare larger groups (deployment.max_group, up to 31 vCPU "
                "and 240 GB after an ACI quota request) or use a smaller database",
                code="ShardsNotSupported",
            )
