"""Elastic workers for a run: the janitor's autoscaling pass (``blast.autoscale``).

Each janitor pass of an autoscaled run calls :func:`deployer.scaler.reconcile` with the
run's backlog (its unfinished batches: queued plus in flight, from the job log) after the
run's own steps (:mod:`deployer.run.decide` bills and deletes terminated and evicted groups,
so the reconcile pass never deletes). The scaler's state lives in the run record, so a
restarted janitor neither doubles nor loses groups, and every decision is written with its
inputs to the run's log table (partition ``scale-<run id>``), which ``deployer run status``
reads back.

The janitor needs the worker template and the scaler's settings: ``deployer run`` builds
them (:func:`run_scaler`) and hands them to the janitor group as the secret
``JANITOR_AUTOSCALE`` (the template holds the workers' secrets), or keeps them in memory when
it is the janitor itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from azure.data.tables import TableClient, UpdateMode
from blast_client.joblog import FINAL as JOB_FINAL

from deployer.autoscale import Decision, ScaleSettings, ShardBacklog
from deployer.backends.base import Backend, ObservedGroup, Usage
from deployer.contract import Mount
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import ContainerSpec, GroupSpec, RegistryAuth
from deployer.run.groups import worker_group_name, worker_groups
from deployer.run.state import Run
from deployer.scaler import Pass, ScaleState, reconcile
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import Workload

ENV = "JANITOR_AUTOSCALE"
"""The janitor's variable holding :meth:`RunScaler.to_json` (a secret file in ACI)."""
DECISIONS_SHOWN = 5
"""Decisions ``deployer run status`` shows."""


def _encode(value: Any) -> Any:
    if isinstance(value, Secret):
        return {"secret": value.reveal()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _pairs(items: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in items)


def _tuple(items: Any) -> tuple[Any, ...] | None:
    return None if items is None else tuple(items)


def _container(d: Mapping[str, Any]) -> ContainerSpec:
    return ContainerSpec(
        name=d["name"],
        role=d["role"],
        image=d["image"],
        resources=Resources(**d["resources"]),
        ports=tuple(d["ports"]),
        env=_pairs(d["env"]),
        secret_files=tuple((n, Secret(v["secret"])) for n, v in d["secret_files"]),
        command=_tuple(d["command"]),
        probe=_tuple(d["probe"]),
        mounts=tuple(Mount(**m) for m in d["mounts"]),
    )


def _group(d: Mapping[str, Any]) -> GroupSpec:
    reg = d.get("registry")
    registry = None
    if reg is not None:
        password = reg.get("password")
        registry = RegistryAuth(
            reg["server"],
            reg["identity"],
            reg["username"],
            Secret(password["secret"]) if password else None,
        )
    return GroupSpec(
        **{
            **{k: v for k, v in d.items() if k not in ("containers", "registry")},
            "containers": tuple(_container(c) for c in d["containers"]),
            "ports": tuple(d["ports"]),
            "volumes": tuple(d["volumes"]),
            "tags": _pairs(d["tags"]),
            "registry": registry,
        }
    )


@dataclass(frozen=True)
class RunScaler:
    """What the janitor needs to scale a run's workers.

    Args:
        settings (ScaleSettings): From the workload's ``blast.autoscale``.
        template (GroupSpec): One full worker group of the run (its env, secrets, tags).
    """

    settings: ScaleSettings
    template: GroupSpec

    def to_json(self) -> str:
        """JSON with the template's secrets in clear: keep it secret."""
        return json.dumps({"settings": _encode(self.settings), "template": _encode(self.template)})

    @classmethod
    def from_json(cls, text: str) -> RunScaler:
        """Read :meth:`to_json`'s output."""
        data = json.loads(text)
        s = data["settings"]
        settings = ScaleSettings(
            **{
                **s,
                "worker": Resources(**s["worker"]),
                "locations": tuple(s["locations"]),
            }
        )
        return cls(settings, _group(data["template"]))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunScaler | None:
        """The janitor's scaler: ``JANITOR_AUTOSCALE`` or the file ``JANITOR_AUTOSCALE_FILE``
        names; None for a run without autoscaling."""
        text = env.get(ENV)
        path = env.get(f"{ENV}_FILE")
        if not text and path and os.path.exists(path):
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_json(text) if text else None


def run_scaler(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    run_id: str,
    queue: str,
    scale_out_interval: float | None = None,
) -> RunScaler | None:
    """The scaler of a new run, or None when the workload has no ``blast.autoscale``.

    Args:
        workload (Workload): The workload file.
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        run_id (str): The run id.
        queue (str): The run's queue.
        scale_out_interval (float | None): Least seconds between two create bursts.
            Default: :data:`deployer.defaults.SCALE_OUT_INTERVAL_S`.
    """
    blast = workload.workloads.blast
    if blast is None or blast.autoscale is None:
        return None
    prefix = worker_group_name(settings.deployment, run_id, 0)[:-1]
    scale = ScaleSettings.from_workload(workload, settings.location, prefix)
    if scale_out_interval is not None:
        scale = replace(scale, scale_out_interval=scale_out_interval)
    full = workload.with_blast(workers=scale.workers_per_group)
    [template, *_] = worker_groups(
        full,
        settings,
        secrets,
        run_id,
        scale.workers_per_group,
        exit_when_idle=f"{scale.scale_in_after}s",
        queue=queue,
    )
    return RunScaler(scale, template)


class _Observed(Backend):
    """The backend as this pass already observed it: listing returns those groups (one
    read of ARM per pass), creates only send the PUT."""

    def __init__(self, backend: Backend, groups: list[ObservedGroup]) -> None:
        self.backend = backend
        self.groups = groups

    def create_or_update(self, spec: GroupSpec) -> ObservedGroup:
        return self.backend.create_or_update(spec)

    def start_create(self, spec: GroupSpec) -> None:
        self.backend.start_create(spec)

    def delete(self, name: str) -> bool:
        return self.backend.delete(name)

    def list(self, deployment: str) -> list[ObservedGroup]:
        return list(self.groups)

    def get(self, name: str) -> ObservedGroup | None:
        return self.backend.get(name)

    def logs(self, group: str, container: str, tail: int | None = None) -> str:
        return self.backend.logs(group, container, tail)

    def usage(self, location: str) -> Usage:
        return self.backend.usage(location)


def backlog(run: Run, jobs: Mapping[str, str]) -> tuple[int, int]:
    """(queued, in flight) of the run's unfinished jobs, each shard's of a sharded batch (a
    missing job row is queued)."""
    states = [jobs.get(j, "queued") for b in run.batches for j in b.jobs]
    running = sum(1 for s in states if s == "running")
    queued = sum(1 for s in states if s not in JOB_FINAL and s != "running")
    return queued, running


def shard_backlogs(run: Run, jobs: Mapping[str, str]) -> tuple[ShardBacklog, ...]:
    """Each shard's (queued, in flight) of a run pinned to shards (pure); empty for a run
    whose workers take every job. A batch's shard ``k`` is its ``k``-th job."""
    if not run.pinned:
        return ()
    counts = [[0, 0] for _ in range(run.shards)]
    for b in run.batches:
        for k, j in enumerate(b.jobs[: run.shards]):
            state = jobs.get(j, "queued")
            if state == "running":
                counts[k][1] += 1
            elif state not in JOB_FINAL:
                counts[k][0] += 1
    return tuple(ShardBacklog(k, q, f) for k, (q, f) in enumerate(counts, start=1))


def scale_pass(
    scaler: RunScaler,
    run: Run,
    jobs: Mapping[str, str],
    backend: Backend,
    groups: list[ObservedGroup],
    now: float,
    log: Callable[[str], None] | None = None,
) -> tuple[Run, Pass]:
    """One reconcile pass for ``run``; returns the record to store (state, new groups).

    Args:
        scaler (RunScaler): The run's scaler.
        run (Run): The record after this pass's own steps.
        jobs (Mapping[str, str]): State of each of the run's job ids.
        backend (Backend): Where the groups live.
        groups (list[ObservedGroup]): The run's groups left after this pass's deletes.
        now (float): Epoch seconds.
        log (Callable[[str], None] | None): Gets the decision and its actions.
    """
    queued, in_flight = backlog(run, jobs)
    done = reconcile(
        _Observed(backend, [g for g in groups if g.name != run.janitor]),
        run.deployment,
        scaler.settings,
        ScaleState.from_json(run.scale),
        scaler.template,
        queued=queued,
        in_flight=in_flight,
        now=now,
        known=(*run.groups, *run.deleted),
        delete_terminated=False,
        log=log,
        shards=shard_backlogs(run, jobs),
    )
    tried = tuple(o.group for o in done.outcomes if o.action == "create" and o.ok)
    new_groups = tuple(dict.fromkeys((*run.groups, *tried)))
    return replace(run, scale=done.state.to_json(), groups=new_groups), done


def _partition(run_id: str) -> str:
    return f"scale-{run_id}"


def decision_row(decision: Decision, outcomes: Any, now: float) -> dict[str, Any]:
    """A decision as one JSON-ready mapping: its inputs, its actions, what happened."""
    return {
        "at": now,
        **decision.to_json(),
        "outcomes": [asdict(o) for o in outcomes],
    }


def record_decision(table: TableClient, run_id: str, row: Mapping[str, Any]) -> None:
    """Write a decision to the run's log table (partition ``scale-<run id>``).

    Args:
        table (TableClient): The job log's table.
        run_id (str): The run.
        row (Mapping[str, Any]): From :func:`decision_row`.
    """
    table.upsert_entity(
        {
            "PartitionKey": _partition(run_id),
            # Milliseconds, zero-padded: rows sort by time.
            "RowKey": f"{int(row['at'] * 1000):015d}",
            "backlog": int(row["backlog"]),
            "queued": int(row["queued"]),
            "in_flight": int(row["in_flight"]),
            "desired": int(row["desired"]),
            "actual": int(row["actual"]),
            "quota_left": json.dumps(row["quota_left"], sort_keys=True),
            "summary": str(row["summary"]),
            "decision": json.dumps(row, sort_keys=True, default=str),
        },
        mode=UpdateMode.REPLACE,
    )


def decisions(table: TableClient, run_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The run's recorded decisions, oldest first (the last ``limit`` when given)."""
    rows = table.query_entities("PartitionKey eq @p", parameters={"p": _partition(run_id)})
    found = sorted(rows, key=lambda r: str(r["RowKey"]))
    picked = found[-limit:] if limit else found
    return [json.loads(str(r["decision"])) for r in picked]


def worth_recording(decision: Decision, last: str) -> tuple[bool, str]:
    """Whether a decision is new: it acts, or its inputs changed since ``last`` (a key
    :func:`worth_recording` returned before). Returns (record?, key to keep)."""
    key = json.dumps(
        [
            decision.backlog,
            decision.in_flight,
            decision.quota_left,
            decision.desired,
            decision.actual,
        ],
        sort_keys=True,
    )
    return bool(decision.actions) or key != last, key
