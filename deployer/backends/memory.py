"""An in-memory backend: tests the generic cluster logic with no cloud.

Groups become ready immediately (or after ``ready_after`` observations); every
call is recorded so tests can count PUTs and deletes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from deployer import defaults
from deployer.backends.base import (
    RUNNING,
    SUCCEEDED,
    Backend,
    ContainerStatus,
    ObservedGroup,
    Usage,
)
from deployer.errors import AzureError
from deployer.plan import GroupSpec, canonical


class MemoryBackend(Backend):
    """Container groups in a dict.

    Args:
        cores_limit (int): The quota :meth:`usage` reports. Default: 100.
        delay (float): Seconds each create or delete takes. Default: 0.
        ready_after (int): ``get`` calls before a new group reports ready. Default: 0.
        fail (set[str] | None): Group names whose creation fails. Default: None.
    """

    def __init__(
        self,
        cores_limit: int = defaults.DEFAULT_QUOTA_CORES,
        delay: float = 0.0,
        ready_after: int = 0,
        fail: set[str] | None = None,
    ) -> None:
        self.groups: dict[str, ObservedGroup] = {}
        self.calls: list[tuple[str, str, float]] = []
        self.cores_limit = cores_limit
        self.delay = delay
        self.ready_after = ready_after
        self.fail = fail or set()
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def _record(self, op: str, name: str) -> None:
        with self._lock:
            self.calls.append((op, name, time.monotonic()))

    def count(self, op: str) -> int:
        """Return how many ``op`` calls (``put``, ``delete``, ``get``...) were made."""
        return sum(1 for o, _, _ in self.calls if o == op)

    def create_or_update(self, spec: GroupSpec) -> ObservedGroup:
        self._record("put", spec.name)
        time.sleep(self.delay)
        if spec.name in self.fail:
            raise AzureError(f"creating {spec.name} failed", code="InjectedFailure")
        observed = ObservedGroup(
            name=spec.name,
            provisioning_state=SUCCEEDED,
            tags=dict(spec.tags),
            canonical=canonical(spec),
            containers=tuple(
                ContainerStatus(c.name, "Waiting" if self.ready_after else RUNNING, False)
                for c in spec.containers
            ),
            ip="10.0.0.4" if spec.ip == "Private" else ("20.0.0.1" if spec.ip else None),
        )
        with self._lock:
            self.groups[spec.name] = observed
            self._pending[spec.name] = self.ready_after
        return observed

    def delete(self, name: str) -> bool:
        self._record("delete", name)
        time.sleep(self.delay)
        with self._lock:
            return self.groups.pop(name, None) is not None

    def list(self, deployment: str) -> list[ObservedGroup]:
        self._record("list", deployment)
        with self._lock:
            return [g for g in self.groups.values() if g.tags.get("deployment") == deployment]

    def get(self, name: str) -> ObservedGroup | None:
        self._record("get", name)
        with self._lock:
            group = self.groups.get(name)
            if group is None:
                return None
            left = self._pending.get(name, 0)
            if left > 0:
                self._pending[name] = left - 1
                return group
            ready = tuple(replace(c, state=RUNNING, ready=True) for c in group.containers)
            self.groups[name] = group = replace(group, containers=ready)
            return group

    def logs(self, group: str, container: str, tail: int | None = None) -> str:
        self._record("logs", group)
        if group not in self.groups:
            raise AzureError(f"container group {group} not found", code="ResourceNotFound")
        lines = [f"{container} line {i}" for i in range(1, 6)]
        return "\n".join(lines[-tail:] if tail else lines) + "\n"

    def usage(self, location: str) -> Usage:
        self._record("usage", location)
        with self._lock:
            used = sum(
                sum(c["cpu"] for c in g.canonical["recreate"]["containers"].values())
                for g in self.groups.values()
            )
        return Usage(cores_used=-(-used // defaults.TENTHS), cores_limit=self.cores_limit)
