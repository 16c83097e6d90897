"""Storage settings shared by every BLAST client and the worker, read from the environment.

This is the one place where the storage variables are documented; the worker's own
variables are in ``blast_worker.config``.

Storage (one of the first two is required):

``AZURE_STORAGE_CONNECTION_STRING`` or ``AZURE_STORAGE_CONNECTION_STRING_FILE``
    A storage connection string (Azurite, or an account with key auth), or the path of a
    file holding it (a compose secret or an ACI secret volume). Result links then
    carry a read-only SAS with an expiry. Takes precedence over ``AZURE_STORAGE_ACCOUNT``.
``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_KEY_FILE``
    An account key (or the path of a file holding it): the connection string is assembled
    here, inside the container, from it and ``AZURE_STORAGE_ENDPOINTS`` (or, without
    endpoints, from ``AZURE_STORAGE_ACCOUNT`` and the endpoint suffix over https).
``AZURE_STORAGE_ENDPOINTS``
    A connection string without credentials, e.g.
    ``DefaultEndpointsProtocol=http;AccountName=acilocal;BlobEndpoint=http://azurite:10000/acilocal;...``.
``AZURE_STORAGE_ACCOUNT``
    The storage account name; the worker signs in with ``DefaultAzureCredential`` (managed
    identity in ACI). Result links are then plain URLs that need Azure AD access.
``AZURE_CLIENT_ID``
    Optional client id of a user-assigned managed identity (read by ``DefaultAzureCredential``).
``AZURE_STORAGE_ENDPOINT_SUFFIX``
    Optional, default ``core.windows.net`` (sovereign clouds use another suffix).

Names of the storage resources:

``BLAST_QUEUE`` (default ``blast-jobs``)
    The job queue; messages that fail too often move to ``<queue>-poison``.
``BLAST_JOB_TABLE`` (default ``blastjobs``)
    The job log table.
``BLAST_DB_CONTAINER`` (default ``blastdb``)
    Blob container holding databases, one prefix ``<name>/`` per database plus its
    ``<name>/manifest.json`` (see ``blast-jobs db upload``).
``BLAST_RESULTS_CONTAINER`` (default ``blast-results``)
    Blob container receiving results under ``<job id>/``.
``BLAST_INPUTS_CONTAINER`` (default ``blast-inputs``)
    Blob container holding large queries (and the legacy ``InputFile`` blobs).
``BLAST_SAS_EXPIRY_HOURS`` (default ``168``)
    Lifetime of the SAS links recorded for results under key auth.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from blast_client.errors import BlastClientError, ExitCode
from blast_client.names import InvalidName, check_resource_name


class ConfigError(BlastClientError):
    """A configuration variable is missing or invalid; the message names it and the fix."""

    code = "config"
    exit_code = ExitCode.INPUT


@dataclass(frozen=True)
class StorageConfig:
    """How to reach the storage account and which resources to use.

    Attributes:
        connection_string: Connection string (key auth or Azurite), or None.
        account_name: Account name for DefaultAzureCredential, used when no connection string.
        endpoint_suffix: DNS suffix for account URLs, default ``core.windows.net``.
        queue: Job queue name.
        table: Job log table name.
        db_container: Container holding databases.
        results_container: Container receiving results.
        inputs_container: Container holding large queries.
        sas_expiry_hours: Lifetime of result SAS links under key auth.
    """

    connection_string: str | None
    account_name: str | None
    endpoint_suffix: str = "core.windows.net"
    queue: str = "blast-jobs"
    table: str = "blastjobs"
    db_container: str = "blastdb"
    results_container: str = "blast-results"
    inputs_container: str = "blast-inputs"
    sas_expiry_hours: int = 168

    @property
    def poison_queue(self) -> str:
        """Name of the poison queue: ``<queue>-poison``."""
        return f"{self.queue}-poison"


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    """A variable's value without surrounding blanks; ``default`` when unset or blank.

    Args:
        env: Environment mapping.
        name: Variable name.
        default: Value when unset or blank.
    """
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number variable in ``lo..hi``.

    Args:
        env: Environment mapping.
        name: Variable name.
        default: Value when unset or blank.
        lo: Smallest allowed value.
        hi: Largest allowed value.

    Raises:
        ConfigError: naming the variable and the allowed range.
    """
    return int(_env_number(env, name, default, lo, hi, int, "a whole number"))


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    """A finite number variable in ``lo..hi``.

    Args:
        env: Environment mapping.
        name: Variable name.
        default: Value when unset or blank.
        lo: Smallest allowed value.
        hi: Largest allowed value.

    Raises:
        ConfigError: naming the variable and the allowed range.
    """
    return _env_number(env, name, default, lo, hi, float, "a number")


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    lo: float,
    hi: float,
    parse: Callable[[str], float],
    noun: str,
) -> float:
    raw = env_str(env, name, str(default))
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {noun}; set it to {lo:g}..{hi:g}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name}={raw} is out of range; set it to {lo:g}..{hi:g}")
    return value


def _resource(env: Mapping[str, str], name: str, default: str, kind: str) -> str:
    value = env_str(env, name, default)
    try:
        check_resource_name(value, kind)
    except InvalidName as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return value


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """Return a secret from ``name``, else from the file that ``<name>_FILE`` names.

    Args:
        env: Environment mapping.
        name: The variable, e.g. ``AZURE_STORAGE_KEY``.

    Raises:
        ConfigError: when ``<name>_FILE`` names a file that cannot be read.
    """
    value = env.get(name, "").strip()
    if value:
        return value
    path = env.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{name}_FILE={path!r} cannot be read: {reason}") from None


def _keyed_connection_string(env: Mapping[str, str], key: str) -> str:
    endpoints = env.get("AZURE_STORAGE_ENDPOINTS", "").strip().rstrip(";")
    if endpoints:
        return f"{endpoints};AccountKey={key}"
    account = env.get("AZURE_STORAGE_ACCOUNT", "").strip()
    if not account:
        raise ConfigError(
            "AZURE_STORAGE_KEY is set but neither AZURE_STORAGE_ENDPOINTS nor "
            "AZURE_STORAGE_ACCOUNT says which account it opens"
        )
    suffix = env_str(env, "AZURE_STORAGE_ENDPOINT_SUFFIX", "core.windows.net")
    return (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
        f"EndpointSuffix={suffix}"
    )


def load_storage_config(env: Mapping[str, str] | None = None) -> StorageConfig:
    """Read and validate the storage settings.

    Args:
        env: Environment mapping; defaults to ``os.environ``.

    Returns:
        The validated storage configuration.

    Raises:
        ConfigError: naming the missing or invalid variable.
    """
    env = os.environ if env is None else env
    conn = read_secret(env, "AZURE_STORAGE_CONNECTION_STRING")
    if conn is None and (key := read_secret(env, "AZURE_STORAGE_KEY")):
        conn = _keyed_connection_string(env, key)
    account = env.get("AZURE_STORAGE_ACCOUNT", "").strip() or None
    if conn is None and account is None:
        raise ConfigError(
            "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT must be set: use a "
            "connection string for Azurite or key auth, or an account name to sign in with "
            "a managed identity (plus AZURE_CLIENT_ID for a user-assigned one)"
        )
    if conn is not None:
        parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
        if not ({"AccountName", "BlobEndpoint"} & parts.keys()) and not conn.startswith(
            "UseDevelopmentStorage"
        ):
            raise ConfigError(
                "AZURE_STORAGE_CONNECTION_STRING does not look like a storage connection "
                "string (no AccountName=...); copy it from `az storage account "
                "show-connection-string`"
            )
    if account is not None and conn is None:
        try:
            check_resource_name(account, "storage account", pattern="account")
        except InvalidName as exc:
            raise ConfigError(f"AZURE_STORAGE_ACCOUNT: {exc}") from None
    return StorageConfig(
        connection_string=conn,
        account_name=account,
        endpoint_suffix=env_str(env, "AZURE_STORAGE_ENDPOINT_SUFFIX", "core.windows.net"),
        queue=_resource(env, "BLAST_QUEUE", "blast-jobs", "queue"),
        table=_resource(env, "BLAST_JOB_TABLE", "blastjobs", "table"),
        db_container=_resource(env, "BLAST_DB_CONTAINER", "blastdb", "container"),
        results_container=_resource(env, "BLAST_RESULTS_CONTAINER", "blast-results", "container"),
        inputs_container=_resource(env, "BLAST_INPUTS_CONTAINER", "blast-inputs", "container"),
        sas_expiry_hours=env_int(env, "BLAST_SAS_EXPIRY_HOURS", 168, 1, 24 * 365),
    )
