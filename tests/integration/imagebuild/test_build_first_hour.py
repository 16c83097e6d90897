"""The first hour of ``deployer build``: a free-trial subscription refuses ACR Tasks
(``TasksOperationsNotAllowed``), and the build says so once and names ``--local``.

Real SDK and Azurite against the fake ACR; the refusal is ACR's own answer to ``scheduleRun``
(400, its code, message and target), scripted with the fake's fault injector.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from testbed.engine import REPO
from testbed.first_hour import error_and_hint
from testbed.imagebuild import FakeAcr

REFUSED = {
    "error": {
        "code": "TasksOperationsNotAllowed",
        "message": "ACR Tasks requests for the registry fakeacr and "
        "00000000-0000-0000-0000-00000000fa4e are not permitted. Please file an Azure support "
        "request at http://aka.ms/azuresupport for assistance.",
        "target": "request",
    }
}


def test_acr_tasks_refused_names_deployer_build_local(
    fake_acr: FakeAcr,
    deployer_arm: dict[str, str],
    mini_images: Callable[..., Path],
    build_workload: Callable[[str], Path],
) -> None:
    images_dir = mini_images()
    file = build_workload(fake_acr.server)
    fake_acr.arm.faults.script(400, method="POST", path="/scheduleRun", count=10, body=REFUSED)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "deployer"),
            "build",
            str(file),
            "--images-dir",
            str(images_dir),
            "--registry-name",
            fake_acr.name,
            "-i",
            "ipengine",
        ],
        env=deployer_arm,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(done.stderr)  # shown when an assertion below fails
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    # base-builder and base were refused; ipengine, their child, was never scheduled: one
    # cause, said once.
    assert line.startswith("error: 3 of 3 images failed: the registry refuses ACR Tasks runs")
    assert line.endswith("[TasksOperationsNotAllowed]")
    assert hint == (
        f"  hint: build with the local Docker engine and push instead: "
        f"`deployer build --local {file}`"
    )
    assert len(fake_acr.arm.calls("POST", path="scheduleRun")) == 2
