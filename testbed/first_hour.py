"""The first hour's failures: a machine with no Azure sign-in at all, and what a failing
command must print.

:class:`ImdsTrap` stands where ``DefaultAzureCredential`` looks for a managed identity: a
loopback port (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) that counts connections and closes
them, so the instance-metadata probe fails at once and provably stayed on loopback.
:func:`signed_out_env` is an environment where every credential ``DefaultAzureCredential``
tries genuinely fails; :func:`error_and_hint` checks a failure's stderr: no traceback, one
error line, and a hint line after it.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

CREDENTIAL_PREFIXES = ("AZURE_", "DEPLOYER_", "MSI_", "IDENTITY_", "IMDS_", "AZD_")
"""Variables that could hand a credential, a subscription or an endpoint to a subprocess."""


class ImdsTrap:
    """A loopback listener that accepts and closes every connection, counting them."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``AZURE_POD_IDENTITY_AUTHORITY_HOST``."""
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)  # closing a socket does not wake a blocked accept()
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            conn.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def signed_out_env(root: Path, imds: str, **extra: str) -> dict[str, str]:
    """An environment with no Azure sign-in: no credential variable, an empty Azure CLI and
    azd configuration, a home without token caches, and the managed identity probe sent to
    ``imds`` (a loopback URL) instead of 169.254.169.254.

    Args:
        root (Path): A private directory for the configuration folders and home.
        imds (str): The loopback URL the managed identity probe goes to.
        extra (str): Variables to set on top (the fake ARM's endpoint, a subscription...).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_PREFIXES)}
    home = root / "home"
    for folder in (home, root / "azure-cli", root / "azd"):
        folder.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HOME": str(home),
            "AZURE_CONFIG_DIR": str(root / "azure-cli"),  # `az`, if installed, is signed out
            "AZD_CONFIG_DIR": str(root / "azd"),
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": imds,
            **extra,
        }
    )
    return env


def error_and_hint(stderr: str) -> tuple[str, str]:
    """The error line and the hint line of a failed command's stderr.

    Progress lines may come before them; nothing may come after, and no traceback anywhere.

    Args:
        stderr (str): The command's stderr.

    Raises:
        AssertionError: With the stderr, when it is not one error line and its hint.
    """
    assert "Traceback" not in stderr, stderr
    lines = stderr.rstrip("\n").splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    at = errors[0]
    assert at == len(lines) - 2 and lines[-1].startswith("  hint: "), stderr
    return lines[at], lines[-1]
