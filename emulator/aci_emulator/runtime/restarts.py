"""Restart policies and Spot eviction: the emulator watches its containers' ``die`` events,
records how each stopped, and starts it again as ACI would.

* **Restart policy.** ``Always``; ``OnFailure`` on a non-zero exit; ``Never``. A restart
  waits a short backoff that doubles per restart (``EmulatorSettings.restart_delay`` up
  to ``restart_delay_max``), and counts in ``restartCount``.
* **Eviction.** A Spot group's containers are killed as Azure does; ACI starts the group
  again when capacity returns (:meth:`Supervisor.restore`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import docker
import docker.errors

from .containers import start_container
from .core import RuntimeCore
from .state import ContainerRun, GroupKey, GroupRun, add_event, docker_time, now_iso, should_restart

GROUP_EVICTED_EVENT = "SpotContainerGroupEvicted"
"""Name of the group event an eviction adds (the emulator's choice; ACI's is undocumented)."""


class Supervisor:
    """Watches the emulator's containers and restarts them by policy.

    :param core: the runtime's shared state.
    :param events: the engine's event stream, filtered to this emulator's containers.
    """

    def __init__(self, core: RuntimeCore, events: Any) -> None:
        self.core = core
        self._events = events
        self._watcher = threading.Thread(
            target=self._watch, name=f"{core.instance_id}-events", daemon=True
        )
        self._watcher.start()

    def close(self) -> None:
        """End the event stream (and with it the watcher)."""
        with contextlib.suppress(Exception):
            self._events.close()

    def _watch(self) -> None:
        try:
            for event in self._events:
                if event.get("status") == "die" or event.get("Action") == "die":
                    self._on_die(str(event.get("id", "")))
        except Exception:  # the stream raises when close() ends it
            if not self.core.closed:
                raise

    def _on_die(self, docker_id: str) -> None:
        with self.core.lock:
            found = self.core.by_docker_id.get(docker_id)
        if found is None:
            return
        run, crun = found
        try:
            state = self.core.client.api.inspect_container(docker_id).get("State", {})
        except docker.errors.NotFound:
            return
        if state.get("Running"):
            return  # restarted meanwhile
        code = int(state.get("ExitCode") or 0)
        with self.core.lock:
            for probe in crun.probes:
                probe.next_due = None
            crun.state = "Terminated"
            crun.exit_code = code
            crun.finish_time = docker_time(state.get("FinishedAt")) or now_iso()
            crun.detail = "Completed" if code == 0 else "Error"
            if state.get("OOMKilled"):
                crun.detail = "OOMKilled"
            if crun.stopping or run.deleting or run.evicted or self.core.closed:
                return
            if not should_restart(run.policy, code):
                return
            crun.previous = {
                "state": "Terminated",
                "startTime": crun.start_time,
                "finishTime": crun.finish_time,
                "exitCode": code,
                "detailStatus": crun.detail,
            }
            crun.state, crun.detail = "Waiting", "CrashLoopBackOff"
            delay = min(
                self.core.settings.restart_delay * 2 ** min(crun.restart_count, 10),
                self.core.settings.restart_delay_max,
            )
            add_event(
                crun.events,
                "BackOff",
                "Back-off restarting failed container" if code else "Restarting container",
                "Warning" if code else "Normal",
            )
            self.core.later(delay, self._restart, run, crun, run.generation)

    def _restart(self, run: GroupRun, crun: ContainerRun, generation: int) -> None:
        with self.core.lock:
            if (
                self.core.groups.get(run.key) is not run
                or run.generation != generation
                or run.deleting
                or run.evicted
                or crun.stopping
            ):
                return
        start_container(self.core, run, crun, first=False)

    def evict(self, key: GroupKey, restore_after: float | None = None) -> None:
        """Kill a group's containers the way a Spot eviction does.

        The containers end ``Terminated`` (exit 137, ``Killed``), each gets a
        ``Killing`` event, the group a :data:`GROUP_EVICTED_EVENT` event and the state
        ``Stopped``. ACI restarts an evicted group when capacity returns: pass
        ``restore_after`` to do that after so many seconds, or call :meth:`restore`.

        :param key: the provider's group key.
        :param restore_after: seconds until the group is started again; ``None``
            leaves it stopped.
        """
        with self.core.lock:
            run = self.core.groups[key]
            run.evicted = True
            ids = []
            for crun in run.containers.values():
                add_event(
                    crun.events,
                    "Killing",
                    "Killing container: the Spot container group is being evicted",
                    "Warning",
                )
                if crun.docker_id:
                    ids.append(crun.docker_id)
            add_event(
                run.events,
                GROUP_EVICTED_EVENT,
                "The Spot container group was evicted to reclaim capacity; its containers "
                "were killed.",
                "Warning",
            )
        for docker_id in ids:
            with contextlib.suppress(docker.errors.APIError):
                self.core.client.api.kill(docker_id)
        # The die events fill in exit codes; wait for them so callers see the result.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.core.lock:
                if all(c.state == "Terminated" for c in run.containers.values()):
                    break
            time.sleep(0.05)
        if restore_after is not None:
            self.core.later(restore_after, self._restore, run, run.generation)

    def restore(self, key: GroupKey) -> None:
        """Start an evicted group again (capacity came back).

        :param key: the provider's group key.
        """
        with self.core.lock:
            run = self.core.groups[key]
        self._restore(run, run.generation)

    def _restore(self, run: GroupRun, generation: int) -> None:
        with self.core.lock:
            if self.core.groups.get(run.key) is not run or run.generation != generation:
                return
            if not run.evicted or run.deleting:
                return
            run.evicted = False
            add_event(run.events, "Started", "The container group was started again.")
            containers = list(run.containers.values())
        for crun in containers:
            start_container(self.core, run, crun, first=False)
