"""The build manifest, build hashes and labels, and ``deployer up`` deploying what was built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from deployer import api
from deployer.errors import InputError
from deployer.imagebuild import catalogue, images, manifest, recorded_images
from deployer.imagebuild.runner import ImageResult
from deployer.protocol import RUN_PROTOCOL

WORKLOAD = """
deployment:
  name: mani
  location: westeurope
  registry: myacr.azurecr.io
  registry_auth: admin
{tag}
workloads:
  ipyparallel:
    engines: 1
"""


def _record(registry: str, tag: str) -> None:
    manifest.save(
        manifest.BuildManifest(
            registry,
            tag,
            {
                name: manifest.BuiltImage(
                    f"{registry}/{name}:{tag}", "sha256:" + "a" * 64, "h", "succeeded"
                )
                for name in ("ipcontroller", "notebook", "ipengine")
            },
        )
    )


def _images(plan: api.PlanResult) -> dict[str, str]:
    """Image per name (``ipengine``, ...) that ``deployer plan`` shows for ``file``."""
    assert plan.groups
    refs = [ref for g in plan.groups for ref in g.images]
    return {ref.rsplit("/", 1)[1].split(":")[0].split("@")[0]: ref for ref in refs}


def test_up_deploys_the_refs_build_recorded(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    file = workload_file(WORKLOAD.format(tag=""))
    _record("myacr.azurecr.io", "0.1.0-abc1234")
    refs = _images(api.plan(file, offline=True))
    # By digest: a rebuild that moves the tag does not change what this deployment runs.
    assert refs["ipengine"] == "myacr.azurecr.io/ipengine@sha256:" + "a" * 64
    assert refs["ipcontroller"] == "myacr.azurecr.io/ipcontroller@sha256:" + "a" * 64


def test_a_pinned_tag_wins_over_the_manifest(
    deployer_env: dict[str, str],
    workload_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _record("myacr.azurecr.io", "0.1.0-abc1234")
    pinned = workload_file(WORKLOAD.format(tag='  image_tag: "0.0.9"'), "pinned.yaml")
    assert _images(api.plan(pinned, offline=True))["ipengine"] == (
        "myacr.azurecr.io/ipengine:0.0.9"
    )
    plain = workload_file(WORKLOAD.format(tag=""), "plain.yaml")
    monkeypatch.setenv("DEPLOYER_IMAGE_TAG", "0.0.8")
    assert _images(api.plan(plain, offline=True))["ipengine"].endswith(":0.0.8")


def test_without_a_manifest_the_default_tag_is_used(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    _record("other.azurecr.io", "0.1.0-zzz")  # another registry's build is not used
    file = workload_file(WORKLOAD.format(tag=""))
    assert _images(api.plan(file, offline=True))["ipengine"] == ("myacr.azurecr.io/ipengine:latest")


def test_saving_keeps_images_of_earlier_builds(deployer_env: dict[str, str]) -> None:
    _record("r.example", "1")
    manifest.save(
        manifest.BuildManifest(
            "r.example",
            "2",
            {"ipengine": manifest.BuiltImage("r.example/ipengine:2", None, "h", "succeeded")},
        )
    )
    found = manifest.load("r.example")
    assert found is not None
    assert found.refs() == {
        "ipcontroller": "r.example/ipcontroller:1",
        "notebook": "r.example/notebook:1",
        "ipengine": "r.example/ipengine:2",
    }
    body = json.loads(manifest.path_for("r.example").read_text())
    assert body["version"] == manifest.VERSION


def test_the_janitors_image_keeps_its_run_protocol_and_older_records_read_as_none(
    deployer_env: dict[str, str],
) -> None:
    image = manifest.BuiltImage("r.example/deployer:1", None, "h", "succeeded", RUN_PROTOCOL)
    manifest.save(manifest.BuildManifest("r.example", "1", {"deployer": image}))
    found = manifest.load("r.example")
    assert found is not None and found.images["deployer"].run_protocol == RUN_PROTOCOL
    path = manifest.path_for("r.example")
    body = json.loads(path.read_text())
    del body["images"]["deployer"]["run_protocol"]  # a build from before it was recorded
    path.write_text(json.dumps(body))
    old = manifest.load("r.example")
    assert old is not None and old.images["deployer"].run_protocol is None


def test_a_corrupt_manifest_says_what_to_do(deployer_env: dict[str, str]) -> None:
    path = manifest.path_for("bad.example")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(InputError) as err:
        manifest.load("bad.example")
    assert "deployer build" in str(err.value.hint)


BY_NAME = catalogue.load(images.find_images_dir(Path(__file__).parent)).by_name


def test_build_hash_follows_context_and_parents() -> None:
    spec = BY_NAME["ipengine"]
    parents = {"base": "b1", "base-builder": "bb1"}
    one = images.build_hash("ctx", spec, parents)
    assert one == images.build_hash("ctx", spec, dict(parents))
    assert one != images.build_hash("ctx2", spec, parents)
    assert one != images.build_hash("ctx", spec, {**parents, "base": "b2"})


def test_target_builds_get_a_labelled_last_stage() -> None:
    text = images.labelled_dockerfile("FROM x AS builder\nFROM x\n", BY_NAME["base-builder"], "h1")
    assert text.decode().endswith(f'FROM builder\nLABEL {images.LABEL}="h1"\n')
    plain = images.labelled_dockerfile("FROM x\n", BY_NAME["ipengine"], "h2").decode()
    assert "FROM builder" not in plain and plain.endswith(f'LABEL {images.LABEL}="h2"\n')


def test_a_build_records_the_janitors_run_protocol_and_no_failed_image() -> None:
    results = [
        ImageResult("deployer", "skipped", "r.example/deployer:2", "h1", "sha256:" + "b" * 64),
        ImageResult("blast-worker", "succeeded", "r.example/blast-worker:2", "h2"),
        ImageResult("notebook", "failed", "r.example/notebook:2", "h3", reason="boom"),
    ]
    built = recorded_images(results)
    assert sorted(built) == ["blast-worker", "deployer"]
    assert built["deployer"].run_protocol == RUN_PROTOCOL
    assert built["blast-worker"].run_protocol is None
