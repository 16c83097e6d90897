"""The storage edge: queue, poison queue, job table and blob containers, from configuration.

Works with a connection string (Azurite, key auth) or with an account name and
``DefaultAzureCredential`` (managed identity). Nothing else in the package builds clients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)
from azure.storage.queue import QueueClient, QueueServiceClient

from blast_client.config import StorageConfig
from blast_client.errors import StorageError

# One quick SDK-level retry only: the worker's own backoff (with jitter, and logged) handles
# longer outages. The storage SDKs' default ExponentialRetry would otherwise sleep 15 s, 18 s,
# 24 s... silently inside a single call.
_CLIENT_KWARGS: dict[str, Any] = {
    "retry_total": 1,
    "retry_backoff_factor": 0.5,  # azure-data-tables (azure-core RetryPolicy)
    "connection_timeout": 10,
    "read_timeout": 60,
}


def _storage_retry(module: Any, total: int = 1) -> Any:
    """An ExponentialRetry from a storage SDK (blob and queue each ship their own)."""
    return module.ExponentialRetry(
        initial_backoff=1, increment_base=2, retry_total=total, random_jitter_range=1
    )


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn storage SDK failures into one-line :class:`StorageError`."""
    try:
        yield
    except HttpResponseError as exc:
        message = (exc.message or str(exc)).splitlines()[0]
        raise StorageError(
            f"storage refused the request ({exc.status_code}: {message})",
            hint="check the account, the credentials and that `blast-jobs init` has run",
        ) from None
    except AzureError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(
            f"cannot reach storage ({first})",
            hint="check AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT and the network",
        ) from None


class Storage:
    """Clients for every resource the service uses.

    Args:
        cfg: Storage configuration.
        client_kwargs: Overrides for the SDK clients' retry and timeout settings.
        retries: SDK-level retries of a failed request (1: quick; long transfers such as
            ``db fetch`` want more, since a retry there is cheaper than restarting).

    Attributes:
        cfg: The configuration.
        queue: The job queue.
        poison: The poison queue.
        table: The job log table.
        blobs: The blob service.
        key_auth: True when an account key is available (result links get a SAS).
    """

    def __init__(
        self, cfg: StorageConfig, client_kwargs: dict[str, Any] | None = None, retries: int = 1
    ) -> None:
        self.cfg = cfg
        kwargs = {**_CLIENT_KWARGS, "retry_total": retries, **(client_kwargs or {})}
        import azure.storage.blob as blob_sdk
        import azure.storage.queue as queue_sdk

        bkw = {"retry_policy": _storage_retry(blob_sdk, retries), **kwargs}
        qkw = {"retry_policy": _storage_retry(queue_sdk, retries), **kwargs}
        if cfg.connection_string:
            conn = cfg.connection_string
            self._queues = QueueServiceClient.from_connection_string(conn, **qkw)
            self._tables = TableServiceClient.from_connection_string(conn, **kwargs)
            self.blobs = BlobServiceClient.from_connection_string(conn, **bkw)
        else:
            from azure.identity import DefaultAzureCredential

            account = cfg.account_name
            suffix = cfg.endpoint_suffix
            cred = DefaultAzureCredential(
                managed_identity_client_id=os.environ.get("AZURE_CLIENT_ID") or None
            )
            self._queues = QueueServiceClient(
                f"https://{account}.queue.{suffix}", credential=cred, **qkw
            )
            self._tables = TableServiceClient(
                endpoint=f"https://{account}.table.{suffix}", credential=cred, **kwargs
            )
            self.blobs = BlobServiceClient(
                f"https://{account}.blob.{suffix}", credential=cred, **bkw
            )
        self.queue: QueueClient = self._queues.get_queue_client(cfg.queue)
        self.poison: QueueClient = self._queues.get_queue_client(cfg.poison_queue)
        self.table: TableClient = self._tables.get_table_client(cfg.table)
        cred_obj = getattr(self.blobs, "credential", None)
        self._account_key: str | None = getattr(cred_obj, "account_key", None)
        self.key_auth = self._account_key is not None

    def container(self, name: str) -> ContainerClient:
        """Client for container ``name``.

        Args:
            name: Container name.
        """
        return self.blobs.get_container_client(name)

    def ensure_resources(self) -> list[str]:
        """Create the queue, poison queue, table and containers if they do not exist.

        Returns:
            The resources that were created (empty when all existed).
        """
        created: list[str] = []
        needed = self.cfg.resources()
        for name in needed["queues"]:
            try:
                self._queues.get_queue_client(name).create_queue()
                created.append(f"queue {name}")
            except ResourceExistsError:
                pass
        for name in needed["tables"]:
            try:
                self._tables.create_table(name)
                created.append(f"table {name}")
            except ResourceExistsError:
                pass
        for name in needed["containers"]:
            try:
                self.container(name).create_container()
                created.append(f"container {name}")
            except ResourceExistsError:
                pass
        return created

    def blob_link(
        self, container: str, blob: str, now: dt.datetime | None = None
    ) -> tuple[str, dt.datetime | None]:
        """A link to a blob: with a read-only SAS under key auth, else the plain URL.

        Args:
            container: Container name.
            blob: Blob name.
            now: Current time (for tests); defaults to the clock.

        Returns:
            The URL and the SAS expiry (None without a SAS).
        """
        url = self.container(container).get_blob_client(blob).url
        if self._account_key is None:
            return url, None
        now = now or dt.datetime.now(dt.UTC)
        expiry = now + dt.timedelta(hours=self.cfg.sas_expiry_hours)
        sas = generate_blob_sas(
            account_name=self.blobs.account_name or "",
            container_name=container,
            blob_name=blob,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
        )
        return f"{url}?{sas}", expiry
