"""The emulator's view of what runs: a group's containers (:class:`ContainerRun`), the group
(:class:`GroupRun`), ACI's events, and ACI's pure rules for restarts and group states.

Every field is read and written under the runtime's lock (the fake ARM server's).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .probes import Probe

GroupKey = tuple[str, str, str]
"""A group's key: subscription, resource group and name, lower case (the provider's)."""


def should_restart(policy: str, exit_code: int) -> bool:
    """ACI's restart rule for a container that stopped by itself.

    :param policy: the group's ``restartPolicy`` (``Always``, ``OnFailure``, ``Never``;
        any case).
    :param exit_code: the container's exit code.
    :return: whether ACI starts it again.
    """
    p = policy.lower()
    return p == "always" or (p == "onfailure" and exit_code != 0)


def group_state(
    policy: str, containers: Iterable[tuple[str, int | None]], *, pending: bool, evicted: bool
) -> str:
    """The group's ``instanceView.state``, derived from its containers as ACI does.

    :param policy: the group's restart policy.
    :param containers: ``(state, exit code)`` per container; state is ``Running``,
        ``Waiting`` or ``Terminated``.
    :param pending: the containers are still being created.
    :param evicted: a Spot eviction stopped the group.
    :return: ``Pending``, ``Running``, ``Stopped``, ``Succeeded`` or ``Failed``.
    """
    if pending:
        return "Pending"
    if evicted:
        return "Stopped"
    views = list(containers)
    if any(state != "Terminated" for state, _ in views):
        return "Running"
    if policy.lower() == "never" and any(code for _, code in views):
        return "Failed"
    return "Succeeded"


def now_iso() -> str:
    """The current UTC time as ACI writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def docker_time(value: str | None) -> str | None:
    """A Docker timestamp (RFC 3339 with nanoseconds) as ACI shows it (seconds), if set.

    :param value: e.g. ``State.StartedAt``.
    :return: ``2024-05-01T12:00:00Z``, or ``None`` for Docker's zero time.
    """
    if not value or value.startswith("0001-"):
        return None
    return value[:19] + "Z"


@dataclass
class ContainerRun:
    """What one ACI container of a group is doing.

    :param name: the ACI container name.
    :param image: the local image it runs.
    :param docker_id: the Docker container, once created.
    :param state: ``Waiting``, ``Running`` or ``Terminated``.
    :param detail: ACI's ``detailStatus``.
    :param start_time: ISO time of the current (or last) start.
    :param finish_time: ISO time it last stopped.
    :param exit_code: last exit code.
    :param previous: ACI's ``previousState`` once it has restarted or stopped.
    :param restart_count: restarts so far.
    :param events: ACI events (``name``, ``message``, ``type``, ``count``, times).
    :param stopping: set before the emulator stops it on purpose (no restart).
    :param probes: its readiness and liveness probes.
    """

    name: str
    image: str
    docker_id: str | None = None
    state: str = "Waiting"
    detail: str = "ContainerCreating"
    start_time: str | None = None
    finish_time: str | None = None
    exit_code: int | None = None
    previous: dict[str, Any] | None = None
    restart_count: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    stopping: bool = False
    probes: list[Probe] = field(default_factory=list)

    def instance_view(self) -> dict[str, Any]:
        """The container's ``instanceView`` as ACI renders it.

        :return: a JSON object.
        """
        current: dict[str, Any] = {"state": self.state, "detailStatus": self.detail}
        if self.start_time:
            current["startTime"] = self.start_time
        if self.state == "Terminated":
            current["exitCode"] = self.exit_code
            if self.finish_time:
                current["finishTime"] = self.finish_time
        view: dict[str, Any] = {
            "restartCount": self.restart_count,
            "currentState": current,
            "events": [dict(e) for e in self.events],
        }
        if self.previous:
            view["previousState"] = dict(self.previous)
        return view


@dataclass
class GroupRun:
    """The Docker side of one container group.

    :param key: the provider's group key.
    :param name: group name.
    :param policy: restart policy.
    :param priority: ``Regular`` or ``Spot``.
    :param containers: per ACI container name, in body order.
    :param sandbox_id: the sandbox container.
    :param ip: the sandbox's IP on the emulator network.
    :param pending: still being created.
    :param evicted: stopped by :meth:`DockerRuntime.evict`.
    :param deleting: being removed.
    :param events: group-level ACI events.
    :param dirs: host directories backing its volumes.
    :param generation: bumped on each update, so stale timers do nothing.
    :param error: why creating it failed, if it did.
    :param launching: the background creation, so removal and updates wait for it.
    """

    key: GroupKey
    name: str
    policy: str
    priority: str
    containers: dict[str, ContainerRun]
    sandbox_id: str | None = None
    ip: str | None = None
    pending: bool = True
    evicted: bool = False
    deleting: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    generation: int = 0
    error: str | None = None
    launching: Future[None] | None = None

    def state(self) -> str:
        """The group's ``instanceView.state``."""
        return group_state(
            self.policy,
            ((c.state, c.exit_code) for c in self.containers.values()),
            pending=self.pending,
            evicted=self.evicted,
        )


def add_event(events: list[dict[str, Any]], name: str, message: str, kind: str = "Normal") -> None:
    """Record an ACI event, folding repeats into ``count`` as ACI does.

    :param events: the list to update.
    :param name: event name (``Pulled``, ``Started``, ``Killing``, ...).
    :param message: event message.
    :param kind: ``Normal`` or ``Warning``.
    """
    now = now_iso()
    for event in events:
        if event["name"] == name and event["message"] == message:
            event["count"] += 1
            event["lastTimestamp"] = now
            return
    events.append(
        {
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "name": name,
            "message": message,
            "type": kind,
        }
    )
