"""What the parts of the Docker runtime share: the Docker client, the lock, the groups and
their containers by Docker id, and a small thread pool with timers.

Methods that change state take the lock (the fake ARM server's) only around bookkeeping;
Docker calls happen outside it, on the pool, so the ARM API keeps answering while
containers start.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import docker.errors

from .settings import EmulatorSettings
from .state import ContainerRun, GroupKey, GroupRun


class RuntimeCore:
    """The shared state of one emulator's runtime.

    :param lock: the lock guarding group state (the server's).
    :param settings: image mapping and restart timing.
    :param client: the Docker client.
    :param instance_id: the emulator's id (label value, name prefix).
    """

    def __init__(
        self,
        lock: threading.RLock,
        settings: EmulatorSettings,
        client: docker.DockerClient,
        instance_id: str,
    ) -> None:
        self.lock = lock
        self.settings = settings
        self.client = client
        self.instance_id = instance_id
        self.groups: dict[GroupKey, GroupRun] = {}
        self.by_docker_id: dict[str, tuple[GroupRun, ContainerRun]] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=instance_id)
        self.closed = False
        self._timers: set[threading.Timer] = set()
        info = client.info()
        self.host_cpus = int(info.get("NCPU") or os.cpu_count() or 1)
        """CPUs of the Docker engine (a container's ``nano_cpus`` cap)."""

    def later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the pool after ``delay`` seconds, unless closed by then.

        :param delay: seconds.
        :param fn: the function.
        :param args: its arguments.
        """

        def fire() -> None:
            with self.lock:
                self._timers.discard(timer)
            if not self.closed:
                self.pool.submit(fn, *args)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self.lock:
            self._timers.add(timer)
        timer.start()

    def remove_container(self, docker_id: str) -> None:
        """Forget a container and remove it from the engine (gone already is fine).

        :param docker_id: the Docker container.
        """
        with self.lock:
            self.by_docker_id.pop(docker_id, None)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(docker_id, force=True, v=True)

    def close(self) -> None:
        """Stop the timers and the pool (waits for running work; drops queued work)."""
        self.closed = True
        with self.lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
