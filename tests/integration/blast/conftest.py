"""Fixtures for the BLAST service integration tests.

Everything that knows *how* the stack runs lives here; the tests only use :class:`Stack`:

* ``stack.start_worker(**env)`` starts one worker and returns a :class:`WorkerProc`
  (``kill9()``, ``terminate()``, ``health()``, ``logs()``);
* ``stack.cli(...)`` runs ``blast-jobs``; ``stack.storage`` is a real storage client for
  assertions; ``stack.storage_down()`` / ``stack.storage_up()`` cause an outage and
  ``stack.storage_paused()`` freezes storage.

A worker's ``cache``, ``work`` and ``cwd`` directories and its log must be readable from the
host (bind mounts when workers are containers): tests inspect them.

Today workers are local ``blast-worker`` processes from the dev venv and storage is a private
Azurite started for the session. Pointing the same tests at the compose stack means
re-implementing :class:`AzuriteProcess` and :meth:`Stack.start_worker` (containers instead of
processes); the tests do not change.

Nothing is skipped: without Azurite or ncbi-blast+ these fixtures fail with what to install.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from blast_worker.config import load_storage_config
from blast_worker.storage import Storage

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
BIN = Path(sys.executable).parent
DEMO_DB = "demo"
BIG_DB = "big"
BIG_SEQS = 10_000


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class AzuriteProcess:
    """A private Azurite on free loopback ports with its data in ``location``.

    Args:
        location: Data directory (kept across stop/start, so an outage loses nothing).
    """

    def __init__(self, location: Path) -> None:
        exe = os.environ.get("AZURITE_BIN") or shutil.which("azurite")
        if not exe:
            pytest.fail(
                "azurite not found: install it with `npm install --cafile "
                "/etc/ssl/certs/ca-certificates.crt --prefix <dir> azurite@3.36.0` and put "
                "<dir>/node_modules/.bin on PATH (or set AZURITE_BIN)"
            )
        self.exe = exe
        self.location = location
        self.ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = location / "azurite.log"

    @property
    def connection_string(self) -> str:
        """Connection string for this instance."""
        b, q, t = self.ports["blob"], self.ports["queue"], self.ports["table"]
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{b}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{q}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{t}/{ACCOUNT};"
        )

    def start(self) -> None:
        """Start (or restart) on the same ports and data."""
        self.location.mkdir(parents=True, exist_ok=True)
        argv = [
            self.exe,
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--location",
            str(self.location / "data"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.ports["blob"]),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(self.ports["queue"]),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(self.ports["table"]),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"azurite exited: {self.log.read_text()[-2000:]}")
            for port in self.ports.values():
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) != 0:
                        return False
            return True

        wait_for(up, 30, "azurite to listen")

    def pause(self) -> None:
        """Freeze the emulator: connections stay open but nothing is answered."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop gracefully (Azurite saves its metadata on SIGTERM)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class WorkerProc:
    """One running worker.

    Attributes:
        name: Label (also its BLAST_WORKER_ID).
        proc: The process.
        log_path: Its stdout (JSON lines) and stderr.
        health_port: Its /healthz port.
        cache: Its BLAST_DB_CACHE.
        work: Its BLAST_WORK_DIR.
        cwd: Its working directory.
    """

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    health_port: int
    cache: Path
    work: Path
    cwd: Path

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def health(self) -> tuple[int, dict[str, Any]] | None:
        """(HTTP status, JSON) from /healthz, or None if it does not answer."""
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_state(self, state: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until /healthz answers 200 with ``state``."""

        def check() -> dict[str, Any] | None:
            if not self.alive:
                raise AssertionError(f"worker {self.name} died:\n{self.tail()}")
            h = self.health()
            return h[1] if h and h[0] == 200 and h[1].get("state") == state else None

        result: dict[str, Any] = wait_for(
            check, timeout, f"worker {self.name} to be {state}", interval=0.02
        )
        return result

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (non-JSON lines are returned as {"raw": ...})."""
        out: list[dict[str, Any]] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def tail(self, n: int = 40) -> str:
        """Last ``n`` log lines, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def kill9(self) -> None:
        """SIGKILL the worker (and any BLAST it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM the worker and return its exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@dataclass
class Stack:
    """The BLAST service under test: storage, workers and the CLI.

    Attributes:
        azurite: The storage emulator.
        root: Per-test scratch directory.
        env: Environment shared by workers and the CLI (per-test queue and table).
        workers: Workers started by this test (stopped at teardown).
    """

    azurite: AzuriteProcess
    root: Path
    env: dict[str, str]
    workers: list[WorkerProc] = field(default_factory=list)

    @property
    def storage(self) -> Storage:
        """A storage client with this test's resource names."""
        return Storage(load_storage_config(self.env))

    def start_worker(self, name: str | None = None, **overrides: str) -> WorkerProc:
        """Start a worker; keyword arguments override its environment.

        Args:
            name: Label; defaults to ``w<n>``.
            overrides: Environment variables, e.g. ``BLAST_DBS="demo"``.
        """
        name = name or f"w{len(self.workers) + 1}"
        base = self.root / name
        cwd, cache, work = base / "cwd", base / "cache", base / "work"
        for d in (cwd, base / "home"):
            d.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            **self.env,
            "HOME": str(base / "home"),
            "BLAST_DB_CACHE": str(cache),
            "BLAST_WORK_DIR": str(work),
            "BLAST_HEALTH_PORT": str(port),
            "BLAST_WORKER_ID": name,
            "BLAST_THREADS": "1",
            "BLAST_VISIBILITY_TIMEOUT": "10",
            "BLAST_POLL_INTERVAL": "0.2",
            "BLAST_STOP_TIMEOUT": "5",
            **overrides,
        }
        log_path = base / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [str(BIN / "blast-worker")],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProc(
            name,
            proc,
            log_path,
            port,
            Path(env["BLAST_DB_CACHE"]),
            Path(env["BLAST_WORK_DIR"]),
            cwd,
        )
        self.workers.append(worker)
        return worker

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``blast-jobs ARGS``.

        Args:
            args: Arguments.
            stdin: Text for standard input.
            check: Fail the test on a non-zero exit.
            timeout: Seconds.
        """
        proc = subprocess.run(
            [str(BIN / "blast-jobs"), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"blast-jobs {' '.join(args)} exited {proc.returncode}:\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def cli_json(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        """Run ``blast-jobs ARGS --output json`` and return the envelope."""
        proc = self.cli(*args, "--output", "json", stdin=stdin, check=check)
        return json.loads(proc.stdout)

    def submit(self, fasta: str, *args: str) -> list[str]:
        """Submit FASTA from stdin; return the job ids."""
        env = self.cli_json("submit", *args, stdin=fasta)
        return [j["job_id"] for j in env["data"]["jobs"]]

    def storage_down(self) -> None:
        """Stop storage (an outage)."""
        self.azurite.stop()

    def storage_up(self) -> None:
        """Bring storage back after :meth:`storage_down`."""
        self.azurite.start()

    @contextlib.contextmanager
    def storage_paused(self) -> Iterator[None]:
        """Freeze storage inside the block (requests hang rather than fail)."""
        self.azurite.pause()
        try:
            yield
        finally:
            self.azurite.resume()

    def stop_all(self) -> None:
        """Kill every worker this test started."""
        for w in self.workers:
            if w.alive:
                w.kill9()


def _require_blast() -> None:
    missing = [
        b for b in ("blastn", "blast_formatter", "blastdbcmd", "makeblastdb") if not shutil.which(b)
    ]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install ncbi-blast+ (apt-get install -y ncbi-blast+)"
        )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    """A private Azurite for the session."""
    _require_blast()
    az = AzuriteProcess(tmp_path_factory.mktemp("azurite"))
    az.start()
    try:
        yield az
    finally:
        az.stop()


@pytest.fixture(scope="session")
def session_env(azurite: AzuriteProcess) -> dict[str, str]:
    """Base environment with the session's containers, the demo and big databases uploaded."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "BLAST_DB_CONTAINER": "blastdb",
        "BLAST_RESULTS_CONTAINER": "blast-results",
        "BLAST_INPUTS_CONTAINER": "blast-inputs",
    }
    for args in (["--demo-db", DEMO_DB], ["--demo-db", BIG_DB, "--demo-seqs", str(BIG_SEQS)]):
        proc = subprocess.run(
            [str(BIN / "blast-jobs"), "init", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    return env


@pytest.fixture
def stack(session_env: dict[str, str], azurite: AzuriteProcess, tmp_path: Path) -> Iterator[Stack]:
    """A fresh queue, poison queue and table on the session's storage; workers on demand."""
    suffix = secrets.token_hex(4)
    env = {**session_env, "BLAST_QUEUE": f"q-{suffix}", "BLAST_JOB_TABLE": f"jobs{suffix}"}
    st = Stack(azurite, tmp_path, env)
    st.cli("init")
    try:
        yield st
    finally:
        st.stop_all()
        if azurite.proc is None or azurite.proc.poll() is not None:
            azurite.start()  # a failed outage test must not break the next test


@pytest.fixture(scope="session")
def demo_queries() -> str:
    """The demo data set's queries (20 planted, 5 decoys), as FASTA."""
    from blast_worker.demo import DemoSpec, generate

    return generate(DemoSpec(name=DEMO_DB)).queries


def start_bench_stack(root: Path, init_args: list[list[str]]) -> Stack:
    """Start a private Azurite and a :class:`Stack` outside pytest (for ``bench/``).

    Args:
        root: Scratch directory.
        init_args: Argument lists for ``blast-jobs init`` (e.g. ``["--demo-db", "demo"]``).

    Returns:
        The stack; call ``stack.stop_all()`` and ``stack.azurite.stop()`` when done.
    """
    _require_blast()
    az = AzuriteProcess(root / "azurite")
    az.start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": az.connection_string,
        "BLAST_QUEUE": "bench-jobs",
        "BLAST_JOB_TABLE": "benchjobs",
    }
    st = Stack(az, root, env)
    st.cli("init")
    for args in init_args:
        st.cli("init", *args)
    return st
