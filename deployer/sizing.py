"""Sizing: pure functions that turn workload numbers into right-sized groups.

Quantities are integers in tenths (10 = 1.0 vCPU or 1.0 GB), because ACI takes
requests in steps of 0.1 and integer arithmetic keeps the limits exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
        f"quota request; the deployer does not size beyond {fmt(limits.max_memory)} GB yet)"
    )
    big = sorted((size, name) for name, size in databases if size > limit)
    if big:
        size, name = big[-1]
        rest = [n for _, n in big[:-1]]
        others = f", and {', '.join(rest)} {'is' if len(rest) == 1 else 'are'} too large as well"
        raise SizingError(
            f"database {name} {_too_large(size, limits, limit)}"
            f"{others if rest else ''}: use a smaller database (e.g. swissprot or pdbaa "
            "instead of nr), split it into shards (the workloads.blast.databases shards: key is "
            f"coming), {larger}",
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
