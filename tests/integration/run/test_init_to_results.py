"""From an empty fake subscription to merged results, with one workload file and nothing in
the environment but the sign-in (the fake's token) and the fake's endpoint:
``deployer init``, ``deployer build``, ``deployer run``; a second ``init`` sends no PUT;
``destroy`` leaves nothing ``init`` made and keeps the resource group the user made.

The fake ARM serves every provider; its knobs stand in for Azure's data planes: storage
accounts report a real Azurite's endpoints and key (``arm.storage.azurite``), registries report
a registry data plane on loopback (``arm.registries.data_plane``: ACR's token exchange in front
of a real ``docker-registry``) that the fake ACR's runs push real images to, and container
groups run as real containers (the strict emulator), each pulling exactly the image its body
names from that registry, as the group's managed identity.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from azure.mgmt.resource.resources import ResourceManagementClient
from blast_client.demo import DemoSpec, generate

from aci_emulator import FAKE_TOKEN, EmulatorSettings, FakeArm, FakeRegistry, aci_client
from aci_emulator.providers.acr.push import LocalImagePusher
from aci_emulator.registry import LocalRegistry
from deployer.arm import management_client
from deployer.bootstrap.plan import INIT_TAG, PROVIDERS
from deployer.imagebuild import manifest
from deployer.imagerefs import recorded
from deployer.workload import load
from testbed.engine import IMAGE_PREFIX, REPO, TAG
from testbed.fake_arm import DEPLOYER_ENV_VARS, REGISTRY_ADMIN
from testbed.registry import IDENTITY_LOGIN, PushedRegistry
from testbed.run_stack import BIN, DEMO_DB, DIRECT_BLASTN, RunStack, open_run_stack, write

pytestmark = pytest.mark.docker

THEIRS = "lab-shared"
"""The resource group the user made before ``init``: ``init`` uses it, ``destroy`` keeps it."""
WORKLOAD = f"""\
# One BLAST run from an empty subscription: `deployer init` writes the names it picks below.
deployment:
  name: e2e
  location: westeurope   # near the data
  resource_group: {THEIRS}   # made by the lab's administrator

workloads:
  blast:
    workers: 1
    threads_per_worker: 1
    databases:
      - name: {DEMO_DB}   # its size comes from its manifest in storage
"""
RUN_IMAGES = ("--image", "blast-worker", "--image", "deployer")
"""What a run's groups run: the workers and the janitor."""
PACING = {
    "DEPLOYER_RUN_EXIT_WHEN_IDLE": "15s",
    "DEPLOYER_JANITOR_INTERVAL": "1",
    "DEPLOYER_POLL_INTERVAL": "0.5",
}
"""How often the deployer and its groups look (not where, nor who): a short test."""


@contextlib.contextmanager
def empty_subscription(root: Path, real: LocalRegistry) -> Iterator[tuple[RunStack, FakeRegistry]]:
    """The strict emulator as an empty subscription (no provider registered, no resource
    group), Azurite behind its storage accounts, and ACR's data plane behind its registries:
    a fake token exchange in front of the real registry ``real``, which the fake ACR's runs
    push the local builds of their contexts to and every group pulls from. (The session's
    registry: its layers are there already, so a push moves manifests, not layers.)"""
    with contextlib.ExitStack() as stack:
        registry = FakeRegistry()
        registry.upstream = (real.server, REGISTRY_ADMIN)
        registry.start()
        stack.callback(registry.stop)
        settings = EmulatorSettings(
            image_prefix=IMAGE_PREFIX,
            image_tag=TAG,
            restart_delay=0.2,
            registry=real.server,
            registry_hosts=(registry.server,),
            identity_login=IDENTITY_LOGIN,
        )
        arm = stack.enter_context(FakeArm(emulate=settings, listen_for_containers=True))
        arm.resources.require_registration = True
        arm.resources.require_groups = True
        arm.resources.registration_delay = 0.1
        run = stack.enter_context(open_run_stack(arm, {}, root, demo_db=False))
        stack.callback(arm.acr.join)
        # Every account is this Azurite (one connection string works on the host and in
        # every group); every registry's login server is this data plane.
        arm.storage.azurite = run.connection_string
        arm.acr.storage = run.connection_string
        arm.acr.registry = registry
        arm.acr.pusher = LocalImagePusher(
            docker.from_env(), real.server, REGISTRY_ADMIN, IMAGE_PREFIX
        )
        arm.registries.data_plane = registry.server
        yield run, registry


def sign_in_only(arm: FakeArm, root: Path) -> dict[str, str]:
    """The subprocesses' whole environment: the sign-in and the fake's endpoint, plus what
    any process needs (PATH, a fresh HOME, the no-egress guard) and the pacing."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root / "home"),
        # tests/conftest.py: DefaultAzureCredential's metadata probe stays on loopback.
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"],
        "DEPLOYER_ARM_ENDPOINT": arm.url,
        "DEPLOYER_ACCESS_TOKEN": FAKE_TOKEN,
        **PACING,
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    assert not set(DEPLOYER_ENV_VARS) & set(env) - {
        "DEPLOYER_ARM_ENDPOINT",
        "DEPLOYER_ACCESS_TOKEN",
    }
    return env


def deployer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``deployer ARGS`` in the checkout (``build`` finds images/ there)."""
    return subprocess.run(
        [str(BIN / "deployer"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
    )


def test_init_build_run_from_an_empty_subscription_then_init_again_and_destroy(
    tmp_path: Path, pushed_images: PushedRegistry
) -> None:
    """init in the user's resource group, build, run one small search on 1 worker; init
    again (no PUT); destroy (nothing of init's left, the user's group kept)."""
    with empty_subscription(tmp_path, pushed_images.registry) as (stack, registry):
        arm = stack.arm
        sub = arm.subscription_id
        with management_client(
            ResourceManagementClient, sub, endpoint=arm.url, credential=arm.credential()
        ) as resources:
            resources.resource_groups.create_or_update(
                THEIRS, {"location": "westeurope", "tags": {"owner": "lab"}}
            )
        workload = write(tmp_path / "e2e.yaml", WORKLOAD)
        env = sign_in_only(arm, tmp_path)

        # init: the plan, then everything, with the names written into the file.
        init = deployer(env, "init", str(workload), "--subscription", sub, "--yes")
        assert init.returncode == 0, init.stderr[-3000:]
        d = load(workload).deployment
        assert d.subscription == sub and d.resource_group == THEIRS
        assert d.storage_account and d.managed_identity and d.managed_identity_client_id
        assert d.registry == registry.server
        text = workload.read_text()
        assert "# near the data" in text and "# made by the lab's administrator" in text
        for namespace in PROVIDERS:
            assert arm.resources.registration_state(sub, namespace) == "Registered"
        assert len(arm.role_assignments.assignments) == 9

        # build: ACR runs in the registry init made, pushing there; the images a run needs
        # (and their parents: every image is built by tests/integration/imagebuild).
        built = deployer(env, "build", str(workload), *RUN_IMAGES)
        assert built.returncode == 0, built.stderr[-3000:]
        assert arm.calls(operation_id="Registries_ScheduleRun"), "build ran nothing in ACR"
        (record_file,) = (tmp_path / "home").rglob("builds/*.json")
        record = manifest.load(registry.server, record_file)
        assert record is not None
        refs = dict(recorded(record))
        assert {"blast-worker", "deployer"} <= set(refs), refs
        assert all("@sha256:" in ref for ref in refs.values()), refs

        # The data: the demo database, into the account init made (Azurite behind it).
        stack.upload_demo_db()

        # run: merged results, byte-identical to one direct blastn of the whole file.
        fasta = generate(DemoSpec(name=DEMO_DB, queries=3, decoys=1)).queries
        queries = write(tmp_path / "queries.fa", fasta)
        out = tmp_path / "out"
        ran = deployer(env, "run", str(workload), str(queries), "--db", DEMO_DB, "--out", str(out))
        assert ran.returncode == 0, ran.stderr[-3000:]
        # Today's bug was groups naming `:latest`: each group ran exactly what build recorded,
        # pulled from the real registry (a strict emulator runs nothing else).
        bodies = [c.body for c in arm.calls(method="PUT", path="/containerGroups/") if c.body]
        images = {c["properties"]["image"] for b in bodies for c in b["properties"]["containers"]}
        assert images == {refs["blast-worker"], refs["deployer"]}, (images, refs)
        merged = (out / "results.6.tsv").read_bytes()
        direct = stack.in_worker_image(f"import sys; sys.argv[1:] = [{fasta!r}]\n" + DIRECT_BLASTN)
        assert merged and merged == direct, "merged outfmt 6 differs from one direct blastn"
        with aci_client(arm) as aci:
            assert list(aci.container_groups.list_by_resource_group(THEIRS)) == []
        assert stack.containers() == [], "containers left after the run"

        # The other run commands take a run id only, and find the run's account and scope.
        listed = deployer(env, "run", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr[-3000:]
        (run_id,) = [r["run_id"] for r in json.loads(listed.stdout)["data"]["runs"]]
        status = deployer(env, "run", "status", run_id, "--output", "json")
        assert status.returncode == 0, status.stderr[-3000:]
        progress = json.loads(status.stdout)["data"]
        assert progress["run"]["status"] == "succeeded", status.stdout
        assert progress["counts"]["done"] == len(progress["run"]["batches"]) > 0, status.stdout

        # A second init changes nothing: no PUT at all, the file as it was.
        before = workload.read_text()
        arm.clear_calls()
        again = deployer(env, "init", str(workload), "--yes")
        assert again.returncode == 0, again.stderr[-3000:]
        assert arm.calls(method="PUT") == [], [c.path for c in arm.calls(method="PUT")]
        assert arm.calls(method="POST", path="/register") == []
        assert workload.read_text() == before

        # destroy: nothing init made is left; the user's group stays.
        gone = deployer(env, "destroy", str(workload), "--yes")
        assert gone.returncode == 0, gone.stderr[-3000:]
        arm.complete_operations()
        with management_client(
            ResourceManagementClient, sub, endpoint=arm.url, credential=arm.credential()
        ) as resources:
            groups = {g.name: g.tags for g in resources.resource_groups.list()}
        assert groups == {THEIRS: {"owner": "lab"}}, groups
        left = [r for p in arm.providers for r in p.resources_in(sub, THEIRS)]
        assert left == [], left
        assert not arm.storage.accounts.in_subscription(sub)
        assert not arm.registries.registries.in_subscription(sub)
        assert not arm.identities.identities.in_subscription(sub)
        assert arm.role_assignments.assignments == {}
        tagged = [
            r
            for p in arm.providers
            for t in p.tables()
            for r in t.in_subscription(sub)
            if r.tags.get(INIT_TAG[0]) == INIT_TAG[1]
        ]
        assert tagged == []
