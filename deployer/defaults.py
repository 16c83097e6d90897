"""Every default of the deployer, and the one settings chain.

ACI limits, the default quota, ports, default sizes, the price file and the
environment variable names live here and nowhere else.

Every setting resolves through :func:`resolve`: the explicit argument (a CLI
flag), then the workload file, then the environment, then a
:class:`~deployer.errors.MissingSettingError` saying what to configure.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Final

from deployer.errors import MissingSettingError

# --- ACI limits for one Linux container group (quantities in tenths: 10 = 1.0) ---
TENTHS: Final = 10
"""ACI accepts cpu and memoryInGB in steps of 0.1; sizing counts in tenths."""
MAX_GROUP_CPU: Final = 40
MAX_GROUP_MEMORY: Final = 160
MAX_QUOTA_GROUP_CPU: Final = 310
MAX_QUOTA_GROUP_MEMORY: Final = 2400
"""The largest group ACI allows after a quota request (31 vCPU, 240 GB): the bound of
``deployment.max_group``."""
MIN_GROUP_CPU: Final = 10
MIN_GROUP_MEMORY: Final = 10
MAX_CONTAINERS_PER_GROUP: Final = 60
MAX_PORTS_PER_IP: Final = 5
DEFAULT_QUOTA_CORES: Final = 100
"""Regional ACI core quota assumed by ``plan`` (``up`` asks Azure for the real one)."""

# --- ipyparallel defaults ---
DEFAULT_ENGINE_CPU: Final = 1.0
DEFAULT_ENGINE_MEMORY_GB: Final = 2.0
CONTROLLER_CPU: Final = 10
CONTROLLER_MEMORY: Final = 15
NOTEBOOK_CPU: Final = 10
NOTEBOOK_MEMORY: Final = 20
WEB_CPU: Final = 10
WEB_MEMORY: Final = 10
"""The BLAST web page's group: the ACI minimum (1 vCPU, 1 GB) is plenty for one uvicorn."""

# --- BLAST defaults ---
BLAST_CACHE_FACTOR: Final = 1.1
"""Worker memory is bytes-to-cache times this factor plus the process overhead."""
BLAST_PROCESS_OVERHEAD_GB: Final = 0.5
DEFAULT_BLAST_THREADS: Final = 2
MAX_BLAST_THREADS: Final = 4
"""Most BLAST threads (= vCPU) per worker: a standard ACI group's 4 vCPU."""
MIN_CACHE_BYTES_PER_THREAD: Final = 1_000_000
"""A run gives a worker more threads only while each thread still has this much of the
database (bytes-to-cache) to scan: BLAST's threads share out the database, so a smaller one
leaves them idle, and more single-thread workers do better."""
DEFAULT_BLAST_QUEUE: Final = "blast-jobs"

# --- BLAST autoscaling (deployer/autoscale.py) ---
DEFAULT_TARGET_BACKLOG_PER_WORKER: Final = 4
DEFAULT_SCALE_IN_AFTER: Final = "120s"
SCALE_OUT_INTERVAL_S: Final = 30.0
"""At most one create burst per this many seconds (ACI allows about 300 creates an hour)."""
SCALE_TOLERANCE: Final = 0.1
MAX_GROUPS_PER_BURST: Final = 50
"""Most groups one burst creates: ACI takes about 300 creates an hour per region."""
"""Scale out only when the backlog exceeds the workers' target by more than this fraction."""
SPOT_RETRY_BASE_S: Final = 60.0
"""First wait before Spot is tried again where it was refused; doubles per refusal."""
SPOT_RETRY_MAX_S: Final = 900.0
GB: Final = 1_000_000_000
"""Bytes per GB. Decimal GB over-reserves slightly compared with GiB, which is safe."""

# --- the janitor (deployer run, deployment.ttl, idle_shutdown) ---
JANITOR_INTERVAL_S: Final = 10.0
"""Seconds between janitor passes, a run's and a deployment's alike (the groups'
``JANITOR_INTERVAL``; ``DEPLOYER_JANITOR_INTERVAL`` sets it for the groups the deployer
creates)."""

FINISH_CHECK_S: Final = 0.5
"""Seconds between looks at a run's job rows, between passes, while its last batch may
finish before the next pass (:func:`deployer.run.decide.may_end_within`): the janitor ends a
run, and ``deployer run`` returns, within about this of its last batch, not a whole pass
interval later."""

FINE_LOOK_S: Final = 0.1
"""Seconds between those looks around the time the run's last round should end, from its
batches' pace (:func:`deployer.run.decide.next_look`), and the first wait of ``deployer run``
for a final run's groups to go (:func:`deployer.run.decide.ending_look`)."""

# --- Azure ---
PUBLIC_ARM_ENDPOINT: Final = "https://management.azure.com"
DEFAULT_IMAGE_TAG: Final = "latest"
DEFAULT_DEPLOYMENT_RETRIES: Final = 10
"""Retries per ARM request on throttling (429) and 5xx, honouring Retry-After."""
DEFAULT_POLL_INTERVAL_S: Final = 5.0
DEFAULT_READY_TIMEOUT_S: Final = 900.0
DEFAULT_PARALLELISM: Final = 16
DEFAULT_BUILD_PARALLEL: Final = 4
"""Image builds at once (`deployer build --parallel`)."""
TOOL_TAG: Final = "aci-research-deployer"

PRICE_FILE: Final = "aci-prices.json"
FIXED_PRICE_FILE: Final = "fixed-prices.json"
"""What ``deployer init``'s registry and storage cost while nothing runs."""


def price_file(name: str = PRICE_FILE) -> Path:
    """Return the path of a bundled price file (``deployer/data/aci-prices.json`` by default)."""
    return Path(str(resources.files("deployer") / "data" / name))


class Env:
    """Names of the environment variables the deployer reads."""

    SUBSCRIPTION: Final = "AZURE_SUBSCRIPTION_ID"
    RESOURCE_GROUP: Final = "DEPLOYER_RESOURCE_GROUP"
    LOCATION: Final = "DEPLOYER_LOCATION"
    REGISTRY: Final = "DEPLOYER_REGISTRY"
    IMAGE_TAG: Final = "DEPLOYER_IMAGE_TAG"
    ARM_ENDPOINT: Final = "DEPLOYER_ARM_ENDPOINT"
    #: ``host:port`` answering for the workload's registry (the local emulator's registry).
    REGISTRY_ENDPOINT: Final = "DEPLOYER_REGISTRY_ENDPOINT"
    ACCESS_TOKEN: Final = "DEPLOYER_ACCESS_TOKEN"
    STATE_DIR: Final = "DEPLOYER_STATE_DIR"
    POLL_INTERVAL: Final = "DEPLOYER_POLL_INTERVAL"
    READY_TIMEOUT: Final = "DEPLOYER_READY_TIMEOUT"
    REGISTRY_USERNAME: Final = "DEPLOYER_REGISTRY_USERNAME"
    REGISTRY_PASSWORD: Final = "DEPLOYER_REGISTRY_PASSWORD"
    STORAGE_CONNECTION_STRING: Final = "AZURE_STORAGE_CONNECTION_STRING"
    JANITOR_INTERVAL: Final = "DEPLOYER_JANITOR_INTERVAL"


def resolve(
    name: str,
    explicit: str | None,
    from_file: str | None,
    env_var: str | None,
    *,
    flag: str | None = None,
    discover: str | None = None,
    error: type[MissingSettingError] = MissingSettingError,
) -> str:
    """Resolve one setting: explicit argument, then workload file, then environment.

    Args:
        name (str): The setting's dotted name in the workload file, e.g.
            ``deployment.subscription``.
        explicit (str | None): The value of the CLI flag or API argument.
        from_file (str | None): The value in the workload file.
        env_var (str | None): The environment variable to read, if any.
        flag (str | None): The CLI flag that sets it, for the error message.
            Default: None.
        discover (str | None): A command that lists valid values, for the error
            message, e.g. ``az account list -o table``. Default: None.
        error (type[MissingSettingError]): The error to raise when nothing is set.
            Default: :class:`MissingSettingError`.

    Returns:
        str: The first non-empty value in the chain.

    Raises:
        MissingSettingError: ``error``, when no link of the chain has a value.
    """
    for value in (explicit, from_file, os.environ.get(env_var) if env_var else None):
        if value:
            return value
    ways = []
    if flag:
        ways.append(f"pass {flag}")
    ways.append(f"set {name} in the workload file")
    if env_var:
        ways.append(f"export {env_var}")
    hint = ", or ".join(ways)
    if discover:
        hint += f" (list valid values with `{discover}`)"
    raise error(f"{name} is not set", hint=hint, code="MissingSetting")


def env_float(env_var: str, default: float) -> float:
    """Read a float from the environment.

    Args:
        env_var (str): The variable name.
        default (float): The value when the variable is unset or empty.

    Returns:
        float: The parsed value.

    Raises:
        MissingSettingError: When the variable is set but is not a number.
    """
    raw = os.environ.get(env_var)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise MissingSettingError(
            f"{env_var} must be a number of seconds (got {raw!r})", code="InvalidSetting"
        ) from None


def state_dir() -> Path:
    """Return the directory for per-deployment secrets (created 0700).

    ``$DEPLOYER_STATE_DIR``, else ``$XDG_STATE_HOME/aci-research``, else
    ``~/.local/state/aci-research``.
    """
    base = os.environ.get(Env.STATE_DIR)
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(xdg) / "aci-research"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
