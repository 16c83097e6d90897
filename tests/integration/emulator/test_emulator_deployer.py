"""The deployer CLI against the local ACI emulator: an IPython cluster of real containers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import docker

from aci_emulator import FakeArm
from aci_emulator.runtime import LABEL_INSTANCE
from testbed.cluster import registered_engines, wait_until
from testbed.engine import REPO
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP

EXAMPLE = REPO / "examples" / "ipyparallel-small.yaml"


def deployer(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the deployer CLI as a user would; fail with its output when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "deployer.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"deployer {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def payload(stdout: str) -> Any:
    """The data of a successful ``--output json`` envelope."""
    envelope = json.loads(stdout)
    assert envelope["ok"] is True
    # "data" is the agreed key (TEAM.md); "result" until the CLI convention lands here.
    return envelope["data"] if "data" in envelope else envelope["result"]


def test_deployer_up_status_logs_down_on_the_emulator(
    aci_emulator: FakeArm,
    emulator_deployer_env: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """``deployer up`` of the example cluster runs real ipcontroller/ipengine containers
    whose engines register; status, logs and down work through the same ARM API."""
    env = {**emulator_deployer_env, "DEPLOYER_READY_TIMEOUT": "240"}
    deployer(env, "up", str(EXAMPLE), "-o", "json")

    head = aci_emulator.aci.docker_ids(DEPLOYER_RESOURCE_GROUP, "ipp-small-head")
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
        all=True, filters={"label": f"{LABEL_INSTANCE}={aci_emulator.emulator.instance_id}"}
    )
    assert left == []
