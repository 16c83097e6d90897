"""``workloads.ipyparallel.idle_shutdown`` on the local ACI emulator: the deployment janitor
deletes an idle cluster after the idle time, and not while a kernel runs a task."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket

from tests.integration.run.conftest import RunStack, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.long]

CLUSTER = """\
deployment:
  name: idle
  location: westeurope
  registry: emulator.azurecr.io
  registry_auth: admin
workloads:
  ipyparallel:
    engines: 1
    vcpu_per_engine: 0.5
    memory_gb_per_engine: 1
    idle_shutdown: 1m
    tls: {mode: "off"}
"""


def _token(stack: RunStack) -> str:
    state = Path(stack.env["DEPLOYER_STATE_DIR"])
    found = next(state.rglob("*idle*"))
    doc = json.loads(found.read_text())
    return str(doc["notebook_token"])


def _execute(base: str, token: str, code: str) -> None:
    """Start a kernel and send it ``code`` without waiting for the reply."""
    req = urllib.request.Request(
        f"{base}/api/kernels",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as answer:
        kernel = json.loads(answer.read())["id"]
    ws = websocket.create_connection(
        f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels?token={token}",
        timeout=60,
    )
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    ws.close()


def test_idle_cluster_is_deleted_after_an_idle_minute_but_not_while_a_task_runs(
    run_stack: RunStack, tmp_path: Path
) -> None:
    stack = run_stack
    workload = tmp_path / "idle.yaml"
    workload.write_text(CLUSTER)
    up = stack.deployer("up", str(workload), DEPLOYER_JANITOR_INTERVAL="2")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "idle-janitor" in stack.groups("idle")
    head = stack.arm.aci.docker_ids("research", "idle-head")
    assert head
    ip = stack.client.containers.get(head["(sandbox)"]).attrs["NetworkSettings"]["Networks"]
    address = next(iter(ip.values()))["IPAddress"]
    base = f"http://{address}:8888"
    token = _token(stack)
    wait_for(lambda: _answers(base, token), 120, "the notebook server")
    # A task of 100 s keeps a kernel busy for longer than the idle time.
    t0 = time.monotonic()
    _execute(base, token, "import time; time.sleep(100)")
    time.sleep(90)
    assert "idle-head" in stack.groups("idle"), "deleted while a kernel was running a task"
    wait_for(lambda: stack.groups("idle") == [], 150, "idle shutdown", interval=2)
    elapsed = time.monotonic() - t0
    assert elapsed >= 150, f"deleted {elapsed:.0f} s after the task started (task 100 s + 60 s)"


def _answers(base: str, token: str) -> bool:
    req = urllib.request.Request(f"{base}/api/kernels", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5):
            return True
    except OSError:
        return False
