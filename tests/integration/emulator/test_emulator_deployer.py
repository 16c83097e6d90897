"""The deployer CLI against the local ACI emulator in strict mode: an IPython cluster of real
containers pulled from a real registry, and what the user sees when the registry refuses
the credentials."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from aci_emulator import FakeArm
from aci_emulator.runtime import LABEL_INSTANCE
from deployer.imagebuild import manifest
from testbed.cluster import registered_engines, wait_until
from testbed.engine import IMAGE_PREFIX, REPO, TAG
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, REGISTRY_ADMIN, registry_with_images
from testbed.registry import PushedRegistry

EXAMPLE = REPO / "examples" / "ipyparallel-small.yaml"


def deployer(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the deployer CLI as a user would; fail with its output when it fails."""
    result = attempt(env, *args, timeout=timeout)
    assert result.returncode == 0, f"deployer {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def attempt(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the deployer CLI as a user would, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "deployer.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def payload(stdout: str) -> Any:
    """The data of a successful ``--output json`` envelope."""
    envelope = json.loads(stdout)
    assert envelope["ok"] is True
    # "data" is the agreed key (TEAM.md); "result" until the CLI convention lands here.
    return envelope["data"] if "data" in envelope else envelope["result"]


def test_deployer_up_status_logs_down_on_the_emulator(
    strict_emulator: FakeArm,
    emulator_deployer_env: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """``deployer up`` of the example cluster runs real ipcontroller/ipengine containers,
    pulled by their exact references from the registry, whose engines register; status,
    logs and down work through the same ARM API."""
    env = {**emulator_deployer_env, "DEPLOYER_READY_TIMEOUT": "240"}
    deployer(env, "up", str(EXAMPLE), "-o", "json")

    head = strict_emulator.aci.docker_ids(DEPLOYER_RESOURCE_GROUP, "ipp-small-head")
    controller = docker_client.containers.get(head["ipcontroller"])
    wait_until(lambda: len(registered_engines(controller)) == 3, 180, "3 engines to register")

    def status() -> dict[str, Any]:
        out = payload(deployer(env, "status", str(EXAMPLE), "-o", "json").stdout)
        return {g["name"]: g for g in out["groups"]}

    # The emulator runs the readiness probes; early failures (engines still starting)
    # age out once the probes pass.
    wait_until(
        lambda: all(c["ready"] for g in status().values() for c in g["containers"]),
        120,
        "every container to be ready",
        interval=5,
    )
    groups = status()
    assert set(groups) == {"ipp-small-head", "ipp-small-engines-1"}
    engines = groups["ipp-small-engines-1"]["containers"]
    assert len(engines) == 3
    assert all(c["state"] == "Running" for c in engines)
    # The label ends in a hash of subscription, resource group and deployment.
    assert re.fullmatch(
        r"ipp-small-head-[0-9a-f]{6}\.eastus\.azurecontainer\.io", groups["ipp-small-head"]["fqdn"]
    )
    # As `az container show`: the instance view's state, not ARM's provisioning state.
    assert {g["state"] for g in groups.values()} == {"Running"}
    assert {g["provisioning_state"] for g in groups.values()} == {"Succeeded"}
    table = deployer({**env, "COLUMNS": "200"}, "status", str(EXAMPLE)).stdout
    rows = [line for line in table.splitlines() if "ipp-small-" in line]
    assert len(rows) == 2 and all("Running" in row for row in rows), table
    assert "Succeeded" not in table

    logs = deployer(
        env, "logs", "ipp-small-engines-1", "ipengine-1", "--file", str(EXAMPLE), "--tail", "200"
    ).stdout
    assert logs.strip(), "the engine printed nothing"

    down = payload(deployer(env, "down", str(EXAMPLE), "-o", "json").stdout)
    assert sorted(down["deleted"]) == ["ipp-small-engines-1", "ipp-small-head"]
    left = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={strict_emulator.emulator.instance_id}"}
    )
    assert left == []


def _refused_up(env: dict[str, str], arm: FakeArm, client: docker.DockerClient) -> list[str]:
    """``deployer up`` of the example, which must fail: exit 1, one line and its hint on
    stderr, no traceback, and no group nor container left. Returns stderr's lines."""
    result = attempt(env, "up", str(EXAMPLE))
    assert result.returncode == 1, result.stdout + result.stderr
    # stderr: the progress (title, each group's steps), then the error and its hint.
    out = result.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(out) if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    lines = out[errors[0] :]
    assert len(lines) == 2 and lines[1].startswith("  hint: "), result.stderr
    assert arm.aci.resources_in(arm.subscription_id, DEPLOYER_RESOURCE_GROUP) == []
    left = client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={arm.emulator.instance_id}"}
    )
    assert left == []
    return lines


def test_wrong_registry_credentials_are_refused_before_anything_is_created(
    strict_emulator: FakeArm,
    emulator_deployer_env: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """A wrong admin password, as a user meets it: the deployer's own check of the images
    (the registry's v2 API with the groups' credentials) refuses it before any PUT."""
    env = {**emulator_deployer_env, "DEPLOYER_REGISTRY_PASSWORD": "not-the-password"}
    lines = _refused_up(env, strict_emulator, docker_client)
    assert "RegistryAuthenticationFailed" in lines[0], lines
    assert strict_emulator.calls(method="PUT") == []


def test_when_aci_cannot_pull_with_the_group_s_credentials_up_reports_aci_s_error(
    strict_emulator: FakeArm,
    pushed_images: PushedRegistry,
    emulator_deployer_env: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """The check passed but ACI's pull is refused (on Azure: a managed identity without
    AcrPull, whose pull only ACI tries, or a password renewed after the check). Here the
    deployer checks a registry that takes the password while the emulator's registry does
    not: ACI's ``InaccessibleImage`` reaches the user in one line, and nothing is left."""
    # The images are there: only the credentials can make the pull fail.
    assert {"ipcontroller", "ipengine"} <= set(pushed_images.digests)
    renewed = "renewed-password-4b1c"
    with registry_with_images((TAG,)) as checked:
        checked.admins[REGISTRY_ADMIN[0]] = renewed
        env = {
            **emulator_deployer_env,
            "DEPLOYER_REGISTRY_ENDPOINT": checked.server,
            "DEPLOYER_REGISTRY_PASSWORD": renewed,
        }
        lines = _refused_up(env, strict_emulator, docker_client)
    assert "[InaccessibleImage]" in lines[0], lines
    assert f"The image 'aciresearch.azurecr.io/ipcontroller:{TAG}'" in lines[0] or (
        f"The image 'aciresearch.azurecr.io/ipengine:{TAG}'" in lines[0]
    ), lines
    assert "AcrPull" in lines[1], lines
    refused = strict_emulator.calls(method="PUT")
    assert refused and {c.status for c in refused} == {400}


CLUSTER_IMAGES = ("ipcontroller", "ipengine")
THIN_DOCKERFILE = """\
FROM {image}
LABEL org.aci-research.test="build-then-up"
"""


def thin_images(root: Path) -> Path:
    """An ``images/`` tree whose cluster images are this build's (``FROM IMAGE_PREFIX/<name>:
    TAG`` plus a label), so ``deployer build --local`` builds them from the cache in seconds
    and pushes only a new manifest; the label gives them digests of their own."""
    entries = []
    for name in CLUSTER_IMAGES:
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(
            THIN_DOCKERFILE.format(image=f"{IMAGE_PREFIX}/{name}:{TAG}")
        )
        entries.append(f'[[image]]\nname = "{name}"\n')
    (root / "images.toml").write_text("\n".join(entries))
    return root


def test_build_local_then_up_runs_the_pushed_images(
    strict_emulator: FakeArm,
    pushed_images: PushedRegistry,
    emulator_deployer_env: dict[str, str],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """``deployer build --local`` pushes to the emulator's registry (the workload names it)
    and records the digests; ``deployer up`` then deploys exactly those (the bodies name
    them), the emulator pulls them, and the cluster works (its engines register)."""
    server = pushed_images.registry.server
    workload = tmp_path / "cluster.yaml"
    workload.write_text(EXAMPLE.read_text().replace("aciresearch.azurecr.io", server))
    # The build record, not a pinned tag, decides the images.
    env = {k: v for k, v in emulator_deployer_env.items() if k != "DEPLOYER_IMAGE_TAG"}
    env["DEPLOYER_READY_TIMEOUT"] = "240"
    images_dir = thin_images(tmp_path / "images")
    build = payload(
        deployer(
            env, "build", str(workload), "--local", "--images-dir", str(images_dir), "-o", "json"
        ).stdout
    )
    assert build is not None
    built = manifest.load(server)
    assert built is not None and set(built.images) == set(CLUSTER_IMAGES)
    expected = {name: f"{server}/{name}@{built.images[name].digest}" for name in CLUSTER_IMAGES}
    for name in CLUSTER_IMAGES:
        digest = built.images[name].digest
        assert digest and digest != pushed_images.digests.get(name), name

    deployer(env, "up", str(workload), "-o", "json")
    sent = {
        container["properties"]["image"]
        for call in strict_emulator.calls(method="PUT")
        if call.status in (200, 201) and call.body
        for container in call.body["properties"]["containers"]
    }
    assert sent == set(expected.values())
    head = strict_emulator.aci.docker_ids(DEPLOYER_RESOURCE_GROUP, "ipp-small-head")
    controller = docker_client.containers.get(head["ipcontroller"])
    wait_until(lambda: len(registered_engines(controller)) == 3, 180, "3 engines to register")
    deployer(env, "down", str(workload), "-o", "json")
