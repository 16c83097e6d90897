"""A private Azurite container from the project's image, for the run tests and benches.

:func:`azurite` starts one with a fresh account and key, publishes its three ports on
loopback and waits until Azurite itself answers. :mod:`testbed.run_stack` puts it on the
emulator's network as well; the scale tests and bench use it alone.
"""

from __future__ import annotations

import base64
import contextlib
import io
import secrets
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker

from testbed.engine import IMAGE_PREFIX, TAG, free_port, wait_for

PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
"""Azurite's port of each service inside its container."""

FAST_LOOKUPS = Path(__file__).with_name("azurite_fast_lookups.js")
"""The script that :func:`azurite` preloads with ``fast_lookups``."""
_PRELOAD = "/tmp/azurite_fast_lookups.js"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite.

    Attributes:
        container: Its Docker container.
        account: The storage account name.
        key: The account key.
        ports: Loopback port of each service (``blob``, ``queue``, ``table``).
    """

    container: Any
    account: str
    key: str
    ports: Mapping[str, int]

    def connection_string(self, hosts: Mapping[str, str] | None = None) -> str:
        """Connection string with each service at ``hosts[service]`` (``host:port``);
        default the published loopback ports."""
        where = hosts or {s: f"127.0.0.1:{p}" for s, p in self.ports.items()}
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            + "".join(f"{s.capitalize()}Endpoint=http://{where[s]}/{self.account};" for s in PORTS)
        )


@contextlib.contextmanager
def azurite(
    name: str,
    client: Any | None = None,
    in_memory: bool = False,
    silent: bool = False,
    fast_lookups: bool = False,
) -> Iterator[Azurite]:
    """Start Azurite (in its container's file system) as ``<name>-<random>``; remove it after.

    Args:
        name: Container name prefix (say whose it is: tests share the engine).
        client: Docker SDK client; default from the environment.
        in_memory: Keep everything in memory (``--inMemoryPersistence``): Azurite otherwise
            saves each store's whole database every 5 s (LokiJS autosave, synchronous in its
            one Node process), a cost that grows with every row, message and blob, which
            Azure does not have.
        silent: No access log (``--silent``): a line a request, which Docker's log driver
            takes in too, is a cost of tens of thousands of requests.
        fast_lookups: Preload :data:`FAST_LOOKUPS` into its Node process: three of its
            costs that grow with what it holds (every point read or write of a job row
            scanned every job row; every message operation swept every message; its garbage
            collection of deleted blobs' and messages' data sorted every extent again for
            each one, blocking every request for up to 90 s), which Azure's service does not
            have. Its answers stay the same.
    """
    client = client or docker.from_env()
    account = "testrun" + secrets.token_hex(3)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    for attempt in range(5):
        # Fixed ports (they must stay as published when run_stack connects it to the emulator
        # network); another process may bind one before the container does: pick new ones.
        ports = {svc: free_port() for svc in PORTS}
        container_name = f"{name}-{secrets.token_hex(4)}"
        try:
            container = client.containers.create(
                f"{IMAGE_PREFIX}/azurite:{TAG}",
                [
                    "azurite",
                    "--blobHost",
                    "0.0.0.0",
                    "--queueHost",
                    "0.0.0.0",
                    "--tableHost",
                    "0.0.0.0",
                    *(["--inMemoryPersistence"] if in_memory else ["--location", "/data"]),
                    *(["--silent"] if silent else []),
                    "--skipApiVersionCheck",
                    "--disableProductStyleUrl",
                    "--disableTelemetry",
                ],
                name=container_name,
                environment={
                    "AZURITE_ACCOUNTS": f"{account}:{key}",
                    **({"NODE_OPTIONS": f"--require {_PRELOAD}"} if fast_lookups else {}),
                },
                ports={f"{PORTS[s]}/tcp": ("127.0.0.1", p) for s, p in ports.items()},
            )
            if fast_lookups:  # copied in, not mounted: the engine may be on another host
                container.put_archive(str(PurePosixPath(_PRELOAD).parent), _tar(_PRELOAD))
            container.start()
            break
        except docker.errors.APIError as exc:
            # Created but not started (a port taken, or another failure): never left behind.
            with contextlib.suppress(docker.errors.APIError):
                client.containers.get(container_name).remove(force=True, v=True)
            if "address already in use" not in str(exc) or attempt == 4:
                raise
    try:
        wait_for(lambda: all(_answers(p) for p in ports.values()), 180, "Azurite", interval=0.2)
        yield Azurite(container, account, key, ports)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True, v=True)


def _tar(path: str) -> bytes:
    """A tar of :data:`FAST_LOOKUPS` named ``path``'s file name, readable by anyone."""
    data = FAST_LOOKUPS.read_bytes()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(PurePosixPath(path).name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _answers(port: int) -> bool:
    """True once Azurite itself answers HTTP (a published port accepts before it listens)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
            return "Azurite" in answer.headers.get("Server", "")
    except urllib.error.HTTPError as exc:
        return "Azurite" in (exc.headers.get("Server") or "")
    except (urllib.error.URLError, OSError):
        return False
