"""Azure Container Registry runs (``Microsoft.ContainerRegistry``, 2019-06-01-preview).

Behaviour follows ``az acr build`` as recorded in azure-cli's ACR module:

* ``listBuildSourceUploadUrl`` answers a SAS URL of a block blob in a real Azurite
  (:attr:`AcrProvider.storage`) and its ``relativePath``;
* ``scheduleRun`` (validated against the spec, discriminator ``DockerBuildRequest``)
  reads that blob back, checks it is a tar.gz holding ``dockerFilePath``, and answers
  200 with a ``Queued`` run. A thread then "builds": it walks the Dockerfile's
  instructions, appending ``Step i/n : ...`` lines to the run's append blob in
  Azurite, ``Running`` meanwhile. ``RUN exit N`` (N > 0) fails that step with
  Docker's message. At the end the blob gets the metadata ``Complete`` (value
  ``successful`` or ``failed``), the way the ACR agent finishes a log, and the run
  becomes ``Succeeded`` or ``Failed``;
* a successful run pushes each ``imageNames`` entry to :class:`FakeRegistry`, a
  registry data plane (token exchange and manifests) on its own loopback port: a
  synthetic manifest, or with :attr:`AcrProvider.pusher` set a real image, the local
  build of the same context (:mod:`.push`), pushed to the real registry behind it;
* ``runs/{id}`` and ``runs/{id}/listLogSasUrl`` serve the run and a read SAS URL.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    generate_blob_sas,
)

from ...arm import ArmRequest, ArmResponse, ResourceProvider, arm_error
from ...spec import SPECS_DIR
from .push import LocalImagePusher, NoLocalBuildError
from .registry import FakeRegistry

ACR_SPEC_NAME = "containerregistry-build-2019-06-01-preview.json"
ACR_SPEC_FILE = SPECS_DIR / ACR_SPEC_NAME
SOURCE_CONTAINER = "source"
LOG_CONTAINER = "logs"
_EXIT = re.compile(r"^RUN\s+exit\s+(\d+)\s*$", re.IGNORECASE)
_LABEL = re.compile(r'^LABEL\s+([\w.-]+)="?([^"\s]*)"?\s*$', re.IGNORECASE)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class RunState:
    """One run, as the fake keeps it."""

    run_id: str
    registry: str
    request: dict[str, Any]
    status: str = "Queued"
    create_time: str = field(default_factory=_now)
    start_time: str | None = None
    finish_time: str | None = None
    output_images: list[dict[str, str]] = field(default_factory=list)
    log_blob: str = ""
    log_lines: list[str] = field(default_factory=list)


class AcrProvider(ResourceProvider):
    """The ``Microsoft.ContainerRegistry`` runs provider.

    Set :attr:`storage` (an Azurite connection string) and :attr:`registry` (a
    started :class:`FakeRegistry`) before scheduling runs. ``step_delay`` is the
    time each Dockerfile step "takes". With :attr:`pusher` set, runs push real images
    (the registry should then forward to the same real registry, ``registry.upstream``).
    """

    namespace: ClassVar[str] = "Microsoft.ContainerRegistry"
    spec_name: ClassVar[str] = ACR_SPEC_NAME

    def __init__(self, spec_file: Path = ACR_SPEC_FILE) -> None:
        super().__init__(spec_file)
        self.storage: str | None = None
        self.registry: FakeRegistry | None = None
        self.pusher: LocalImagePusher | None = None
        self.step_delay = 0.02
        self.runs: dict[str, RunState] = {}
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []

    def reset(self) -> None:
        """Forget every run."""
        self.runs.clear()

    def _blobs(self) -> BlobServiceClient:
        if not self.storage:
            raise RuntimeError("AcrProvider.storage is not set (an Azurite connection string)")
        return BlobServiceClient.from_connection_string(self.storage)

    def _sas_url(self, container: str, blob: str, perms: BlobSasPermissions) -> str:
        service = self._blobs()
        key = service.credential.account_key
        sas = generate_blob_sas(
            str(service.account_name),
            container,
            blob,
            account_key=key,
            permission=perms,
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        return f"{service.url.rstrip('/')}/{container}/{blob}?{sas}"

    def _ensure(self, container: str) -> None:
        client = self._blobs().get_container_client(container)
        if not client.exists():
            client.create_container()

    def op_Registries_GetBuildSourceUploadUrl(self, request: ArmRequest) -> ArmResponse:
        """A SAS URL for one source upload (block blob)."""
        self._ensure(SOURCE_CONTAINER)
        blob = f"uploads/{uuid.uuid4().hex}.tar.gz"
        perms = BlobSasPermissions(read=True, write=True, create=True)
        url = self._sas_url(SOURCE_CONTAINER, blob, perms)
        return ArmResponse(200, {"uploadUrl": url, "relativePath": f"{SOURCE_CONTAINER}/{blob}"})

    def op_Registries_ScheduleRun(self, request: ArmRequest) -> ArmResponse:
        """Queue a run for an uploaded source and start "building" it."""
        body = request.body
        if body.get("type") != "DockerBuildRequest":
            return arm_error(400, "InvalidRunRequest", "the fake runs only DockerBuildRequest")
        location = body.get("sourceLocation") or ""
        container, _, blob = location.partition("/")
        try:
            data = self._blobs().get_blob_client(container, blob).download_blob().readall()
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
                dockerfile_member = tar.extractfile(body["dockerFilePath"])
                if dockerfile_member is None:
                    raise KeyError(body["dockerFilePath"])
                dockerfile = dockerfile_member.read().decode()
        except Exception as exc:  # noqa: BLE001 - any unreadable source is the client's fault
            return arm_error(
                400, "InvalidSourceLocation", f"cannot read source {location!r}: {exc}"
            )
        run_id = f"cb{next(self._ids)}"
        registry = request.path_params.get("registryName", "")
        # Unique per fake: Azurite may outlive this server (session fixture) and keep old logs.
        log_blob = f"{uuid.uuid4().hex}/{run_id}/rawtext.log"
        run = RunState(run_id, registry, body, log_blob=log_blob)
        self.runs[run_id] = run
        self._ensure(LOG_CONTAINER)
        thread = threading.Thread(target=self._build, args=(run, dockerfile), daemon=True)
        self._threads.append(thread)
        thread.start()
        return ArmResponse(200, self._render(run, request))

    def _build(self, run: RunState, dockerfile: str) -> None:
        log = self._blobs().get_blob_client(LOG_CONTAINER, run.log_blob)
        log.create_append_blob()

        def emit(line: str) -> None:
            run.log_lines.append(line)
            log.append_block((line + "\r\n").encode())

        lines = (ln.strip() for ln in dockerfile.splitlines())
        steps = [ln for ln in lines if ln and not ln.startswith("#")]
        labels: dict[str, str] = {}
        run.status, run.start_time = "Running", _now()
        emit(f"Queued a build with ID: {run.run_id}")
        emit("Waiting for an agent...")
        failed = None
        for n, step in enumerate(steps, 1):
            time.sleep(self.step_delay)
            emit(f"Step {n}/{len(steps)} : {step}")
            if label := _LABEL.match(step):
                labels[label[1]] = label[2]
            if (code := _EXIT.match(step)) and int(code[1]) != 0:
                emit(f"The command '/bin/sh -c exit {code[1]}' returned a non-zero code: {code[1]}")
                failed = code[1]
                break
            emit(" ---> Running in " + uuid.uuid4().hex[:12])
        if failed is None and self.registry is not None:
            failed = self._push(run, labels, emit)
        emit(f"Run ID: {run.run_id} was {'successful' if failed is None else 'failed'}")
        log.set_blob_metadata({"Complete": "successful" if failed is None else "failed"})
        run.finish_time = _now()
        run.status = "Succeeded" if failed is None else "Failed"

    def _push(
        self, run: RunState, labels: dict[str, str], emit: Callable[[str], None]
    ) -> str | None:
        """Push the run's images (their names grouped by repository); return why not."""
        assert self.registry is not None
        tags: dict[str, list[str]] = {}
        for name in run.request.get("imageNames", []):
            ref = name.split("/", 1)[1] if "/" in name else name
            repo, _, tag = ref.rpartition(":")
            tags.setdefault(repo, []).append(tag)
        for repo, repo_tags in tags.items():
            if self.pusher is None:
                digests = [self.registry.push(repo, tag, labels) for tag in repo_tags]
            else:
                try:
                    digests = [self.pusher.push(repo, repo_tags)] * len(repo_tags)
                except (NoLocalBuildError, RuntimeError) as exc:
                    emit(f"failed to push {repo}: {exc}")
                    return "push"
            for tag, digest in zip(repo_tags, digests, strict=True):
                emit(f"{tag}: digest: {digest} size: 0")
                run.output_images.append(
                    {
                        "registry": self.registry.server,
                        "repository": repo,
                        "tag": tag,
                        "digest": digest,
                    }
                )
        return None

    def _render(self, run: RunState, request: ArmRequest) -> dict[str, Any]:
        prefix = request.path.split("/scheduleRun")[0].split("/runs/")[0]
        props: dict[str, Any] = {
            "runId": run.run_id,
            "status": run.status,
            "runType": "QuickBuild",
            "createTime": run.create_time,
            "lastUpdatedTime": _now(),
            "provisioningState": "Succeeded",
            "platform": run.request.get("platform"),
            "outputImages": run.output_images,
        }
        if run.start_time:
            props["startTime"] = run.start_time
        if run.finish_time:
            props["finishTime"] = run.finish_time
        return {
            "id": f"{prefix}/runs/{run.run_id}",
            "name": run.run_id,
            "type": "Microsoft.ContainerRegistry/registries/runs",
            "properties": props,
        }

    def _run(self, request: ArmRequest) -> RunState | ArmResponse:
        run = self.runs.get(request.path_params.get("runId", ""))
        if run is None:
            missing = request.path_params.get("runId")
            return arm_error(404, "RunNotFound", f"run {missing} not found")
        return run

    def op_Runs_Get(self, request: ArmRequest) -> ArmResponse:
        """The run's current state."""
        run = self._run(request)
        return run if isinstance(run, ArmResponse) else ArmResponse(200, self._render(run, request))

    def op_Runs_GetLogSasUrl(self, request: ArmRequest) -> ArmResponse:
        """A read SAS URL of the run's log blob."""
        run = self._run(request)
        if isinstance(run, ArmResponse):
            return run
        url = self._sas_url(LOG_CONTAINER, run.log_blob, BlobSasPermissions(read=True))
        return ArmResponse(200, {"logLink": url})

    def join(self, timeout: float = 30.0) -> None:
        """Wait for every run thread (tests call it before stopping Azurite)."""
        for thread in self._threads:
            thread.join(timeout)
