"""``workloads.ipyparallel.idle_shutdown`` on the local ACI emulator: the deployment janitor
deletes an idle cluster after the idle time, and not while an ipyparallel task runs with
every kernel idle (read from the controller's ``ipp-activity`` log lines through ARM)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket

from deployer.run.deployment_janitor import parse_ipp_log
from testbed.engine import wait_for
from testbed.run_stack import RunStack

pytestmark = pytest.mark.docker

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
    idle_shutdown: 30s
    tls: {mode: "off"}
"""


def _token(stack: RunStack) -> str:
    state = Path(stack.env["DEPLOYER_STATE_DIR"])
    found = next(state.rglob("*idle*"))
    doc = json.loads(found.read_text())
    return str(doc["notebook_token"])


def _execute(base: str, token: str, code: str, timeout: float = 240) -> str:
    """Start a kernel, run ``code`` in it and return its stdout once the cell has finished
    (the kernel is idle afterwards)."""
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
        timeout=timeout,
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
    out = []
    try:
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content["traceback"])[-3000:])
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                return "".join(out)
    finally:
        ws.close()


# The kernel submits a 55 s task and returns at once: from then on every kernel is idle,
# and only the controller's task activity keeps the cluster alive. (30 s of idle time keeps
# the test short; the mechanism is the same as for the usual minutes: the controller then
# reports every 5 s, a sixth of the idle time at least 5 s.)
SUBMIT = """
import time, ipyparallel as ipp
rc = ipp.Client()
rc.wait_for_engines(1, timeout=180)
ar = rc.load_balanced_view().apply_async(time.sleep, 55)
print("submitted", ar.msg_ids[0])
"""


def test_idle_cluster_is_deleted_after_the_idle_time_but_not_while_a_task_runs(
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
    assert "submitted" in _execute(base, token, SUBMIT)
    # The kernel's last activity: from here it is idle, and the task runs 55 s more.
    t0 = time.monotonic()
    # Past the kernel's 30 s of idle time (the notebook signal alone would have ended the
    # cluster by now), and the task still runs: the cluster stays.
    time.sleep(40)
    assert "idle-head" in stack.groups("idle"), "deleted while an ipyparallel task was running"
    # What the janitor read: the controller's own report of the running task.
    logs = stack.deployer("logs", "idle-head", "ipcontroller", "--file", str(workload))
    report = parse_ipp_log(logs.stdout)
    assert report is not None and report.running == 1, logs.stdout[-3000:]
    wait_for(lambda: stack.groups("idle") == [], 120, "idle shutdown", interval=2)
    elapsed = time.monotonic() - t0
    # The task ends 55 s after its submission (a moment before t0); deletion needs the 30 s
    # of idle time after that.
    assert elapsed >= 80, f"deleted {elapsed:.0f} s after the task was submitted (55 s + 30 s)"
    assert stack.containers() == [], "containers left after the idle shutdown"


def _answers(base: str, token: str) -> bool:
    req = urllib.request.Request(f"{base}/api/kernels", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5):
            return True
    except OSError:
        return False
