"""Runs the builds of the stack: hashes, skips, dependency order, four at a time.

Every image's context is packed and hashed first (parents before children). An
image whose build hash is already in the registry (tag ``ctx-<hash>``) is not
rebuilt unless ``force``: its manifest just gets this build's tag. The others go to
the builder, at most ``parallel`` at once, each only after its parents are pushed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from deployer import defaults
from deployer.errors import DeployerError, InputError
from deployer.imagebuild import catalogue, context, images
from deployer.imagebuild.jobs import Builder, BuildFailedError, BuildJob
from deployer.imagebuild.registry import RegistryClient

QUEUED, RUNNING, SUCCEEDED, FAILED, SKIPPED = "queued", "running", "succeeded", "failed", "skipped"

StatusSink = Callable[[str, str], None]
"""Receives (image, status) on every change."""
LineSink = Callable[[str, str], None]
"""Receives (image, log line)."""


@dataclass
class ImageResult:
    """What happened to one image.

    Args:
        name (str): The image.
        status (str): ``succeeded``, ``skipped`` or ``failed``.
        ref (str): The reference to deploy.
        build_hash (str): Its build hash.
        digest (str | None): Manifest digest, when known.
        reason (str | None): Why it failed.
        tail (list[str]): Last log lines of a failed build.
        code (str | None): The error code when Azure or the registry refused (not a failed
            build step), e.g. ``TasksOperationsNotAllowed``.
        hint (str | None): That refusal's fix.
    """

    name: str
    status: str
    ref: str
    build_hash: str
    digest: str | None = None
    reason: str | None = None
    tail: list[str] = field(default_factory=list)
    code: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Plan:
    """Every job of one build, in build order.

    Args:
        registry (str): Registry login server.
        tag (str): This build's tag.
        jobs (tuple[BuildJob, ...]): One per image, parents first.
    """

    registry: str
    tag: str
    jobs: tuple[BuildJob, ...]


def _hashed(
    images_dir: Path, spec: catalogue.ImageSpec, hashes: dict[str, str]
) -> tuple[dict[str, bytes], context.Packed]:
    """Pack ``spec``'s context without extras and add its build hash to ``hashes`` (its
    parents' must be there); return its source files and the packed context."""
    dockerfile = images_dir / spec.folder / "Dockerfile"
    if not dockerfile.is_file():
        raise InputError(f"image {spec.name} has no Dockerfile at {dockerfile}")
    sources = catalogue.source_files(spec, images_dir.parent)
    packed = context.pack(images_dir / spec.folder, extra=sources)
    hashes[spec.name] = images.build_hash(packed.sha256, spec, hashes)
    return sources, packed


def build_hashes(images_dir: Path, name: str) -> dict[str, str]:
    """Return the build hash of image ``name`` and of each of its parents, as
    :func:`plan_build` computes them (``images/build.sh`` tags each local build with it).

    Raises:
        InputError: For an unknown image or a missing context folder.
    """
    hashes: dict[str, str] = {}
    for spec in catalogue.load(images_dir).select([name]):
        _hashed(images_dir, spec, hashes)
    return hashes


def plan_build(
    images_dir: Path,
    registry: str,
    names: list[str] | None = None,
    *,
    tag: str | None = None,
    ca_bundle: bytes | None = None,
    no_cache: bool = False,
    timeout_s: int = 3600,
    debian_image: str = images.DEFAULT_DEBIAN_IMAGE,
) -> Plan:
    """Pack and hash every image to build, and describe its job.

    Args:
        images_dir (Path): The repository's ``images/`` folder.
        registry (str): Registry login server, e.g. ``myacr.azurecr.io``.
        names (list[str] | None): Images to build (parents are added). Default: every
            service image.
        tag (str | None): The tag. Default: ``<version>-<gitsha>`` of the checkout.
        ca_bundle (bytes | None): Extra CA bundle, added by :func:`catalogue.ca_files`
            (never part of the hash). Default: None.
        no_cache (bool): Build without the layer cache. Default: False.
        timeout_s (int): Time limit per build. Default: 3600.
        debian_image (str): Root image of ``base``. Default: ``debian:trixie-slim``.

    Raises:
        InputError: For an unknown image or a missing context folder.
    """
    version = images.project_version(images_dir)
    revision = images.git_revision(images_dir)
    tag = tag or images.image_tag(version, revision)
    hashes: dict[str, str] = {}
    jobs: list[BuildJob] = []
    prefix = registry.rstrip("/")
    for spec in catalogue.load(images_dir).select(names):
        root = images_dir / spec.folder
        dockerfile = root / "Dockerfile"
        sources, packed = _hashed(images_dir, spec, hashes)
        extra = {
            images.GENERATED_DOCKERFILE: images.labelled_dockerfile(
                dockerfile.read_text(encoding="utf-8"), spec, hashes[spec.name]
            )
        }
        extra.update(catalogue.ca_files(root, ca_bundle))
        extra.update(sources)
        archive = context.pack(root, extra=extra).data
        jobs.append(
            BuildJob(
                spec=spec,
                archive=archive,
                dockerfile=images.GENERATED_DOCKERFILE,
                context_sha256=packed.sha256,
                build_hash=hashes[spec.name],
                refs=(
                    f"{prefix}/{spec.name}:{tag}",
                    f"{prefix}/{spec.name}:{images.hash_tag(hashes[spec.name])}",
                ),
                args=catalogue.build_args(spec, registry, tag, version, revision, debian_image),
                no_cache=no_cache,
                timeout_s=timeout_s,
            )
        )
    return Plan(registry, tag, tuple(jobs))


def run_build(
    plan: Plan,
    builder: Builder,
    registry: RegistryClient,
    *,
    force: bool = False,
    parallel: int = defaults.DEFAULT_BUILD_PARALLEL,
    on_status: StatusSink | None = None,
    on_line: LineSink | None = None,
) -> list[ImageResult]:
    """Build every job of ``plan``: skip what the registry has, the rest in parallel.

    Args:
        plan (Plan): From :func:`plan_build`.
        builder (Builder): ACR runs or the local engine.
        registry (RegistryClient): Asks the registry for build hashes and retags.
        force (bool): Rebuild even when the build hash is in the registry.
            Default: False.
        parallel (int): Builds at once. Default: 4.
        on_status (StatusSink | None): Progress per image. Default: none.
        on_line (LineSink | None): Log lines per image. Default: none.

    Returns:
        list[ImageResult]: One per job, in build order. A failure never stops the
        builds that do not depend on it.
    """
    lock = threading.Lock()

    def status(name: str, value: str) -> None:
        if on_status:
            with lock:
                on_status(name, value)

    def line(name: str) -> Callable[[str], None]:
        def sink(text: str) -> None:
            if on_line:
                with lock:
                    on_line(name, text)

        return sink

    def one(job: BuildJob) -> ImageResult:
        name, ref = job.spec.name, job.refs[0]
        hash_tag = job.refs[1].rpartition(":")[2]
        if not force:
            found = registry.digest(name, hash_tag)
            if found:
                retagged = registry.retag(name, hash_tag, plan.tag)
                return ImageResult(name, SKIPPED, ref, job.build_hash, retagged or found)
        status(name, RUNNING)
        try:
            digest = builder.build(job, line(name))
        except BuildFailedError as exc:
            return ImageResult(name, FAILED, ref, job.build_hash, reason=exc.message, tail=exc.tail)
        except DeployerError as exc:
            return refused(job, exc)
        return ImageResult(name, SUCCEEDED, ref, job.build_hash, digest)

    def refused(job: BuildJob, exc: DeployerError) -> ImageResult:
        return ImageResult(
            job.spec.name,
            FAILED,
            job.refs[0],
            job.build_hash,
            reason=exc.message,
            code=exc.code,
            hint=exc.hint,
        )

    results: dict[str, ImageResult] = {}
    waiting = list(plan.jobs)
    for job in waiting:
        status(job.spec.name, QUEUED)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running: dict[Future[ImageResult], BuildJob] = {}
        while waiting or running:
            for job in list(waiting):
                parents = [results.get(p) for p in job.spec.parents]
                broken = [r.name for r in parents if r is not None and r.status == FAILED]
                if broken:
                    waiting.remove(job)
                    results[job.spec.name] = ImageResult(
                        job.spec.name,
                        FAILED,
                        job.refs[0],
                        job.build_hash,
                        reason=f"not built: {', '.join(broken)} failed",
                    )
                    status(job.spec.name, FAILED)
                elif all(r is not None for r in parents) and len(running) < max(1, parallel):
                    waiting.remove(job)
                    running[pool.submit(one, job)] = job
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    result = future.result()
                except DeployerError as exc:
                    result = refused(job, exc)
                results[job.spec.name] = result
                status(job.spec.name, result.status)
    return [results[j.spec.name] for j in plan.jobs]
