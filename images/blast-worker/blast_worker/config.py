"""Configuration of the BLAST worker, read from the environment.

This is the one place where the worker's variables are documented. The storage variables
(``AZURE_STORAGE_*``, ``BLAST_QUEUE``, the table and container names) are shared with every
client and documented in :mod:`blast_client.config`.

Worker behaviour:

``BLAST_DBS`` (default empty)
    Comma-separated databases provisioned at start. Others are fetched on first use.
``BLAST_DB_CACHE`` (default ``/var/cache/blastdb``)
    Local cache directory (a volume shared by workers). Must be writable.
``BLAST_WORK_DIR`` (default ``$TMPDIR/blast-work``)
    Scratch directory for per-job files; each job gets ``<work dir>/<job id>/``.
``BLAST_THREADS`` (default: CPUs available to the container)
    Passed to BLAST as ``-num_threads``. The default honours the cgroup CPU quota and the
    scheduler affinity mask.
``BLAST_JOB_TIMEOUT`` (default ``3600`` seconds)
    A BLAST run that takes longer is killed and the job fails.
``BLAST_MAX_DEQUEUE`` (default ``5``)
    A message delivered more often than this moves to the poison queue.
``BLAST_VISIBILITY_TIMEOUT`` (default ``60`` seconds)
    How long a received message stays hidden; extended every third of it while a job runs.
``BLAST_STOP_TIMEOUT`` (default ``30`` seconds)
    After SIGTERM, how long the current job may keep running before it is released.
``BLAST_POLL_INTERVAL`` (default ``2`` seconds)
    Pause between polls of an empty queue.
``BLAST_HEALTH_PORT`` (default ``8080``)
    ``GET http://127.0.0.1:<port>/healthz`` (loopback only). ``0`` disables the server.
``BLAST_HEALTH_STALE_AFTER`` (default ``120`` seconds)
    The health endpoint answers 503 when storage has not answered for this long.
``BLAST_DOWNLOAD_CONCURRENCY`` (default ``8``)
    Parallel ranged requests while downloading a database.
``BLAST_DOWNLOAD_CHUNK_MIB`` (default ``8``)
    Size of each ranged request, in MiB (fractions down to 1/64 allowed).
``BLAST_WORKER_ID`` (default ``<hostname>-<pid>``)
    Name recorded in the job log.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from blast_client.config import (
    ConfigError,
    StorageConfig,
    env_float,
    env_int,
    env_str,
    load_storage_config,
)
from blast_client.names import InvalidName, check_db_name


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker needs, validated.

    Attributes:
        storage: Storage account and resource names.
        dbs: Databases provisioned at start.
        db_cache: Local database cache directory.
        work_dir: Scratch directory for job files.
        threads: ``-num_threads`` for BLAST.
        job_timeout: Seconds a BLAST run may take.
        max_dequeue: Deliveries before a message is poisoned.
        visibility_timeout: Seconds a received message stays hidden.
        stop_timeout: Seconds the current job may run on after SIGTERM.
        poll_interval: Seconds between polls of an empty queue.
        health_port: Loopback port of the health endpoint (0 disables it).
        health_stale_after: Seconds without storage contact before reporting unhealthy.
        download_concurrency: Parallel ranged requests per database download.
        download_chunk: Bytes per ranged request.
        worker_id: Name recorded in the job log.
    """

    storage: StorageConfig
    dbs: tuple[str, ...] = ()
    db_cache: Path = Path("/var/cache/blastdb")
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "blast-work")
    threads: int = 1
    job_timeout: float = 3600.0
    max_dequeue: int = 5
    visibility_timeout: int = 60
    stop_timeout: float = 30.0
    poll_interval: float = 2.0
    health_port: int = 8080
    health_stale_after: float = 120.0
    download_concurrency: int = 8
    download_chunk: int = 8 * 1024 * 1024
    worker_id: str = "worker"


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Return the CPUs this process may use: the affinity mask capped by the cgroup quota.

    Args:
        cgroup_root: Root of the cgroup filesystem (a parameter so tests can point it elsewhere).

    Returns:
        At least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    """CPU quota in CPUs from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_*``; None if unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def load_worker_config(env: Mapping[str, str] | None = None) -> WorkerConfig:
    """Read and validate the worker settings (see the module docstring for each variable).

    Args:
        env: Environment mapping; defaults to ``os.environ``.

    Returns:
        The validated worker configuration.

    Raises:
        ConfigError: naming the missing or invalid variable and what to set.
    """
    env = os.environ if env is None else env
    storage = load_storage_config(env)
    dbs: list[str] = []
    for raw in env_str(env, "BLAST_DBS", "").split(","):
        name = raw.strip()
        if not name:
            continue
        try:
            check_db_name(name)
        except InvalidName as exc:
            raise ConfigError(f"BLAST_DBS: {exc}") from None
        dbs.append(name)
    cache = Path(env_str(env, "BLAST_DB_CACHE", "/var/cache/blastdb"))
    if not cache.is_absolute():
        raise ConfigError(f"BLAST_DB_CACHE={cache} must be an absolute path")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"BLAST_DB_CACHE={cache} cannot be created ({exc.strerror}); mount a writable volume "
            "there or point BLAST_DB_CACHE at a writable directory"
        ) from None
    if not os.access(cache, os.W_OK | os.X_OK):
        raise ConfigError(
            f"BLAST_DB_CACHE={cache} is not writable by uid {os.getuid()}; fix the volume's "
            "ownership or point BLAST_DB_CACHE elsewhere"
        )
    work_raw = env.get("BLAST_WORK_DIR", "").strip()
    work = Path(work_raw) if work_raw else Path(tempfile.gettempdir()) / "blast-work"
    if not work.is_absolute():
        raise ConfigError(f"BLAST_WORK_DIR={work} must be an absolute path")
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"BLAST_WORK_DIR={work} cannot be created ({exc.strerror})") from None
    cpus = available_cpus()
    visibility = env_int(env, "BLAST_VISIBILITY_TIMEOUT", 60, 6, 7 * 24 * 3600)
    return WorkerConfig(
        storage=storage,
        dbs=tuple(dbs),
        db_cache=cache,
        work_dir=work,
        threads=env_int(env, "BLAST_THREADS", cpus, 1, 1024),
        job_timeout=env_float(env, "BLAST_JOB_TIMEOUT", 3600.0, 1.0, 7 * 24 * 3600.0),
        max_dequeue=env_int(env, "BLAST_MAX_DEQUEUE", 5, 1, 1000),
        visibility_timeout=visibility,
        stop_timeout=env_float(env, "BLAST_STOP_TIMEOUT", 30.0, 0.0, 3600.0),
        poll_interval=env_float(env, "BLAST_POLL_INTERVAL", 2.0, 0.05, 600.0),
        health_port=env_int(env, "BLAST_HEALTH_PORT", 8080, 0, 65535),
        health_stale_after=env_float(env, "BLAST_HEALTH_STALE_AFTER", 120.0, 1.0, 86400.0),
        download_concurrency=env_int(env, "BLAST_DOWNLOAD_CONCURRENCY", 8, 1, 64),
        download_chunk=int(env_float(env, "BLAST_DOWNLOAD_CHUNK_MIB", 8.0, 1 / 64, 256.0) * 2**20),
        worker_id=env_str(env, "BLAST_WORKER_ID", f"{socket.gethostname()}-{os.getpid()}"),
    )
