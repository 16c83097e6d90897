"""Generic cluster logic: plan diff, concurrent apply, readiness, teardown.

Backends only create, delete, list, get, read logs and report usage (see
:class:`deployer.backends.base.Backend`); everything that makes ``up`` and
``down`` correct and fast lives here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from deployer import defaults, sizing
from deployer.backends.base import Backend, ObservedGroup
from deployer.errors import AzureError, DeployerError
from deployer.plan import ONE_OFF_TAGS, Action, Change, Plan, diff


class Progress(Protocol):
    """Receives one line of news per group and step."""

    def __call__(self, group: str, status: str) -> None:
        """Report that ``group`` reached ``status``."""


def _quiet(group: str, status: str) -> None:
    """A progress sink that reports nothing."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one group.

    Args:
        name (str): Group name.
        action (Action): The change made.
        error (DeployerError | None): Its failure, if any.
        observed (ObservedGroup | None): Its last observed state.
    """

    name: str
    action: Action
    error: DeployerError | None = None
    observed: ObservedGroup | None = None


def _cpu(canonical: Any) -> int:
    return sum(int(c["cpu"]) for c in canonical["recreate"]["containers"].values())


class Cluster:
    """Applies plans through a backend.

    Args:
        backend (Backend): Where groups live.
        progress (Progress | None): Progress sink. Default: none.
        parallelism (int): Groups handled at once. Default: 16.
        poll_interval (float): Seconds between readiness polls. Default: 5.
        ready_timeout (float): Seconds to wait for readiness. Default: 900.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        progress: Progress | None = None,
        parallelism: int = defaults.DEFAULT_PARALLELISM,
        poll_interval: float = defaults.DEFAULT_POLL_INTERVAL_S,
        ready_timeout: float = defaults.DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        self.backend = backend
        self.progress: Progress = progress or _quiet
        self.parallelism = parallelism
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout

    # -- reading --------------------------------------------------------------

    def observe(self, deployment: str) -> dict[str, ObservedGroup]:
        """Return the deployment's existing groups, by name."""
        return {g.name: g for g in self.backend.list(deployment)}

    def changes(self, plan: Plan, observed: dict[str, ObservedGroup]) -> list[Change]:
        """Return the changes that turn ``observed`` into ``plan``.

        Groups of a ``deployer run`` (tag ``run``) belong to the run's janitor, and those of
        ``deployer db fetch`` to that command, not to the plan (:data:`ONE_OFF_TAGS`).
        """
        return diff(
            plan.groups,
            {
                name: g.canonical
                for name, g in observed.items()
                if not any(tag in g.tags for tag in ONE_OFF_TAGS)
            },
        )

    def check_quota(
        self, changes: Sequence[Change], observed: dict[str, ObservedGroup], location: str
    ) -> None:
        """Fail before any write when the changes need more cores than are free.

        Raises:
            QuotaError: When they do not fit.
        """
        added = 0
        for change in changes:
            old = _cpu(observed[change.name].canonical) if change.name in observed else 0
            new = change.spec.resources.cpu if change.spec else 0
            if change.action in (Action.CREATE, Action.RECREATE, Action.DELETE):
                added += new - old
        if added <= 0:
            return
        usage = self.backend.usage(location)
        sizing.check_quota(added, usage.cores_limit, usage.cores_used, location)

    # -- writing --------------------------------------------------------------

    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> list[Outcome]:
        """Carry out ``changes`` concurrently, then wait until every group is ready.

        Unchanged groups get no write, only the readiness check. Recreates delete
        then create. A failing group does not stop the others.

        Args:
            changes (Sequence[Change]): From :meth:`changes`.
            wait (bool): Wait for readiness. Default: True.

        Returns:
            list[Outcome]: One per change, in order.
        """
        return self._map(lambda c: self._apply_one(c, wait), changes)

    def start_creates(self, changes: Sequence[Change]) -> list[Outcome]:
        """Send the creates of ``changes`` concurrently; return once each is accepted or
        refused, without waiting for provisioning (later observations show how it went).

        Returns:
            list[Outcome]: One per change, in order.
        """

        def start(change: Change) -> Outcome:
            assert change.spec is not None and change.action is Action.CREATE
            try:
                self.progress(change.name, "create: sent")
                self.backend.start_create(change.spec)
                return Outcome(change.name, change.action)
            except DeployerError as exc:
                self.progress(change.name, f"failed: {exc.message}")
                return Outcome(change.name, change.action, error=exc)

        return self._map(start, changes)

    def _apply_one(self, change: Change, wait: bool) -> Outcome:
        name, action = change.name, change.action
        try:
            if action in (Action.DELETE, Action.RECREATE):
                self.progress(name, "deleting")
                self.backend.delete(name)
                if action is Action.DELETE:
                    self.progress(name, "deleted")
                    return Outcome(name, action)
            observed = None
            if change.spec is not None and action is not Action.UNCHANGED:
                self.progress(name, f"{action.value}: provisioning")
                observed = self.backend.create_or_update(change.spec)
                self.progress(name, "provisioned")
            if wait:
                observed = self.wait_ready(name)
            return Outcome(name, action, observed=observed)
        except DeployerError as exc:
            self.progress(name, f"failed: {exc.message}")
            return Outcome(name, action, error=exc)

    def wait_ready(self, name: str) -> ObservedGroup:
        """Poll group ``name`` until every container runs and passes its probe.

        Raises:
            AzureError: When it fails, vanishes or is not ready in time.
        """
        deadline = time.monotonic() + self.ready_timeout
        last = ""
        while True:
            group = self.backend.get(name)
            if group is None:
                raise AzureError(f"container group {name} disappeared", code="ResourceNotFound")
            if group.ready:
                self.progress(name, "ready")
                return group
            if reason := group.failed:
                raise AzureError(f"{name}: {reason}", code="ContainerFailed")
            waiting = [c.name for c in group.containers if not c.ready]
            status = f"waiting for {', '.join(waiting) or 'provisioning'}"
            if status != last:
                self.progress(name, status)
                last = status
            if time.monotonic() > deadline:
                raise AzureError(
                    f"{name} was not ready after {self.ready_timeout:.0f} s ({status})",
                    hint=f"look at `deployer logs {name}`; raise {defaults.Env.READY_TIMEOUT}",
                    code="ReadinessTimeout",
                )
            time.sleep(self.poll_interval)

    def teardown(self, deployment: str) -> list[Outcome]:
        """Delete every group tagged with ``deployment``, concurrently, until gone."""
        names = sorted(self.observe(deployment))
        outcomes = self.apply([Change(n, Action.DELETE) for n in names], wait=False)
        left = sorted(self.observe(deployment))
        if left:
            raise AzureError(
                f"{len(left)} group(s) still exist after deleting: {', '.join(left)}",
                hint="run `deployer down` again",
                code="DeleteIncomplete",
            )
        return outcomes

    def _map(self, fn: Callable[[Change], Outcome], changes: Sequence[Change]) -> list[Outcome]:
        if not changes:
            return []
        workers = max(1, min(self.parallelism, len(changes)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deployer") as pool:
            return list(pool.map(fn, changes))


def raise_for_failures(outcomes: Sequence[Outcome], verb: str) -> None:
    """Raise one :class:`AzureError` summarising every failed outcome.

    Args:
        outcomes (Sequence[Outcome]): From :meth:`Cluster.apply`.
        verb (str): What was attempted, for the message (``create``...).
    """
    failed = [o for o in outcomes if o.error is not None]
    if not failed:
        return
    errors = [o.error for o in failed if o.error is not None]
    first = errors[0]
    if first.hint and all((e.code, e.hint) == (first.code, first.hint) for e in errors):
        # One cause for every group (no provider, no quota...): one line and its fix, with
        # that cause's exit code.
        raise type(first)(
            f"{len(failed)} of {len(outcomes)} group(s) failed to {verb}: {first.message}",
            hint=first.hint,
            code=first.code,
        )
    lines = [f"{o.name}: {o.error}" for o in failed]
    codes = sorted({o.error.code for o in failed if o.error and o.error.code})
    raise AzureError(
        f"{len(failed)} of {len(outcomes)} group(s) failed to {verb}:\n  " + "\n  ".join(lines),
        hint="fix the cause and run the command again; it only redoes what is missing",
        code=codes[0] if len(codes) == 1 else None,
    )
