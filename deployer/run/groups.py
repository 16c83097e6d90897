"""The worker groups of a run (pure): the blast workload's workers, made to finish.

Run workers are the blast workload's worker groups with ``restartPolicy: OnFailure``, the
run's own queue and ``BLAST_EXIT_WHEN_IDLE``; the run's janitor group is
:func:`deployer.plan.janitor.janitor_group`. Every group is tagged ``deployment`` (so
``deployer down`` removes it) and ``run``.

A run of a sharded database pins each worker group to one shard: the group's workers take
their jobs from that shard's queue (:func:`deployer.protocol.shard_queue`), so each caches
only that shard's volumes, the memory its group is sized for; the group is tagged ``shard``
(:data:`deployer.autoscale.TAG_SHARD`), which a restarted janitor reads back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from deployer.autoscale import TAG_SHARD
from deployer.deployment_secrets import DeploymentSecrets
from deployer.plan import BLAST, GroupSpec, Plan, build
from deployer.plan.common import run_tags
from deployer.protocol import shard_queue
from deployer.settings import Settings
from deployer.sizing import shard_workers
from deployer.workload import Autoscale, Workload, duration_seconds


def worker_group_name(deployment: str, run_id: str, index: int) -> str:
    """``<deployment>-<run>-w<index>``."""
    return f"{deployment}-{run_id}-w{index}"


def _with_env(
    env: tuple[tuple[str, str], ...], extra: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    merged = dict(env)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def lease_seconds(exit_when_idle: str) -> int:
    """The workers' message lease: at most half the idle time before they exit (6..60 s).

    A lost worker's batch becomes visible again within the lease; the other workers must
    still be polling then, so the lease is shorter than their idle time.

    Args:
        exit_when_idle (str): ``BLAST_EXIT_WHEN_IDLE``, e.g. ``120s``.
    """
    return max(6, min(60, duration_seconds(exit_when_idle) // 2))


def worker_groups(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    run_id: str,
    batches: int,
    *,
    exit_when_idle: str,
    queue: str,
    shards: int = 1,
) -> tuple[GroupSpec, ...]:
    """The run's worker groups: at most one worker per batch (of each shard).

    With ``shards`` above 1 the groups are pinned: each shard gets
    :func:`deployer.sizing.shard_workers` of the workers (at least one), in groups of its own
    that take jobs from its queue only.

    Args:
        workload (Workload): The workload file (its ``workloads.blast`` sizes the workers).
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        run_id (str): The run id.
        batches (int): Number of batches (caps the workers, of each shard).
        exit_when_idle (str): ``BLAST_EXIT_WHEN_IDLE`` of the workers, e.g. ``120s``.
        queue (str): The run's queue.
        shards (int): Shards the groups are pinned to (1: none, every group takes ``queue``).
    """
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    if shards < 2:
        workers = min(blast.workers, batches)
        return tuple(
            _groups(workload, settings, secrets, run_id, workers, exit_when_idle, queue, None, 1)
        )
    groups: list[GroupSpec] = []
    for shard, workers in enumerate(shard_workers(blast.workers, shards, batches), start=1):
        groups += _groups(
            workload,
            settings,
            secrets,
            run_id,
            workers,
            exit_when_idle,
            shard_queue(queue, shard),
            shard,
            len(groups) + 1,
        )
    return tuple(groups)


def _groups(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    run_id: str,
    workers: int,
    exit_when_idle: str,
    queue: str,
    shard: int | None,
    first: int,
) -> list[GroupSpec]:
    """``workers`` workers in groups by the sizing rules, named from index ``first``."""
    visibility = lease_seconds(exit_when_idle)
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    sized = workload.with_blast(workers=max(1, workers))
    only_blast = sized.model_copy(
        update={"workloads": sized.workloads.model_copy(update={"ipyparallel": None})}
    )
    base: Plan = build(only_blast, settings, secrets)
    groups = []
    pin = {TAG_SHARD: str(shard)} if shard is not None else {}
    for i, spec in enumerate((g for g in base.groups if g.workload == BLAST), start=first):
        containers = tuple(
            replace(
                c,
                env=_with_env(
                    c.env,
                    {
                        "BLAST_QUEUE": queue,
                        "BLAST_EXIT_WHEN_IDLE": exit_when_idle,
                        "BLAST_VISIBILITY_TIMEOUT": str(visibility),
                    },
                ),
            )
            for c in spec.containers
        )
        tagged = replace(spec, tags=tuple(sorted({**dict(spec.tags), **pin}.items())))
        groups.append(
            replace(
                spec,
                name=worker_group_name(settings.deployment, run_id, i),
                containers=containers,
                restart_policy="OnFailure",
                tags=run_tags(tagged, run_id),
            )
        )
    return groups


def replaceable_shard_workers(workload: Workload, shards: int, exit_when_idle: str) -> Workload:
    """The workload of a sharded run on Spot workers without ``blast.autoscale``: autoscaled
    from 0 up to its ``workers`` (at least one per shard), a batch per worker (pure).

    Each worker group serves one shard, so a Spot eviction of a shard's only group would leave
    its jobs to nobody; the janitor's scaler replaces an evicted group with one for the same
    shard (and starts each shard's groups as its backlog asks). Any other workload is returned
    unchanged.

    Args:
        workload (Workload): The run's workload.
        shards (int): Shards the database is searched in.
        exit_when_idle (str): The workers' ``BLAST_EXIT_WHEN_IDLE``, e.g. ``120s``.
    """
    blast = workload.workloads.blast
    if blast is None or shards < 2 or blast.priority != "spot" or blast.autoscale is not None:
        return workload
    auto = Autoscale(
        min_workers=0,
        max_workers=max(blast.workers, shards),
        target_backlog_per_worker=1,
        scale_in_after=exit_when_idle,
    )
    # As the workload file's own autoscale gives it: workers = max_workers.
    return workload.with_blast(autoscale=auto, workers=auto.max_workers)
