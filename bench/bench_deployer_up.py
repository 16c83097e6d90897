"""Wall time of `deployer up` for 12 container groups versus 1, against the fake ARM server.

Each group takes the same provisioning delay (default 2 s) in the fake, so a
concurrent `up` should take about as long for 12 groups as for one; the target is
at most 1.5x. Run from the repository root:

    .venv/bin/python bench/bench_deployer_up.py [--delay 2] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from aci_emulator import FAKE_TOKEN, FakeArm
from deployer import api
from testbed.bench import run
from testbed.fake_arm import registry_with_images

IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-00000000fa4e/resourceGroups/research/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/aci-research"
)


def workload(workers: int) -> str:
    """One BLAST worker of 4 threads per group, so `workers` groups."""
    return f"""
deployment:
  name: bench{workers}
  location: eastus
  registry: aciresearch.azurecr.io
  managed_identity: {IDENTITY}
  managed_identity_client_id: 11111111-1111-1111-1111-111111111111
  storage_account: aciresearchdata
workloads:
  blast:
    workers: {workers}
    threads_per_worker: 4
    databases:
      - {{name: demo, bytes_to_cache: 1000000}}
"""


def timed_up(arm: FakeArm, groups: int, tmp: Path) -> float:
    path = tmp / f"bench-{groups}.yaml"
    path.write_text(workload(groups))
    start = time.perf_counter()
    result = api.up(path)
    elapsed = time.perf_counter() - start
    assert len(result.groups) == groups and all(g.ready for g in result.groups)
    api.down(path)
    return elapsed


def main(
    delay: Annotated[float, typer.Option(help="provisioning delay (s)")] = 2.0,
    repeat: Annotated[int, typer.Option(help="runs per size; best is kept")] = 3,
) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeArm() as arm,
        registry_with_images() as registry,
    ):
        arm.aci.provisioning_delay = delay
        os.environ.update(
            DEPLOYER_STATE_DIR=str(Path(tmp) / "state"),
            DEPLOYER_ARM_ENDPOINT=arm.url,
            DEPLOYER_REGISTRY_ENDPOINT=registry.server,
            DEPLOYER_ACCESS_TOKEN=FAKE_TOKEN,
            AZURE_SUBSCRIPTION_ID=arm.subscription_id,
            DEPLOYER_RESOURCE_GROUP="research",
            DEPLOYER_POLL_INTERVAL="0.2",
        )
        one = min(timed_up(arm, 1, Path(tmp)) for _ in range(repeat))
        twelve = min(timed_up(arm, 12, Path(tmp)) for _ in range(repeat))
    print(f"provisioning delay per group: {delay:.1f} s (best of {repeat})")
    print(f"up, 1 group:   {one:6.2f} s")
    print(f"up, 12 groups: {twelve:6.2f} s")
    print(f"ratio 12/1:    {twelve / one:6.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    run(main, smoke={"delay": 0.2, "repeat": 1})
