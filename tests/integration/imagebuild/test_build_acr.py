"""``deployer build`` against the fake ACR: real SDK, real Azurite blobs, spec-checked bodies."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

from aci_emulator.azurite import AzuriteContainer
from aci_emulator.providers.acr.push import LocalImagePusher
from aci_emulator.registry import LocalRegistry
from deployer import imagebuild
from deployer.cli.main import app
from deployer.imagebuild import images, manifest, runner
from deployer.imagebuild.registry import RegistryClient
from deployer.settings import Overrides
from testbed.engine import IMAGE_PREFIX, TAG
from testbed.imagebuild import CHILD_DOCKERFILE, FakeAcr


def _build(
    acr: FakeAcr,
    file: Path,
    images_dir: Path,
    tag: str,
    *,
    force: bool = False,
    names: tuple[str, ...] = ("ipengine",),
) -> tuple[imagebuild.BuildResult, list[tuple[str, str]], list[tuple[str, str]]]:
    statuses: list[tuple[str, str]] = []
    lines: list[tuple[str, str]] = []
    result = imagebuild.build(
        file,
        Overrides(),
        imagebuild.BuildOptions(
            images=list(names),
            images_dir=images_dir,
            registry_name=acr.name,
            tag=tag,
            force=force,
        ),
        on_status=lambda n, s: statuses.append((n, s)),
        on_line=lambda n, text: lines.append((n, text)),
    )
    return result, statuses, lines


def test_build_runs_in_acr_with_streamed_logs_and_parents_first(
    fake_acr: FakeAcr,
    azurite: AzuriteContainer,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images()
    result, statuses, lines = _build(
        fake_acr, build_workload(fake_acr.server), images_dir, "1.0-abc"
    )

    assert [(i.name, i.status) for i in result.images] == [
        ("base-builder", "succeeded"),
        ("base", "succeeded"),
        ("ipengine", "succeeded"),
    ]
    assert all(c.status < 400 for c in fake_acr.arm.calls()), [
        (c.path, c.status, c.response) for c in fake_acr.arm.calls() if c.status >= 400
    ]
    # Progress: queued, running, succeeded per image.
    assert [s for n, s in statuses if n == "ipengine"] == ["queued", "running", "succeeded"]
    # Each image's log arrived line by line, from its own run.
    ipengine_lines = [text for n, text in lines if n == "ipengine"]
    assert "Step 3/4 : COPY hello.txt /hello.txt" in ipengine_lines
    assert ipengine_lines[-1].endswith("was successful")

    runs = fake_acr.arm.calls(operation_id="Registries_ScheduleRun")
    bodies = {c.body["imageNames"][0].rpartition(":")[0].rpartition("/")[2]: c.body for c in runs}
    child = bodies["ipengine"]
    server = fake_acr.server
    assert child["type"] == "DockerBuildRequest"
    assert child["imageNames"][0] == f"{server}/ipengine:1.0-abc"
    assert child["imageNames"][1].startswith(f"{server}/ipengine:ctx-")
    assert child["isPushEnabled"] is True
    assert child["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert child["timeout"] == 3600
    args = {a["name"]: a["value"] for a in child["arguments"]}
    assert args["BASE_IMAGE"] == f"{server}/base:1.0-abc"
    assert args["BUILDER_IMAGE"] == f"{server}/base-builder:1.0-abc"
    base_args = {a["name"]: a["value"] for a in bodies["base"]["arguments"]}
    assert base_args["BASE_IMAGE"] == "debian:trixie-slim"

    # The child was scheduled only after both parents' runs had finished.
    finished = {r.request["imageNames"][0]: r.finish_time for r in fake_acr.arm.acr.runs.values()}
    child_call = next(c for c in runs if c.body is child)
    parent_calls = [c for c in runs if c.body is not child]
    assert all(p.end < child_call.start for p in parent_calls)
    assert all(finished.values())

    # The uploaded source is the packed context: .dockerignore applied, label added.
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    container, _, blob = child["sourceLocation"].partition("/")
    data = blobs.get_blob_client(container, blob).download_blob().readall()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        names = set(tar.getnames())
        dockerfile = tar.extractfile(images.GENERATED_DOCKERFILE)
        assert dockerfile is not None
        generated = dockerfile.read().decode()
    assert {"Dockerfile", "hello.txt", images.GENERATED_DOCKERFILE} <= names
    assert "notes.md" not in names
    ipengine = next(i for i in result.images if i.name == "ipengine")
    assert f'LABEL {images.LABEL}="{ipengine.build_hash}"' in generated

    # The registry holds the image with its hash label; the manifest names it.
    assert fake_acr.registry.labels("ipengine", "1.0-abc") == {images.LABEL: ipengine.build_hash}
    built = manifest.load(server)
    assert built is not None
    assert built.refs()["ipengine"] == f"{server}/ipengine:1.0-abc"
    assert built.images["ipengine"].digest and built.images["ipengine"].digest.startswith("sha256:")


def test_unchanged_contexts_are_skipped_and_retagged_changed_ones_rebuilt(
    fake_acr: FakeAcr,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images()
    file = build_workload(fake_acr.server)
    _build(fake_acr, file, images_dir, "1.0-first")
    fake_acr.arm.clear_calls()

    again, statuses, _ = _build(fake_acr, file, images_dir, "1.0-second")
    assert {i.status for i in again.images} == {"skipped"}
    assert fake_acr.arm.calls(operation_id="Registries_ScheduleRun") == []
    assert ("ipengine", "running") not in statuses
    # The skipped image now carries this build's tag too, so up can deploy it.
    assert ("ipengine", "1.0-second") in fake_acr.registry.manifests
    assert manifest.load(fake_acr.server).refs()["ipengine"].endswith(":1.0-second")  # type: ignore[union-attr]

    # One changed byte in ipengine's context rebuilds ipengine only.
    (images_dir / "ipengine" / "hello.txt").write_text("ipengine: hellO\n")
    third, _, _ = _build(fake_acr, file, images_dir, "1.0-third")
    assert [(i.name, i.status) for i in third.images] == [
        ("base-builder", "skipped"),
        ("base", "skipped"),
        ("ipengine", "succeeded"),
    ]
    # A changed ignored file changes nothing.
    (images_dir / "ipengine" / "notes.md").write_text("still ignored")
    fourth, _, _ = _build(fake_acr, file, images_dir, "1.0-fourth")
    assert {i.status for i in fourth.images} == {"skipped"}

    # --force rebuilds everything.
    forced, _, _ = _build(fake_acr, file, images_dir, "1.0-fifth", force=True)
    assert {i.status for i in forced.images} == {"succeeded"}


def test_changed_base_rebuilds_its_children(
    fake_acr: FakeAcr,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images()
    file = build_workload(fake_acr.server)
    _build(fake_acr, file, images_dir, "1.0-a")
    base = images_dir / "base" / "Dockerfile"
    base.write_text(base.read_text() + "LABEL changed=yes\n")
    result, _, _ = _build(fake_acr, file, images_dir, "1.0-b")
    assert {i.name: i.status for i in result.images} == {
        "base-builder": "succeeded",
        "base": "succeeded",
        "ipengine": "succeeded",
    }


def test_failed_build_exits_non_zero_with_the_log_tail_and_others_finish(
    fake_acr: FakeAcr,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images(CHILD_DOCKERFILE + "RUN exit 3\n")
    # notebook stays good: a failure must not stop the builds that do not depend on it.
    (images_dir / "notebook" / "Dockerfile").write_text(CHILD_DOCKERFILE)
    file = build_workload(fake_acr.server)
    result = CliRunner().invoke(
        app,
        [
            "build",
            str(file),
            "--images-dir",
            str(images_dir),
            "--registry-name",
            fake_acr.name,
            "-i",
            "ipengine",
            "-i",
            "notebook",
        ],
    )
    assert result.exit_code == 1, result.output
    text = result.output
    print(text)  # shown when an assertion below fails
    assert "1 of 4 images failed (ipengine)" in text
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in text
    assert "ACR run" in text and "Failed" in text
    # Log lines are prefixed with their image, and notebook still succeeded.
    assert "ipengine | Step 4/5 : RUN exit 3" in text
    assert "notebook | Step 3/4 : COPY hello.txt /hello.txt" in text
    built = manifest.load(fake_acr.server)
    assert built is not None and "notebook" in built.images and "ipengine" not in built.images


def test_json_output_of_a_successful_build(
    fake_acr: FakeAcr,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images()
    file = build_workload(fake_acr.server)
    result = CliRunner().invoke(
        app,
        [
            "build",
            str(file),
            "--images-dir",
            str(images_dir),
            "--registry-name",
            fake_acr.name,
            "-i",
            "blast-worker",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{") :])
    assert body["ok"] is True
    assert [i["name"] for i in body["data"]["images"]] == ["base-builder", "base", "blast-worker"]


def test_fake_acr_pushes_the_local_build_of_the_same_context_to_a_real_registry(
    fake_acr: FakeAcr,
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    """With a pusher, a run pushes the local image tagged ``ctx-<build hash>`` to the real
    registry behind the fake's data plane (the digest the build records is the one there);
    a context with no local build fails its run, naming the tag and ``images/build.sh``."""
    images_dir = mini_images()
    hashes = runner.build_hashes(images_dir, "ipengine")
    client = docker.from_env()
    prefix = f"acr-push-test-{uuid.uuid4().hex[:8]}"
    tiny = client.images.get(f"{IMAGE_PREFIX}/blast-client:{TAG}")  # 84 kB: a quick push
    login = ("pusher", "pusher-password-3c1d")
    local = [
        f"{prefix}/{name}:{images.hash_tag(hashes[name])}" for name in ("base-builder", "base")
    ]
    with LocalRegistry(dict([login])) as real:
        fake_acr.registry.upstream = (real.server, login)
        fake_acr.arm.acr.pusher = LocalImagePusher(client, real.server, login, prefix)
        try:
            for ref in local:  # ipengine has no local build
                tiny.tag(*ref.split(":"))
            result, _, lines = _build(
                fake_acr, build_workload(fake_acr.server), images_dir, "1.0-abc"
            )
            fake_acr.arm.acr.join()
            in_real = RegistryClient(real.server, *login)
            through_acr = {n: in_real.digest(n, "1.0-abc") for n in ("base-builder", "base")}
            missing = in_real.digest("ipengine", "1.0-abc")
            config = requests.get(
                f"http://{real.server}/v2/base/manifests/1.0-abc",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                auth=login,
                timeout=30,
            ).json()["config"]["digest"]
        finally:
            for ref in local:
                client.images.remove(ref)

    assert [(i.name, i.status) for i in result.images] == [
        ("base-builder", "succeeded"),
        ("base", "succeeded"),
        ("ipengine", "failed"),
    ]
    for image in result.images[:2]:
        assert image.digest and image.digest == through_acr[image.name], image
    assert missing is None
    assert config == tiny.id, "the registry holds another image than the local build"
    failure = "\n".join(text for n, text in lines if n == "ipengine")
    ipengine_tag = images.hash_tag(hashes["ipengine"])
    assert f"{prefix}/ipengine:{{1.0-abc,{ipengine_tag}}}" in failure, failure
    assert "images/build.sh ipengine" in failure, failure
