"""A private Azurite for tests, from the project's own image.

Debian's nodejs cannot run Azurite without an npm install, so tests run the
``aci-research/azurite`` image (``make build``) with its blob, queue and table services on
ephemeral loopback ports, with the well-known development account. Reuse it:
``with AzuriteContainer() as az: ...``.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from types import TracebackType
from typing import Self

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's published development key (not a secret)."""
IMAGE = "aci-research/azurite:latest"
SERVICES = {"blob": 10000, "queue": 10001, "table": 10002}
"""Each service's port inside the container."""


class AzuriteContainer:
    """Runs Azurite in a container published on 127.0.0.1 (random port).

    :param image: the Azurite image. Default: ``aci-research/azurite:latest``.
    :param timeout: seconds to wait for the blob port. Default: 60.
    """

    def __init__(self, image: str = IMAGE, timeout: float = 60.0) -> None:
        self.image = image
        self.timeout = timeout
        self.name = f"aci-research-test-azurite-{uuid.uuid4().hex[:8]}"
        self.port = 0
        self.ports: dict[str, int] = {}

    @property
    def blob_endpoint(self) -> str:
        """``http://127.0.0.1:<port>/devstoreaccount1``."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def endpoint(self, service: str) -> str:
        """``http://127.0.0.1:<port>/devstoreaccount1`` of ``blob``, ``queue`` or ``table``."""
        return f"http://127.0.0.1:{self.ports[service]}/{ACCOUNT}"

    def services_connection_string(self, sas: str | None = None) -> str:
        """A connection string of all three services, with the account key or a SAS.

        :param sas: an account SAS (``generate_account_sas``) to sign with instead of the key.
        """
        endpoints = ";".join(f"{s.capitalize()}Endpoint={self.endpoint(s)}" for s in SERVICES)
        credential = f"SharedAccessSignature={sas}" if sas else f"AccountKey={ACCOUNT_KEY}"
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};{credential};{endpoints};"

    @property
    def connection_string(self) -> str:
        """A blob-only connection string for this instance."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def start(self) -> Self:
        """Start the container and wait until the blob port answers.

        :raises RuntimeError: when the image is missing or Azurite does not come up.
        """
        run = subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--rm",
                "--name",
                self.name,
                *(arg for port in SERVICES.values() for arg in ("-p", f"127.0.0.1::{port}")),
                self.image,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(
                f"cannot start {self.image}: {run.stderr.strip()} (build it with `make build`)"
            )
        for service, inner in SERVICES.items():
            published = subprocess.run(
                ["docker", "port", self.name, f"{inner}/tcp"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[0]
            self.ports[service] = int(published.rsplit(":", 1)[1])
        self.port = self.ports["blob"]
        deadline = time.monotonic() + self.timeout
        waiting = set(self.ports.values())
        while time.monotonic() < deadline:
            for port in list(waiting):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                        if sock.recv(12).startswith(b"HTTP/"):
                            waiting.discard(port)
                except OSError:
                    pass
            if not waiting:
                return self
            time.sleep(0.2)
        logs = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        self.stop()
        raise RuntimeError(f"Azurite did not answer within {self.timeout}s: {logs.stderr[-500:]}")

    def stop(self) -> None:
        """Remove the container (and its data)."""
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
