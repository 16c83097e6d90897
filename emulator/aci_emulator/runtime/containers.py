"""Container lifecycle: create a group's containers in its sandbox's namespace, with ACI's
resources, user, capabilities, environment and volumes, and start them.

* **Resources.** ``limits`` (else ``requests``) become ``nano_cpus`` (capped at the
  engine's CPU count, which Docker requires) and a memory limit without swap.
* **Command.** ACI's ``command`` replaces the image's entrypoint, as in Kubernetes.
* **User.** ``securityContext.runAsUser`` (and ``runAsGroup``), else the image's ``USER``.
* **Health.** An image's ``HEALTHCHECK`` is off: ACI runs only the group's probes.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from .core import RuntimeCore
from .images import ImageResolver
from .labels import docker_name, labels
from .probes import probes_of
from .state import ContainerRun, GroupRun, add_event, docker_time, now_iso
from .volumes import VolumeStore


def nano_cpus(cpu: float, host_cpus: int) -> int:
    """Docker's ``NanoCpus`` for an ACI cpu figure, capped at what the engine has.

    :param cpu: vCPUs (limit, else request).
    :param host_cpus: CPUs of the Docker engine.
    :return: billionths of a CPU.
    """
    return int(min(max(cpu, 0.01), float(host_cpus)) * 1e9)


def container_user(
    images: ImageResolver, image: str, cprops: dict[str, Any]
) -> tuple[str | None, int | None]:
    """The user a container runs as.

    :param images: resolves the image's own ``USER``.
    :param image: the container's local image.
    :param cprops: the container's properties (``securityContext``).
    :return: the Docker ``user`` to set (``None``: the image's), and the numeric uid when
        known (``None`` for a named user; 0 for root).
    """
    ctx = cprops.get("securityContext") or {}
    if ctx.get("runAsUser") is not None:
        uid = int(ctx["runAsUser"])
        group = ctx.get("runAsGroup")
        return (f"{uid}:{int(group)}" if group is not None else str(uid)), uid
    head = images.user(image).split(":", 1)[0]
    if head.isdigit():
        return None, int(head)
    return None, (None if head else 0)


def create_containers(
    core: RuntimeCore,
    images: ImageResolver,
    volumes: VolumeStore,
    run: GroupRun,
    body: dict[str, Any],
) -> None:
    """Create a group's containers in its sandbox's namespace, then start them.

    :param core: the runtime's shared state.
    :param images: resolves each image's user.
    :param volumes: the group's volume directories.
    :param run: the group, its sandbox started.
    :param body: the group body.
    """
    api = core.client.api
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
        user, uid = container_user(images, crun.image, cprops)
        ctx = cprops.get("securityContext") or {}
        caps = ctx.get("capabilities") or {}
        env = {
            str(e["name"]): str(e.get("value", e.get("secureValue", "")) or "")
            for e in cprops.get("environmentVariables") or []
        }
        host_config = api.create_host_config(
            network_mode=f"container:{run.sandbox_id}",
            nano_cpus=nano_cpus(cpu, core.host_cpus),
            mem_limit=int(memory * 1024**3),
            memswap_limit=int(memory * 1024**3),
            binds=volumes.binds(run, body, cprops, uid),
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
            name=docker_name(core.instance_id, run, name),
            labels=labels(core.instance_id, run, "container", name),
            host_config=host_config,
            # ACI runs a group's own probes (probe_loop), never an image's HEALTHCHECK, which
            # here started a Python every 10 s in each worker beside its search.
            healthcheck={"test": ["NONE"]},
        )
        with core.lock:
            crun.probes = probes_of(cprops)
            crun.docker_id = str(result["Id"])
            core.by_docker_id[crun.docker_id] = (run, crun)
            add_event(crun.events, "Pulled", f'Successfully pulled image "{crun.image}"')
            add_event(crun.events, "Created", "Created container")
        created.append(crun)
    for crun in created:
        start_container(core, run, crun, first=True)


def start_container(core: RuntimeCore, run: GroupRun, crun: ContainerRun, *, first: bool) -> None:
    """Start (or restart) one container and record it running.

    :param core: the runtime's shared state.
    :param run: its group.
    :param crun: the container.
    :param first: its first start (a restart counts in ``restartCount``).
    """
    with core.lock:
        if crun.docker_id is None or run.deleting or run.evicted or crun.stopping:
            return
    try:
        core.client.api.start(crun.docker_id)
        info = core.client.api.inspect_container(crun.docker_id)
    except docker.errors.DockerException as exc:
        with core.lock:
            crun.state, crun.detail = "Terminated", f"Error: {exc}"
            add_event(crun.events, "Failed", str(exc), "Warning")
        return
    with core.lock:
        if not first:
            crun.restart_count += 1
        state = info.get("State", {})
        if state.get("Running"):
            crun.state, crun.detail = "Running", ""
            crun.start_time = docker_time(state.get("StartedAt")) or now_iso()
            crun.finish_time = crun.exit_code = None
            for probe in crun.probes:
                probe.arm()
        add_event(crun.events, "Started", "Started container")
    # A container that exited before the inspect is handled by its die event.
