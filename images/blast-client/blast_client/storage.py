"""The storage edge: queue, poison queue, job table and blob containers, from configuration.

Works with a connection string (Azurite, key auth) or with an account name and
``DefaultAzureCredential`` (managed identity). Nothing else in the package builds clients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
)
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)
from azure.storage.queue import QueueClient, QueueServiceClient
from urllib3.exceptions import ProtocolError

from blast_client.config import StorageConfig
from blast_client.errors import NOT_SIGNED_IN, StorageError, StorageFailure

# One quick SDK-level retry only: the worker's own backoff (with jitter, and logged) handles
# longer outages. The storage SDKs' default ExponentialRetry would otherwise sleep 15 s, 18 s,
# 24 s... silently inside a single call.
_CLIENT_KWARGS: dict[str, Any] = {
    "retry_total": 1,
    "retry_backoff_factor": 0.5,  # azure-data-tables (azure-core RetryPolicy)
    "connection_timeout": 10,
    "read_timeout": 60,
}


def environment_settings(url: str) -> dict[str, Any]:
    """What ``requests`` would take from the environment for requests to ``url``, read once:
    its proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, unless ``NO_PROXY`` names the
    host) and CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), as client options.
    ``requests`` otherwise reads them for every request (the whole environment, twice): 7-10%
    of the CPU of a merge's small downloads, which limits how many requests a process sends.

    Args:
        url: A service endpoint (every request of its client goes to that host).
    """
    settings: dict[str, Any] = {"use_env_settings": False}
    proxies = requests.utils.get_environ_proxies(url)
    if proxies:
        settings["proxies"] = dict(proxies)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        settings["connection_verify"] = bundle
    return settings


C = TypeVar("C")

POOL_SIZE = 32
"""Connections kept per host by each client. urllib3's default keeps 10: the submit's and the
merge's 16 threads then open and close a connection for each request beyond the tenth."""


def pooled_session(size: int = POOL_SIZE) -> requests.Session:
    """A requests session for an SDK client's transport that keeps ``size`` connections per
    host, and reads no proxy settings from the environment per request (they are given to the
    client once, :func:`environment_settings`). As azure-core's own session otherwise: its
    adapter, and no retries of its own (the SDK's policies retry), but for one: a request on
    a kept-alive connection that the server closed unanswered goes out once more."""
    from azure.core.pipeline.transport._bigger_block_size_http_adapters import (
        BiggerBlockSizeHTTPAdapter,
    )
    from urllib3.util.retry import Retry

    class _Adapter(BiggerBlockSizeHTTPAdapter):
        def send(
            self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
        ) -> requests.Response:
            try:
                return super().send(request, *args, **kwargs)
            except requests.ConnectionError as exc:
                # A kept-alive connection the server closed as idle just as a request went
                # out on it (Azurite's Node closes them after 5 s, Azure's front ends after
                # minutes): closed with no answer, in that race the request was never read.
                # azure-core retries no POST (a table insert) on it; a run's submit then
                # failed whole. (A server that acted and crashed before answering would get
                # it twice: a table insert then fails with 409.) Sent once more only with a
                # body that can be (not a stream half read).
                replayable = request.body is None or isinstance(request.body, (bytes, str))
                if not (replayable and _closed_unanswered(exc)):
                    raise
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.trust_env = False
    adapter = _Adapter(
        pool_maxsize=size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


def _closed_unanswered(exc: requests.ConnectionError) -> bool:
    """The server closed the connection without answering the request (``RemoteDisconnected``):
    not a reset or a timeout, after which the request may have been served."""
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, ProtocolError) and any(
        isinstance(arg, http.client.RemoteDisconnected) for arg in cause.args
    )


def _settled(make: Callable[[dict[str, Any]], C], kwargs: dict[str, Any]) -> C:
    """The client ``make`` builds from ``kwargs``, with the environment's settings for its
    endpoint read once (:func:`environment_settings`) and a pool of :data:`POOL_SIZE`
    connections (:func:`pooled_session`); a given transport keeps its own."""
    if "transport" in kwargs:
        return make(kwargs)
    probe = make({**kwargs, "use_env_settings": False})
    settings = environment_settings(str(getattr(probe, "url", "")))
    return make({**kwargs, **settings, "session": pooled_session()})


TRANSPORT: Any = None
"""An azure-core transport every client built afterwards in this process uses instead of its
own (None: each its own). Benches and tests count and throttle requests with it
(``testbed.storage_wire``)."""


def _storage_retry(module: Any, total: int = 1) -> Any:
    """An ExponentialRetry from a storage SDK (blob and queue each ship their own) that does
    not retry a credential that found no sign-in."""

    class _Retry(module.ExponentialRetry):  # type: ignore[misc]
        # The storage SDKs retry every AzureError, a failed sign-in too: signed out, one blob
        # read took minutes (each try probes for a managed identity, then backs off).
        def increment(
            self, settings: Any, request: Any, response: Any = None, error: Any = None
        ) -> bool:
            if isinstance(error, ClientAuthenticationError):
                return False
            return bool(super().increment(settings, request, response=response, error=error))

    return _Retry(initial_backoff=1, increment_base=2, retry_total=total, random_jitter_range=1)


DATA_ROLES = {
    "blob": "Storage Blob Data Contributor",
    "queue": "Storage Queue Data Contributor",
    "table": "Storage Table Data Contributor",
}
"""The built-in role that lets an Entra ID identity read and write each storage service's data
(Owner and Contributor on the account do not)."""
_SDK_SERVICES = {"storage-blob": "blob", "storage-queue": "queue", "data-tables": "table"}


def storage_failure(exc: AzureError) -> StorageFailure:
    """Read what a storage SDK exception says, from the exception alone (pure).

    The service comes from the SDK's user agent (else the host name), the account from the
    request URL (``<account>.<service>.core.windows.net``, or path style ``/<account>/``).

    Args:
        exc: The exception a blob, queue or table client raised.
    """
    first = (str(getattr(exc, "message", None) or exc) or type(exc).__name__).splitlines()[0]
    response = getattr(exc, "response", None)
    if isinstance(exc, ClientAuthenticationError) and response is None:
        return StorageFailure(NOT_SIGNED_IN, None, None, None, False, first)
    code = getattr(exc, "error_code", None)
    error = getattr(exc, "error", None)
    code = str(code) if code else (getattr(error, "code", None) if error else None)
    request = getattr(response, "request", None)
    url = str(getattr(request, "url", "") or "")
    agent = str((getattr(request, "headers", None) or {}).get("User-Agent", ""))
    service = next((s for sdk, s in _SDK_SERVICES.items() if f"-{sdk}/" in agent), None)
    parts = urlsplit(url)
    labels = (parts.hostname or "").split(".")
    account: str | None
    if len(labels) > 2 and not labels[-1].isdigit():  # <account>.<service>.core.windows.net
        account = labels[0]
        service = service or (labels[1] if labels[1] in DATA_ROLES else None)
    else:  # path style (Azurite, custom endpoints): /<account>/...
        account = parts.path.lstrip("/").split("/")[0] or None
    status = getattr(exc, "status_code", None)
    return StorageFailure(code, status, service, account, "sig=" in parts.query, first)


def data_role_hint(failure: StorageFailure) -> str:
    """The fix for a 403 ``AuthorizationPermissionMismatch`` (pure): the data role the
    identity lacks, and the exact ``az`` line that grants it to the signed-in user.

    Args:
        failure: The refused request.
    """
    roles = [DATA_ROLES[failure.service]] if failure.service in DATA_ROLES else list(DATA_ROLES)
    account = failure.account or "ACCOUNT"
    grant = " ; ".join(
        f'az role assignment create --role "{role}" '
        '--assignee "$(az ad signed-in-user show --query id -o tsv)" '
        f'--scope "$(az storage account show -n {account} --query id -o tsv)"'
        for role in roles
    )
    sas = (
        "the connection string's SAS does not allow this request (give one that does), or, "
        "signed in with Entra ID, "
        if failure.sas
        else ""
    )
    return (
        f"{sas}the signed-in identity needs the {' and '.join(roles)} role on storage account "
        f"{account} (Owner or Contributor give no data access; BLAST runs need the Blob, Queue "
        f"and Table Data Contributor roles): {grant}"
    )


SIGN_IN_HINT = (
    "sign in with `az login`, or export AZURE_CLIENT_ID, AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET for a service principal"
)
"""How to sign in to Azure, for every command line of the project."""


def storage_error(exc: AzureError) -> StorageError:
    """The one-line :class:`StorageError` for a storage SDK exception, with the fix.

    Args:
        exc: The exception.
    """
    failure = storage_failure(exc)
    if failure.code == NOT_SIGNED_IN:
        return StorageError(
            f"not signed in to Azure, so storage cannot be reached ({failure.message})",
            hint=SIGN_IN_HINT,
            failure=failure,
        )
    if failure.code == "AuthorizationPermissionMismatch":
        return StorageError(
            f"storage account {failure.account} refused the request ({failure.status}: "
            f"{failure.message})",
            hint=data_role_hint(failure),
            failure=failure,
        )
    if isinstance(exc, HttpResponseError):
        return StorageError(
            f"storage refused the request ({exc.status_code}: {failure.message})",
            hint="check the account, the credentials and that `blast-jobs init` has run",
            failure=failure,
        )
    return StorageError(
        f"cannot reach storage ({failure.message})",
        hint="check AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT and the network",
        failure=failure,
    )


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn storage SDK failures into one-line :class:`StorageError` (see :func:`storage_error`)."""
    try:
        yield
    except AzureError as exc:
        raise storage_error(exc) from None


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
        if TRANSPORT is not None:
            kwargs.setdefault("transport", TRANSPORT)
        import azure.storage.blob as blob_sdk
        import azure.storage.queue as queue_sdk

        bkw = {"retry_policy": _storage_retry(blob_sdk, retries), **kwargs}
        qkw = {"retry_policy": _storage_retry(queue_sdk, retries), **kwargs}
        if cfg.connection_string:
            conn = cfg.connection_string
            self._queues = _settled(
                lambda kw: QueueServiceClient.from_connection_string(conn, **kw), qkw
            )
            self._tables = _settled(
                lambda kw: TableServiceClient.from_connection_string(conn, **kw), kwargs
            )
            self.blobs = _settled(
                lambda kw: BlobServiceClient.from_connection_string(conn, **kw), bkw
            )
        else:
            from azure.identity import DefaultAzureCredential

            account = cfg.account_name
            suffix = cfg.endpoint_suffix
            cred = DefaultAzureCredential(
                managed_identity_client_id=os.environ.get("AZURE_CLIENT_ID") or None
            )
            self._queues = _settled(
                lambda kw: QueueServiceClient(
                    f"https://{account}.queue.{suffix}", credential=cred, **kw
                ),
                qkw,
            )
            self._tables = _settled(
                lambda kw: TableServiceClient(
                    endpoint=f"https://{account}.table.{suffix}", credential=cred, **kw
                ),
                kwargs,
            )
            self.blobs = _settled(
                lambda kw: BlobServiceClient(
                    f"https://{account}.blob.{suffix}", credential=cred, **kw
                ),
                bkw,
            )
        self.queue: QueueClient = self._queues.get_queue_client(cfg.queue)
        self.poison: QueueClient = self._queues.get_queue_client(cfg.poison_queue)
        self.table: TableClient = self._tables.get_table_client(cfg.table)
        self._containers: dict[str, ContainerClient] = {}
        cred_obj = getattr(self.blobs, "credential", None)
        self._account_key: str | None = getattr(cred_obj, "account_key", None)
        self.key_auth = self._account_key is not None

    def queue_client(self, name: str) -> QueueClient:
        """Client for queue ``name`` of the same account (a run pinned to shards has one per
        shard beside :attr:`queue`).

        Args:
            name: Queue name.
        """
        return self._queues.get_queue_client(name)

    def container(self, name: str) -> ContainerClient:
        """Client for container ``name``, made once: building one takes ~0.7 ms of CPU, as
        much again as a small download's own, which a merge of 10,000 batches asks for 40,000
        times.

        Args:
            name: Container name.
        """
        found = self._containers.get(name)
        if found is None:
            found = self._containers.setdefault(name, self.blobs.get_container_client(name))
        return found

    def ensure_resources(self, queues: Sequence[str] | None = None) -> list[str]:
        """Create the queue, poison queue, table and containers if they do not exist.

        Args:
            queues: The job queues to create, each with its poison queue, instead of the
                configured one (a run pinned to shards has one per shard).

        Returns:
            The resources that were created (empty when all existed).
        """
        created: list[str] = []
        needed = self.cfg.resources()
        jobs = [needed["queues"]] if queues is None else [(q, f"{q}-poison") for q in queues]
        for name in (n for pair in jobs for n in pair):
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
