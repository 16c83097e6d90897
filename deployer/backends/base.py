"""The backend contract: the few operations the generic cluster logic needs.

A backend implements only create-or-update, delete, list, get, logs and usage;
planning, concurrency, progress, readiness and teardown live in
:mod:`deployer.cluster`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.plan import GroupSpec

SUCCEEDED = "Succeeded"
RUNNING = "Running"


@dataclass(frozen=True)
class ContainerStatus:
    """The observed state of one container.

    Args:
        name (str): Container name.
        state (str | None): ``Waiting``, ``Running`` or ``Terminated`` (None if unknown).
        ready (bool): True once its readiness probe passes (no probe: when Running).
        restarts (int): Restart count.
        detail (str | None): Human-readable detail (e.g. the last event).
        started (float | None): Epoch seconds of its first start (billing).
        finished (float | None): Epoch seconds it terminated, when it has.
        exit_code (int | None): Its exit code, when it has terminated.
    """

    name: str
    state: str | None
    ready: bool
    restarts: int = 0
    detail: str | None = None
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class ObservedGroup:
    """The observed state of one container group.

    Args:
        name (str): Group name.
        provisioning_state (str | None): ARM provisioningState.
        tags (Mapping[str, str]): Its tags.
        canonical (Mapping[str, Any]): Its settable fields in the shape of
            :func:`deployer.plan.canonical`.
        containers (tuple[ContainerStatus, ...]): Container states.
        ip (str | None): Its IP address, if any.
        fqdn (str | None): Its DNS name, if any.
        location (str | None): Its region, if known.
        evicted (bool): ACI evicted it (Spot): its instance view has a
            ``SpotContainerGroupEvicted`` event and its containers were killed.
        state (str | None): Its instance view's state (``Pending``, ``Running``,
            ``Succeeded``, ``Failed``, ``Stopped``): what its containers do, where
            ``provisioning_state`` says only whether ARM finished creating it. None while
            there is no instance view.
    """

    name: str
    provisioning_state: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    canonical: Mapping[str, Any] = field(default_factory=dict)
    containers: tuple[ContainerStatus, ...] = ()
    ip: str | None = None
    fqdn: str | None = None
    location: str | None = None
    evicted: bool = False
    state: str | None = None

    @property
    def ready(self) -> bool:
        """True when provisioning succeeded and every container runs and is ready."""
        return (
            self.provisioning_state == SUCCEEDED
            and bool(self.containers)
            and all(c.state == RUNNING and c.ready for c in self.containers)
        )

    @property
    def terminated(self) -> bool:
        """True when every container has terminated (a run-to-completion group is done)."""
        return bool(self.containers) and all(c.state == "Terminated" for c in self.containers)

    @property
    def failed(self) -> str | None:
        """A reason when the group cannot become ready without a change, else None."""
        if self.provisioning_state == "Failed":
            return "provisioning failed"
        for c in self.containers:
            if c.state == "Terminated":
                return f"container {c.name} terminated" + (f": {c.detail}" if c.detail else "")
        return None


@dataclass(frozen=True)
class Usage:
    """Regional ACI core usage.

    Args:
        cores_used (int): Cores in use.
        cores_limit (int): The quota.
    """

    cores_used: int
    cores_limit: int


class Backend(ABC):
    """Where container groups are created; every method blocks until done.

    Implementations raise :class:`~deployer.errors.AzureError` (or another
    :class:`~deployer.errors.DeployerError`) for failures the user can act on.
    """

    @abstractmethod
    def create_or_update(self, spec: GroupSpec) -> ObservedGroup:
        """Create or update ``spec``; return once provisioning has finished.

        Raises:
            AzureError: When the service refuses it or provisioning fails.
        """

    def start_create(self, spec: GroupSpec) -> None:
        """Send the create of ``spec`` and return once it is accepted, without waiting for
        provisioning (later observations show how it went). Default: :meth:`create_or_update`.

        Raises:
            AzureError: When the service refuses it.
        """
        self.create_or_update(spec)

    @abstractmethod
    def delete(self, name: str) -> bool:
        """Delete group ``name``; return only after it is gone.

        Returns:
            bool: False when it did not exist.
        """

    def start_delete(self, name: str) -> None:
        """Send the delete of group ``name`` and return once it is accepted, without waiting
        until it is gone (later observations show it going; sending it again is harmless).
        Default: :meth:`delete`.

        Raises:
            AzureError: When the service refuses it.
        """
        self.delete(name)

    @abstractmethod
    def list(self, deployment: str) -> list[ObservedGroup]:
        """Return every group tagged ``deployment=<deployment>``."""

    @abstractmethod
    def get(self, name: str) -> ObservedGroup | None:
        """Return group ``name``, or None if it does not exist."""

    @abstractmethod
    def logs(self, group: str, container: str, tail: int | None = None) -> str:
        """Return the container's log (its last ``tail`` lines when given)."""

    @abstractmethod
    def usage(self, location: str) -> Usage:
        """Return the regional core usage and quota of ``location``."""
