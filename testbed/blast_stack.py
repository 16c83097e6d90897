"""The BLAST service on the compose stack, for the integration tests and the benchmarks.

Everything that knows *how* the stack runs lives here; the tests (through the fixtures of
``tests/integration/blast/conftest.py``) and ``bench/`` only use :class:`Stack`:

* ``stack.start_worker(**env)`` starts one ``blast-worker`` container and returns a
  :class:`WorkerContainer` (``kill9()``, ``terminate()``, ``health()``, ``logs()``,
  ``fs_changes()``);
* ``stack.cli(...)`` runs ``blast-jobs`` from the dev venv; ``stack.storage`` is a real
  storage client for assertions; ``stack.storage_down()`` / ``stack.storage_up()`` cause an
  outage and ``stack.storage_paused()`` freezes storage;
* ``stack.run_tool(argv)`` runs an ncbi-blast+ program inside the blast-worker image (the
  same binaries the workers use), with the test's temporary directories at the same paths.

Storage is the compose stack's own ``azurite`` service, started from
``compose/docker-compose.yml`` under a project of our own (``acitest<pid>blast``) with fresh
random secrets, plus ``docker-compose.test.yml`` here, which publishes Azurite's three ports on
127.0.0.1 for the test process. The stack's ``init`` service uploads the demo database as in
production; the larger ``big`` database is added by a one-off container of the worker image.
Workers are containers of ``aci-research/blast-worker`` on the project's network, like the
compose ``blast-worker`` service; their cache, work directory and current directory are host
directories under the test's ``tmp_path`` (bind mounts), so tests inspect them directly.

Nothing on the host needs Azurite or BLAST: only Docker, Compose (v2 or v1.29) and the images
``make build`` makes. Without them :class:`StackError` says what to do (the fixtures turn it
into a failure, never a skip).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from blast_client import BlastClient
from blast_client.config import load_storage_config
from blast_client.storage import Storage

from deployer.localstack import (
    ensure_env_file,
    read_env_file,
    read_secret_files,
    secrets_dir_for,
)
from testbed.engine import (
    COMPOSE_FILE,
    REPO,
    STACK_TIMEOUT,
    StackError,
    compose_command,
    docker_engine,
    free_port,
    freeze,
    image,
    project_containers,
    wait_for,
)

OVERRIDE_FILE = REPO / "tests" / "integration" / "blast" / "docker-compose.test.yml"
WORKER_IMAGE = image("blast-worker")
AZURITE_IMAGE = os.environ.setdefault("AZURITE_IMAGE", image("azurite"))
"""The stack's Azurite: compose reads AZURITE_IMAGE, so tests of a TAG run that tag's too."""
BIN = Path(sys.executable).parent
DEMO_DB = "demo"
BIG_DB = "big"
BIG_SEQS = 10_000

AZURITE_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
"""Azurite's ports inside the compose network (the compose file's connection string)."""
CACHE_IN_CONTAINER = "/var/cache/blastdb"  # the image's volume and BLAST_DB_CACHE default
WORK_IN_CONTAINER = "/tmp/blast-work"  # BLAST_WORK_DIR's default ($TMPDIR/blast-work)
CWD_IN_CONTAINER = "/srv/blast-cwd"
TEST_LABEL = "org.aci-research.blast-test"
"""Label on every container these fixtures start (value: the compose project), for cleanup."""
INIT_TIMEOUT = 300.0
STOP_GRACE = 20


def require_images(client: Any) -> None:
    """Raise :class:`StackError` unless the worker and Azurite images exist locally.

    Args:
        client: Docker SDK client.
    """
    missing = []
    for ref in (WORKER_IMAGE, AZURITE_IMAGE):
        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
    if missing:
        raise StackError(f"image {', '.join(missing)} not found: build it with `make build`")


def _answers_http(port: int) -> bool:
    """True when something answers HTTP on 127.0.0.1:``port`` (any status)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ComposeAzurite:
    """The compose stack's ``azurite`` (and its one-shot ``init``) under a private project.

    Args:
        client: Docker SDK client.
        root: Directory for the project's env file (fresh random secrets).
        project: Compose project name, e.g. ``acitest<pid>blast``.
    """

    def __init__(self, client: Any, root: Path, project: str) -> None:
        self.client = client
        self.project = project
        self.env_file = root / ".env"
        ensure_env_file(self.env_file)
        values = read_env_file(self.env_file)
        self.account = values["STORAGE_ACCOUNT"]
        self.account_key = read_secret_files(secrets_dir_for(self.env_file))["azure_storage_key"]
        # Fixed for the session: the outage test restarts the container, and ephemeral
        # host ports would change under the test process's connection string.
        self.ports = {service: free_port() for service in AZURITE_PORTS}
        self.compose_cmd = compose_command()
        self._network: str | None = None

    def _connection_string(self, endpoints: dict[str, str]) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={self.account_key};"
            f"BlobEndpoint=http://{endpoints['blob']}/{self.account};"
            f"QueueEndpoint=http://{endpoints['queue']}/{self.account};"
            f"TableEndpoint=http://{endpoints['table']}/{self.account};"
        )

    @property
    def connection_string(self) -> str:
        """Connection string for the host (the published loopback ports)."""
        return self._connection_string({k: f"127.0.0.1:{p}" for k, p in self.ports.items()})

    @property
    def network_connection_string(self) -> str:
        """Connection string inside the compose network (``azurite:1000x``), as in compose."""
        return self._connection_string({k: f"azurite:{p}" for k, p in AZURITE_PORTS.items()})

    def to_network(self, connection_string: str) -> str:
        """Rewrite a host connection string's endpoints to their names on the network.

        Args:
            connection_string: A string derived from :attr:`connection_string`.
        """
        for service, port in self.ports.items():
            connection_string = connection_string.replace(
                f"127.0.0.1:{port}", f"azurite:{AZURITE_PORTS[service]}"
            )
        return connection_string

    def compose(self, *args: str, timeout: float = STACK_TIMEOUT) -> str:
        """Run a compose command on this project; return its output.

        Args:
            args: The compose subcommand and its arguments.
            timeout: Seconds before giving up.
        """
        argv = [
            *self.compose_cmd,
            "--project-name",
            self.project,
            "--env-file",
            str(self.env_file),
            "-f",
            str(COMPOSE_FILE),
            "-f",
            str(OVERRIDE_FILE),
            *args,
        ]
        env = {
            **os.environ,
            **{f"BLAST_TEST_{k.upper()}_PORT": str(p) for k, p in self.ports.items()},
        }
        try:
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from None
        if proc.returncode != 0:
            raise StackError(
                f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout + proc.stderr

    def container(self, service: str = "azurite") -> Any:
        """The project's (only) container of ``service``.

        Args:
            service: Compose service name.
        """
        found = project_containers(self.client, self.project, service)
        if not found:
            raise StackError(f"no {service} container in compose project {self.project}")
        return found[0]

    @property
    def network(self) -> str:
        """Name of the project's network (``<project>_default``)."""
        if self._network is None:
            networks = self.container().attrs["NetworkSettings"]["Networks"]
            self._network = next(iter(networks))
        return self._network

    def start(self) -> None:
        """Start azurite and init (``up``), wait for init to exit 0 and the ports to answer."""
        self.compose("up", "--detach", "init")

        def init_exit() -> int | None:
            found = project_containers(self.client, self.project, "init")
            if not found or found[0].status != "exited":
                return None
            return int(found[0].attrs["State"]["ExitCode"]) + 1  # truthy when 0

        code = wait_for(init_exit, INIT_TIMEOUT, "the init service", interval=0.5) - 1
        if code != 0:
            logs = self.container("init").logs().decode(errors="replace")
            raise StackError(f"the stack's init service exited {code}:\n{logs[-2000:]}")
        self.wait_answering()

    def wait_answering(self, timeout: float = 60) -> None:
        """Wait until all three published ports answer HTTP.

        Args:
            timeout: Seconds.
        """
        wait_for(
            lambda: all(_answers_http(p) for p in self.ports.values()),
            timeout,
            "azurite to answer on its published ports",
            interval=0.2,
        )

    def stop(self) -> None:
        """``docker stop`` the azurite container (its volume keeps the data)."""
        self.container().stop(timeout=STOP_GRACE)

    def up(self) -> None:
        """``docker start`` it again after :meth:`stop` and wait until it answers."""
        self.container().start()
        self.wait_answering()

    def pause(self) -> None:
        """Freeze the emulator (``docker pause``): connections stay open, nothing answers."""
        freeze(self.container())

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self.container().unpause()

    def ensure_up(self) -> None:
        """Bring azurite back whatever a failed test left it in (paused or stopped)."""
        container = self.container()
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            container.start()
        self.wait_answering()

    def run_in_network(self, argv: list[str], timeout: float = INIT_TIMEOUT) -> str:
        """Run a one-off container of the worker image on the network; return its logs.

        Args:
            argv: Command, e.g. ``["blast-jobs", "init", "--demo-db", "big"]``.
            timeout: Seconds before it is killed and an error raised.
        """
        container = self.client.containers.run(
            WORKER_IMAGE,
            argv,
            detach=True,
            environment={"AZURE_STORAGE_CONNECTION_STRING": self.network_connection_string},
            network=self.network,
            labels={TEST_LABEL: self.project},
        )
        try:
            try:
                code = int(container.wait(timeout=timeout)["StatusCode"])
            except Exception as exc:
                raise StackError(f"{' '.join(argv)} did not finish within {timeout:g} s") from exc
            logs = str(container.logs().decode(errors="replace"))
            if code != 0:
                raise StackError(f"{' '.join(argv)} exited {code}:\n{logs[-2000:]}")
            return logs
        finally:
            container.remove(force=True, v=True)

    def close(self) -> None:
        """Remove every container of the tests, then the project with its volumes."""
        for container in self.client.containers.list(
            all=True, filters={"label": f"{TEST_LABEL}={self.project}"}, ignore_removed=True
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=120)


@dataclass(frozen=True)
class BlastCost:
    """What one single-threaded BLAST run costs on this machine, measured (never assumed):
    ``fixed_s`` for the run plus ``per_record_s`` for each query record.

    Tests that need a job of at least some length size it from this, so the job is long
    enough on a fast machine and no longer than needed on a slow one.

    Attributes:
        fixed_s: Seconds of a run whatever its query (start, database load).
        per_record_s: Seconds per query record.
    """

    fixed_s: float
    per_record_s: float

    def records_for(self, seconds: float) -> int:
        """Query records for a run of at least ``seconds`` at the measured rate (at least 1).

        Args:
            seconds: Wanted run time.
        """
        return max(1, math.ceil((seconds - self.fixed_s) / self.per_record_s))

    def seconds(self, records: int) -> float:
        """Expected seconds of a run of ``records`` query records.

        Args:
            records: Query records.
        """
        return self.fixed_s + self.per_record_s * records


class BlastTools:
    """One idle container of the worker image for running ncbi-blast+ programs directly.

    ``root`` is mounted at the same path, so host paths under it work unchanged as program
    arguments. Programs run as the host user, so what they write is the host user's.

    Args:
        client: Docker SDK client.
        root: Host directory holding every path the programs read or write.
        project: Compose project these fixtures belong to (label for cleanup).
        cpus: CPUs the programs may use (None: the machine's), as a group's request limits
            its containers.
    """

    def __init__(self, client: Any, root: Path, project: str, cpus: float | None = None) -> None:
        self.root = root
        self.container = client.containers.run(
            WORKER_IMAGE,
            ["sleep", "infinity"],
            detach=True,
            name=f"{project}-tools",
            user=f"{os.getuid()}:{os.getgid()}",
            network_mode="none",
            volumes={str(root): {"bind": str(root), "mode": "rw"}},
            labels={TEST_LABEL: project},
            **({"nano_cpus": int(cpus * 1e9)} if cpus is not None else {}),
        )

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` in the container; return its exit code, stdout and stderr.

        Args:
            argv: Program and arguments, e.g. ``["blastn", "-db", ...]``.
            check: Fail with its stderr on a non-zero exit.
        """
        result = self.container.exec_run(argv, demux=True)
        out, err = result.output
        proc = subprocess.CompletedProcess(argv, int(result.exit_code), out or b"", err or b"")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode} in {WORKER_IMAGE}:\n"
                f"{proc.stderr.decode(errors='replace')[-2000:]}"
            )
        return proc

    def timed(self, argv: list[str]) -> float:
        """Seconds ``argv`` takes, measured inside the container (no ``docker exec`` cost).

        Args:
            argv: Program and arguments; its stdout is discarded.
        """
        return self.timed_cpu(argv)[0]

    def timed_cpu(self, argv: list[str]) -> tuple[float, float]:
        """Wall and CPU seconds (user + system, every thread) of ``argv``, measured inside
        the container.

        Args:
            argv: Program and arguments; its stdout is discarded.
        """
        timer = (
            "import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "wall = time.perf_counter() - t; r = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(wall, r.ru_utime + r.ru_stime)"
        )
        wall, cpu = self.run(["python", "-c", timer, *argv]).stdout.split()
        return float(wall), float(cpu)

    def cost(self, argv: list[str], records: list[str], at_least: float = 1.0) -> BlastCost:
        """Measure what a search costs: time ``argv`` on 1 record, then on more until the
        extra records take ``at_least`` seconds, and fit fixed + per-record seconds.

        Each point is the faster of two runs: on a shared machine a burst of load slows one
        run, and sizing for "at least so long" wants the fastest the machine can go.

        Args:
            argv: A single-threaded BLAST command without ``-query`` (e.g. ``blastn -db
                <path> -task dc-megablast -num_threads 1``).
            records: Query records (FASTA text each) to draw from, cycled if needed.
            at_least: Seconds the extra records must take, so the rate is not noise.
        """
        query = self.root / f"cost-{os.getpid()}-{secrets.token_hex(3)}.fa"

        def timed(n: int) -> float:
            query.write_text("".join(records[i % len(records)] for i in range(n)))
            return min(self.timed([*argv, "-query", str(query)]) for _ in range(2))

        try:
            one = timed(1)
            n = 4
            while True:
                more = timed(n)
                # Enough records that the difference is signal: else grow towards at_least.
                if more - one >= at_least or n >= 100_000:
                    break
                rate = max(more - one, 0.01 * (n - 1)) / (n - 1)
                n = min(100_000, max(2 * n, math.ceil(1.5 * at_least / rate)))
        finally:
            query.unlink(missing_ok=True)
        per_record = (more - one) / (n - 1)
        return BlastCost(max(one - per_record, 0.0), per_record)

    def close(self) -> None:
        """Hand files the uid-1000 workers wrote back to the host user, then remove it."""
        if os.getuid() != 0:
            # Lets pytest's cleanup of old temporary directories delete them.
            self.container.exec_run(
                ["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(self.root)], user="0"
            )
        self.container.remove(force=True, v=True)


@dataclass
class WorkerContainer:
    """One running ``blast-worker`` container.

    Attributes:
        name: Label, also its BLAST_WORKER_ID.
        container: The docker SDK container.
        cache: Host directory mounted as its BLAST_DB_CACHE.
        work: Host directory mounted as its BLAST_WORK_DIR.
        cwd: Host directory mounted as its working directory.
    """

    name: str
    container: Any
    cache: Path
    work: Path
    cwd: Path

    @property
    def alive(self) -> bool:
        """True while the container runs."""
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return bool(self.container.status == "running")

    def health(self) -> tuple[int, dict[str, Any]] | None:
        """(HTTP status, JSON) of /healthz through the image's healthcheck, or None.

        The healthcheck exits 0 on 200 and 1 otherwise, printing the worker's JSON (503) or
        ``{"status": "unreachable"}`` when nothing answers, which is returned as None.
        """
        try:
            result = self.container.exec_run(["/usr/local/bin/healthcheck"])
        except docker.errors.APIError:
            return None  # the container is not running
        try:
            body = json.loads(result.output)
        except ValueError:
            return None
        if result.exit_code == 0:
            return 200, body
        return None if body.get("status") == "unreachable" else (503, body)

    def wait_state(self, state: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until /healthz answers 200 with ``state``.

        Args:
            state: ``idle``, ``busy``, ``provisioning``, ...
            timeout: Seconds.
        """

        def check() -> dict[str, Any] | None:
            if not self.alive:
                raise AssertionError(f"worker {self.name} died:\n{self.tail()}")
            h = self.health()
            return h[1] if h and h[0] == 200 and h[1].get("state") == state else None

        result: dict[str, Any] = wait_for(
            check, timeout, f"worker {self.name} to be {state}", interval=0.02
        )
        return result

    def text(self) -> str:
        """Everything it wrote to stdout and stderr so far."""
        return str(self.container.logs(stdout=True, stderr=True).decode(errors="replace"))

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (non-JSON lines are returned as {"raw": ...})."""
        out: list[dict[str, Any]] = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def tail(self, n: int = 40) -> str:
        """Last ``n`` log lines, for failure messages.

        Args:
            n: Number of lines.
        """
        return "\n".join(self.text().splitlines()[-n:])

    def kill9(self) -> None:
        """``docker kill --signal KILL``: the worker and any BLAST it started die at once."""
        with contextlib.suppress(docker.errors.APIError):  # already exited
            self.container.kill(signal="SIGKILL")
        self.container.wait(timeout=30)

    def freeze(self) -> None:
        """``docker pause``: every process of the worker stops where it is."""
        freeze(self.container)

    def thaw(self) -> None:
        """Undo :meth:`freeze`."""
        self.container.unpause()

    def terminate(self, timeout: float = 60) -> int:
        """``docker stop``: SIGTERM, SIGKILL after ``timeout`` seconds; return the exit code.

        Args:
            timeout: Seconds between SIGTERM and SIGKILL.
        """
        self.container.stop(timeout=int(timeout))
        return self.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        """Wait until the container exits; return its exit code.

        Args:
            timeout: Seconds.
        """
        return int(self.container.wait(timeout=timeout)["StatusCode"])

    def fs_changes(self) -> list[str]:
        """``docker diff`` entries outside its cache, work and current directories and /tmp.

        The mount points themselves (and their parents, which gain them) are not changes.
        """
        allowed = (CACHE_IN_CONTAINER, WORK_IN_CONTAINER, CWD_IN_CONTAINER, "/tmp")
        outside = []
        for change in self.container.diff() or []:
            path, kind = change["Path"], change["Kind"]
            inside = any(path == a or path.startswith(a + "/") for a in allowed)
            parent_of_mount = kind == 0 and any(a.startswith(path + "/") for a in allowed)
            if not (inside or parent_of_mount):
                outside.append(f"{'CAD'[kind]} {path}")
        return outside

    def remove(self) -> None:
        """Kill and remove the container."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


@dataclass
class Stack:
    """The BLAST service under test: storage, workers, the CLI and the BLAST programs.

    Attributes:
        azurite: The compose stack's storage emulator.
        tools: Runs ncbi-blast+ programs in the worker image.
        root: Per-test scratch directory (under the tools container's mount).
        env: Environment of the CLI (per-test queue and table, host connection string).
        workers: Workers started by this test (removed at teardown).
        suffix: Per-test random token (resource and container names).
        worker_cpus: CPU limit of each worker container (1, as in compose; None: no limit).
    """

    azurite: ComposeAzurite
    tools: BlastTools
    root: Path
    env: dict[str, str]
    workers: list[WorkerContainer] = field(default_factory=list)
    suffix: str = field(default_factory=lambda: secrets.token_hex(4))
    worker_cpus: float | None = 1.0

    @property
    def storage(self) -> Storage:
        """A storage client with this test's resource names."""
        return Storage(load_storage_config(self.env))

    @property
    def client(self) -> BlastClient:
        """The client API on this test's queue, table and containers."""
        return BlastClient(config=load_storage_config(self.env))

    def _host_dir(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # the worker runs as uid 1000
        return path

    def start_worker(self, name: str | None = None, **overrides: str) -> WorkerContainer:
        """Start a worker container; keyword arguments override its environment.

        It gets the compose service's limits: :attr:`worker_cpus` CPUs and 1 GB.

        Args:
            name: Label; defaults to ``w<n>``.
            overrides: Environment variables, e.g. ``BLAST_DBS="demo"``. ``BLAST_DB_CACHE``
                and ``BLAST_WORK_DIR`` name *host* directories, mounted at the image's
                defaults; a host ``AZURE_STORAGE_CONNECTION_STRING`` is rewritten to reach
                azurite by its name on the network.
        """
        name = name or f"w{len(self.workers) + 1}"
        base = self.root / name
        cache = self._host_dir(Path(overrides.pop("BLAST_DB_CACHE", base / "cache")))
        work = self._host_dir(Path(overrides.pop("BLAST_WORK_DIR", base / "work")))
        cwd = self._host_dir(base / "cwd")
        if "AZURE_STORAGE_CONNECTION_STRING" in overrides:
            overrides["AZURE_STORAGE_CONNECTION_STRING"] = self.azurite.to_network(
                overrides["AZURE_STORAGE_CONNECTION_STRING"]
            )
        env = {
            **{k: v for k, v in self.env.items() if k.startswith("BLAST_")},
            "AZURE_STORAGE_CONNECTION_STRING": self.azurite.network_connection_string,
            "BLAST_WORKER_ID": name,
            "BLAST_THREADS": "1",
            "BLAST_VISIBILITY_TIMEOUT": "10",
            "BLAST_POLL_INTERVAL": "0.2",
            "BLAST_STOP_TIMEOUT": "5",
            **overrides,
        }
        container = self.azurite.client.containers.run(
            WORKER_IMAGE,
            detach=True,
            name=f"{self.azurite.project}-{self.suffix}-{name}",
            environment=env,
            network=self.azurite.network,
            working_dir=CWD_IN_CONTAINER,
            volumes={
                str(cache): {"bind": CACHE_IN_CONTAINER, "mode": "rw"},
                str(work): {"bind": WORK_IN_CONTAINER, "mode": "rw"},
                str(cwd): {"bind": CWD_IN_CONTAINER, "mode": "rw"},
            },
            labels={TEST_LABEL: self.azurite.project},
            nano_cpus=int(self.worker_cpus * 1e9) if self.worker_cpus else None,
            mem_limit="1g",
        )
        worker = WorkerContainer(name, container, cache, work, cwd)
        self.workers.append(worker)
        return worker

    def run_tool(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run an ncbi-blast+ program (``blastn``, ``blastdbcmd``, ...) in the worker image.

        Args:
            argv: Program and arguments; paths under the test's tmp_path work as they are.
            check: Fail with its stderr on a non-zero exit.
        """
        return self.tools.run(argv, check=check)

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``blast-jobs ARGS`` from the dev venv.

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
        """Run ``blast-jobs ARGS --output json`` and return the envelope.

        Args:
            args: Arguments.
            stdin: Text for standard input.
            check: Fail the test on a non-zero exit.
        """
        proc = self.cli(*args, "--output", "json", stdin=stdin, check=check)
        return json.loads(proc.stdout)

    def submit(self, fasta: str, *args: str) -> list[str]:
        """Submit FASTA from stdin; return the job ids.

        Args:
            fasta: Query text.
            args: Further ``blast-jobs submit`` arguments.
        """
        env = self.cli_json("submit", *args, stdin=fasta)
        return [j["job_id"] for j in env["data"]["jobs"]]

    def storage_down(self) -> None:
        """Stop storage (an outage): ``docker stop`` of the azurite container."""
        self.azurite.stop()

    def storage_up(self) -> None:
        """Bring storage back after :meth:`storage_down`."""
        self.azurite.up()

    @contextlib.contextmanager
    def storage_paused(self) -> Iterator[None]:
        """Freeze storage inside the block (requests hang rather than fail)."""
        self.azurite.pause()
        try:
            yield
        finally:
            self.azurite.resume()

    def stop_all(self) -> None:
        """Kill and remove every worker this test started."""
        for w in self.workers:
            w.remove()


@contextlib.contextmanager
def bench_stack(root: Path, init_args: list[list[str]]) -> Iterator[Stack]:
    """The same stack outside pytest (for ``bench/``), removed when the block ends.

    Args:
        root: Scratch directory (workers' directories and the tools mount).
        init_args: Argument lists for ``blast-jobs init`` run in a container on the network
            (e.g. ``["--demo-db", "bench", "--demo-seqs", "40000"]``).

    Raises:
        StackError: Docker, Compose or the images are missing, or the stack did not start;
            the message says what to do.
    """
    client = docker_engine()
    require_images(client)
    az = ComposeAzurite(client, root, f"acibench{os.getpid()}blast")
    tools: BlastTools | None = None
    st: Stack | None = None
    try:
        az.start()
        for args in init_args:
            az.run_in_network(["blast-jobs", "init", *args])
        tools = BlastTools(client, root, az.project)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AZURE_STORAGE_CONNECTION_STRING": az.connection_string,
            "BLAST_QUEUE": "bench-jobs",
            "BLAST_JOB_TABLE": "benchjobs",
        }
        st = Stack(az, tools, root, env)
        st.cli("init")
        yield st
    finally:
        if st is not None:
            st.stop_all()
        if tools is not None:
            tools.close()
        az.close()
