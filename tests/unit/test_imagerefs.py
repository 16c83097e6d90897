"""One image resolution for everything that deploys (deployer/imagerefs.py): the build
record's references, by digest when known, or a pinned tag; the run's workers, janitor and
autoscaler template, ``up``'s groups and ``db fetch``'s group all name the same ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from deployer import api, imagerefs
from deployer.deployment_secrets import DeploymentSecrets
from deployer.imagebuild import manifest
from deployer.plan import storage_env
from deployer.plan.dbfetch import FetchArgs, fetch_group
from deployer.plan.janitor import janitor_group
from deployer.run.autoscaling import run_scaler
from deployer.run.groups import worker_groups
from deployer.settings import NO_OVERRIDES
from deployer.workload import load
from testbed.engine import REPO
from testbed.fake_arm import IDENTITY

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
