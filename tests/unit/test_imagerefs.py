"""One image resolution for everything that deploys (deployer/imagerefs.py): the build
record's references, by digest when known, or a pinned tag; the run's workers, janitor and
autoscaler template, ``up``'s groups and ``db fetch``'s group all name the same ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aci_emulator import FakeArm, FakeRegistry
from deployer import api, imagerefs
from deployer.cli.main import app
from deployer.deployment_secrets import DeploymentSecrets
from deployer.imagebuild import manifest
from deployer.imagebuild.registry import RegistryError
from deployer.plan import storage_env
from deployer.plan.dbfetch import FetchArgs, fetch_group
from deployer.plan.janitor import janitor_group
from deployer.run.autoscaling import run_scaler
from deployer.run.groups import worker_groups
from deployer.settings import NO_OVERRIDES
from deployer.workload import load
from testbed.engine import REPO
from testbed.fake_arm import IDENTITY, REGISTRY_ADMIN, cluster_yaml

REGISTRY = "myacr.azurecr.io"
DIGEST = "sha256:" + "b" * 64
RUN_WORKLOAD = f"""
deployment:
  name: refs
  location: westeurope
  registry: {REGISTRY}
  registry_auth: identity
  storage_account: refsdata
  managed_identity: {IDENTITY}
  managed_identity_client_id: client
  subscription: 00000000-0000-0000-0000-000000000001
  resource_group: rg
workloads:
  blast:
    threads_per_worker: 1
    autoscale: {{min_workers: 0, max_workers: 4}}
    databases:
      - {{name: demo, bytes_to_cache: 100000000}}
"""


def _record(images: dict[str, str | None], tag: str = "0.2.0-abc1234") -> None:
    manifest.save(
        manifest.BuildManifest(
            REGISTRY,
            tag,
            {
                name: manifest.BuiltImage(f"{REGISTRY}/{name}:{tag}", digest, "h", "succeeded")
                for name, digest in images.items()
            },
        )
    )


@pytest.mark.parametrize(
    ("ref", "digest", "expected"),
    [
        ("r.io/blast-worker:1", DIGEST, f"r.io/blast-worker@{DIGEST}"),
        ("127.0.0.1:5000/team/ipengine:1", DIGEST, f"127.0.0.1:5000/team/ipengine@{DIGEST}"),
        ("r.io/blast-worker:1", None, "r.io/blast-worker:1"),
        (f"r.io/x@{DIGEST}", "sha256:" + "c" * 64, f"r.io/x@{DIGEST}"),
    ],
)
def test_a_known_digest_replaces_the_tag(ref: str, digest: str | None, expected: str) -> None:
    assert imagerefs.by_digest(ref, digest) == expected


def test_every_group_of_a_run_names_the_recorded_references(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    """The bug of issue 19: the run's groups named ``blast-worker:latest``."""
    _record({"blast-worker": DIGEST, "deployer": None})
    workload = load(workload_file(RUN_WORKLOAD))
    settings = imagerefs.deploy_settings(workload, NO_OVERRIDES, need_azure=True)
    secrets = DeploymentSecrets.generate("refs")
    workers = worker_groups(workload, settings, secrets, "r1", 2, exit_when_idle="9s", queue="q")
    scaler = run_scaler(workload, settings, secrets, "r1", "q")
    assert scaler is not None
    janitor = janitor_group(settings, storage_env(settings, workload), run_id="r1")
    fetch = fetch_group(settings, storage_env(settings, workload), FetchArgs("demo"))
    worker_ref = f"{REGISTRY}/blast-worker@{DIGEST}"
    groups = [*workers, scaler.template, fetch]
    assert {c.image for g in groups for c in g.containers} == {worker_ref}
    assert [c.image for c in janitor.containers] == [f"{REGISTRY}/deployer:0.2.0-abc1234"]


def test_plan_shows_each_exact_reference_and_its_groups(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    _record({"ipcontroller": DIGEST, "ipengine": DIGEST, "notebook": None})
    file = workload_file(
        f"deployment:\n  name: refs\n  registry: {REGISTRY}\n  registry_auth: admin\n"
        "  location: westeurope\nworkloads:\n  ipyparallel:\n    engines: 2\n"
    )
    rows = {row.ref: row.groups for row in api.plan(file, offline=True).images}
    assert rows == {
        f"{REGISTRY}/ipcontroller@{DIGEST}": ["refs-head"],
        f"{REGISTRY}/ipengine@{DIGEST}": ["refs-engines-1"],
        f"{REGISTRY}/notebook:0.2.0-abc1234": ["refs-head"],
    }


def test_a_pinned_tag_is_deployed_as_pinned(
    deployer_env: dict[str, str],
    workload_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _record({"blast-worker": DIGEST, "deployer": DIGEST})
    monkeypatch.setenv("DEPLOYER_IMAGE_TAG", "7.7")
    workload = load(workload_file(RUN_WORKLOAD))
    settings = imagerefs.deploy_settings(workload, NO_OVERRIDES, need_azure=True)
    assert settings.images == ()
    assert imagerefs.reference(settings, "blast-worker") == f"{REGISTRY}/blast-worker:7.7"


def test_only_the_resolution_module_resolves_settings_for_groups() -> None:
    """Any other caller of resolve_settings would build groups without the build record."""
    callers = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "deployer").rglob("*.py")
        if re.search(r"\bresolve_settings\(", path.read_text(encoding="utf-8"))
    )
    assert callers == ["deployer/imagerefs.py", "deployer/settings.py"]


def test_the_examples_pin_no_image_tag() -> None:
    """A pinned tag in an example overrides the build record, so `up` of it would deploy a
    tag nobody pushed."""
    pinned = [
        path.name
        for path in sorted((REPO / "examples").glob("*.yaml"))
        if re.search(r"^\s*image_tag:", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert pinned == []


# --- the registry holds them: checked before anything is created ------------------------


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("r.io/blast-worker:1.0", ("r.io", "blast-worker", "1.0")),
        (f"127.0.0.1:5000/team/x@{DIGEST}", ("127.0.0.1:5000", "team/x", DIGEST)),
        ("r.io/x", ("r.io", "x", "latest")),
    ],
)
def test_references_split_into_registry_repository_and_tag_or_digest(
    ref: str, parts: tuple[str, str, str]
) -> None:
    assert imagerefs.split_ref(ref) == parts


def test_up_of_a_missing_image_refuses_before_any_put_naming_the_image_and_build(
    fake_arm: FakeArm,
    fake_registry: FakeRegistry,
    deployer_arm: dict[str, str],
    workload_file: Callable[..., Path],
) -> None:
    path = workload_file(cluster_yaml(engines=4))
    result = CliRunner().invoke(app, ["up", str(path), "--image-tag", "9.9"])
    assert result.exit_code == 1, result.output
    # The command's header, then one line and its hint: no traceback.
    header, error, hint = result.stderr.strip().splitlines()
    assert header == f"up {path}"
    assert "aciresearch.azurecr.io/" in error and ":9.9 " in error, error
    assert f"deployer build {path}" in hint
    assert fake_arm.calls("PUT") == []
    # It asked the registry, with an ACR token for the signed-in user (managed identity).
    paths = [p for _, p in fake_registry.requests]
    assert "/oauth2/exchange" in paths and any(p.endswith("/manifests/9.9") for p in paths)


def test_plan_says_which_images_the_registry_holds_and_an_offline_plan_did_not_check(
    deployer_arm: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(cluster_yaml(engines=4).replace('"1.0"', '"1.1"'))
    found = api.plan(path)
    assert found.images and all(row.found for row in found.images)
    missing = api.plan(path, api.Overrides(image_tag="9.9"))
    assert {row.found for row in missing.images} == {False}
    assert any("is not in registry" in n and "deployer build" in n for n in missing.notes)
    offline = api.plan(path, offline=True)
    assert {row.found for row in offline.images} == {None}
    assert any("did not check" in n for n in offline.notes)
    unbuilt = api.plan(workload_file(cluster_yaml(engines=4).replace('image_tag: "1.0"', "")))
    assert any("no `deployer build` is recorded" in n for n in unbuilt.notes)
    assert not any("no `deployer build`" in n for n in found.notes), "a pinned tag needs none"


def test_the_check_uses_the_admin_credentials_the_groups_pull_with(
    fake_arm: FakeArm,
    deployer_arm: dict[str, str],
    workload_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = workload_file(
        cluster_yaml(engines=4).replace(
            "managed_identity:", "registry_auth: admin\n      managed_identity:"
        )
    )
    monkeypatch.setenv("DEPLOYER_REGISTRY_USERNAME", REGISTRY_ADMIN[0])
    monkeypatch.setenv("DEPLOYER_REGISTRY_PASSWORD", "not-the-password")
    with pytest.raises(RegistryError) as err:
        api.up(path)
    assert err.value.code == "RegistryAuthenticationFailed"
    assert fake_arm.calls("PUT") == []
    monkeypatch.setenv("DEPLOYER_REGISTRY_PASSWORD", REGISTRY_ADMIN[1])
    assert all(g.ready for g in api.up(path).groups)


def test_a_deployment_keeps_its_digests_when_a_rebuild_moves_the_tag_until_the_next_up(
    fake_arm: FakeArm,
    fake_registry: FakeRegistry,
    deployer_arm: dict[str, str],
    workload_file: Callable[..., Path],
) -> None:
    text = cluster_yaml(engines=4).replace("aciresearch.azurecr.io", REGISTRY)
    path = workload_file(text.replace('      image_tag: "1.0"\n', ""))
    names = ("ipcontroller", "notebook", "ipengine", "blast-worker")

    def build(revision: str) -> dict[str, str]:
        """Push every image at one tag (moving it) and record it, as `deployer build` does."""
        for name in names:
            fake_registry.push(name, "0.3.0", {"revision": revision})
        _record({name: fake_registry.digest(name, "0.3.0") for name in names}, tag="0.3.0")
        return {name: f"{REGISTRY}/{name}@{fake_registry.digest(name, '0.3.0')}" for name in names}

    def running() -> set[str]:
        return {
            c["properties"]["image"]
            for group in fake_arm.aci.groups.values()
            for c in group.body["properties"]["containers"]
        }

    first = build("a")
    api.up(path)
    assert running() == set(first.values())
    second = build("b")
    assert set(second.values()).isdisjoint(first.values()), "the rebuild moved the tag"
    assert running() == set(first.values()), "a rebuild changes nothing that runs"
    api.up(path)
    assert running() == set(second.values())
