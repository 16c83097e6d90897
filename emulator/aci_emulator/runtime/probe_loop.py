"""The loop that runs the probes of an emulator's running containers (:mod:`.probes` says
what a probe is and runs one): each failure is an ``Unhealthy`` event, and
``failureThreshold`` liveness failures in a row kill the container, which then restarts by
its group's restart policy."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import docker.errors

from .core import RuntimeCore
from .probes import Probe, run_probe
from .state import ContainerRun, GroupRun, add_event


class ProbeLoop:
    """Runs every due probe of the emulator's running containers, on a thread of its own.

    :param core: the runtime's shared state.
    """

    def __init__(self, core: RuntimeCore) -> None:
        self.core = core
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        self._thread = threading.Thread(
            target=self._loop, name=f"{core.instance_id}-probes", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop running probes (the loop ends once the core is closed)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self.core.closed:
            now = time.monotonic()
            with self.core.lock:
                due = [
                    (run, crun, probe)
                    for run in self.core.groups.values()
                    if not run.deleting
                    for crun in run.containers.values()
                    if crun.state == "Running" and crun.docker_id
                    for probe in crun.probes
                    if probe.due(now)
                ]
            for item in due:
                self._pool.submit(self._probe, *item)
            time.sleep(0.25)

    def _probe(self, run: GroupRun, crun: ContainerRun, probe: Probe) -> None:
        if crun.docker_id is None:
            return
        failure = run_probe(self.core.client, probe, crun.docker_id, run.sandbox_id)
        kill = None
        with self.core.lock:
            if probe.next_due is None or crun.state != "Running":
                return  # stopped meanwhile: the result says nothing
            if failure is None:
                probe.failures = 0
                return
            probe.failures += 1
            add_event(crun.events, "Unhealthy", f"{probe.kind} probe failed: {failure}", "Warning")
            if probe.kind == "Liveness" and probe.failures >= probe.failure_threshold:
                add_event(
                    crun.events,
                    "Killing",
                    f"Container {crun.name} failed liveness probe, will be restarted",
                )
                for p in crun.probes:
                    p.next_due = None
                kill = crun.docker_id
        if kill:
            with contextlib.suppress(docker.errors.APIError):
                self.core.client.api.kill(kill)
