"""Sizing: pure functions that turn workload numbers into right-sized groups.

Quantities are integers in tenths (10 = 1.0 vCPU or 1.0 GB), because ACI takes
requests in steps of 0.1 and integer arithmetic keeps the limits exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blast_client.shards import shard_bytes

from deployer import defaults, hints
from deployer.errors import QuotaError, SizingError


@dataclass(frozen=True)
class Resources:
    """A cpu and memory request, in tenths.

    Args:
        cpu (int): vCPU in tenths (15 = 1.5 vCPU).
        memory (int): GB in tenths (35 = 3.5 GB).
    """

    cpu: int
    memory: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory)

    def __mul__(self, n: int) -> Resources:
        return Resources(self.cpu * n, self.memory * n)


ZERO = Resources(0, 0)


@dataclass(frozen=True)
class Limits:
    """Limits of one container group, in tenths (default: an ACI Linux group).

    Args:
        max_cpu (int): Most vCPU per group. Default: 40 (4 vCPU).
        max_memory (int): Most GB per group. Default: 160 (16 GB).
        min_cpu (int): Least vCPU per group. Default: 10.
        min_memory (int): Least GB per group. Default: 10.
        max_containers (int): Most containers per group. Default: 60.
        max_ports (int): Most ports per IP address. Default: 5.
    """

    max_cpu: int = defaults.MAX_GROUP_CPU
    max_memory: int = defaults.MAX_GROUP_MEMORY
    min_cpu: int = defaults.MIN_GROUP_CPU
    min_memory: int = defaults.MIN_GROUP_MEMORY
    max_containers: int = defaults.MAX_CONTAINERS_PER_GROUP
    max_ports: int = defaults.MAX_PORTS_PER_IP


ACI = Limits()


@dataclass(frozen=True)
class ContainerSize:
    """One container of a sized group.

    Args:
        first (int): Index of its first unit (engine or worker) in the workload.
        units (int): Number of units it runs.
        resources (Resources): Its request, padding included.
    """

    first: int
    units: int
    resources: Resources


@dataclass(frozen=True)
class GroupSize:
    """One sized container group: its containers, in order."""

    containers: tuple[ContainerSize, ...]

    @property
    def total(self) -> Resources:
        """The group's total request."""
        total = ZERO
        for c in self.containers:
            total = total + c.resources
        return total

    @property
    def units(self) -> int:
        """The number of units (engines or workers) in the group."""
        return sum(c.units for c in self.containers)


def to_tenths(value: float) -> int:
    """Round a quantity up to whole tenths: 1.23 -> 13."""
    return math.ceil(round(value * defaults.TENTHS, 6))


def fmt(tenths: int) -> str:
    """Format tenths as a decimal: 15 -> ``1.5``, 40 -> ``4``."""
    whole, part = divmod(tenths, defaults.TENTHS)
    return f"{whole}.{part}" if part else str(whole)


def balanced(count: int, capacity: int) -> list[int]:
    """Split ``count`` units into the fewest groups of at most ``capacity``, evenly.

    Args:
        count (int): Units to place (>= 0).
        capacity (int): Most units per group (>= 1).

    Returns:
        list[int]: Units per group; sizes differ by at most one.
    """
    if count == 0:
        return []
    groups = math.ceil(count / capacity)
    base, extra = divmod(count, groups)
    return [base + 1] * extra + [base] * (groups - extra)


def pad_to_minimum(
    containers: Sequence[ContainerSize], limits: Limits
) -> tuple[ContainerSize, ...]:
    """Raise the first container's request so the group meets the group minimum.

    ACI refuses groups below 1 vCPU and 1 GB, so small groups pay for the minimum.
    """
    total = ZERO
    for c in containers:
        total = total + c.resources
    extra = Resources(max(0, limits.min_cpu - total.cpu), max(0, limits.min_memory - total.memory))
    if extra == ZERO:
        return tuple(containers)
    first = containers[0]
    padded = ContainerSize(first.first, first.units, first.resources + extra)
    return (padded, *containers[1:])


def units_per_group(unit: Resources, units_per_container: int, limits: Limits) -> int:
    """Return the most units one group can hold, or 0 if a single unit cannot fit."""
    if unit.cpu <= 0 or unit.memory <= 0:
        raise ValueError("a unit needs a positive cpu and memory request")
    return min(
        limits.max_cpu // unit.cpu,
        limits.max_memory // unit.memory,
        limits.max_containers * units_per_container,
    )


def pack(
    count: int, unit: Resources, units_per_container: int, limits: Limits = ACI
) -> list[GroupSize]:
    """Pack ``count`` identical units into the fewest groups the limits allow.

    Every group gets units in containers of ``units_per_container`` (the last
    container of a group may run fewer); groups are balanced and padded up to
    the group minimum.

    Args:
        count (int): Units (engines or workers) to place.
        unit (Resources): The request of one unit.
        units_per_container (int): Units per container.
        limits (Limits): Group limits. Default: :data:`ACI`.

    Returns:
        list[GroupSize]: The groups; units are numbered 0..count-1 in order.

    Raises:
        SizingError: When one container does not fit in a group.
    """
    container = unit * units_per_container
    if container.cpu > limits.max_cpu or container.memory > limits.max_memory:
        raise SizingError(
            f"one container of {units_per_container} unit(s) needs {fmt(container.cpu)} vCPU and "
            f"{fmt(container.memory)} GB; an ACI container group holds at most "
            f"{fmt(limits.max_cpu)} vCPU and {fmt(limits.max_memory)} GB",
            hint="request less per unit, or fewer units per container",
        )
    capacity = units_per_group(unit, units_per_container, limits)
    groups: list[GroupSize] = []
    first = 0
    for n in balanced(count, capacity):
        containers = []
        for start in range(0, n, units_per_container):
            k = min(units_per_container, n - start)
            containers.append(ContainerSize(first + start, k, unit * k))
        groups.append(GroupSize(pad_to_minimum(containers, limits)))
        first += n
    return groups


def engine_groups(
    engines: int, vcpu: float, memory_gb: float, engines_per_container: int, limits: Limits = ACI
) -> list[GroupSize]:
    """Size the engine groups of an ipyparallel workload.

    Args:
        engines (int): Number of engines.
        vcpu (float): vCPU per engine (0.1 steps).
        memory_gb (float): GB per engine (0.1 steps).
        engines_per_container (int): Engine processes per ipengine container.
        limits (Limits): Group limits. Default: :data:`ACI`.

    Raises:
        SizingError: When one engine container cannot fit in a group.
    """
    unit = Resources(to_tenths(vcpu), to_tenths(memory_gb))
    try:
        return pack(engines, unit, engines_per_container, limits)
    except SizingError as exc:
        raise SizingError(
            f"workloads.ipyparallel: {exc.message}",
            hint="lower vcpu_per_engine, memory_gb_per_engine or engines_per_container",
        ) from None


def head_group(notebook: bool) -> GroupSize:
    """Size the ipyparallel head group: the controller, and the notebook if on."""
    containers = [
        ContainerSize(0, 1, Resources(defaults.CONTROLLER_CPU, defaults.CONTROLLER_MEMORY))
    ]
    if notebook:
        containers.append(
            ContainerSize(0, 1, Resources(defaults.NOTEBOOK_CPU, defaults.NOTEBOOK_MEMORY))
        )
    return GroupSize(tuple(containers))


def worker_cache_limit(limits: Limits = ACI) -> int:
    """Most bytes-to-cache one BLAST worker can hold in the largest group ``limits`` allow.

    The inverse of :func:`blast_worker`'s memory rule (bytes-to-cache x
    :data:`~deployer.defaults.BLAST_CACHE_FACTOR` plus the process overhead): a database
    above it must be searched in shards or refused.

    Args:
        limits (Limits): Group limits. Default: :data:`ACI` (16 GB: about 14.1 GB of cache).
    """
    room = limits.max_memory / defaults.TENTHS - defaults.BLAST_PROCESS_OVERHEAD_GB
    cache = max(0, math.floor(room * defaults.GB / defaults.BLAST_CACHE_FACTOR))
    # Float rounding must never let the limit itself size above the group.
    while cache and _worker_memory(cache) > limits.max_memory:
        cache -= 1
    return cache


def _worker_memory(cache: int) -> int:
    """A worker's memory in tenths for ``cache`` bytes-to-cache."""
    gb = cache * defaults.BLAST_CACHE_FACTOR / defaults.GB + defaults.BLAST_PROCESS_OVERHEAD_GB
    return to_tenths(gb)


def check_cache_fits(databases: Sequence[tuple[str, int]], limits: Limits = ACI) -> None:
    """Refuse databases one worker cannot cache in the largest group (pure).

    The refusal is one line that names what to do instead: a smaller database, shards (the
    ``shards:`` key, coming), or larger groups after an ACI quota request.

    Args:
        databases (Sequence[tuple[str, int]]): (name, bytes-to-cache) of every database a
            worker caches.
        limits (Limits): Group limits. Default: :data:`ACI`.

    Raises:
        SizingError: When their bytes-to-cache together exceed :func:`worker_cache_limit`.
    """
    cache = sum(size for _, size in databases)
    limit = worker_cache_limit(limits)
    if cache <= limit:
        return
    larger = (
        f"or larger groups (ACI allows up to {fmt(defaults.MAX_QUOTA_GROUP_MEMORY)} GB after a "
        "quota request: deployment.max_group)"
    )
    big = sorted((size, name) for name, size in databases if size > limit)
    if big:
        size, name = big[-1]
        rest = [n for _, n in big[:-1]]
        others = f", and {', '.join(rest)} {'is' if len(rest) == 1 else 'are'} too large as well"
        raise SizingError(
            f"database {name} {_too_large(size, limits, limit)}"
            f"{others if rest else ''}: use a smaller database (e.g. swissprot or pdbaa "
            "instead of nr), search it in shards (shards: auto or a number in "
            f"workloads.blast.databases), {larger}",
            code="DatabaseTooLarge",
        )
    names = ", ".join(name for name, _ in databases)
    raise SizingError(
        f"databases {names} together {_too_large(cache, limits, limit, 'need')}: cache fewer "
        f"databases per worker (one deployment per database), use smaller databases, {larger}",
        code="DatabaseTooLarge",
    )


def _too_large(cache: int, limits: Limits, limit: int, verb: str = "needs") -> str:
    return (
        f"{verb} {fmt(_worker_memory(cache))} GB per worker (bytes-to-cache "
        f"{cache / defaults.GB:.1f} GB x {defaults.BLAST_CACHE_FACTOR} + "
        f"{defaults.BLAST_PROCESS_OVERHEAD_GB} GB overhead), but the largest worker group holds "
        f"{fmt(limits.max_memory)} GB ({limit / defaults.GB:.1f} GB of bytes-to-cache)"
    )


def blast_worker(
    databases: Sequence[tuple[str, int]], threads: int, limits: Limits = ACI
) -> Resources:
    """Size one BLAST worker: bytes-to-cache x 1.1 plus the process overhead.

    Args:
        databases (Sequence[tuple[str, int]]): (name, bytes-to-cache) of every
            database the worker caches.
        threads (int): BLAST threads, one vCPU each.
        limits (Limits): Group limits. Default: :data:`ACI`.

    Raises:
        SizingError: When the databases cannot fit in one group
            (:func:`check_cache_fits`: one line with the alternatives).
    """
    check_cache_fits(databases, limits)
    cache = sum(size for _, size in databases)
    return Resources(threads * defaults.TENTHS, _worker_memory(cache))


def large_limits(vcpu: int, memory_gb: float) -> Limits:
    """The limits of the larger groups ``deployment.max_group`` declares."""
    return Limits(max_cpu=vcpu * defaults.TENTHS, max_memory=to_tenths(memory_gb))


def _group_text(limits: Limits) -> str:
    return f"{fmt(limits.max_cpu)} vCPU, {fmt(limits.max_memory)} GB"


@dataclass(frozen=True)
class ShardChoice:
    """How one database is searched: whole, or in shards, and in which size of group.

    Args:
        database (str): The database.
        bytes_to_cache (int): Its bytes-to-cache.
        shards (int): Shards (1: the whole database in every worker).
        shard_bytes (int): Bytes-to-cache of the largest shard, which sizes the workers (an
            even split when the volumes' sizes are not known).
        limits (Limits): The groups the workers are sized for.
        large (bool): Whether those are ``deployment.max_group``'s larger groups.
        why (str): Why, for ``deployer plan``.
        each (tuple[int, ...]): Bytes-to-cache of each shard, in order.
        by_volumes (bool): Whether the shards are cut by the volumes' real sizes (else an
            even split).
    """

    database: str
    bytes_to_cache: int
    shards: int
    shard_bytes: int
    limits: Limits
    large: bool
    why: str
    each: tuple[int, ...] = ()
    by_volumes: bool = False


def shard_caches(bytes_to_cache: int, volumes: Sequence[int], count: int) -> tuple[int, ...]:
    """Each of ``count`` shards' bytes-to-cache: the volumes cut as the workers cut them (pure).

    The cut is :func:`blast_client.shards.split`'s, by the bytes of each volume's files in
    storage (``volumes``); each shard gets the share of the database's bytes-to-cache that its
    volumes' bytes are of all volumes' (rounded up), since bytes-to-cache counts only what
    BLAST keeps in memory and not, say, the headers a volume's files hold too.

    Args:
        bytes_to_cache (int): The database's bytes-to-cache.
        volumes (Sequence[int]): Bytes of each volume's files, in the alias file's order.
        count (int): Shards, 1 to ``len(volumes)``.

    Raises:
        ValueError: When ``count`` is not between 1 and ``len(volumes)``.
    """
    cut = shard_bytes(volumes, count)
    total = sum(cut)
    if total == 0:
        return tuple(math.ceil(bytes_to_cache / count) for _ in cut)
    return tuple(-(-bytes_to_cache * part // total) for part in cut)


def choose_shards(
    name: str,
    bytes_to_cache: int,
    shards: int | str,
    large: Limits | None = None,
    volumes: Sequence[int] | None = None,
) -> ShardChoice:
    """Whole or in shards, standard or large groups: the sizing of one database (pure).

    ``auto`` keeps a database that one standard group's worker can cache whole; else one
    large group (``large``) when it fits there, which needs no merge; else as few shards as
    fit the largest allowed group. A number forces that many shards, in standard groups when a
    shard fits there, else in large ones.

    Args:
        name (str): The database.
        bytes_to_cache (int): Its bytes-to-cache.
        shards (int | str): ``"auto"`` or a number of shards.
        large (Limits | None): ``deployment.max_group``'s limits, if declared.
        volumes (Sequence[int] | None): Bytes of each volume's files in storage, in the alias
            file's order, when known: shards are whole volumes, cut as the workers cut them
            and sized by :func:`shard_caches`; else shards are sized as an even split.

    Raises:
        SizingError: When no shard count fits (a volume larger than a group holds), or the
            number given does not.
    """
    standard = worker_cache_limit(ACI)
    biggest_limits = large if large is not None else ACI
    most = worker_cache_limit(biggest_limits)
    count_max = len(volumes) if volumes else None

    def each(n: int) -> tuple[int, ...]:
        if volumes:
            return shard_caches(bytes_to_cache, volumes, n)
        return (math.ceil(bytes_to_cache / n),) * n

    def largest(n: int) -> int:
        return max(each(n))

    def choice(n: int, why: str) -> ShardChoice:
        size = largest(n)
        fits_standard = size <= standard
        limits = ACI if fits_standard else biggest_limits
        return ShardChoice(
            name, bytes_to_cache, n, size, limits, not fits_standard, why, each(n), bool(volumes)
        )

    gb = f"{bytes_to_cache / defaults.GB:.1f} GB"
    if shards == "auto":
        if bytes_to_cache <= standard:
            return choice(1, f"bytes-to-cache {gb} fits one standard group's worker")
        if bytes_to_cache <= most:
            return choice(
                1,
                f"bytes-to-cache {gb} exceeds a standard group (16 GB) but fits one large "
                f"group ({_group_text(biggest_limits)}, deployment.max_group): no shards to merge",
            )
        n = 1
        while n < (count_max or n + 1) and largest(n) > most:
            n += 1
        if largest(n) > most:
            raise SizingError(
                f"database {name}: a volume of {largest(n) / defaults.GB:.1f} GB is larger than "
                f"a worker of the largest allowed group ({_group_text(biggest_limits)}) caches "
                f"({most / defaults.GB:.1f} GB), and shards are whole volumes",
                hint="rebuild it with a smaller makeblastdb -max_file_sz, or declare larger "
                "groups (deployment.max_group)",
                code="DatabaseTooLarge",
            )
        where = "a large group" if large is not None else "a standard group"
        return choice(
            n,
            f"bytes-to-cache {gb} exceeds what the largest allowed group holds "
            f"({most / defaults.GB:.1f} GB in {where}): {n} shards of at most "
            f"{largest(n) / defaults.GB:.1f} GB",
        )
    n = int(shards)
    if count_max is not None and n > count_max:
        raise SizingError(
            f"database {name} has {count_max} volumes, so at most {count_max} shards, not {n}",
            hint="set shards: auto, or fewer shards",
        )
    if largest(n) > most:
        if n == 1:
            check_cache_fits([(name, bytes_to_cache)], biggest_limits)
        raise SizingError(
            f"database {name} in {n} shards: a shard of {largest(n) / defaults.GB:.1f} GB "
            f"needs {fmt(_worker_memory(largest(n)))} GB per worker, more than the largest "
            f"allowed group holds ({_group_text(biggest_limits)})",
            hint="set shards: auto, or more shards",
            code="DatabaseTooLarge",
        )
    return choice(n, f"shards: {n} in the workload file" if n > 1 else "shards: 1 (whole)")


@dataclass(frozen=True)
class BlastSizing:
    """One worker's request, the groups it is packed in, and each database's choice."""

    worker: Resources
    limits: Limits
    choices: tuple[ShardChoice, ...]

    @property
    def shards(self) -> int:
        """Shards of the sharded database (1 when none is sharded)."""
        return max((c.shards for c in self.choices), default=1)


def blast_sizing(
    databases: Sequence[tuple[str, int, int | str]],
    threads: int,
    large: Limits | None = None,
    volumes: Mapping[str, Sequence[int]] | None = None,
) -> BlastSizing:
    """Size the BLAST workers of a workload, sharding its database if needed (pure).

    Only a workload of one database is sharded; several databases cached together must fit
    one group's worker (:func:`check_cache_fits`).

    Args:
        databases (Sequence[tuple[str, int, int | str]]): (name, bytes-to-cache, shards).
        threads (int): BLAST threads (= vCPU) per worker.
        large (Limits | None): ``deployment.max_group``'s limits, if declared.
        volumes (Mapping[str, Sequence[int]] | None): Each database's volumes' bytes, where
            known (:func:`choose_shards`).

    Raises:
        SizingError: When the workers cannot fit, or several databases ask for shards.
    """
    if len(databases) == 1:
        name, size, shards = databases[0]
        choice = choose_shards(name, size, shards, large, (volumes or {}).get(name))
        worker = blast_worker([(name, choice.shard_bytes)], threads, choice.limits)
        return BlastSizing(worker, choice.limits, (choice,))
    forced = [name for name, _, shards in databases if shards not in ("auto", 1)]
    if forced:
        raise SizingError(
            f"database {forced[0]} asks for shards, but only a deployment of one database is "
            "sharded: give it a workload file of its own",
            code="DatabaseTooLarge",
        )
    pairs = [(name, size) for name, size, _ in databases]
    total = sum(size for _, size in pairs)
    limits = ACI if total <= worker_cache_limit(ACI) or large is None else large
    worker = blast_worker(pairs, threads, limits)
    why = "cached together by every worker"
    return BlastSizing(
        worker,
        limits,
        tuple(ShardChoice(n, size, 1, size, limits, limits is not ACI, why) for n, size in pairs),
    )


def describe_choice(choice: ShardChoice, worker: Resources) -> str:
    """One line for ``deployer plan``: whole or shards, the groups, the memory, and why."""
    group = (
        f"large groups ({_group_text(choice.limits)}, deployment.max_group)"
        if choice.large
        else "standard groups"
    )
    if choice.shards == 1:
        what = f"searched whole by workers of {fmt(worker.memory)} GB in {group}"
    else:
        cut = (
            "cut by its volumes' sizes in storage"
            if choice.by_volumes
            else "an even split: its volumes' sizes are not known"
        )
        memory = ", ".join(fmt(_worker_memory(size)) for size in choice.each)
        what = (
            f"searched in {choice.shards} shards (contiguous volume ranges, merged into one "
            f"search's results; {cut}) needing {memory} GB, up to "
            f"{choice.shard_bytes / defaults.GB:.1f} GB of bytes-to-cache and "
            f"{fmt(worker.memory)} GB per worker, in {group}; a run of B batches is B x "
            f"{choice.shards} jobs"
        )
    return f"Database {choice.database}: {what}: {choice.why}"


def spread(total: int, parts: int) -> tuple[int, ...]:
    """``total`` cut into ``parts`` as evenly as possible, the larger parts first (pure):
    ``spread(5, 3)`` is (2, 2, 1)."""
    return tuple(total // parts + (1 if k < total % parts else 0) for k in range(parts))


def shard_workers(workers: int, shards: int, jobs: int | None = None) -> tuple[int, ...]:
    """Workers of each shard of a run whose worker groups are pinned to one shard each (pure).

    Every shard gets at least one worker (else its jobs would never run): ``workers`` below
    ``shards`` becomes ``shards``; the workers are spread evenly, and a shard gets no more
    than its ``jobs`` (a run's batches: each shard has one job per batch).

    Args:
        workers (int): The workload's ``workers`` (or an autoscaled run's ``max_workers``).
        shards (int): Shards of the database (>= 1).
        jobs (int | None): Jobs of each shard; None: no cap.
    """
    each = spread(max(workers, shards), shards)
    return tuple(min(n, jobs) if jobs is not None else n for n in each)


def describe_pinning(workers: int, shards: int, jobs: int | None = None) -> str:
    """One line for ``deployer plan`` and ``deployer run``: how ``workers`` map to shards."""
    each = shard_workers(workers, shards, jobs)
    total = sum(each)
    given = f"workers {workers}" if total == workers else f"workers {workers} -> {total}"
    capped = " (at most one per batch)" if jobs is not None and total < max(workers, shards) else ""
    return (
        f"Shards: each worker group serves one of the {shards} shards from its own queue and "
        f"caches only that shard; {given}, at least one per shard{capped}: "
        f"{', '.join(map(str, each))} per shard"
    )


def blast_groups(
    workers: int, databases: Sequence[tuple[str, int]], threads: int, limits: Limits = ACI
) -> list[GroupSize]:
    """Size the BLAST worker groups: one worker per container, fewest groups.

    Args:
        workers (int): Number of workers.
        databases (Sequence[tuple[str, int]]): (name, bytes-to-cache) pairs.
        threads (int): BLAST threads (= vCPU) per worker.
        limits (Limits): Group limits. Default: :data:`ACI`.

    Raises:
        SizingError: When a worker cannot fit in a group.
    """
    return pack(workers, blast_worker(databases, threads, limits), 1, limits)


def check_quota(needed_cpu: int, limit_cores: int, used_cores: int, location: str) -> None:
    """Fail when ``needed_cpu`` (tenths) does not fit in the regional core quota.

    Args:
        needed_cpu (int): vCPU the plan adds, in tenths.
        limit_cores (int): The regional ACI core limit.
        used_cores (int): Cores already in use in the region.
        location (str): The region, for the message.

    Raises:
        QuotaError: When it does not fit.
    """
    needed = math.ceil(needed_cpu / defaults.TENTHS)
    free = limit_cores - used_cores
    if needed > free:
        raise QuotaError(
            f"the plan needs {needed} cores in {location} but only {free} of {limit_cores} are "
            f"free ({used_cores} in use, ACI quota StandardCores); nothing was created",
            hint=hints.quota_hint("StandardCores", location),
            code="QuotaExceeded",
        )
