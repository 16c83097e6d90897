"""The local ACI emulator: accepted container groups become real Docker containers.

:class:`DockerRuntime` is what :class:`~tests.fakearm.aci.AciProvider` calls when the fake
ARM server runs in emulator mode (``FakeArm(emulate=True)``, ``make emulator``). The ARM
side (validation, async operations, faults) is unchanged; this module only runs
containers and reports what they do.

How an ACI group maps onto Docker:

* **Network namespace.** Each group gets a *sandbox* container (the base image running
  ``sleep``, or the ARM forwarder below, under tini) on the emulator's own bridge
  network. The group's containers join its namespace (``network_mode:
  container:<sandbox>``), so they share localhost as on ACI. The sandbox's IP is the
  group's ``ipAddress.ip``; the group name, its DNS label and its ACI FQDN
  (``<label>.<location>.azurecontainer.io``) are DNS aliases on that network.
* **Resources.** ``limits`` (else ``requests``) become ``nano_cpus`` (capped at the
  engine's CPU count, which Docker requires) and a memory limit without swap.
* **Restart policy.** The emulator watches ``die`` events and restarts per ACI's rule
  (``Always``; ``OnFailure`` on a non-zero exit; ``Never``), after a short backoff
  that doubles per restart, and counts restarts.
* **Volumes.** ``secret`` files land on tmpfs (``/dev/shm``) with mode 0600, owned by
  the container's user when that is numeric; ``emptyDir`` is a shared directory of
  the group (mode 0777, like Kubernetes). ``azureFile`` and ``gitRepo`` are refused.
* **Images** resolve against the local engine only (no pulls): the reference itself if
  it exists locally, else ``<image_prefix>/<last path part>`` with the reference's
  tag, or with :attr:`EmulatorSettings.image_tag` when set.
* **Reaching the emulator from a group.** With ``listen_for_containers``, the ARM
  server also listens on the emulator network's gateway, groups get
  ``host.docker.internal`` pointing there, and each sandbox forwards
  ``127.0.0.1:<arm port>`` to it. A container (the janitor) can therefore use the very
  same ``DEPLOYER_ARM_ENDPOINT`` as the host: ``http://127.0.0.1:<port>``.
  :meth:`DockerRuntime.forward` adds such loopback forwards for other services.

Every Docker object carries :data:`LABEL_INSTANCE` = the emulator's id, and
:meth:`DockerRuntime.close` removes all of them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .probes import Probe, probes_of, run_probe

LABEL_INSTANCE = "aci-research.emulator"
"""Label on every Docker object the emulator creates; the value is the instance id."""
LABEL_GROUP = "aci-research.emulator.group"
"""Label naming the container group (ARM id, lower case)."""
LABEL_ROLE = "aci-research.emulator.role"
"""``sandbox`` or ``container``."""
LABEL_CONTAINER = "aci-research.emulator.container"
"""The ACI container name (on ``container`` role objects)."""

GROUP_EVICTED_EVENT = "SpotContainerGroupEvicted"
"""Name of the group event an eviction adds (the emulator's choice; ACI's is undocumented)."""

# Waits while a stopped container gets its first restart; doubles up to the maximum.
_DEFAULT_RESTART_DELAY = 0.5
_DEFAULT_RESTART_DELAY_MAX = 10.0

# Forwards 127.0.0.1:<port> in a group's namespace to <host>:<port> (argv: port:host:port).
_FORWARDER = """
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
def handler(host, port):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    return handle
async def main():
    servers = []
    for spec in sys.argv[1:]:
        local, host, port = spec.split(":")
        serve = handler(host, int(port))
        servers.append(await asyncio.start_server(serve, "127.0.0.1", int(local)))
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""


class EmulatorError(Exception):
    """A request the emulator cannot serve (an image missing locally, a volume type).

    :param code: ARM error code to answer with.
    :param message: one line for the client.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- pure rules -----------------------------------------------------------------------


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


def image_candidates(ref: str, prefix: str, tag: str | None) -> list[str]:
    """Local image names to try for a reference, in order.

    ``myacr.azurecr.io/team/blast-worker:v2`` with prefix ``aci-research`` gives
    ``[ref, "aci-research/blast-worker:v2"]`` (or ``:<tag>`` when a tag is given).

    :param ref: the image as the group names it.
    :param prefix: the local image prefix (``IMAGE_PREFIX``).
    :param tag: replaces the reference's tag when set (``TAG`` of ``make build``).
    :return: candidates, without duplicates.
    """
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    base, sep, ref_tag = last.partition(":")
    mapped = f"{prefix}/{base}:{tag or (ref_tag if sep else 'latest')}"
    out = [ref] if not digest else []
    if mapped not in out:
        out.append(mapped)
    return out


def nano_cpus(cpu: float, host_cpus: int) -> int:
    """Docker's ``NanoCpus`` for an ACI cpu figure, capped at what the engine has.

    :param cpu: vCPUs (limit, else request).
    :param host_cpus: CPUs of the Docker engine.
    :return: billionths of a CPU.
    """
    return int(min(max(cpu, 0.01), float(host_cpus)) * 1e9)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def _docker_time(value: str | None) -> str | None:
    # Docker's RFC 3339 with nanoseconds; ACI shows seconds.
    if not value or value.startswith("0001-"):
        return None
    return value[:19] + "Z"


# --- state --------------------------------------------------------------------------


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

    key: tuple[str, str, str]
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
    now = _now_iso()
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


@dataclass
class EmulatorSettings:
    """How the emulator maps ACI onto Docker.

    :param image_prefix: local image prefix that references map to (``IMAGE_PREFIX``).
    :param image_tag: when set, every mapped reference uses this tag (``TAG``).
    :param sandbox_image: image of the per-group sandbox; default
        ``<image_prefix>/base:<image_tag or latest>``.
    :param restart_delay: seconds before the first restart of a stopped container.
    :param restart_delay_max: cap of the doubling restart backoff.
    """

    image_prefix: str = "aci-research"
    image_tag: str | None = None
    sandbox_image: str | None = None
    restart_delay: float = _DEFAULT_RESTART_DELAY
    restart_delay_max: float = _DEFAULT_RESTART_DELAY_MAX

    @property
    def sandbox(self) -> str:
        """The sandbox image to run."""
        return self.sandbox_image or f"{self.image_prefix}/base:{self.image_tag or 'latest'}"


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
        self.groups: dict[tuple[str, str, str], GroupRun] = {}
        self.forwards: dict[int, tuple[str, int]] = {}
        self._by_docker_id: dict[str, tuple[GroupRun, ContainerRun]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=self.instance_id)
        self._timers: set[threading.Timer] = set()
        self._closed = False
        info = self.client.info()
        self.host_cpus = int(info.get("NCPU") or os.cpu_count() or 1)
        self._disk = Path(tempfile.mkdtemp(prefix=f"{self.instance_id}-"))
        shm = Path("/dev/shm")
        self._tmpfs = Path(
            tempfile.mkdtemp(prefix=f"{self.instance_id}-", dir=shm if shm.is_dir() else None)
        )
        try:
            self.network = self.client.networks.create(
                self.instance_id,
                driver="bridge",
                labels={LABEL_INSTANCE: self.instance_id},
                check_duplicate=True,
            )
            self.network.reload()
            self._events = self.client.events(
                decode=True,
                filters={"label": f"{LABEL_INSTANCE}={self.instance_id}", "type": "container"},
            )
        except BaseException:
            remove_instance(self.client, self.instance_id)
            for path in (self._disk, self._tmpfs):
                shutil.rmtree(path, ignore_errors=True)
            raise
        config = (self.network.attrs.get("IPAM") or {}).get("Config") or [{}]
        self.gateway: str = str(config[0].get("Gateway") or "")
        self._watcher = threading.Thread(
            target=self._watch, name=f"{self.instance_id}-events", daemon=True
        )
        self._watcher.start()
        self._probe_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        self._prober = threading.Thread(
            target=self._probe_loop, name=f"{self.instance_id}-probes", daemon=True
        )
        self._prober.start()

    def forward(self, port: int, host: str, target_port: int) -> None:
        """Make ``127.0.0.1:<port>`` inside every group created from now on reach
        ``<host>:<target_port>``.

        The emulator forwards its own ARM port this way. A test can give groups the
        host's view of a service too: run Azurite on the emulator network (alias
        ``azurite``), publish it on ``127.0.0.1:<port>`` for the host, and call
        ``forward(port, "azurite", 10000)``; one connection string then works on the
        host and in every group.

        :param port: loopback port inside the groups.
        :param host: where it leads: a name or IP on the emulator network, or
            ``host.docker.internal``.
        :param target_port: the port there.
        """
        self.forwards[port] = (host, target_port)

    # --- checks done at PUT time ----------------------------------------------------

    def resolve_image(self, ref: str) -> str:
        """The local image a reference runs as.

        :param ref: the reference in the group body.
        :return: a local image name.
        :raises EmulatorError: ``InaccessibleImage`` when none of the candidates exists.
        """
        candidates = image_candidates(ref, self.settings.image_prefix, self.settings.image_tag)
        for candidate in candidates:
            try:
                self.client.images.get(candidate)
            except docker.errors.ImageNotFound:
                continue
            return candidate
        raise EmulatorError(
            "InaccessibleImage",
            f"The image '{ref}' is not available on the local Docker engine (the emulator "
            f"never pulls); tried {', '.join(candidates)}. Build it with `make build`.",
        )

    def check(self, body: Mapping[str, Any]) -> dict[str, str]:
        """Check what the emulator must support in a group body.

        :param body: the validated PUT body.
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
        try:
            self.client.images.get(self.settings.sandbox)
        except docker.errors.ImageNotFound:
            raise EmulatorError(
                "InaccessibleImage",
                f"The emulator's sandbox image '{self.settings.sandbox}' is not on the local "
                "Docker engine. Build it with `make build`.",
            ) from None
        images: dict[str, str] = {}
        for container in props.get("containers", []):
            cprops = container.get("properties", {})
            if (cprops.get("securityContext") or {}).get("privileged"):
                raise EmulatorError(
                    "UnsupportedProperty",
                    f"The local ACI emulator does not run privileged containers "
                    f"('{container['name']}').",
                )
            images[str(container["name"])] = self.resolve_image(str(cprops.get("image", "")))
        return images

    # --- lifecycle of a group -------------------------------------------------------

    def launch(
        self,
        key: tuple[str, str, str],
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
        run.launching = self._pool.submit(self._launch, run, dict(body), list(aliases), old, done)
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
                    self._remove_container(docker_id)
            if run.sandbox_id is None:
                self._start_sandbox(run, aliases)
            self._start_containers(run, body)
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

    def _labels(self, run: GroupRun, role: str, container: str = "") -> dict[str, str]:
        labels = {
            LABEL_INSTANCE: self.instance_id,
            LABEL_GROUP: "/".join(run.key),
            LABEL_ROLE: role,
        }
        if container:
            labels[LABEL_CONTAINER] = container
        return labels

    def _docker_name(self, run: GroupRun, suffix: str) -> str:
        rg = re.sub(r"[^a-zA-Z0-9_.-]", "-", run.key[1])
        return f"{self.instance_id}-{rg}-{run.name}-{suffix}"

    def _start_sandbox(self, run: GroupRun, aliases: list[str]) -> None:
        api = self.client.api
        if self.forwards:
            specs = [f"{port}:{host}:{to}" for port, (host, to) in sorted(self.forwards.items())]
            command = ["python3", "-c", _FORWARDER, *specs]
        else:
            command = ["sleep", "infinity"]
        host_config = api.create_host_config(
            network_mode=self.network.name,
            extra_hosts={"host.docker.internal": self.gateway},
            mem_limit=64 * 1024 * 1024,
            nano_cpus=int(0.1 * 1e9),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
        )
        networking = api.create_networking_config(
            {self.network.name: api.create_endpoint_config(aliases=aliases)}
        )
        created = api.create_container(
            self.settings.sandbox,
            command=command,
            name=self._docker_name(run, "sandbox"),
            labels=self._labels(run, "sandbox"),
            host_config=host_config,
            networking_config=networking,
        )
        sandbox_id = str(created["Id"])
        with self.lock:
            run.sandbox_id = sandbox_id
        api.start(sandbox_id)
        info = api.inspect_container(sandbox_id)
        ip = info["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        with self.lock:
            run.ip = str(ip)

    def _volume_binds(
        self, run: GroupRun, body: dict[str, Any], cprops: dict[str, Any], uid: int | None
    ) -> dict[str, dict[str, str]]:
        volumes = {str(v["name"]): v for v in body.get("properties", {}).get("volumes") or []}
        binds: dict[str, dict[str, str]] = {}
        for mount in cprops.get("volumeMounts") or []:
            volume = volumes.get(str(mount["name"]))
            if volume is None:
                raise EmulatorError(
                    "InvalidVolumeMount",
                    f"The volume mount '{mount['name']}' names no volume of the group.",
                )
            mode = "ro" if mount.get("readOnly") else "rw"
            if volume.get("secret") is not None:
                source = self._secret_dir(run, str(volume["name"]), volume["secret"], uid)
                mode = "ro"
            else:
                source = self._disk / run.name / "emptydir" / str(volume["name"])
                if not source.exists():
                    source.mkdir(parents=True)
                    source.chmod(0o777)  # like Kubernetes' emptyDir: every container writes
                    run.dirs.append(source)
            binds[str(source)] = {"bind": str(mount["mountPath"]), "mode": mode}
        return binds

    def _secret_dir(
        self, run: GroupRun, volume: str, files: Mapping[str, str], uid: int | None
    ) -> Path:
        # One copy per container user, so the files can be 0600 and still readable.
        path = self._tmpfs / run.name / f"{volume}-{uid if uid is not None else 'root'}"
        if path.exists():
            return path
        path.mkdir(parents=True, mode=0o700)
        for name, content in files.items():
            target = path / name
            target.write_bytes(base64.b64decode(content))
            target.chmod(0o600 if uid is not None else 0o644)
            if uid is not None:
                with contextlib.suppress(PermissionError):
                    os.chown(target, uid, -1)
        if uid is not None:
            with contextlib.suppress(PermissionError):
                os.chown(path, uid, -1)
        else:
            path.chmod(0o755)
        run.dirs.append(path)
        return path

    def _user(self, image: str, cprops: dict[str, Any]) -> tuple[str | None, int | None]:
        ctx = cprops.get("securityContext") or {}
        if ctx.get("runAsUser") is not None:
            uid = int(ctx["runAsUser"])
            group = ctx.get("runAsGroup")
            return (f"{uid}:{int(group)}" if group is not None else str(uid)), uid
        user = str(self.client.images.get(image).attrs.get("Config", {}).get("User") or "")
        head = user.split(":", 1)[0]
        if head.isdigit():
            return None, int(head)
        return None, (None if head else 0)

    def _start_containers(self, run: GroupRun, body: dict[str, Any]) -> None:
        api = self.client.api
        specs = {str(c["name"]): c.get("properties", {}) for c in body["properties"]["containers"]}
        created: list[ContainerRun] = []
        for name, crun in run.containers.items():
            cprops = specs[name]
            resources = cprops.get("resources", {})
            want = resources.get("limits") or resources.get("requests") or {}
            cpu = float(want.get("cpu") or resources.get("requests", {}).get("cpu") or 1)
            memory = float(
                want.get("memoryInGB") or resources.get("requests", {}).get("memoryInGB") or 1
            )
            user, uid = self._user(crun.image, cprops)
            ctx = cprops.get("securityContext") or {}
            caps = ctx.get("capabilities") or {}
            env = {
                str(e["name"]): str(e.get("value", e.get("secureValue", "")) or "")
                for e in cprops.get("environmentVariables") or []
            }
            host_config = api.create_host_config(
                network_mode=f"container:{run.sandbox_id}",
                nano_cpus=nano_cpus(cpu, self.host_cpus),
                mem_limit=int(memory * 1024**3),
                memswap_limit=int(memory * 1024**3),
                binds=self._volume_binds(run, body, cprops, uid),
                cap_add=caps.get("add") or None,
                cap_drop=caps.get("drop") or None,
                security_opt=["no-new-privileges"]
                if ctx.get("allowPrivilegeEscalation") is False
                else None,
            )
            command = cprops.get("command")
            result = api.create_container(
                crun.image,
                # ACI's command replaces the image's entrypoint, as in Kubernetes.
                entrypoint=list(command) if command else None,
                command=[] if command else None,
                environment=env,
                user=user or "",
                name=self._docker_name(run, name),
                labels=self._labels(run, "container", name),
                host_config=host_config,
            )
            with self.lock:
                crun.probes = probes_of(cprops)
                crun.docker_id = str(result["Id"])
                self._by_docker_id[crun.docker_id] = (run, crun)
                add_event(crun.events, "Pulled", f'Successfully pulled image "{crun.image}"')
                add_event(crun.events, "Created", "Created container")
            created.append(crun)
        for crun in created:
            self._start(run, crun, first=True)

    def _start(self, run: GroupRun, crun: ContainerRun, *, first: bool) -> None:
        with self.lock:
            if crun.docker_id is None or run.deleting or run.evicted or crun.stopping:
                return
        try:
            self.client.api.start(crun.docker_id)
            info = self.client.api.inspect_container(crun.docker_id)
        except docker.errors.DockerException as exc:
            with self.lock:
                crun.state, crun.detail = "Terminated", f"Error: {exc}"
                add_event(crun.events, "Failed", str(exc), "Warning")
            return
        with self.lock:
            if not first:
                crun.restart_count += 1
            state = info.get("State", {})
            if state.get("Running"):
                crun.state, crun.detail = "Running", ""
                crun.start_time = _docker_time(state.get("StartedAt")) or _now_iso()
                crun.finish_time = crun.exit_code = None
                for probe in crun.probes:
                    probe.arm()
            add_event(crun.events, "Started", "Started container")
        # A container that exited before the inspect is handled by its die event.

    def _probe_loop(self) -> None:
        while not self._closed:
            now = time.monotonic()
            with self.lock:
                due = [
                    (run, crun, probe)
                    for run in self.groups.values()
                    if not run.deleting
                    for crun in run.containers.values()
                    if crun.state == "Running" and crun.docker_id
                    for probe in crun.probes
                    if probe.due(now)
                ]
            for item in due:
                self._probe_pool.submit(self._probe, *item)
            time.sleep(0.25)

    def _probe(self, run: GroupRun, crun: ContainerRun, probe: Probe) -> None:
        if crun.docker_id is None:
            return
        failure = run_probe(self.client, probe, crun.docker_id, run.sandbox_id)
        kill = None
        with self.lock:
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
                self.client.api.kill(kill)

    def _watch(self) -> None:
        try:
            for event in self._events:
                if event.get("status") == "die" or event.get("Action") == "die":
                    self._on_die(str(event.get("id", "")))
        except Exception:  # the stream raises when close() ends it
            if not self._closed:
                raise

    def _on_die(self, docker_id: str) -> None:
        with self.lock:
            found = self._by_docker_id.get(docker_id)
        if found is None:
            return
        run, crun = found
        try:
            state = self.client.api.inspect_container(docker_id).get("State", {})
        except docker.errors.NotFound:
            return
        if state.get("Running"):
            return  # restarted meanwhile
        code = int(state.get("ExitCode") or 0)
        with self.lock:
            for probe in crun.probes:
                probe.next_due = None
            crun.state = "Terminated"
            crun.exit_code = code
            crun.finish_time = _docker_time(state.get("FinishedAt")) or _now_iso()
            crun.detail = "Completed" if code == 0 else "Error"
            if state.get("OOMKilled"):
                crun.detail = "OOMKilled"
            if crun.stopping or run.deleting or run.evicted or self._closed:
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
                self.settings.restart_delay * 2 ** min(crun.restart_count, 10),
                self.settings.restart_delay_max,
            )
            add_event(
                crun.events,
                "BackOff",
                "Back-off restarting failed container" if code else "Restarting container",
                "Warning" if code else "Normal",
            )
            self._later(delay, self._restart, run, crun, run.generation)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        def fire() -> None:
            with self.lock:
                self._timers.discard(timer)
            if not self._closed:
                self._pool.submit(fn, *args)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self.lock:
            self._timers.add(timer)
        timer.start()

    def _restart(self, run: GroupRun, crun: ContainerRun, generation: int) -> None:
        with self.lock:
            if (
                self.groups.get(run.key) is not run
                or run.generation != generation
                or run.deleting
                or run.evicted
                or crun.stopping
            ):
                return
        self._start(run, crun, first=False)

    # --- eviction -------------------------------------------------------------------

    def evict(self, key: tuple[str, str, str], restore_after: float | None = None) -> None:
        """Kill a group's containers the way a Spot eviction does.

        The containers end ``Terminated`` (exit 137, ``Killed``), each gets a
        ``Killing`` event, the group a :data:`GROUP_EVICTED_EVENT` event and the state
        ``Stopped``. ACI restarts an evicted group when capacity returns: pass
        ``restore_after`` to do that after so many seconds, or call :meth:`restore`.

        :param key: the provider's group key.
        :param restore_after: seconds until the group is started again; ``None``
            leaves it stopped.
        """
        with self.lock:
            run = self.groups[key]
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
                self.client.api.kill(docker_id)
        # The die events fill in exit codes; wait for them so callers see the result.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if all(c.state == "Terminated" for c in run.containers.values()):
                    break
            time.sleep(0.05)
        if restore_after is not None:
            self._later(restore_after, self._restore, run, run.generation)

    def restore(self, key: tuple[str, str, str]) -> None:
        """Start an evicted group again (capacity came back).

        :param key: the provider's group key.
        """
        with self.lock:
            run = self.groups[key]
        self._restore(run, run.generation)

    def _restore(self, run: GroupRun, generation: int) -> None:
        with self.lock:
            if self.groups.get(run.key) is not run or run.generation != generation:
                return
            if not run.evicted or run.deleting:
                return
            run.evicted = False
            add_event(run.events, "Started", "The container group was started again.")
            containers = list(run.containers.values())
        for crun in containers:
            self._start(run, crun, first=False)

    # --- removal --------------------------------------------------------------------

    def remove(self, key: tuple[str, str, str], done: Callable[[], None]) -> None:
        """Remove a group's containers, sandbox and volumes in the background.

        Call under the lock. ``done()`` runs without the lock once everything is gone.

        :param key: the provider's group key.
        :param done: completion callback.
        """
        run = self.groups.get(key)
        if run is None:
            self._pool.submit(done)
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

        self._pool.submit(work)

    def _remove_run(self, run: GroupRun) -> None:
        for crun in run.containers.values():
            if crun.docker_id:
                self._remove_container(crun.docker_id)
        if run.sandbox_id:
            self._remove_container(run.sandbox_id)
        for path in run.dirs:
            shutil.rmtree(path, ignore_errors=True)

    def _remove_container(self, docker_id: str) -> None:
        with self.lock:
            self._by_docker_id.pop(docker_id, None)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(docker_id, force=True)

    # --- reading ----------------------------------------------------------------------

    def logs(
        self, key: tuple[str, str, str], container: str, tail: int | None, timestamps: bool
    ) -> str:
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
        try:
            raw = self.client.api.logs(
                docker_id,
                stdout=True,
                stderr=True,
                timestamps=timestamps,
                tail="all" if tail is None else tail,
            )
        except docker.errors.NotFound:
            return ""
        return bytes(raw).decode("utf-8", "replace")

    def docker_ids(self, key: tuple[str, str, str]) -> dict[str, str]:
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
        self._closed = True
        with self.lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._probe_pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            self._events.close()
        remove_instance(self.client, self.instance_id)
        for path in (self._disk, self._tmpfs):
            shutil.rmtree(path, ignore_errors=True)
        self.groups.clear()


def remove_instance(client: docker.DockerClient, instance_id: str) -> int:
    """Remove the containers and network an emulator instance created.

    Also clears what a crashed emulator left behind (``python -m tests.fakearm
    --cleanup ID``).

    :param client: the Docker client.
    :param instance_id: the emulator's id (label value).
    :return: how many containers were removed.
    """
    selector = {"label": f"{LABEL_INSTANCE}={instance_id}"}
    containers = client.containers.list(all=True, filters=selector, sparse=True)
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(container.id, force=True)
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    return len(containers)
