"""Builds in Azure Container Registry: ACR Tasks quick runs, like ``az acr build``.

Uses azure-mgmt-containerregistry 14.0.0 at api-version 2019-06-01-preview, the
last release that still has runs (``schedule_run``): 15.0.0 removed them, and
azure-mgmt-containerregistrytasks is not on PyPI.

One build: ``get_build_source_upload_url``, a blob upload of the packed context to
that SAS URL, ``schedule_run`` with a ``DockerBuildRequest``, then the run's log is
streamed from its append blob (``runs.get_log_sas_url``) until the blob's metadata
says ``Complete``, and the run's final status decides the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError as SdkAzureError,
)
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.containerregistry.v2019_06_01_preview import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.v2019_06_01_preview import models as m
from azure.storage.blob import BlobClient

from deployer import hints
from deployer.arm import management_client
from deployer.errors import AzureError, DeployerError
from deployer.imagebuild.jobs import BuildFailedError, BuildJob, LogSink, Tail

SUCCEEDED = "Succeeded"
FINAL_STATES = ("Succeeded", "Failed", "Canceled", "Error", "Timeout")


def make_client(
    subscription: str,
    *,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
) -> ContainerRegistryManagementClient:
    """Build the ACR management client (runs API 2019-06-01-preview).

    Args:
        subscription (str): Subscription id (``az account list -o table``).
        endpoint (str | None): ARM endpoint. Default: ``$DEPLOYER_ARM_ENDPOINT``, else
            the public cloud. Plain http only for loopback hosts.
        credential (TokenCredential | None): Default: ``DEPLOYER_ACCESS_TOKEN``, else
            ``DefaultAzureCredential``.

    Raises:
        InputError: For an endpoint that is not https (or http on loopback).
    """
    return management_client(
        ContainerRegistryManagementClient, subscription, endpoint=endpoint, credential=credential
    )


def _azure_error(exc: Exception, what: str, registry: str) -> DeployerError:
    if isinstance(exc, ResourceNotFoundError) and not (
        exc.error and exc.error.code == "ResourceGroupNotFound"
    ):
        return AzureError(
            f"registry {registry} not found while trying to {what}",
            hint="check --registry-name and the resource group "
            "(`az acr list --query [].name -o tsv`)",
            code="ResourceNotFound",
        )
    if isinstance(exc, SdkAzureError):
        return hints.from_exception(exc, f"trying to {what} in registry {registry}")
    raise exc


@dataclass(frozen=True)
class LogPolling:
    """How the log blob is polled: like ``az acr build``, faster while it grows.

    Args:
        interval_s (float): First wait after a poll that found nothing new.
        max_interval_s (float): Longest wait.
        backoff_after (int): Empty polls in a row before the wait doubles.
        idle_timeout_s (float): Give up after this long without new log.
    """

    interval_s: float = 1.0
    max_interval_s: float = 15.0
    backoff_after: int = 3
    idle_timeout_s: float = 1800.0


def stream_log_blob(
    blob: BlobClient,
    log: LogSink,
    polling: LogPolling,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Follow an append blob until its metadata has ``Complete``; send each line to ``log``.

    Args:
        blob (BlobClient): The log blob (a SAS URL).
        log (LogSink): Receives each complete line, without ``\\r\\n``.
        polling (LogPolling): Poll intervals and backoff.
        sleep (Callable[[float], None]): Waits between polls. Default: ``time.sleep``.

    Returns:
        str: The value of the ``Complete`` metadata (e.g. ``successful``), or
        ``timedout`` when the log stopped growing for ``idle_timeout_s``.
    """
    offset = 0
    pending = b""
    wait = polling.interval_s
    empty = 0
    idle = 0.0
    while True:
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            props = None  # the agent has not created it yet
        complete = None
        size = 0
        if props is not None:
            size = props.size
            complete = next((v for k, v in props.metadata.items() if k.lower() == "complete"), None)
        if size > offset:
            pending += blob.download_blob(offset=offset, length=size - offset).readall()
            offset = size
            *lines, pending = pending.split(b"\n")
            for line in lines:
                log(line.rstrip(b"\r").decode("utf-8", errors="replace"))
            wait, empty, idle = polling.interval_s, 0, 0.0
            continue
        if complete is not None:
            if pending:
                log(pending.rstrip(b"\r").decode("utf-8", errors="replace"))
            return complete
        if idle >= polling.idle_timeout_s:
            return "timedout"
        empty += 1
        if empty >= polling.backoff_after:
            empty = 0
            wait = min(wait * 2, polling.max_interval_s)
        sleep(wait)
        idle += wait


class AcrBuilder:
    """Builds images as ACR quick runs in one registry.

    Args:
        client (ContainerRegistryManagementClient): The management client.
        resource_group (str): The registry's resource group.
        registry_name (str): The registry resource name (``az acr list``).
        polling (LogPolling): Log polling. Default: :class:`LogPolling`.
        blob_options (dict[str, Any] | None): Extra keyword arguments for the blob
            clients (tests shorten their retries). Default: none.
    """

    def __init__(
        self,
        client: ContainerRegistryManagementClient,
        resource_group: str,
        registry_name: str,
        polling: LogPolling | None = None,
        blob_options: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.resource_group = resource_group
        self.registry_name = registry_name
        self.polling = polling or LogPolling()
        self.blob_options = blob_options or {}

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (HttpResponseError, SdkAzureError) as exc:
            raise _azure_error(exc, what, self.registry_name) from None

    def request(self, job: BuildJob, source_location: str) -> m.DockerBuildRequest:
        """Return the ``DockerBuildRequest`` of ``job`` for an uploaded source."""
        return m.DockerBuildRequest(
            image_names=list(job.refs),
            is_push_enabled=True,
            no_cache=job.no_cache,
            docker_file_path=job.dockerfile,
            arguments=[m.Argument(name=k, value=v) for k, v in sorted(job.args.items())],
            timeout=job.timeout_s,
            platform=m.PlatformProperties(os="Linux", architecture="amd64"),
            source_location=source_location,
        )

    def build(self, job: BuildJob, log: LogSink) -> str | None:
        """Upload the context, schedule the run, stream its log; return the digest.

        Raises:
            BuildFailedError: When the run ends in any state but ``Succeeded``.
            AzureError: When a step could not be done.
        """
        rg, name = self.resource_group, self.registry_name
        upload = self._call(
            "get a source upload URL",
            lambda: self.client.registries.get_build_source_upload_url(rg, name),
        )
        try:
            BlobClient.from_blob_url(upload.upload_url, **self.blob_options).upload_blob(
                job.archive, overwrite=True
            )
        except SdkAzureError as exc:
            raise AzureError(
                f"could not upload the {job.spec.name} build context: {exc}".splitlines()[0],
                hint="retry; the upload URL is valid for one hour",
            ) from None
        request = self.request(job, upload.relative_path)
        run = self._call(
            f"schedule the {job.spec.name} build",
            lambda: self.client.registries.begin_schedule_run(rg, name, request).result(),
        )
        run_id = run.run_id
        sas = self._call(
            f"read the log URL of run {run_id}",
            lambda: self.client.runs.get_log_sas_url(rg, name, run_id),
        )
        tail = Tail(log)
        log_blob = BlobClient.from_blob_url(sas.log_link, **self.blob_options)
        try:
            stream_log_blob(log_blob, tail, self.polling)
        except SdkAzureError as exc:
            raise AzureError(
                f"could not read the log of run {run_id} ({job.spec.name}): "
                f"{str(exc).splitlines()[0]}",
                hint=f"`az acr task logs -r {name} --run-id {run_id}` shows it",
            ) from None
        final = self._call(f"read run {run_id}", lambda: self.client.runs.get(rg, name, run_id))
        # The blob can be complete a moment before the run record is final.
        deadline = time.monotonic() + 60
        while final.status not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(self.polling.interval_s)
            final = self._call(f"read run {run_id}", lambda: self.client.runs.get(rg, name, run_id))
        if final.status != SUCCEEDED:
            raise BuildFailedError(f"ACR run {run_id} ended {final.status}", list(tail.lines))
        first = job.refs[0].rpartition(":")[2]
        digests = [i.digest for i in final.output_images or [] if i.tag == first and i.digest]
        return digests[0] if digests else None
