"""Networking of emulated groups: the emulator's bridge network, one sandbox per group that
holds the group's network namespace, and loopback forwards inside each sandbox.

* **Network namespace.** Each group gets a *sandbox* container (the base image running
  ``sleep``, or the forwarder below, under tini) on the emulator's own bridge network.
  The group's containers join its namespace (``network_mode: container:<sandbox>``), so
  they share localhost as on ACI. The sandbox's IP is the group's ``ipAddress.ip``; the
  group name, its DNS label and its ACI FQDN are DNS aliases on that network.
* **Reaching the host.** Groups get ``host.docker.internal`` pointing at the network's
  gateway, and each sandbox forwards ``127.0.0.1:<port>`` to the targets registered with
  :meth:`Networking.forward` (the ARM server's own port, Azurite, ...).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker

from .labels import LABEL_INSTANCE
from .state import GroupRun

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
    print("forwarding", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""
FORWARDING = b"forwarding"
"""The forwarder's first line: every port listens."""
FORWARDER_READY_S = 30.0
"""Longest wait for it (about 0.06 s here; 0.5 s when the sandbox had a tenth of a CPU)."""


class Networking:
    """The emulator's network and the sandboxes on it.

    :param client: the Docker client.
    :param instance_id: the emulator's id: the network's name and label.
    """

    def __init__(self, client: docker.DockerClient, instance_id: str) -> None:
        self.client = client
        self.network: Any = client.networks.create(
            instance_id,
            driver="bridge",
            labels={LABEL_INSTANCE: instance_id},
            check_duplicate=True,
        )
        self.network.reload()
        config = (self.network.attrs.get("IPAM") or {}).get("Config") or [{}]
        self.gateway: str = str(config[0].get("Gateway") or "")
        self.forwards: dict[int, tuple[str, int]] = {}

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

    def start_sandbox(
        self,
        run: GroupRun,
        aliases: list[str],
        *,
        image: str,
        name: str,
        labels: dict[str, str],
        lock: threading.RLock,
    ) -> None:
        """Create and start a group's sandbox; set ``run.sandbox_id`` and ``run.ip``.

        :param run: the group.
        :param aliases: its DNS names on the network.
        :param image: the sandbox image.
        :param name: the container's Docker name.
        :param labels: the container's labels.
        :param lock: the runtime's lock, held while ``run`` is updated.
        """
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
            nano_cpus=int(0.5 * 1e9),  # a tenth made the group wait 0.5 s for the forwarder
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
        )
        networking = api.create_networking_config(
            {self.network.name: api.create_endpoint_config(aliases=aliases)}
        )
        created = api.create_container(
            image,
            command=command,
            name=name,
            labels=labels,
            host_config=host_config,
            networking_config=networking,
        )
        sandbox_id = str(created["Id"])
        with lock:
            run.sandbox_id = sandbox_id
        api.start(sandbox_id)
        if self.forwards:
            # On ACI a group's network is up before its containers start: a container whose
            # first request met a port not yet listening waited out its client's retries.
            deadline = time.monotonic() + FORWARDER_READY_S
            while FORWARDING not in api.logs(sandbox_id, stdout=True, stderr=False):
                if (
                    time.monotonic() > deadline
                    or not api.inspect_container(sandbox_id)["State"]["Running"]
                ):
                    break  # the containers start all the same, and find out
                time.sleep(0.02)
        info = api.inspect_container(sandbox_id)
        ip = info["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        with lock:
            run.ip = str(ip)
