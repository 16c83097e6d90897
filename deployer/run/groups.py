"""The worker groups of a run (pure): the blast workload's workers, made to finish.

Run workers are the blast workload's worker groups with ``restartPolicy: OnFailure``, the
run's own queue and ``BLAST_EXIT_WHEN_IDLE``; the run's janitor group is
:func:`deployer.plan.janitor.janitor_group`. Every group is tagged ``deployment`` (so
``deployer down`` removes it) and ``run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from deployer.deployment_secrets import DeploymentSecrets
from deployer.plan import BLAST, GroupSpec, Plan, build
from deployer.plan.common import run_tags
from deployer.settings import Settings
from deployer.workload import Workload, duration_seconds


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
) -> tuple[GroupSpec, ...]:
    """The run's worker groups: at most one worker per batch.

    Args:
        workload (Workload): The workload file (its ``workloads.blast`` sizes the workers).
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        run_id (str): The run id.
        batches (int): Number of batches (caps the workers).
        exit_when_idle (str): ``BLAST_EXIT_WHEN_IDLE`` of the workers, e.g. ``120s``.
        queue (str): The run's queue.
    """
    visibility = lease_seconds(exit_when_idle)
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    sized = blast.model_copy(update={"workers": max(1, min(blast.workers, batches))})
    only_blast = workload.model_copy(
        update={
            "workloads": workload.workloads.model_copy(update={"ipyparallel": None, "blast": sized})
        }
    )
    base: Plan = build(only_blast, settings, secrets)
    groups = []
    for i, spec in enumerate((g for g in base.groups if g.workload == BLAST), start=1):
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
        groups.append(
            replace(
                spec,
                name=worker_group_name(settings.deployment, run_id, i),
                containers=containers,
                restart_policy="OnFailure",
                tags=run_tags(spec, run_id),
            )
        )
    return tuple(groups)
