"""The local ACI emulator: accepted container groups become real Docker containers.

:class:`DockerRuntime` is what :class:`~aci_emulator.providers.aci.AciProvider` calls when
the fake ARM server runs in emulator mode (``FakeArm(emulate=True)``, ``make emulator``).
The ARM side (validation, async operations, faults) is unchanged; the runtime only runs
containers and reports what they do. Its parts, one concern each:

* :mod:`.images`: which local image each container runs (the one place for that);
* :mod:`.network`: the emulator's network, one sandbox per group (its network namespace,
  IP and DNS names) and loopback forwards into each group;
* :mod:`.volumes`: ``secret`` and ``emptyDir`` volumes;
* :mod:`.containers`: creating and starting a group's containers (resources, user,
  command, environment);
* :mod:`.restarts`: restart policies (``die`` events) and Spot eviction;
* :mod:`.probes`, :mod:`.probe_loop`: readiness and liveness probes;
* :mod:`.logs`: container output; :mod:`.labels`: names, labels and cleanup;
* :mod:`.state`: what each group and container is doing, and ACI's pure rules.

**Reaching the emulator from a group.** With ``listen_for_containers``, the ARM server
also listens on the emulator network's gateway, groups get ``host.docker.internal``
pointing there, and each sandbox forwards ``127.0.0.1:<arm port>`` to it. A container
(the janitor) can therefore use the very same ``DEPLOYER_ARM_ENDPOINT`` as the host:
``http://127.0.0.1:<port>``. :meth:`DockerRuntime.forward` adds such loopback forwards
for other services.

Every Docker object carries :data:`~.labels.LABEL_INSTANCE` = the emulator's id, and
:meth:`DockerRuntime.close` removes all of them.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Callable, Mapping
from typing import Any

import docker

from .containers import create_containers
from .core import RuntimeCore
from .images import ImageResolver
from .labels import LABEL_INSTANCE, docker_name, labels, remove_instance
from .logs import container_logs
from .network import Networking
from .probe_loop import ProbeLoop
from .restarts import Supervisor
from .settings import EmulatorError, EmulatorSettings
from .state import ContainerRun, GroupKey, GroupRun, add_event
from .volumes import VolumeStore


class DockerRuntime:
    """Runs container groups on the local Docker engine.

    Methods that change state take the owner's lock (the fake ARM server's) only around
    bookkeeping; Docker calls happen outside it, on a small thread pool, so the ARM
    API keeps answering while containers start.

    :param lock: the lock guarding group state (the server's).
    :param settings: image mapping and restart timing.
    :param client: a Docker client; default ``docker.from_env()``.
    :param instance_id: label value; default random (``aciemu-xxxxxx``).
    """

    def __init__(
        self,
        lock: threading.RLock,
        settings: EmulatorSettings | None = None,
        *,
        client: docker.DockerClient | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.lock = lock
        self.settings = settings or EmulatorSettings()
        self.client = client or docker.from_env()
        self.instance_id = instance_id or f"aciemu-{secrets.token_hex(3)}"
        self._core = RuntimeCore(lock, self.settings, self.client, self.instance_id)
        self.groups: dict[GroupKey, GroupRun] = self._core.groups
        self.host_cpus = self._core.host_cpus
        self.images = ImageResolver(self.client, self.settings)
        self._volumes = VolumeStore(self.instance_id)
        try:
            self._networking = Networking(self.client, self.instance_id)
            events = self.client.events(
                decode=True,
                filters={"label": f"{LABEL_INSTANCE}={self.instance_id}", "type": "container"},
            )
        except BaseException:
            remove_instance(self.client, self.instance_id)
            self._volumes.close()
            raise
        self.network = self._networking.network
        self.gateway: str = self._networking.gateway
        self.forwards = self._networking.forwards
        self._supervisor = Supervisor(self._core, events)
        self._probes = ProbeLoop(self._core)

    def forward(self, port: int, host: str, target_port: int) -> None:
        """Make ``127.0.0.1:<port>`` inside every group created from now on reach
        ``<host>:<target_port>`` (see :meth:`~.network.Networking.forward`).

        :param port: loopback port inside the groups.
        :param host: a name or IP on the emulator network, or ``host.docker.internal``.
        :param target_port: the port there.
        """
        self._networking.forward(port, host, target_port)

    # --- checks done at PUT time ----------------------------------------------------

    def resolve_image(self, ref: str) -> str:
        """The local image a reference runs as (see :class:`~.images.ImageResolver`).

        :param ref: the reference in the group body.
        :return: a local image name.
        :raises EmulatorError: ``InaccessibleImage`` when none of the candidates exists.
        """
        return self.images.resolve(ref)

    def check(self, body: Mapping[str, Any], name: str = "") -> dict[str, str]:
        """Check what the emulator must support in a group body.

        :param body: the validated PUT body.
        :param name: the group's name.
        :return: the local image per container name.
        :raises EmulatorError: for an image missing locally or an unsupported volume.
        """
        props = body.get("properties", {})
        for volume in props.get("volumes") or []:
            kinds = [k for k in ("azureFile", "gitRepo") if volume.get(k) is not None]
            if kinds:
                raise EmulatorError(
                    "UnsupportedVolumeType",
                    f"The local ACI emulator does not mount {kinds[0]} volumes (volume "
                    f"'{volume.get('name')}'); use emptyDir or secret volumes.",
                )
        if props.get("initContainers"):
            raise EmulatorError(
                "UnsupportedProperty",
                "The local ACI emulator does not run initContainers yet.",
            )
        self.images.require_sandbox()
        images: dict[str, str] = {}
        for container in props.get("containers", []):
            cprops = container.get("properties", {})
            if (cprops.get("securityContext") or {}).get("privileged"):
                raise EmulatorError(
                    "UnsupportedProperty",
                    f"The local ACI emulator does not run privileged containers "
                    f"('{container['name']}').",
                )
            images[str(container["name"])] = self.images.resolve(
                str(cprops.get("image", "")),
                name,
                props.get("imageRegistryCredentials") or (),
            )
        return images

    # --- lifecycle of a group -------------------------------------------------------

    def launch(
        self,
        key: GroupKey,
        body: Mapping[str, Any],
        images: Mapping[str, str],
        aliases: list[str],
        done: Callable[[str | None], None],
    ) -> GroupRun:
        """Create (or, for an update, re-create) a group's containers in the background.

        Call under the lock. ``done(error)`` is called once the containers are started
        (``None``) or creating them failed (a message), without the lock held.

        :param key: the provider's group key.
        :param body: the accepted group body.
        :param images: local image per container (from :meth:`check`).
        :param aliases: DNS names of the group on the emulator network.
        :param done: completion callback.
        :return: the group's run record.
        """
        props = body.get("properties", {})
        old = self.groups.get(key)
        run = GroupRun(
            key=key,
            name=key[2],
            policy=str(props.get("restartPolicy") or "Always"),
            priority=str(props.get("priority") or "Regular"),
            containers={
                str(c["name"]): ContainerRun(name=str(c["name"]), image=images[str(c["name"])])
                for c in props.get("containers", [])
            },
        )
        if old is not None:
            run.sandbox_id, run.ip, run.dirs = old.sandbox_id, old.ip, old.dirs
            run.generation = old.generation + 1
            run.events = old.events
            for c in old.containers.values():
                c.stopping = True
        self.groups[key] = run
        run.launching = self._core.pool.submit(
            self._launch, run, dict(body), list(aliases), old, done
        )
        return run

    def _launch(
        self,
        run: GroupRun,
        body: dict[str, Any],
        aliases: list[str],
        old: GroupRun | None,
        done: Callable[[str | None], None],
    ) -> None:
        error: str | None = None
        try:
            if old is not None:
                # Submitted earlier, so already running: the pool is FIFO.
                if old.launching is not None:
                    old.launching.result()
                with self.lock:
                    run.sandbox_id, run.ip = old.sandbox_id, old.ip
                    old_ids = [c.docker_id for c in old.containers.values() if c.docker_id]
                for docker_id in old_ids:
                    self._core.remove_container(docker_id)
            if run.sandbox_id is None:
                self._networking.start_sandbox(
                    run,
                    aliases,
                    image=self.settings.sandbox,
                    name=docker_name(self.instance_id, run, "sandbox"),
                    labels=labels(self.instance_id, run, "sandbox"),
                    lock=self.lock,
                )
            create_containers(self._core, self.images, self._volumes, run, body)
        except Exception as exc:  # noqa: BLE001 - any failure must end the operation, not hang it
            error = str(exc.message if isinstance(exc, EmulatorError) else exc)
        with self.lock:
            run.pending = False
            if error:
                run.error = error
                for c in run.containers.values():
                    if c.state == "Waiting":
                        c.state, c.detail = "Terminated", error
                add_event(run.events, "Failed", error, "Warning")
        done(error)

    # --- eviction -------------------------------------------------------------------

    def evict(self, key: GroupKey, restore_after: float | None = None) -> None:
        """Kill a group's containers the way a Spot eviction does (see
        :meth:`~.restarts.Supervisor.evict`).

        :param key: the provider's group key.
        :param restore_after: seconds until the group is started again; ``None``
            leaves it stopped.
        """
        self._supervisor.evict(key, restore_after)

    def restore(self, key: GroupKey) -> None:
        """Start an evicted group again (capacity came back).

        :param key: the provider's group key.
        """
        self._supervisor.restore(key)

    # --- removal --------------------------------------------------------------------

    def remove(self, key: GroupKey, done: Callable[[], None]) -> None:
        """Remove a group's containers, sandbox and volumes in the background.

        Call under the lock. ``done()`` runs without the lock once everything is gone.

        :param key: the provider's group key.
        :param done: completion callback.
        """
        run = self.groups.get(key)
        if run is None:
            self._core.pool.submit(done)
            return
        run.deleting = True
        for crun in run.containers.values():
            crun.stopping = True

        def work() -> None:
            if run.launching is not None:
                run.launching.result()  # submitted earlier, so already running
            self._remove_run(run)
            with self.lock:
                if self.groups.get(key) is run:
                    del self.groups[key]
            done()

        self._core.pool.submit(work)

    def _remove_run(self, run: GroupRun) -> None:
        for crun in run.containers.values():
            if crun.docker_id:
                self._core.remove_container(crun.docker_id)
        if run.sandbox_id:
            self._core.remove_container(run.sandbox_id)
        for path in run.dirs:
            shutil.rmtree(path, ignore_errors=True)

    # --- reading ----------------------------------------------------------------------

    def logs(self, key: GroupKey, container: str, tail: int | None, timestamps: bool) -> str:
        """A container's output (stdout and stderr), as ACI's logs route returns it.

        :param key: the provider's group key.
        :param container: ACI container name.
        :param tail: only the last lines; ``None`` for all.
        :param timestamps: prefix each line with its time.
        :return: the text ("" before the container exists).
        """
        with self.lock:
            run = self.groups.get(key)
            crun = run.containers.get(container) if run else None
            docker_id = crun.docker_id if crun else None
        if docker_id is None:
            return ""
        return container_logs(self.client, docker_id, tail, timestamps)

    def docker_ids(self, key: GroupKey) -> dict[str, str]:
        """Docker container ids of a group (for tests: ``docker inspect``).

        :param key: the provider's group key.
        :return: ACI container name (``"(sandbox)"`` for the sandbox) to Docker id.
        """
        with self.lock:
            run = self.groups.get(key)
            if run is None:
                return {}
            out = {n: c.docker_id for n, c in run.containers.items() if c.docker_id}
            if run.sandbox_id:
                out["(sandbox)"] = run.sandbox_id
            return out

    # --- shutdown ---------------------------------------------------------------------

    def close(self) -> None:
        """Remove every Docker object and directory this emulator created."""
        self._core.close()
        self._probes.close()
        self._supervisor.close()
        remove_instance(self.client, self.instance_id)
        self._volumes.close()
        self.groups.clear()
