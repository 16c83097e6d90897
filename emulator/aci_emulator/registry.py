"""A real registry for the emulator's strict mode: Debian's ``docker-registry`` (the
distribution registry) on 127.0.0.1 with htpasswd users, standing in for ACR's data plane.

htpasswd users need bcrypt hashes; they come from the system's libcrypt (libxcrypt, which
Debian's ``libcrypt1`` ships), so no Python package is needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

REGISTRY_EXE = "docker-registry"


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash of ``password`` (``$2y$``, what htpasswd files hold), from libcrypt.

    :param password: the password.
    :raises RuntimeError: when libcrypt is missing or has no bcrypt.
    """
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2y$", 5, None, 0)  # cost 5: a test registry, quick logins
    hashed: bytes | None = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2"):
        raise RuntimeError(f"{name} cannot make bcrypt hashes")
    return hashed.decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRegistry:
    """Debian's ``docker-registry`` on 127.0.0.1, its storage in a temporary folder.

    :param users: user name -> password (htpasswd); the registry refuses anyone else.
    :param timeout: seconds to wait for it to answer.
    """

    def __init__(self, users: dict[str, str], timeout: float = 30.0) -> None:
        self.users = dict(users)
        self.timeout = timeout
        self.port = 0
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        """``127.0.0.1:<port>``, the address ``docker pull``/``push`` and the v2 API use."""
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        """The folder of its filesystem storage (``docker/registry/v2/...``), once started;
        read on every request, so files put there are served at once."""
        if self._work is None:
            raise RuntimeError("the registry is not started")
        return Path(self._work.name) / "data"

    def start(self) -> Self:
        """Write the configuration and the htpasswd file, start it, wait until it answers.

        :raises RuntimeError: it is not installed, or did not start (with its log).
        """
        exe = shutil.which(REGISTRY_EXE)
        if exe is None:
            raise RuntimeError(f"{REGISTRY_EXE} not found: `apt-get install docker-registry`")
        self._work = tempfile.TemporaryDirectory(prefix="aci-emulator-registry-")
        work = Path(self._work.name)
        (work / "htpasswd").write_text(
            "".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in self.users.items())
        )
        self.port = _free_port()
        (work / "config.yml").write_text(
            textwrap.dedent(
                f"""\
                version: 0.1
                log: {{level: warn}}
                storage:
                  filesystem: {{rootdirectory: {self.storage}}}
                  delete: {{enabled: true}}
                http: {{addr: "{self.server}"}}
                auth:
                  htpasswd: {{realm: aci-emulator, path: {work / "htpasswd"}}}
                """
            )
        )
        log = (work / "registry.log").open("wb")
        self._proc = subprocess.Popen(
            [exe, "serve", str(work / "config.yml")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + self.timeout
        while not self._answers():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{REGISTRY_EXE} did not start: {self.log()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.server}/v2/", timeout=1).close()
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # up, and asking for credentials
        except OSError:
            return False
        return True

    def log(self) -> str:
        """The registry's log so far."""
        if self._work is None:
            return ""
        path = Path(self._work.name) / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop it and delete its storage."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["LocalRegistry", "bcrypt_hash"]
