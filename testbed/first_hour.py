"""The first hour's failures: a machine with no Azure sign-in at all, and what a failing
command must print.

:class:`ImdsTrap` stands where ``DefaultAzureCredential`` looks for a managed identity: a
loopback port (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) that counts connections and answers
each as the metadata service of a machine with no managed identity does (400, "Identity not
found"), so the managed identity credential gives up at once and provably stayed on loopback.
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


IDENTITY_NOT_FOUND = b'{"error":"invalid_request","error_description":"Identity not found"}'
"""What the instance-metadata service answers (400) on a machine with no managed identity."""
_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
    % (len(IDENTITY_NOT_FOUND), IDENTITY_NOT_FOUND)
)


class ImdsTrap:
    """A loopback listener that answers every connection "Identity not found", counting them.

    An answer, not a dropped connection: azure-identity retries a dropped or refused one with
    backoff (about 5 s each sign-in), a 400 never, which is also what a real machine without
    an identity answers.
    """

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
            with conn:
                self._answer(conn)

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        """Read the request's head, then answer "Identity not found" and close."""
        conn.settimeout(5)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            conn.sendall(_ANSWER)
        except OSError:  # the client gave up first: nothing to answer
            return

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
